/**
 * The checkpoint inspector: a read-only custom editor (default for .safetensors, offered for .bin/.pt/.pth/.npz and
 * sharded indexes). Opening reads the header only, so a file of any size opens at once; statistics are computed
 * on demand in the worker, one page of tensors at a time. Messages follow src/protocol/inspectorMessages.ts and
 * what comes from the webview is validated before use.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { openCheckpoint } from '../../core/formats/open';
import type { TensorInfo } from '../../core/formats/types';
import { startJob } from '../../jobs/runner';
import {
  parseInspectorRequest,
  type InspectorBase,
  type InspectorCheckpoint,
  type InspectorTensorStats,
  type InspectorUpdate,
} from '../../protocol/inspectorMessages';
import type { TensorStatsEntry } from '../../jobs/statsJob';
import { summarizeTensors } from '../checkpoints/checkpointSummary';
import { log } from '../log';
import type { AwdServices } from '../services';
import { memoryBudgetBytes } from '../settings';
import { pickCheckpoints } from '../selection/selectionCommands';
import { inspectorPageHtml, newNonce } from './inspectorHtml';

/** The default editor of .safetensors files. */
export const INSPECTOR_VIEW_TYPE = 'awd.checkpointInspector';
/** The same inspector, offered ("Open With…") for .bin/.pt/.pth/.npz and sharded indexes, which other editors may own. */
export const INSPECTOR_OPTION_VIEW_TYPE = 'awd.checkpointInspector.other';

/** The inspector's view type registered for a file's name. */
export function inspectorViewTypeFor(file: string): string {
  return file.toLowerCase().endsWith('.safetensors') ? INSPECTOR_VIEW_TYPE : INSPECTOR_OPTION_VIEW_TYPE;
}

/** What an open inspector reports once its page has loaded the header (the Inspect command resolves with it). */
export interface InspectorLoaded {
  path: string;
  format?: string;
  tensors?: number;
  error?: string;
}

class InspectorDocument implements vscode.CustomDocument {
  constructor(readonly uri: vscode.Uri) {}
  dispose(): void {
    // Nothing held: the header is read per panel and closed right away.
  }
}

/** Reads the header of a checkpoint into the message the page renders; no tensor data is read. */
async function readCheckpointHeader(file: string): Promise<InspectorCheckpoint> {
  const checkpoint = await openCheckpoint(file);
  try {
    const summary = summarizeTensors(checkpoint.tensors);
    return {
      path: checkpoint.path,
      label: path.basename(file),
      format: checkpoint.format,
      metadata: { ...checkpoint.metadata },
      tensors: checkpoint.tensors.map((t: TensorInfo) => ({ name: t.name, dtype: t.dtype, shape: [...t.shape], elements: t.elements, bytes: t.bytes })),
      parameters: summary.parameters,
      bytes: summary.bytes,
    };
  } finally {
    await checkpoint.close();
  }
}

function toInspectorStats(s: TensorStatsEntry): InspectorTensorStats {
  return {
    name: s.name,
    mean: s.mean,
    std: s.std,
    min: s.min,
    max: s.max,
    l2Norm: s.l2_norm,
    nanCount: s.nan_count,
    infCount: s.inf_count,
    ...(s.diff_norm !== undefined ? { diffNorm: s.diff_norm } : {}),
    ...(s.diff_problem !== undefined ? { diffProblem: s.diff_problem } : {}),
  };
}

