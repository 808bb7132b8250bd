/**
 * Which checkpoints a command acts on, from however it was invoked: the Explorer passes (clicked Uri, all selected
 * Uris), the checkpoints view passes its tree node, tests and other commands pass paths or Uris; with no argument
 * the active inspector's or editor's file is used.
 */
import * as vscode from 'vscode';

/** What a checkpoints-view node carries (the tree passes the node itself to item commands). */
export interface CheckpointNodeArgument {
  readonly checkpointPath: string;
}

function isNode(x: unknown): x is CheckpointNodeArgument {
  return typeof x === 'object' && x !== null && typeof (x as { checkpointPath?: unknown }).checkpointPath === 'string';
}

function toPath(x: unknown): string | undefined {
  if (typeof x === 'string' && x !== '') return x;
  if (x instanceof vscode.Uri) return x.scheme === 'file' ? x.fsPath : undefined;
  if (isNode(x)) return x.checkpointPath;
  return undefined;
}

/** Paths from the command's arguments (multi-select first), in the order given, without duplicates. */
export function targetPaths(first: unknown, second: unknown): string[] {
  let items: unknown[] = [];
  if (Array.isArray(second) && second.length > 0) items = second;
  else if (Array.isArray(first)) items = first;
  else if (first !== undefined) items = [first];
  const paths = items.map(toPath).filter((p): p is string => p !== undefined);
  return paths.filter((p, i) => paths.indexOf(p) === i);
}

/** The file of the active custom editor (the inspector) or text editor, when it is a local file. */
export function activeFilePath(): string | undefined {
  const input = vscode.window.tabGroups.activeTabGroup.activeTab?.input;
  if (input instanceof vscode.TabInputCustom || input instanceof vscode.TabInputText) {
    return input.uri.scheme === 'file' ? input.uri.fsPath : undefined;
  }
  return undefined;
}
