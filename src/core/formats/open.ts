/**
 * The one entry point for reading a checkpoint: picks the reader by content (magic bytes, header shape), not by
 * extension, so a renamed file still opens and a mislabelled one is not misread.
 *   PK\x03\x04 → zip: `<archive>/data.pkl` ⇒ PyTorch, `*.npy` members ⇒ npz
 *   \x93NUMPY → npy · 0x80 (pickle) or a tar → PyTorch legacy formats (that reader accepts or explains)
 *   8-byte length ≤ file + '{' → safetensors · JSON with `weight_map` → sharded index · folder → Hugging Face folder
 */
import { promises as fsp } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import { AwdError } from '../errors';
import { resolveModelFolder } from './hfFolder';
import { NPY_MAGIC, openNpy, openNpz } from './numpy';
import { fileOpenError, PositionalFile } from './positionalFile';
import { openPyTorchCheckpoint } from './pytorch';
import { MAX_HEADER_BYTES, openSafetensors } from './safetensors';
import { openShardedCheckpoint, readShardIndex } from './sharded';
import type { Checkpoint, CheckpointFormat, RawSource, TensorInfo } from './types';
import { ZipArchive } from './zipArchive';

/** What a single file holds, judged from its first bytes (and, for zips, its entry names). */
export type FileKind = 'safetensors' | 'pytorch' | 'npy' | 'npz' | 'shard-index';

const SUPPORTED =
  'Supported: safetensors (.safetensors and *.safetensors.index.json), PyTorch torch.save files (.bin/.pt/.pth), ' +
  'NumPy .npy/.npz, and Hugging Face model folders';

function startsWith(bytes: Uint8Array, magic: readonly number[]): boolean {
  return magic.every((b, i) => bytes[i] === b);
}

/** Classifies a file by content; an unrecognised file is an AwdError listing what is supported. */
export async function detectFileKind(path: string): Promise<FileKind> {
  const file = await PositionalFile.open(resolvePath(path));
  try {
    const head = await file.read(0, Math.min(file.size, 512));
    if (startsWith(head, [0x50, 0x4b, 0x03, 0x04])) return await zipKind(file);
    if (startsWith(head, NPY_MAGIC)) return 'npy';
    // safetensors before the pickle check: a header length whose low byte is 0x80 (e.g. 384) starts with 0x80 too.
    if (head.length >= 9) {
      const n = new DataView(head.buffer, head.byteOffset).getBigUint64(0, true);
      if (n > 0n && n <= BigInt(MAX_HEADER_BYTES) && n <= BigInt(file.size - 8) && head[8] === 0x7b /* { */) return 'safetensors';
    }
    if (head[0] === 0x80) return 'pytorch';
    if (head.length >= 262 && new TextDecoder('latin1').decode(head.subarray(257, 262)) === 'ustar') return 'pytorch';
    // A JSON object is an index only if it has a weight_map (checked in full when parsed).
    if (new TextDecoder().decode(head).trimStart().startsWith('{') && (await looksLikeIndex(file))) return 'shard-index';
    // No content matched: a file named like a known format goes to that reader, whose error says what is wrong.
    const byName = kindFromExtension(file.path);
    if (byName) return byName;
    throw new AwdError('not a checkpoint format we recognise', { file: file.path, fix: SUPPORTED });
  } finally {
    await file.close();
  }
}

/** The format a file's name claims, used only when its content matched nothing (for a precise error). */
function kindFromExtension(path: string): FileKind | undefined {
  const lower = path.toLowerCase();
  if (lower.endsWith('.safetensors')) return 'safetensors';
  if (lower.endsWith('.index.json')) return 'shard-index';
  if (lower.endsWith('.npy')) return 'npy';
  if (lower.endsWith('.npz')) return 'npz';
  if (/\.(bin|pt|pth|ckpt)$/.test(lower)) return 'pytorch';
  return undefined;
}

/** Scans (a bounded prefix of) a JSON file for a weight_map key; real indexes put metadata first, then weight_map. */
async function looksLikeIndex(file: PositionalFile): Promise<boolean> {
  const prefix = await file.read(0, Math.min(file.size, 1 << 20));
  return new TextDecoder().decode(prefix).includes('"weight_map"');
}

async function zipKind(file: PositionalFile): Promise<FileKind> {
  const zip = await ZipArchive.open(file, SUPPORTED);
  try {
    const names = zip.entries.map((e) => e.fileName);
    if (names.some((n) => n === 'data.pkl' || n.endsWith('/data.pkl'))) return 'pytorch';
    if (names.some((n) => n.endsWith('.npy'))) return 'npz';
    throw new AwdError('a zip archive that is neither a PyTorch checkpoint (no data.pkl) nor a NumPy .npz (no .npy members)', {
      file: file.path,
      fix: SUPPORTED,
    });
  } finally {
    zip.close();
  }
}

