/**
 * "AWD: Insert Merge Config": puts a ready config at the cursor of the active editor (YAML, or JSON in a JSON
 * document), or as a new YAML cell after the current one in the active notebook, or into a new untitled YAML
 * document when no editor is open. Built from the merge selection when there is one, else a template.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { methodNeedsBase } from '../../core/config/schema';
import type { AwdServices } from '../services';
import { mergeDefaults } from '../settings';
import { requestSnippet, templateSnippet } from './configSnippet';
import { defaultOutPath, requestProblems, suggestMergeName, type MergeRequest } from './mergeRequest';

export const INSERT_MERGE_CONFIG_COMMAND = 'awd.insertMergeConfig';

/** Where the text went, for scripts and tests. */
export interface InsertOutcome {
  target: 'editor' | 'notebook' | 'untitled';
  uri: string;
  text: string;
}

function snippetFor(services: AwdServices, format: 'yaml' | 'json', relativeTo: string): string {
  const d = mergeDefaults();
  const { base, models } = services.selection.state;
  const root = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath ?? relativeTo;
  if (models.length > 0 && (base !== undefined || !methodNeedsBase(d.method))) {
    const awd = d.awdEnabled && models.length >= 2 && d.method !== 'linear' ? { ...d.awd } : undefined;
    const name = suggestMergeName(d.method, models, awd !== undefined);
    const request: MergeRequest = {
      ...(base !== undefined ? { base } : {}),
      models: [...models],
      method: d.method,
      lambda: d.lambda,
      density: d.density,
      ...(awd ? { awd } : {}),
      outPath: defaultOutPath(root, d, name),
      configPath: path.join(relativeTo, `${name}.merge.yaml`),
    };
    if (requestProblems(request).length === 0) return requestSnippet(request, format, relativeTo);
  }
  return templateSnippet(format, d.method, d.lambda, d.density);
}

export function registerInsertMergeConfig(services: AwdServices): vscode.Disposable {
  return vscode.commands.registerCommand(INSERT_MERGE_CONFIG_COMMAND, async (): Promise<InsertOutcome | undefined> => {
    const editor = vscode.window.activeTextEditor;
    const notebook = vscode.window.activeNotebookEditor;
    const root = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath ?? process.cwd();
    // A notebook cell's editor is also the active text editor: the notebook wins, the config becomes its own cell.
    if (notebook && (!editor || editor.document.uri.scheme === 'vscode-notebook-cell')) {
      const nbUri = notebook.notebook.uri;
      const relativeTo = nbUri.scheme === 'file' ? path.dirname(nbUri.fsPath) : root;
      const text = snippetFor(services, 'yaml', relativeTo);
      const index = notebook.selection.isEmpty ? notebook.notebook.cellCount : notebook.selection.end;
      const edit = new vscode.WorkspaceEdit();
      edit.set(nbUri, [vscode.NotebookEdit.insertCells(index, [new vscode.NotebookCellData(vscode.NotebookCellKind.Code, text, 'yaml')])]);
      await vscode.workspace.applyEdit(edit);
      return { target: 'notebook', uri: nbUri.toString(), text };
    }
    if (editor) {
      const doc = editor.document;
      const format = doc.languageId === 'json' || doc.languageId === 'jsonc' ? 'json' : 'yaml';
      const relativeTo = doc.uri.scheme === 'file' ? path.dirname(doc.uri.fsPath) : root;
      const text = snippetFor(services, format, relativeTo);
      await editor.edit((b) => b.insert(editor.selection.active, text));
      return { target: 'editor', uri: doc.uri.toString(), text };
    }
    const text = snippetFor(services, 'yaml', root);
    const doc = await vscode.workspace.openTextDocument({ language: 'yaml', content: text });
    await vscode.window.showTextDocument(doc);
    return { target: 'untitled', uri: doc.uri.toString(), text };
  });
}
