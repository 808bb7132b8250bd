/**
 * "Set as Base Model", "Add to Merge", "Remove from Merge" and "Clear Merge Selection": they edit the merge
 * selection from the Explorer (multi-select), the checkpoints view, or the palette (then the active file, else a
 * pick from the workspace's checkpoints). Each returns the selection afterwards, so scripts and tests can chain.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { AwdServices } from '../services';
import type { MergeSelectionState } from './mergeSelection';
import { activeFilePath, targetPaths } from './commandTargets';

export const SET_BASE_COMMAND = 'awd.setBaseModel';
export const ADD_TO_MERGE_COMMAND = 'awd.addToMerge';
export const REMOVE_FROM_MERGE_COMMAND = 'awd.removeFromMerge';
export const CLEAR_SELECTION_COMMAND = 'awd.clearMergeSelection';

/** Lets the user pick checkpoints of the workspace (one or several). */
export async function pickCheckpoints(
  services: AwdServices,
  options: { title: string; canPickMany: boolean; exclude?: readonly string[]; preselect?: readonly string[] },
): Promise<string[] | undefined> {
  const all = await services.catalog.refresh();
  const candidates = all.filter((c) => !options.exclude?.includes(c.path));
  if (candidates.length === 0) {
    void vscode.window.showWarningMessage('No checkpoints found in the workspace (.safetensors, .bin, .pt, .pth, .npz, Hugging Face folders).');
    return undefined;
  }
  const items = candidates.map((c) => ({
    label: c.label,
    description: vscode.workspace.asRelativePath(c.folder),
    path: c.path,
    picked: options.preselect?.includes(c.path) ?? false,
  }));
  if (options.canPickMany) {
    const picked = await vscode.window.showQuickPick(items, { title: options.title, canPickMany: true, matchOnDescription: true });
    return picked && picked.length > 0 ? picked.map((i) => i.path) : undefined;
  }
  const picked = await vscode.window.showQuickPick(items, { title: options.title, matchOnDescription: true });
  return picked ? [picked.path] : undefined;
}

async function targetsOrPick(services: AwdServices, first: unknown, second: unknown, title: string, many: boolean): Promise<string[] | undefined> {
  const given = targetPaths(first, second);
  if (given.length > 0) return given;
  const active = activeFilePath();
  if (active && services.catalog.find(active)) return [active];
  return pickCheckpoints(services, { title, canPickMany: many });
}

export function registerSelectionCommands(services: AwdServices): vscode.Disposable {
  const { selection } = services;
  return vscode.Disposable.from(
    vscode.commands.registerCommand(SET_BASE_COMMAND, async (first?: unknown, second?: unknown): Promise<MergeSelectionState> => {
      const paths = await targetsOrPick(services, first, second, 'Base model (the checkpoint the others were fine-tuned from)', false);
      if (paths && paths.length > 0) {
        if (paths.length > 1) void vscode.window.showWarningMessage(`Only one base model: using ${path.basename(paths[0]!)}.`);
        selection.setBase(paths[0]!);
      }
      return selection.state;
    }),
    vscode.commands.registerCommand(ADD_TO_MERGE_COMMAND, async (first?: unknown, second?: unknown): Promise<MergeSelectionState> => {
      const paths = await targetsOrPick(services, first, second, 'Fine-tuned models to merge', true);
      if (paths) {
        const skippedBase = paths.filter((p) => p === selection.state.base);
        selection.add(paths);
        if (skippedBase.length > 0) {
          void vscode.window.showInformationMessage(`${path.basename(skippedBase[0]!)} is the base model; it was not added as a fine-tuned model.`);
        }
      }
      return selection.state;
    }),
    vscode.commands.registerCommand(REMOVE_FROM_MERGE_COMMAND, (first?: unknown, second?: unknown): MergeSelectionState => {
      for (const p of targetPaths(first, second)) selection.remove(p);
      return selection.state;
    }),
    vscode.commands.registerCommand(CLEAR_SELECTION_COMMAND, (): MergeSelectionState => {
      selection.clear();
      return selection.state;
    }),
  );
}
