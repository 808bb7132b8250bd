/**
 * "AWD: Inspect Checkpoint": opens the inspector on a file, or on the weight file of a model folder. Registers the
 * custom editor too. Resolves once the page shows the header, with what it shows (so scripts and tests can wait).
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { AwdError } from '../../core/errors';
import { weightFileOfFolder } from '../checkpoints/checkpointDiscovery';
import { reportError } from '../log';
import type { AwdServices } from '../services';
import { activeFilePath, targetPaths } from '../selection/commandTargets';
import { pickCheckpoints } from '../selection/selectionCommands';
import { INSPECTOR_OPTION_VIEW_TYPE, INSPECTOR_VIEW_TYPE, InspectorProvider, inspectorViewTypeFor, type InspectorLoaded } from './inspectorEditor';

export const INSPECT_COMMAND = 'awd.inspectCheckpoint';

/** How long Inspect waits for the page to report the header before it returns without it. */
const LOAD_WAIT_MS = 30_000;

/** A folder → the file the inspector opens for it (AwdError when the folder holds no single model file). */
async function inspectableFile(target: string): Promise<string> {
  const st = await fs.stat(target);
  if (!st.isDirectory()) return target;
  const file = weightFileOfFolder(await fs.readdir(target));
  if (!file) {
    throw new AwdError('no single checkpoint file in this folder', {
      file: target,
      fix: 'Inspect one of its files directly, or keep one model per folder (model.safetensors or a sharded index)',
    });
  }
  return path.join(target, file);
}

export function registerInspector(context: vscode.ExtensionContext, services: AwdServices): vscode.Disposable {
  const provider = new InspectorProvider(context.extensionUri, services);
  const editorOptions = { supportsMultipleEditorsPerDocument: true, webviewOptions: { retainContextWhenHidden: false } };
  return vscode.Disposable.from(
    vscode.window.registerCustomEditorProvider(INSPECTOR_VIEW_TYPE, provider, editorOptions),
    vscode.window.registerCustomEditorProvider(INSPECTOR_OPTION_VIEW_TYPE, provider, editorOptions),
    vscode.commands.registerCommand(INSPECT_COMMAND, async (first?: unknown, second?: unknown): Promise<InspectorLoaded[]> => {
      let targets = targetPaths(first, second);
      if (targets.length === 0) {
        const active = activeFilePath();
        targets = active && services.catalog.find(active) ? [active] : ((await pickCheckpoints(services, { title: 'Inspect which checkpoint?', canPickMany: false })) ?? []);
      }
      const loaded: InspectorLoaded[] = [];
      for (const target of targets) {
        try {
          const file = await inspectableFile(target);
          const uri = vscode.Uri.file(file);
          const viewType = inspectorViewTypeFor(file);
          const alreadyOpen = vscode.window.tabGroups.all.some((g) =>
            g.tabs.some((t) => t.input instanceof vscode.TabInputCustom && t.input.viewType === viewType && t.input.uri.fsPath === file),
          );
          const whenLoaded = provider.whenLoaded(file, alreadyOpen ? 2000 : LOAD_WAIT_MS);
          await vscode.commands.executeCommand('vscode.openWith', uri, viewType);
          const result = await whenLoaded;
          if (result) loaded.push(result);
          else if (alreadyOpen) loaded.push({ path: file });
          else loaded.push({ path: file, error: 'the inspector page did not report back in time' });
        } catch (e) {
          reportError(`Inspect ${path.basename(target)}`, e);
          loaded.push({ path: target, error: e instanceof Error ? e.message : String(e) });
        }
      }
      return loaded;
    }),
  );
}
