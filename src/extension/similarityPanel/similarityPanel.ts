/**
 * The "Task Vector Similarity" webview panel, host side: one panel per analysis. It runs the analysis as a
 * cancellable job in the worker (progress in the page and in a notification), sends the page a compact view of
 * the report, answers the page's requests (re-run AWD from the kept Gram matrices, export PNG / CSV, merge these
 * models) and restores itself after a reload from the page's saved state (a WebviewPanelSerializer), rebuilding
 * the view from the kept Gram matrices without reading any model.
 *
 * Two commands without a menu entry: `awd.similarityPanel.open` (what "Show Task Vector Similarity" calls with
 * the chosen base and models) and `awd.similarityPanel.automate` (drives the active panel's page exactly like its
 * buttons do and reports what it rendered: for tests and scripts).
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { SimilarityReport } from '../../core/analysis/analyze';
import { CancelledError } from '../../core/errors';
import type { JobProgress, SimilarityFromGramsJobRequest } from '../../jobs/protocol';
import { startJob, type JobHandle } from '../../jobs/runner';
import {
  parsePanelAction,
  parseSimilarityRequest,
  parseSource,
  type PanelAction,
  type PanelAwdSettings,
  type RenderSnapshot,
  type SimilarityRequest,
  type SimilarityUpdate,
  type SimilarityViewData,
} from '../../protocol/similarityMessages';
import { log, reportError } from '../log';
import { describeProgress, phaseFraction } from '../merge/jobProgressText';
import { MERGE_SELECTED_COMMAND } from '../merge/mergeWizard';
import type { AwdServices } from '../services';
import { similarityCsv } from './similarityCsv';
import { newNonce, similarityPageHtml } from './similarityPanelHtml';
import { fromGramsRequest, modelLabels, viewFromReport } from './similarityView';

export const SIMILARITY_VIEW_TYPE = 'awd.similarity';
export const OPEN_SIMILARITY_PANEL_COMMAND = 'awd.similarityPanel.open';
export const SIMILARITY_PANEL_AUTOMATION_COMMAND = 'awd.similarityPanel.automate';

/** What the panel analyses. */
export interface SimilarityPanelInputs {
  base: string;
  models: string[];
  awd?: PanelAwdSettings;
  memoryBudgetBytes?: number;
}

/** How an analysis opened through `awd.similarityPanel.open` ended. */
export type SimilarityPanelOutcome = { status: 'done'; report: SimilarityReport } | { status: 'cancelled' } | { status: 'failed'; message: string };

/** How long an automation request waits for the page to answer. */
const AUTOMATION_TIMEOUT_MS = 120_000;

interface PendingExport {
  file: string;
  resolve: (file: string) => void;
  reject: (e: Error) => void;
}

function isInputs(x: unknown): x is SimilarityPanelInputs {
  if (typeof x !== 'object' || x === null) return false;
  const i = x as Partial<SimilarityPanelInputs>;
  return typeof i.base === 'string' && Array.isArray(i.models) && i.models.length >= 2 && i.models.every((m) => typeof m === 'string');
}

class SimilarityPanel implements vscode.Disposable {
  private report: SimilarityReport | undefined;
  private view: SimilarityViewData | undefined;
  private job: JobHandle | undefined;
  /** A re-run of AWD (or a restore) from the kept Gram matrices. */
  private regramJob: JobHandle | undefined;
  private ready = false;
  private readonly queued: SimilarityUpdate[] = [];
  private snapshotWaiters: ((s: RenderSnapshot) => void)[] = [];
  private lastSnapshot: RenderSnapshot | undefined;
  private pendingExport: PendingExport | undefined;
  private readonly disposables: vscode.Disposable[] = [];
  private disposed = false;
  /** The page's last few problem reports, quoted when an automation request times out. */
  private readonly problems: string[] = [];

