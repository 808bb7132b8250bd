/**
 * "Run Merge From Config", the "▶ Run merge" CodeLens on config files, live Diagnostics on them, and "Cancel
 * Running Merges".
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { AwdServices } from '../services';
import { targetPaths } from '../selection/commandTargets';
import { ensureTrusted } from '../workspaceTrust';
import type { ConfigDiagnostics } from './configDiagnostics';
import { isMergeConfigDocument, mergeMethodLine } from './mergeConfigFiles';
import { runMergeConfig, type MergeRunOutcome } from './runMergeConfig';

export const RUN_MERGE_CONFIG_COMMAND = 'awd.runMergeFromConfig';
export const CANCEL_MERGES_COMMAND = 'awd.cancelMerges';

class RunMergeCodeLens implements vscode.CodeLensProvider {
  provideCodeLenses(document: vscode.TextDocument): vscode.CodeLens[] {
    const text = document.getText();
    if (document.uri.scheme !== 'file' || !isMergeConfigDocument(document.fileName, document.languageId, text)) return [];
    const range = document.lineAt(Math.min(mergeMethodLine(text), document.lineCount - 1)).range;
    return [
      new vscode.CodeLens(range, {
        title: '▶ Run merge',
        tooltip: 'Run this merge config in the background (AWD: Run Merge From Config)',
        command: RUN_MERGE_CONFIG_COMMAND,
        arguments: [document.uri],
      }),
    ];
  }
}

/** The config to run: the argument, else the active editor's document when it is a config, else a pick. */
async function configToRun(diagnostics: ConfigDiagnostics, first: unknown): Promise<vscode.Uri | undefined> {
  const given = targetPaths(first, undefined)[0];
  if (given !== undefined) return vscode.Uri.file(given);
  const active = vscode.window.activeTextEditor?.document;
  if (active && diagnostics.isConfig(active)) return active.uri;
  const found = await vscode.workspace.findFiles('**/*.merge.{yaml,yml,json}', '**/{node_modules,.git}/**');
  if (found.length === 0) {
    void vscode.window.showWarningMessage('No merge config (*.merge.yaml) in the workspace: create one with "AWD: Merge Checkpoints" or "AWD: Insert Merge Config".');
    return undefined;
  }
  const picked = await vscode.window.showQuickPick(
    found.map((uri) => ({ label: path.basename(uri.fsPath), description: vscode.workspace.asRelativePath(path.dirname(uri.fsPath)), uri })),
    { title: 'Run which merge config?' },
  );
  return picked?.uri;
}

export function registerConfigCommands(services: AwdServices): vscode.Disposable {
  const { diagnostics } = services;
  const selector: vscode.DocumentSelector = [
    { scheme: 'file', language: 'yaml' },
    { scheme: 'file', language: 'json' },
    { scheme: 'file', language: 'jsonc' },
  ];
  return vscode.Disposable.from(
    vscode.languages.registerCodeLensProvider(selector, new RunMergeCodeLens()),
    vscode.commands.registerCommand(RUN_MERGE_CONFIG_COMMAND, async (first?: unknown): Promise<MergeRunOutcome | undefined> => {
      if (!(await ensureTrusted('Running a merge'))) return undefined;
      const uri = await configToRun(diagnostics, first);
      return uri ? runMergeConfig(services, uri) : undefined;
    }),
    vscode.commands.registerCommand(CANCEL_MERGES_COMMAND, (): number => {
      const n = services.jobs.cancelAll();
      if (n === 0) void vscode.window.showInformationMessage('No merge is running.');
      return n;
    }),
  );
}