/** The file a path stands for: itself, or a model folder's weights file. */
async function resolveTarget(path: string): Promise<{ file: string; isFolder: boolean }> {
  const absolute = resolvePath(path);
  let isFolder: boolean;
  try {
    isFolder = (await fsp.stat(absolute)).isDirectory();
  } catch (e) {
    throw fileOpenError(absolute, e);
  }
  return { file: isFolder ? await resolveModelFolder(absolute) : absolute, isFolder };
}

/** The format `openCheckpoint(path)` would read, from content alone (a folder reports its weights' format). */
export async function detectFormat(path: string): Promise<CheckpointFormat> {
  const { file } = await resolveTarget(path);
  const kind = await detectFileKind(file);
  if (kind !== 'shard-index') return kind;
  const index = await readShardIndex(file);
  const first = index.shards[0];
  if (first === undefined) return 'safetensors-sharded';
  return (await shardKind(index.path, first)) === 'pytorch' ? 'pytorch' : 'safetensors-sharded';
}

/** A shard must be a plain weights file: never another index, folder or archive of arrays. */
async function shardKind(indexPath: string, shard: string): Promise<'safetensors' | 'pytorch'> {
  let kind: FileKind;
  try {
    kind = await detectFileKind(shard);
  } catch (e) {
    if (e instanceof AwdError && e.message.includes('no such file')) {
      throw new AwdError(`shard ${shard} listed in the index is missing`, { file: indexPath, fix: 'Download or copy every shard file next to the index' });
    }
    throw e;
  }
  if (kind !== 'safetensors' && kind !== 'pytorch') {
    throw new AwdError(`shard ${shard} is a ${kind} file, not safetensors or PyTorch weights`, { file: indexPath });
  }
  return kind;
}

/** Opens one weights file by its content. */
async function openFile(file: string, kind: Exclude<FileKind, 'shard-index'>): Promise<Checkpoint> {
  switch (kind) {
    case 'safetensors':
      return openSafetensors(file);
    case 'pytorch':
      return openPyTorchCheckpoint(file);
    case 'npy':
      return openNpy(file);
    case 'npz':
      return openNpz(file);
  }
}

/**
 * Opens a checkpoint: a safetensors, PyTorch or NumPy file, a sharded index, or a Hugging Face model folder.
 * `path` of the result is the absolute path given (so a folder stays the folder).
 */
export async function openCheckpoint(path: string): Promise<Checkpoint> {
  const { file, isFolder } = await resolveTarget(path);
  const kind = await detectFileKind(file);
  let checkpoint: Checkpoint;
  if (kind === 'shard-index') {
    const index = await readShardIndex(file);
    const kinds = new Map<string, 'safetensors' | 'pytorch'>();
    for (const shard of index.shards) {
      try {
        await fsp.access(shard);
      } catch {
        continue; // openShardedCheckpoint reports the missing shard with the index's name
      }
      kinds.set(shard, await shardKind(index.path, shard));
    }
    const format = [...kinds.values()].includes('pytorch') ? 'pytorch' : 'safetensors-sharded';
    checkpoint = await openShardedCheckpoint(index, format, (shard) => openFile(shard, kinds.get(shard)!));
  } else {
    checkpoint = await openFile(file, kind);
  }
  return isFolder ? new FolderCheckpoint(resolvePath(path), checkpoint) : checkpoint;
}

/** A model folder: the checkpoint of its weights file, presented under the folder's path. */
class FolderCheckpoint implements Checkpoint {
  constructor(
    readonly path: string,
    private readonly inner: Checkpoint,
  ) {}

  get format(): CheckpointFormat {
    return this.inner.format;
  }

  get tensors(): readonly TensorInfo[] {
    return this.inner.tensors;
  }

  get metadata(): Readonly<Record<string, string>> {
    return this.inner.metadata;
  }

  get files(): readonly string[] {
    return this.inner.files;
  }

  tensor(name: string): TensorInfo | undefined {
    return this.inner.tensor(name);
  }

  readFloat32(name: string, start?: number, end?: number, out?: Float32Array): Promise<Float32Array> {
    return this.inner.readFloat32(name, start, end, out);
  }

  readBytes(name: string, start?: number, end?: number): Promise<Uint8Array> {
    return this.inner.readBytes(name, start, end);
  }

  rawSource(name: string): RawSource | undefined {
    return this.inner.rawSource?.(name);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