  constructor(
    readonly panel: vscode.WebviewPanel,
    private readonly extensionUri: vscode.Uri,
    private readonly services: AwdServices,
    private readonly onDispose: (p: SimilarityPanel) => void,
  ) {
    const dist = vscode.Uri.joinPath(extensionUri, 'dist');
    panel.webview.options = { enableScripts: true, localResourceRoots: [dist] };
    this.disposables.push(
      panel.webview.onDidReceiveMessage((m: unknown) => this.onMessage(m)),
      panel.onDidDispose(() => this.dispose()),
      // A hidden page is unloaded; it says "ready" again when shown, and gets the view then.
      panel.onDidChangeViewState((e) => {
        if (!e.webviewPanel.visible) this.ready = false;
      }),
    );
    this.render();
  }

  /** Re-creates the page (also what a restored panel needs: its page is loaded fresh). */
  private render(): void {
    const webview = this.panel.webview;
    const dist = vscode.Uri.joinPath(this.extensionUri, 'dist');
    this.ready = false;
    webview.html = similarityPageHtml({
      cspSource: webview.cspSource,
      scriptUri: webview.asWebviewUri(vscode.Uri.joinPath(dist, 'similarity.js')).toString(),
      styleUri: webview.asWebviewUri(vscode.Uri.joinPath(dist, 'similarity.css')).toString(),
      title: this.panel.title,
      nonce: newNonce(),
    });
  }

  /** Messages wait until the page has said it is ready (a hidden page is unloaded and reloads when shown again). */
  private post(update: SimilarityUpdate): void {
    if (this.disposed) return;
    if (update.type === 'data' || update.type === 'progress' || update.type === 'failed') {
      // Only the latest state of these matters to a page that is not listening yet.
      const k = this.queued.findIndex((q) => q.type === update.type);
      if (k >= 0) this.queued.splice(k, 1);
    }
    if (!this.ready) {
      this.queued.push(update);
      return;
    }
    void this.panel.webview.postMessage(update);
  }

  private setView(report: SimilarityReport): void {
    this.report = report;
    this.view = viewFromReport(report);
    this.panel.title = `Similarity: ${this.view.labels.join(', ')}`.slice(0, 80);
    this.post({ type: 'data', view: this.view });
  }

