/**
 * The "AWD Checkpoints" view in the Explorer: the workspace's checkpoints grouped by folder, each with parameter
 * count, size and dtype, and the merge selection at a glance (the base starred, fine-tuned models numbered in merge
 * order, a summary in the view's description).
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { AwdServices } from '../services';
import { groupByFolder, type CheckpointGroup, type DiscoveredCheckpoint } from './checkpointDiscovery';
import { describeSummary, formatBytes, formatParameterCount } from './checkpointSummary';
import type { HeaderInfo } from './checkpointCatalog';
import { INSPECT_COMMAND } from '../inspector/inspectorCommands';

export const CHECKPOINTS_VIEW_ID = 'awd.checkpoints';
export const REFRESH_CHECKPOINTS_COMMAND = 'awd.refreshCheckpoints';

type Node = { kind: 'folder'; group: CheckpointGroup } | { kind: 'checkpoint'; checkpoint: DiscoveredCheckpoint; checkpointPath: string };

/** What "AWD: Refresh Checkpoints" returns: the view's content as text, for tests and scripts. */
export interface CheckpointsSnapshot {
  folder: string;
  checkpoints: { path: string; label: string; description: string; role?: 'base' | 'model' }[];
}

/** Folder label: relative to its workspace folder ("." → the workspace folder's name). */
function folderLabel(folder: string): string {
  const ws = vscode.workspace.getWorkspaceFolder(vscode.Uri.file(folder));
  if (!ws) return folder;
  const rel = path.relative(ws.uri.fsPath, folder);
  const multi = (vscode.workspace.workspaceFolders?.length ?? 0) > 1;
  if (rel === '') return ws.name;
  const shown = rel.split(path.sep).join('/');
  return multi ? `${ws.name}/${shown}` : shown;
}

class CheckpointsTree implements vscode.TreeDataProvider<Node> {
  private readonly changed = new vscode.EventEmitter<Node | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  private readonly headers = new Map<string, HeaderInfo>();

  constructor(private readonly services: AwdServices) {}

  refreshAll(): void {
    this.changed.fire(undefined);
  }

  getChildren(node?: Node): Node[] {
    const groups = groupByFolder(this.services.catalog.all);
    if (!node) {
      // One folder only: skip the folder level, the list is short enough.
      if (groups.length === 1) return groups[0]!.checkpoints.map(checkpointNode);
      return groups.map((group) => ({ kind: 'folder', group }));
    }
    return node.kind === 'folder' ? node.group.checkpoints.map(checkpointNode) : [];
  }

  getTreeItem(node: Node): vscode.TreeItem {
    if (node.kind === 'folder') {
      const item = new vscode.TreeItem(folderLabel(node.group.folder), vscode.TreeItemCollapsibleState.Expanded);
      item.iconPath = vscode.ThemeIcon.Folder;
      item.resourceUri = vscode.Uri.file(node.group.folder);
      item.description = `${node.group.checkpoints.length}`;
      item.contextValue = 'awdFolder';
      return item;
    }
    const c = node.checkpoint;
    const { selection } = this.services;
    const role = selection.roleOf(c.path);
    const item = new vscode.TreeItem(c.label, vscode.TreeItemCollapsibleState.None);
    item.id = c.path;
    item.resourceUri = vscode.Uri.file(c.path);
    const header = this.headers.get(c.path);
    if (!header) this.loadHeader(node);
    const summary = !header ? 'reading header…' : header.ok ? describeSummary(header.summary) : 'unreadable';
    const rolePrefix = role === 'base' ? 'base · ' : role === 'model' ? `#${selection.modelNumber(c.path)} · ` : '';
    item.description = rolePrefix + summary;
    item.iconPath =
      role === 'base' ? new vscode.ThemeIcon('star-full', new vscode.ThemeColor('charts.yellow'))
      : role === 'model' ? new vscode.ThemeIcon('git-merge', new vscode.ThemeColor('charts.blue'))
      : header && !header.ok ? new vscode.ThemeIcon('warning', new vscode.ThemeColor('problemsWarningIcon.foreground'))
      : new vscode.ThemeIcon(c.kind === 'hf-folder' ? 'file-submodule' : 'database');
    item.tooltip = tooltip(c, header, role);
    item.contextValue = `awdCheckpoint${role === 'base' ? '.base' : role === 'model' ? '.model' : ''}`;
    item.command = { command: INSPECT_COMMAND, title: 'Inspect Checkpoint', arguments: [vscode.Uri.file(c.path)] };
    item.accessibilityInformation = {
      label: `${c.label}, ${role === 'base' ? 'base model, ' : role === 'model' ? `fine-tuned model ${selection.modelNumber(c.path)}, ` : ''}${summary}`,
    };
    return item;
  }