export class InspectorProvider implements vscode.CustomReadonlyEditorProvider<InspectorDocument> {
  private readonly loadedListeners = new Set<(loaded: InspectorLoaded) => void>();

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly services: AwdServices,
  ) {}

  /** Resolves when an inspector for `file` has sent the header to its page (or failed to read it). */
  whenLoaded(file: string, timeoutMs: number): Promise<InspectorLoaded | undefined> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.loadedListeners.delete(listener);
        resolve(undefined);
      }, timeoutMs);
      const listener = (loaded: InspectorLoaded): void => {
        if (loaded.path !== file) return;
        clearTimeout(timer);
        this.loadedListeners.delete(listener);
        resolve(loaded);
      };
      this.loadedListeners.add(listener);
    });
  }

  openCustomDocument(uri: vscode.Uri): InspectorDocument {
    return new InspectorDocument(uri);
  }

  resolveCustomEditor(document: InspectorDocument, panel: vscode.WebviewPanel): void {
    const file = document.uri.fsPath;
    const webview = panel.webview;
    const dist = vscode.Uri.joinPath(this.extensionUri, 'dist');
    const media = vscode.Uri.joinPath(this.extensionUri, 'media');
    webview.options = { enableScripts: true, localResourceRoots: [dist, media] };
    webview.html = inspectorPageHtml({
      cspSource: webview.cspSource,
      scriptUri: webview.asWebviewUri(vscode.Uri.joinPath(dist, 'inspector.js')).toString(),
      styleUri: webview.asWebviewUri(vscode.Uri.joinPath(media, 'inspector.css')).toString(),
      title: path.basename(file),
      nonce: newNonce(),
    });

    /** The base chosen in this panel; until one is chosen, the merge selection's base is used. */
    let chosenBase: string | undefined;
    const running = new Set<{ cancel(): void }>();
    const post = (m: InspectorUpdate): void => {
      void webview.postMessage(m);
    };
    const currentBase = (): InspectorBase | undefined => {
      const p = chosenBase ?? this.services.selection.state.base;
      return p !== undefined && p !== file ? { path: p, label: path.basename(p) } : undefined;
    };

    const handle = async (raw: unknown): Promise<void> => {
      const message = parseInspectorRequest(raw);
      if (!message) {
        log.warn(`Inspector ${path.basename(file)}: ignored a malformed message from the page`);
        return;
      }
      switch (message.type) {
        case 'ready': {
          try {
            const started = Date.now();
            const checkpoint = await readCheckpointHeader(file);
            const base = currentBase();
            post({ type: 'checkpoint', checkpoint, ...(base ? { base } : {}) });
            log.info(`Inspector: ${checkpoint.tensors.length} tensors of ${file} listed in ${Date.now() - started} ms (header only)`);
            this.emitLoaded({ path: file, format: checkpoint.format, tensors: checkpoint.tensors.length });
          } catch (e) {
            const text = e instanceof Error ? e.message : String(e);
            post({ type: 'loadError', message: text });
            log.error(`Inspector: ${text}`);
            this.emitLoaded({ path: file, error: text });
          }
          return;
        }
        case 'chooseBase': {
          const picked = await pickCheckpoints(this.services, {
            title: 'Compare with which base model?',
            canPickMany: false,
            exclude: [file],
          });
          if (picked?.[0] !== undefined) {
            chosenBase = picked[0];
            post({ type: 'base', base: currentBase() });
          }
          return;
        }
        case 'computeStats': {
          const base = currentBase();
          const job = startJob({
            kind: 'tensorStats',
            checkpoint: file,
            tensors: message.tensors,
            ...(base ? { base: base.path } : {}),
            memoryBudgetBytes: memoryBudgetBytes(),
          });
          running.add(job);
          try {
            const result = await job.done;
            if (result.kind === 'tensorStats') post({ type: 'stats', requestId: message.requestId, stats: result.stats.map(toInspectorStats) });
          } catch (e) {
            post({ type: 'statsError', requestId: message.requestId, message: e instanceof Error ? e.message : String(e) });
          } finally {
            running.delete(job);
          }
          return;
        }
      }
    };

    const unsubscribe = this.services.selection.onDidChange(() => {
      if (chosenBase === undefined) post({ type: 'base', base: currentBase() });
    });
    const received = webview.onDidReceiveMessage((raw: unknown) => {
      handle(raw).catch((e: unknown) => log.error(`Inspector: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`));
    });
    panel.onDidDispose(() => {
      unsubscribe();
      received.dispose();
      for (const job of running) job.cancel();
    });
  }

  private emitLoaded(loaded: InspectorLoaded): void {
    for (const l of [...this.loadedListeners]) l(loaded);
  }
}
