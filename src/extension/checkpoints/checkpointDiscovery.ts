/**
 * Which files of a workspace are checkpoints, from their paths alone: the scan hands in every file its globs found,
 * this decides what the user sees as one checkpoint (a sharded set is one entry, a Hugging Face folder is one
 * entry) and groups the entries by folder. No vscode and no I/O here, so it is unit-tested in plain Node.
 */
import * as path from 'node:path';

/** How the view shows a checkpoint; `hf-folder` is a folder with config.json whose weights are read as one model. */
export type DiscoveredKind = 'safetensors' | 'safetensors-sharded' | 'pytorch' | 'npz' | 'hf-folder';

export interface DiscoveredCheckpoint {
  /** Absolute path of what `openCheckpoint` opens: the file, the index file or the folder. */
  readonly path: string;
  readonly kind: DiscoveredKind;
  /** File or folder name shown in the view. */
  readonly label: string;
  /** Absolute folder the entry is listed under (for an HF folder: the folder that holds it). */
  readonly folder: string;
}

export interface CheckpointGroup {
  /** Absolute folder path. */
  readonly folder: string;
  readonly checkpoints: readonly DiscoveredCheckpoint[];
}

/** Weight files whose presence next to a config.json makes the folder a Hugging Face model folder. */
const HF_WEIGHT_FILES = [
  'model.safetensors',
  'model.safetensors.index.json',
  'pytorch_model.bin',
  'pytorch_model.bin.index.json',
];

const SHARD_NAME = /-\d{5}-of-\d{5}\.(safetensors|bin)$/;
const SAFETENSORS_INDEX = /\.safetensors\.index\.json$/;
const PYTORCH_INDEX = /\.bin\.index\.json$/;

/** The kind a single file stands for by its name, or undefined when it is not a checkpoint file. */
export function checkpointKindOfFile(file: string): Exclude<DiscoveredKind, 'hf-folder'> | undefined {
  const name = path.basename(file).toLowerCase();
  if (SAFETENSORS_INDEX.test(name) || PYTORCH_INDEX.test(name)) return 'safetensors-sharded';
  if (name.endsWith('.safetensors')) return 'safetensors';
  if (name.endsWith('.bin') || name.endsWith('.pt') || name.endsWith('.pth')) return 'pytorch';
  if (name.endsWith('.npz')) return 'npz';
  return undefined;
}

/**
 * Turns the scanned file list into checkpoints: the weights of an HF folder (config.json + a known weight file)
 * collapse into the folder, other checkpoint files in it stay separate entries; shards listed by an index in the same folder collapse into the index (a shard-named
 * file without an index stays visible, so a broken set is not hidden); everything else is one entry per file.
 */
export function discoverCheckpoints(files: readonly string[]): DiscoveredCheckpoint[] {
  const byFolder = new Map<string, Set<string>>();
  for (const file of files) {
    const dir = path.dirname(file);
    let names = byFolder.get(dir);
    if (!names) byFolder.set(dir, (names = new Set()));
    names.add(path.basename(file));
  }
  const found: DiscoveredCheckpoint[] = [];
  for (const [dir, names] of byFolder) {
    const isHfFolder = names.has('config.json') && HF_WEIGHT_FILES.some((w) => names.has(w));
    if (isHfFolder) found.push({ path: dir, kind: 'hf-folder', label: path.basename(dir), folder: path.dirname(dir) });
    const hasIndex = [...names].some((n) => SAFETENSORS_INDEX.test(n) || PYTORCH_INDEX.test(n));
    for (const name of names) {
      const kind = checkpointKindOfFile(name);
      if (!kind) continue;
      // The folder entry stands for its weights; other checkpoint files in it (extra heads, adapters) stay listed.
      if (isHfFolder && HF_WEIGHT_FILES.includes(name)) continue;
      if ((hasIndex || isHfFolder) && SHARD_NAME.test(name)) continue;
      found.push({ path: path.join(dir, name), kind, label: name, folder: dir });
    }
  }
  return found.sort(compareCheckpoints);
}

function compareCheckpoints(a: DiscoveredCheckpoint, b: DiscoveredCheckpoint): number {
  return a.folder === b.folder ? a.label.localeCompare(b.label) : a.folder.localeCompare(b.folder);
}

/** Groups checkpoints by the folder they are listed under, folders in path order, entries by name. */
export function groupByFolder(checkpoints: readonly DiscoveredCheckpoint[]): CheckpointGroup[] {
  const groups = new Map<string, DiscoveredCheckpoint[]>();
  for (const c of [...checkpoints].sort(compareCheckpoints)) {
    let list = groups.get(c.folder);
    if (!list) groups.set(c.folder, (list = []));
    list.push(c);
  }
  return [...groups].map(([folder, list]) => ({ folder, checkpoints: list }));
}

/** True when a path lies under a folder the scan never enters (dependencies, VCS data, our test host cache). */
export function isInSkippedFolder(file: string): boolean {
  return file.split(/[\\/]/).some((seg) => seg === 'node_modules' || seg === '.git' || seg === '.vscode-test');
}

/**
 * The file that stands for a model folder when one file is needed (the inspector opens files, not folders): the
 * Hugging Face weight files in order of preference, else the only checkpoint file in it; undefined when ambiguous.
 */
export function weightFileOfFolder(names: readonly string[]): string | undefined {
  for (const preferred of HF_WEIGHT_FILES) if (names.includes(preferred)) return preferred;
  const files = names.filter((n) => checkpointKindOfFile(n) !== undefined && !SHARD_NAME.test(n));
  return files.length === 1 ? files[0] : undefined;
}