  private loadHeader(node: Extract<Node, { kind: 'checkpoint' }>): void {
    void this.services.catalog.header(node.checkpoint.path).then((info) => {
      this.headers.set(node.checkpoint.path, info);
      this.changed.fire(node);
    });
  }

  /** After a rescan: re-reads the headers whose files changed (unchanged ones come from the catalog's cache). */
  revalidateHeaders(): void {
    const known = new Set(this.services.catalog.all.map((c) => c.path));
    for (const p of [...this.headers.keys()]) if (!known.has(p)) this.headers.delete(p);
    for (const c of this.services.catalog.all) {
      if (!this.headers.has(c.path)) continue;
      void this.services.catalog.header(c.path).then((info) => {
        if (this.headers.get(c.path) === info) return;
        this.headers.set(c.path, info);
        this.changed.fire(undefined);
      });
    }
  }

  /** The whole view as plain data, every header read. */
  async snapshot(): Promise<CheckpointsSnapshot[]> {
    const { selection, catalog } = this.services;
    const groups = groupByFolder(catalog.all);
    return Promise.all(
      groups.map(async (g) => ({
        folder: g.folder,
        checkpoints: await Promise.all(
          g.checkpoints.map(async (c) => {
            const h = await catalog.header(c.path);
            const role = selection.roleOf(c.path);
            return { path: c.path, label: c.label, description: h.ok ? describeSummary(h.summary) : `unreadable: ${h.message}`, ...(role ? { role } : {}) };
          }),
        ),
      })),
    );
  }
}

function checkpointNode(checkpoint: DiscoveredCheckpoint): Node {
  return { kind: 'checkpoint', checkpoint, checkpointPath: checkpoint.path };
}

function tooltip(c: DiscoveredCheckpoint, header: HeaderInfo | undefined, role: 'base' | 'model' | undefined): vscode.MarkdownString {
  const md = new vscode.MarkdownString();
  md.appendMarkdown(`**${c.label}**${role === 'base' ? ' — base model' : role === 'model' ? ' — fine-tuned, in the merge' : ''}\n\n`);
  md.appendText(c.path);
  md.appendMarkdown('\n\n');
  if (!header) md.appendText('Reading header…');
  else if (!header.ok) md.appendText(header.message);
  else {
    const s = header.summary;
    md.appendText(
      `${header.format} · ${s.tensors} tensors · ${formatParameterCount(s.parameters)} parameters (${s.parameters}) · ${formatBytes(s.bytes)} · ${s.dtypes.join(', ')}`,
    );
  }
  return md;
}

/** Summary of the selection for the view's description, e.g. "base: base.safetensors · 3 to merge". */
function selectionDescription(services: AwdServices): string | undefined {
  const { base, models } = services.selection.state;
  if (base === undefined && models.length === 0) return undefined;
  const parts = [base !== undefined ? `base: ${path.basename(base)}` : 'no base', `${models.length} to merge`];
  return parts.join(' · ');
}

export function registerCheckpointsView(services: AwdServices): vscode.Disposable {
  const tree = new CheckpointsTree(services);
  const view = vscode.window.createTreeView(CHECKPOINTS_VIEW_ID, { treeDataProvider: tree, canSelectMany: true, showCollapseAll: true });
  const updateDescription = (): void => {
    view.description = selectionDescription(services);
  };
  const unsubscribe = services.selection.onDidChange(() => {
    updateDescription();
    tree.refreshAll();
  });
  // The first scan starts when the view is first shown, not at activation of an unrelated command.
  let scanned = false;
  const scanOnce = (): void => {
    if (scanned) return;
    scanned = true;
    void services.catalog.refresh();
  };
  if (view.visible) scanOnce();
  return vscode.Disposable.from(
    view,
    view.onDidChangeVisibility((e) => {
      if (e.visible) scanOnce();
    }),
    services.catalog.onDidChange(() => {
      tree.refreshAll();
      tree.revalidateHeaders();
    }),
    vscode.commands.registerCommand(REFRESH_CHECKPOINTS_COMMAND, async (): Promise<CheckpointsSnapshot[]> => {
      scanned = true;
      await services.catalog.refresh();
      return tree.snapshot();
    }),
    { dispose: unsubscribe },
  );
}