  /** Runs the analysis in the worker; resolves with how it ended. */
  async analyze(inputs: SimilarityPanelInputs): Promise<SimilarityPanelOutcome> {
    const labels = modelLabels(inputs.models);
    this.panel.title = `Similarity: ${labels.join(', ')}`.slice(0, 80);
    this.post({ type: 'progress', message: `Reading the task vectors of ${inputs.models.length} models…`, fraction: 0 });
    const title = `AWD: similarity of ${inputs.models.length} models`;
    log.info(`${title}: started`);
    const started = Date.now();
    return vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title, cancellable: true }, async (progress, token) => {
      let reported = 0;
      const onProgress = (p: JobProgress): void => {
        const fraction = p.phase === 'statistics' ? phaseFraction(p) : p.phase === 'plan' ? 0 : 1;
        const message = describeProgress(p);
        this.post({ type: 'progress', message, fraction });
        const increment = Math.max(0, fraction * 100 - reported);
        reported += increment;
        progress.report({ message, increment });
      };
      this.job = startJob(
        {
          kind: 'similarity',
          base: inputs.base,
          models: inputs.models,
          perTensor: true,
          ...(inputs.awd ? { awd: inputs.awd } : {}),
          ...(inputs.memoryBudgetBytes !== undefined ? { memoryBudgetBytes: inputs.memoryBudgetBytes } : {}),
        },
        { onProgress, onLog: (message) => log.info(`${title}: ${message}`) },
      );
      const subscription = token.onCancellationRequested(() => this.job?.cancel());
      try {
        const result = await this.job.done;
        if (result.kind !== 'similarity') throw new Error(`unexpected job result "${result.kind}"`);
        log.info(`${title}: finished in ${((Date.now() - started) / 1000).toFixed(2)} s`);
        this.setView(result.similarity);
        return { status: 'done', report: result.similarity } as const;
      } catch (e) {
        if (e instanceof CancelledError) {
          log.info(`${title}: cancelled`);
          this.post({ type: 'failed', message: 'The analysis was cancelled. Run "AWD: Show Task Vector Similarity" again to start over.' });
          return { status: 'cancelled' } as const;
        }
        reportError('Task vector similarity', e);
        const message = e instanceof Error ? e.message : String(e);
        this.post({ type: 'failed', message });
        return { status: 'failed', message } as const;
      } finally {
        subscription.dispose();
        this.job = undefined;
      }
    });
  }

  /** Rebuilds the view from a saved page state (after a reload) in the worker: no model is read. False when the state is unusable. */
  async restore(state: unknown): Promise<boolean> {
    const source = parseSource(typeof state === 'object' && state !== null ? (state as { source?: unknown }).source : undefined);
    if (!source) {
      this.post({ type: 'failed', message: 'This panel was saved without its analysis. Run "AWD: Show Task Vector Similarity" again.' });
      return false;
    }
    this.post({ type: 'progress', message: 'Restoring the analysis from its kept Gram matrices…' });
    const report = await this.fromGrams(fromGramsRequest(source), 'Restoring the similarity panel');
    if (report) this.setView(report);
    return report !== undefined;
  }

  /** Runs a from-Gram-matrices job in the worker (cancelling one still running); undefined when it failed or was superseded. */
  private async fromGrams(request: SimilarityFromGramsJobRequest, action: string): Promise<SimilarityReport | undefined> {
    this.regramJob?.cancel();
    const job = startJob(request);
    this.regramJob = job;
    try {
      const result = await job.done;
      if (result.kind !== 'similarity') throw new Error(`unexpected job result "${result.kind}"`);
      return this.regramJob === job ? result.similarity : undefined;
    } catch (e) {
      if (!(e instanceof CancelledError)) {
        reportError(action, e);
        this.post({ type: 'notice', message: `${action} failed: ${e instanceof Error ? e.message : String(e)}` });
      }
      return undefined;
    } finally {
      if (this.regramJob === job) this.regramJob = undefined;
    }
  }

  private onMessage(raw: unknown): void {
    const message = parseSimilarityRequest(raw);
    if (!message) {
      const type = typeof raw === 'object' && raw !== null ? String((raw as { type?: unknown }).type) : typeof raw;
      log.warn(`Similarity panel: dropped a malformed "${type}" message from the page`);
      return;
    }
    void this.handle(message).catch((e: unknown) => reportError('Similarity panel', e));
  }

  private async handle(message: SimilarityRequest): Promise<void> {
    switch (message.type) {
      case 'ready':
        this.ready = true;
        if (this.view && !this.queuedHas('data')) this.queued.push({ type: 'data', view: this.view });
        for (const update of this.queued.splice(0)) void this.panel.webview.postMessage(update);
        break;
      case 'rendered':
        this.lastSnapshot = message.snapshot;
        for (const w of this.snapshotWaiters.splice(0)) w(message.snapshot);
        break;
      case 'cancel':
        this.job?.cancel();
        break;
      case 'problem':
        log.warn(`Similarity panel: ${message.message}`);
        this.problems.push(message.message);
        this.problems.splice(0, this.problems.length - 5);
        break;
      case 'rerunAwd':
        await this.rerunAwd(message.settings);
        break;
      case 'exportCsv':
        await this.exportCsv();
        break;
      case 'exportPng':
        await this.exportPng(message.dataUrl, message.name);
        break;
      case 'merge':
        await this.merge();
        break;
    }
  }

  private queuedHas(type: SimilarityUpdate['type']): boolean {
    return this.queued.some((q) => q.type === type);
  }

  /** Re-runs AWD (or drops it) on the kept Gram matrices, in the worker: O(T·iterations·K³) arithmetic, no model read. */
  private async rerunAwd(settings: PanelAwdSettings | null): Promise<void> {
    if (!this.view) return;
    const t0 = performance.now();
    this.post({ type: 'busy', message: settings ? `Running AWD (${settings.granularity}, ${settings.iterations} iterations) on the kept Gram matrices…` : 'Removing AWD…' });
    const report = await this.fromGrams(fromGramsRequest(this.view.source, settings), 'Re-running AWD');
    if (!report) return;
    log.info(
      `Similarity: ${settings ? `AWD re-run (α ${settings.alpha}, β ${settings.learning_rate}, ${settings.iterations} iterations, ${settings.granularity}, ${settings.norm})` : 'AWD removed'} from the kept Gram matrices in ${(performance.now() - t0).toFixed(0)} ms`,
    );
    this.setView(report);
  }

  /** Where an export goes: the file a script asked for, or the one the user picks. */
  private async exportTarget(kind: 'PNG' | 'CSV', name: string): Promise<vscode.Uri | undefined> {
    const pending = this.pendingExport;
    if (pending && path.extname(pending.file).toLowerCase() === `.${kind.toLowerCase()}`) return vscode.Uri.file(pending.file);
    const folder = vscode.workspace.workspaceFolders?.[0]?.uri;
    return vscode.window.showSaveDialog({
      title: `Export the similarity ${kind === 'PNG' ? 'heatmap' : 'values'} as ${kind}`,
      saveLabel: 'Export',
      filters: kind === 'PNG' ? { 'PNG image': ['png'] } : { CSV: ['csv'] },
      ...(folder ? { defaultUri: vscode.Uri.joinPath(folder, name) } : {}),
    });
  }

  private async writeExport(kind: 'PNG' | 'CSV', name: string, bytes: Uint8Array): Promise<void> {
    const target = await this.exportTarget(kind, name);
    if (!target) return;
    try {
      await vscode.workspace.fs.writeFile(target, bytes);
    } catch (e) {
      this.pendingExport?.reject(e instanceof Error ? e : new Error(String(e)));
      this.pendingExport = undefined;
      throw e;
    }
    log.info(`Similarity: exported ${kind} to ${target.fsPath}`);
    this.post({ type: 'notice', message: `Saved ${target.fsPath}` });
    if (this.pendingExport && this.pendingExport.file === target.fsPath) {
      this.pendingExport.resolve(target.fsPath);
      this.pendingExport = undefined;
    }
  }

  private async exportCsv(): Promise<void> {
    if (!this.report || !this.view) return;
    await this.writeExport('CSV', 'similarity.csv', new TextEncoder().encode(similarityCsv(this.report, this.view.labels)));
  }

  private async exportPng(dataUrl: string, name: string): Promise<void> {
    const bytes = Buffer.from(dataUrl.slice(dataUrl.indexOf(',') + 1), 'base64');
    await this.writeExport('PNG', name, bytes);
  }

  /** "Merge these models…": the merge selection becomes this analysis' base and models, then the merge wizard opens on it. */
  private async merge(): Promise<void> {
    const source = this.view?.source;
    if (!source) return;
    this.services.selection.replace({ base: source.base, models: source.models });
    const uris = source.models.map((m) => vscode.Uri.file(m));
    log.info(`Similarity: merging ${source.models.length} models into ${source.base}`);
    void vscode.commands.executeCommand(MERGE_SELECTED_COMMAND, uris[0], uris).then(undefined, (e: unknown) => reportError('Merge these models', e));
  }

  /** Sends the page an action as if the user clicked it; resolves with what the page rendered, or the exported file. */
  async automate(action: PanelAction, file?: string): Promise<RenderSnapshot | { file: string } | { merged: true }> {
    if (action.kind === 'exportPng' || action.kind === 'exportCsv') {
      if (!file) throw new Error('an export through automation needs the target file');
      if (this.pendingExport) throw new Error('another export is in progress');
      const exported = new Promise<string>((resolve, reject) => (this.pendingExport = { file, resolve, reject }));
      this.post({ type: 'action', action });
      return { file: await withTimeout(exported, `the ${action.kind} export`, this.problems) };
    }
    if (action.kind === 'merge') {
      this.post({ type: 'action', action });
      return { merged: true };
    }
    const next = new Promise<RenderSnapshot>((resolve) => this.snapshotWaiters.push(resolve));
    this.post({ type: 'action', action });
    return withTimeout(next, `the page's render after ${action.kind}`, this.problems);
  }

  /** The last render the page reported, or the next one when it has not rendered yet. */
  snapshot(): Promise<RenderSnapshot> {
    if (this.lastSnapshot) return Promise.resolve(this.lastSnapshot);
    return withTimeout(new Promise<RenderSnapshot>((resolve) => this.snapshotWaiters.push(resolve)), "the page's first render", this.problems);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.job?.cancel();
    this.regramJob?.cancel();
    this.pendingExport?.reject(new Error('the panel was closed'));
    for (const d of this.disposables.splice(0)) d.dispose();
    this.panel.dispose();
    this.onDispose(this);
  }
}

