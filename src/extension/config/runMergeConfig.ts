/**
 * Running a merge config: validate it on the host (cheap, text only) so problems land as Diagnostics on their
 * lines, then run it in the background job queue and report the result once, with actions. Used by "Run Merge
 * From Config", the "▶ Run merge" CodeLens and the merge wizard alike.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { AwdErrorList, CancelledError, isAwdError, type AwdError } from '../../core/errors';
import { log, reportError } from '../log';
import type { AwdServices } from '../services';
import { memoryBudgetBytes } from '../settings';

export const SHOW_SIMILARITY_COMMAND = 'awd.showSimilarity';

/** How a run ended, for callers that chain (tests, the wizard). */
export type MergeRunOutcome =
  | { status: 'merged'; configFile: string; files: string[]; recordFile: string; seconds: number }
  | { status: 'invalid'; configFile: string; problems: string[] }
  | { status: 'failed'; configFile: string; message: string }
  | { status: 'cancelled'; configFile: string };

/** One notification for several problems; the full list goes to the log, shown on "Show details". */
async function notifyProblems(title: string, problems: readonly AwdError[]): Promise<void> {
  log.error(`${title}:`);
  for (const p of problems) log.error(`  - ${p.message}`);
  const first = problems[0]?.message ?? '';
  const more = problems.length > 1 ? ` (+${problems.length - 1} more)` : '';
  const choice = await vscode.window.showErrorMessage(`${title}: ${first}${more}`, 'Show details');
  if (choice === 'Show details') log.show(false);
}

/** Validates and runs the config in `uri`; resolves when the merge ends (never rejects for a user-facing problem). */
export async function runMergeConfig(services: AwdServices, uri: vscode.Uri): Promise<MergeRunOutcome> {
  const { diagnostics } = services;
  const configFile = uri.fsPath;
  const name = path.basename(configFile);
  const document = await vscode.workspace.openTextDocument(uri);
  // The worker reads the file from disk: what the user sees in the editor is what must run.
  if (document.isDirty) await document.save();
  const check = diagnostics.validate(document);
  if (!check.ok) {
    void notifyProblems(`Merge config ${name} has ${check.problems.length} problem${check.problems.length > 1 ? 's' : ''}`, check.problems);
    return { status: 'invalid', configFile, problems: check.problems.map((p) => p.message) };
  }
  const config = check.loaded.config;
  try {
    const result = await services.jobs.run(`AWD: merging ${name}`, { kind: 'merge', configFile, memoryBudgetBytes: memoryBudgetBytes() });
    if (result.kind !== 'merge') throw new Error(`unexpected job result "${result.kind}"`);
    const summary = result.merge;
    const out = summary.files[0] ?? config.out_path;
    log.info(`Merged ${name} → ${summary.files.join(', ')} (${summary.seconds.toFixed(2)} s, record ${summary.recordFile})`);
    void vscode.window
      .showInformationMessage(
        `Merged ${name} → ${vscode.workspace.asRelativePath(out)} in ${summary.seconds.toFixed(1)} s.`,
        'Open Output Folder',
        'Open Config',
        ...(config.base_model !== undefined && config.models.length > 0 ? ['Show Similarity'] : []),
      )
      .then(async (choice) => {
        if (choice === 'Open Output Folder') await vscode.commands.executeCommand('revealInExplorer', vscode.Uri.file(out));
        else if (choice === 'Open Config') await vscode.window.showTextDocument(uri);
        else if (choice === 'Show Similarity') {
          await vscode.commands.executeCommand(SHOW_SIMILARITY_COMMAND, { base: config.base_model, models: config.models.map((m) => m.model) });
        }
      });
    return { status: 'merged', configFile, files: summary.files, recordFile: summary.recordFile, seconds: summary.seconds };
  } catch (e) {
    if (e instanceof CancelledError) {
      log.info(`Merge of ${name} cancelled; nothing was written`);
      void vscode.window.showInformationMessage(`Merge of ${name} cancelled; nothing was written.`);
      return { status: 'cancelled', configFile };
    }
    if (isAwdError(e)) {
      const problems = e instanceof AwdErrorList ? e.problems : [e];
      diagnostics.addJobProblems(document, problems);
      void notifyProblems(`Merge of ${name} failed`, problems);
      return { status: 'failed', configFile, message: e.message };
    }
    reportError(`Merge of ${name}`, e);
    return { status: 'failed', configFile, message: e instanceof Error ? e.message : String(e) };
  }
}
