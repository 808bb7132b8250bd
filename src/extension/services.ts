/**
 * The state the features share: the workspace's checkpoints, the merge selection and the background job queue.
 * Created once in `activate` and handed to each feature's `register…` function.
 */
import * as vscode from 'vscode';
import { CheckpointCatalog } from './checkpoints/checkpointCatalog';
import { ConfigDiagnostics } from './config/configDiagnostics';
import { BackgroundJobs } from './merge/backgroundJobs';
import { MergeSelection } from './selection/mergeSelection';

export interface AwdServices extends vscode.Disposable {
  readonly catalog: CheckpointCatalog;
  readonly selection: MergeSelection;
  readonly jobs: BackgroundJobs;
  /** Diagnostics on merge config files (validation as you type, and problems a merge found). */
  readonly diagnostics: ConfigDiagnostics;
}

/** Context keys the menus' `when` clauses read. */
export const CONTEXT_HAS_SELECTION = 'awd.hasMergeSelection';
export const CONTEXT_CAN_MERGE = 'awd.canMerge';

export function createAwdServices(): AwdServices {
  const catalog = new CheckpointCatalog();
  const selection = new MergeSelection();
  const jobs = new BackgroundJobs();
  const diagnostics = new ConfigDiagnostics();
  const updateContext = (): void => {
    const { base, models } = selection.state;
    void vscode.commands.executeCommand('setContext', CONTEXT_HAS_SELECTION, !selection.isEmpty);
    void vscode.commands.executeCommand('setContext', CONTEXT_CAN_MERGE, base !== undefined && models.length > 0);
  };
  const unsubscribe = selection.onDidChange(updateContext);
  updateContext();
  return {
    catalog,
    selection,
    jobs,
    diagnostics,
    dispose: () => {
      unsubscribe();
      diagnostics.dispose();
      jobs.dispose();
      catalog.dispose();
    },
  };
}