function withTimeout<T>(p: Promise<T>, what: string, problems: readonly string[]): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>(
    (_, reject) =>
      (timer = setTimeout(() => {
        const reported = problems.length > 0 ? ` (the page reported: ${problems.join(' | ')})` : '';
        reject(new Error(`no answer from ${what} within ${AUTOMATION_TIMEOUT_MS / 1000} s${reported}`));
      }, AUTOMATION_TIMEOUT_MS)),
  );
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** Registers the panel's serializer and its two commands. */
export function registerSimilarityPanel(context: vscode.ExtensionContext, services: AwdServices): vscode.Disposable {
  const panels = new Set<SimilarityPanel>();
  let active: SimilarityPanel | undefined;

  const track = (panel: SimilarityPanel): SimilarityPanel => {
    panels.add(panel);
    active = panel;
    panel.panel.onDidChangeViewState((e) => {
      if (e.webviewPanel.active) active = panel;
    });
    return panel;
  };
  const forget = (panel: SimilarityPanel): void => {
    panels.delete(panel);
    if (active === panel) active = [...panels].pop();
  };

  return vscode.Disposable.from(
    vscode.window.registerWebviewPanelSerializer(SIMILARITY_VIEW_TYPE, {
      deserializeWebviewPanel: async (webviewPanel, state: unknown) => {
        const panel = track(new SimilarityPanel(webviewPanel, context.extensionUri, services, forget));
        await panel.restore(state);
      },
    }),
    vscode.commands.registerCommand(OPEN_SIMILARITY_PANEL_COMMAND, async (inputs: unknown): Promise<SimilarityPanelOutcome> => {
      if (!isInputs(inputs)) throw new Error(`${OPEN_SIMILARITY_PANEL_COMMAND} needs { base, models: [two or more] }`);
      const webviewPanel = vscode.window.createWebviewPanel(SIMILARITY_VIEW_TYPE, 'Task Vector Similarity', vscode.ViewColumn.Active, {
        enableScripts: true,
        localResourceRoots: [vscode.Uri.joinPath(context.extensionUri, 'dist')],
      });
      const panel = track(new SimilarityPanel(webviewPanel, context.extensionUri, services, forget));
      return panel.analyze(inputs);
    }),
    vscode.commands.registerCommand(SIMILARITY_PANEL_AUTOMATION_COMMAND, async (request: unknown, file?: unknown) => {
      if (!active) throw new Error('no Task Vector Similarity panel is open');
      if (request === 'snapshot') return active.snapshot();
      const action = parsePanelAction(request);
      if (!action) throw new Error(`not a similarity panel action: ${JSON.stringify(request)}`);
      return active.automate(action, typeof file === 'string' ? file : undefined);
    }),
    new vscode.Disposable(() => {
      for (const p of [...panels]) p.dispose();
    }),
  );
}
