import type * as vscode from 'vscode';
import { registerLog } from './log';
import { registerShowLog } from './showLog';
import { createAwdServices } from './services';
import { registerCheckpointsView } from './checkpoints/checkpointsView';
import { registerSelectionCommands } from './selection/selectionCommands';
import { registerInspector } from './inspector/inspectorCommands';
import { registerMergeWizard } from './merge/mergeWizard';
import { registerConfigCommands } from './config/configCommands';
import { registerShowSimilarity } from './similarity/showSimilarity';
import { registerInsertMergeConfig } from './merge/insertMergeConfig';
import { registerSimilarityPanel } from './similarityPanel/similarityPanel';

/** Registers every feature; each lives in its own module and hands back what to dispose. */
export function activate(context: vscode.ExtensionContext): void {
  context.subscriptions.push(registerLog(), registerShowLog(context));
  const awd = createAwdServices();
  context.subscriptions.push(awd);
  context.subscriptions.push(registerCheckpointsView(awd));
  context.subscriptions.push(registerSelectionCommands(awd));
  context.subscriptions.push(registerInspector(context, awd));
  context.subscriptions.push(registerMergeWizard(awd));
  context.subscriptions.push(registerConfigCommands(awd));
  context.subscriptions.push(registerShowSimilarity(awd));
  context.subscriptions.push(registerSimilarityPanel(context, awd));
  context.subscriptions.push(registerInsertMergeConfig(awd));
}

export function deactivate(): void {
  // Everything registered above is disposed through context.subscriptions.
}
