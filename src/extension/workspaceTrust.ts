/**
 * Merging writes files into the workspace, so it needs a trusted workspace; inspecting only reads and works
 * everywhere. The manifest disables the writing commands in restricted mode; this check covers calls from
 * scripts and other extensions, and tells the user how to grant trust.
 */
import * as vscode from 'vscode';

/** True when the workspace is trusted; otherwise says why the action needs trust, offers to manage it, and returns false. */
export async function ensureTrusted(action: string): Promise<boolean> {
  if (vscode.workspace.isTrusted) return true;
  const choice = await vscode.window.showWarningMessage(
    `${action} writes files into this workspace, which is open in Restricted Mode. Trust the workspace to continue.`,
    'Manage Workspace Trust',
  );
  if (choice === 'Manage Workspace Trust') await vscode.commands.executeCommand('workbench.trust.manage');
  return false;
}
