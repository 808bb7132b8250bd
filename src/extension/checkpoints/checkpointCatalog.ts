/**
 * The workspace's checkpoints, kept current: a scan with `findFiles` (async, never blocks the UI), a file-system
 * watcher that rescans after a quiet period, and header summaries read lazily and cached by modification time.
 * Only headers are read here; tensor data is never touched on the extension host.
 */
import * as vscode from 'vscode';
import { promises as fs } from 'node:fs';
import { basename, dirname, extname } from 'node:path';
import { openCheckpoint } from '../../core/formats/open';
import { log } from '../log';
import { scanGlobs } from '../settings';
import { checkpointKindOfFile, discoverCheckpoints, isInSkippedFolder, type DiscoveredCheckpoint } from './checkpointDiscovery';
import { summarizeTensors, type CheckpointSummary } from './checkpointSummary';

/** What the header of a checkpoint says, or why it could not be read. */
export type HeaderInfo = { ok: true; summary: CheckpointSummary; format: string } | { ok: false; message: string };

/** Quiet time after the last file event before a rescan, so that writing a model in pieces rescans once. */
const RESCAN_DEBOUNCE_MS = 400;
/** Headers read at once: enough to hide latency, few enough not to flood the disk on a big workspace. */
const HEADER_CONCURRENCY = 4;

export class CheckpointCatalog implements vscode.Disposable {
  private checkpoints: DiscoveredCheckpoint[] = [];
  private readonly headers = new Map<string, { stamp: string; info: Promise<HeaderInfo> }>();
  private readonly changeEmitter = new vscode.EventEmitter<void>();
  private readonly disposables: vscode.Disposable[] = [this.changeEmitter];
  private rescanTimer: NodeJS.Timeout | undefined;
  private scanning: Promise<void> | undefined;
  private rescanRequested = false;
  private activeHeaderReads = 0;
  private readonly headerQueue: (() => void)[] = [];

  /** Fires after each completed scan (the list may or may not have changed). */
  readonly onDidChange = this.changeEmitter.event;

  constructor() {
    const watcher = vscode.workspace.createFileSystemWatcher('**/*');
    const onEvent = (uri: vscode.Uri): void => {
      if (isInSkippedFolder(uri.fsPath) || !mayAffectCheckpoints(uri.fsPath)) return;
      this.headers.delete(uri.fsPath);
      this.headers.delete(dirname(uri.fsPath)); // the HF folder that holds a changed weight file
      this.scheduleRescan();
    };
    this.disposables.push(
      watcher,
      watcher.onDidCreate(onEvent),
      watcher.onDidChange(onEvent),
      watcher.onDidDelete(onEvent),
      vscode.workspace.onDidChangeWorkspaceFolders(() => this.scheduleRescan()),
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration('awdMerge.scan')) this.scheduleRescan();
      }),
    );
  }

  /** The checkpoints found by the last scan. */
  get all(): readonly DiscoveredCheckpoint[] {
    return this.checkpoints;
  }

  find(path: string): DiscoveredCheckpoint | undefined {
    return this.checkpoints.find((c) => c.path === path);
  }

  /** Scans now; joining a scan in flight makes it loop once more, so the result is current either way. */
  async refresh(): Promise<readonly DiscoveredCheckpoint[]> {
    if (this.scanning) {
      this.rescanRequested = true;
      await this.scanning;
      return this.checkpoints;
    }
    this.scanning = this.scanLoop();
    try {
      await this.scanning;
    } finally {
      this.scanning = undefined;
    }
    return this.checkpoints;
  }

  private async scanLoop(): Promise<void> {
    do {
      this.rescanRequested = false;
      const started = Date.now();
      this.checkpoints = await this.scanOnce();
      log.info(`Checkpoints: ${this.checkpoints.length} found in ${Date.now() - started} ms`);
      this.changeEmitter.fire();
    } while (this.rescanRequested);
  }

  private async scanOnce(): Promise<DiscoveredCheckpoint[]> {
    const { include, exclude } = scanGlobs();
    if (include.length === 0 || !vscode.workspace.workspaceFolders?.length) return [];
    const includeGlob = include.length === 1 ? include[0]! : `{${include.join(',')}}`;
    const excludeGlob = exclude.length === 0 ? null : exclude.length === 1 ? exclude[0]! : `{${exclude.join(',')}}`;
    const uris = await vscode.workspace.findFiles(includeGlob, excludeGlob);
    return discoverCheckpoints(uris.filter((u) => u.scheme === 'file' && !isInSkippedFolder(u.fsPath)).map((u) => u.fsPath));
  }

  private scheduleRescan(): void {
    if (this.rescanTimer) clearTimeout(this.rescanTimer);
    this.rescanTimer = setTimeout(() => {
      this.rescanTimer = undefined;
      this.refresh().catch((e: unknown) => log.error(`Checkpoint scan failed: ${e instanceof Error ? e.message : String(e)}`));
    }, RESCAN_DEBOUNCE_MS);
  }

  /** The header summary of a checkpoint, read once per modification (size + mtime) of its path. */
  async header(path: string): Promise<HeaderInfo> {
    let stamp: string;
    try {
      const st = await fs.stat(path);
      stamp = `${st.size}:${st.mtimeMs}`;
    } catch (e) {
      return { ok: false, message: `cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}` };
    }
    const cached = this.headers.get(path);
    if (cached && cached.stamp === stamp) return cached.info;
    const info = this.limited(() => readHeader(path));
    this.headers.set(path, { stamp, info });
    return info;
  }

  private async limited<T>(task: () => Promise<T>): Promise<T> {
    if (this.activeHeaderReads >= HEADER_CONCURRENCY) await new Promise<void>((resolve) => this.headerQueue.push(resolve));
    this.activeHeaderReads++;
    try {
      return await task();
    } finally {
      this.activeHeaderReads--;
      this.headerQueue.shift()?.();
    }
  }

  dispose(): void {
    if (this.rescanTimer) clearTimeout(this.rescanTimer);
    for (const d of this.disposables) d.dispose();
  }
}

/** A checkpoint file, an HF folder's config.json, or something without extension (a folder being removed). */
function mayAffectCheckpoints(file: string): boolean {
  return checkpointKindOfFile(file) !== undefined || basename(file) === 'config.json' || extname(file) === '';
}

async function readHeader(path: string): Promise<HeaderInfo> {
  try {
    const checkpoint = await openCheckpoint(path);
    try {
      return { ok: true, summary: summarizeTensors(checkpoint.tensors), format: checkpoint.format };
    } finally {
      await checkpoint.close();
    }
  } catch (e) {
    return { ok: false, message: e instanceof Error ? e.message : String(e) };
  }
}
