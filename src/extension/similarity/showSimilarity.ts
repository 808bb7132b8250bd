/**
 * "AWD: Show Task Vector Similarity": how much the fine-tuned models' task vectors interfere. Computed in the
 * worker (one streaming pass), with AWD's diagnostics using the AWD settings; the K×K cosine matrices and the
 * diagnostics are written to the "AWD Merge" output channel.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { SimilarityReport } from '../../core/analysis/analyze';
import { CancelledError } from '../../core/errors';
import { SHOW_SIMILARITY_COMMAND } from '../config/runMergeConfig';
import { log, reportError } from '../log';
import type { AwdServices } from '../services';
import { memoryBudgetBytes, mergeDefaults } from '../settings';
import { targetPaths } from '../selection/commandTargets';
import { pickCheckpoints } from '../selection/selectionCommands';
import { similarityReportLines } from './similarityReportText';
import { OPEN_SIMILARITY_PANEL_COMMAND, type SimilarityPanelOutcome } from '../similarityPanel/similarityPanel';

interface SimilarityInputs {
  base: string;
  models: string[];
}

function isInputs(x: unknown): x is Partial<SimilarityInputs> {
  return typeof x === 'object' && x !== null && !(x instanceof vscode.Uri) && ('base' in x || 'models' in x);
}

/** Base and models from the argument, the Explorer selection, the merge selection, or asked. */
async function inputsFor(services: AwdServices, first: unknown, second: unknown): Promise<SimilarityInputs | undefined> {
  const selection = services.selection.state;
  if (isInputs(first)) {
    const base = typeof first.base === 'string' ? first.base : selection.base;
    const models = Array.isArray(first.models) ? first.models.filter((m): m is string => typeof m === 'string') : [...selection.models];
    return base !== undefined ? { base, models } : undefined;
  }
  const picked = targetPaths(first, second);
  let base = selection.base;
  let models = [...selection.models];
  if (picked.length > 0) {
    if (base !== undefined && !picked.includes(base)) models = picked;
    else if (picked.length > 1) {
      const choice = await vscode.window.showQuickPick(
        picked.map((p) => ({ label: path.basename(p), path: p })),
        { title: 'Which of the selected checkpoints is the base model?' },
      );
      if (!choice) return undefined;
      base = choice.path;
      models = picked.filter((p) => p !== base);
    } else models = picked;
  }
  if (base === undefined) {
    base = (await pickCheckpoints(services, { title: 'Base model the task vectors are measured from', canPickMany: false, exclude: models }))?.[0];
    if (base === undefined) return undefined;
  }
  if (models.length < 2) {
    const more = await pickCheckpoints(services, { title: 'Fine-tuned models to compare (two or more)', canPickMany: true, exclude: [base], preselect: models });
    if (!more) return undefined;
    models = more;
  }
  return { base, models };
}

export function registerShowSimilarity(services: AwdServices): vscode.Disposable {
  return vscode.commands.registerCommand(SHOW_SIMILARITY_COMMAND, async (first?: unknown, second?: unknown): Promise<SimilarityReport | undefined> => {
    const inputs = await inputsFor(services, first, second);
    if (!inputs) return undefined;
    if (inputs.models.length < 2) {
      void vscode.window.showWarningMessage('Task vector similarity compares two or more fine-tuned models: add another with "AWD: Add to Merge".');
      return undefined;
    }
    const awd = mergeDefaults().awd;
    try {
      // The analysis runs in the "Task Vector Similarity" panel (src/extension/similarityPanel), which shows its progress and errors.
      const outcome = await vscode.commands.executeCommand<SimilarityPanelOutcome>(OPEN_SIMILARITY_PANEL_COMMAND, {
        base: inputs.base,
        models: inputs.models,
        awd,
        memoryBudgetBytes: memoryBudgetBytes(),
      });
      if (outcome.status !== 'done') return undefined;
      const label = (p: string): string => vscode.workspace.asRelativePath(p);
      for (const line of similarityReportLines(outcome.report, label)) log.info(line);
      return outcome.report;
    } catch (e) {
      if (e instanceof CancelledError) {
        log.info('Task vector similarity cancelled');
        return undefined;
      }
      reportError('Task vector similarity', e);
      return undefined;
    }
  });
}
