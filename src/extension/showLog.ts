import * as vscode from 'vscode';
import { log } from './log';

/** Command id of "AWD: Show Log". */
export const SHOW_LOG_COMMAND = 'awd.showLog';

/**
 * Lines describing where the extension runs: its version and the host's, and whether the UI is a desktop or a
 * browser (code-server, Codespaces) and which remote it is attached to — the first things to ask about a bug report.
 */
export function describeHost(extensionVersion: string): string[] {
  const remote = vscode.env.remoteName ?? 'none (local)';
  return [
    `AWD Merge ${extensionVersion}`,
    `VS Code ${vscode.version} (${vscode.env.appName}, host ${vscode.env.appHost})`,
    `UI: ${vscode.UIKind[vscode.env.uiKind]}, remote: ${remote}`,
    `Extension host: Node ${process.version} on ${process.platform}-${process.arch}`,
  ];
}

/** Registers "AWD: Show Log": writes the host description into the log and reveals it. Returns the lines written. */
export function registerShowLog(context: vscode.ExtensionContext): vscode.Disposable {
  return vscode.commands.registerCommand(SHOW_LOG_COMMAND, (): string[] => {
    const version = String((context.extension.packageJSON as { version?: unknown }).version ?? 'unknown');
    const lines = describeHost(version);
    for (const line of lines) log.info(line);
    log.show(false);
    return lines;
  });
}
