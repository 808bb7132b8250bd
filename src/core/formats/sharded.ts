/**
 * Sharded checkpoints: an index JSON (`model.safetensors.index.json`, `pytorch_model.bin.index.json`) whose
 * `weight_map` sends each tensor name to a shard file beside it; all shards are presented as one Checkpoint.
 */
import { promises as fsp } from 'node:fs';
import { dirname, isAbsolute, relative, resolve as resolvePath, sep } from 'node:path';
import { AwdError } from '../errors';
import { findDuplicateJsonKey } from './jsonDuplicateKeys';
import { fileOpenError } from './positionalFile';
import { unknownTensorError } from './tensorRange';
import type { Checkpoint, CheckpointFormat, RawSource, TensorInfo } from './types';

/** An index file bigger than this is not an index (a real one is well under a megabyte per thousand tensors). */
const MAX_INDEX_BYTES = 100_000_000;

const INDEX_FIX = 'Fix the index file or re-save the model (e.g. with save_pretrained)';

export interface ShardIndex {
  /** Absolute path of the index file. */
  readonly path: string;
  /** Tensor name → absolute shard path, in index order. */
  readonly weightMap: ReadonlyMap<string, string>;
  /** Distinct shard paths, sorted by name (shard files are numbered, so this is their order). */
  readonly shards: readonly string[];
  /** The index's own `metadata`, values as strings (numbers such as total_size as their JSON text). */
  readonly metadata: Readonly<Record<string, string>>;
}

/** Parses and validates an index file's text: a `weight_map` of strings naming files inside the index's folder. */
export function parseShardIndex(indexPath: string, text: string): ShardIndex {
  const file = resolvePath(indexPath);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new AwdError(`the index is not valid JSON (${(e as Error).message})`, { file, fix: INDEX_FIX });
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new AwdError('the index is not a JSON object', { file, fix: INDEX_FIX });
  }
  const { weight_map: map, metadata } = json as Record<string, unknown>;
  if (typeof map !== 'object' || map === null || Array.isArray(map)) {
    throw new AwdError('the index has no `weight_map` object', { file, fix: INDEX_FIX });
  }
  const duplicate = findDuplicateJsonKey(text);
  if (duplicate !== undefined) {
    throw new AwdError('listed twice in the index', { file, tensor: duplicate, fix: INDEX_FIX });
  }
  const folder = dirname(file);
  const weightMap = new Map<string, string>();
  for (const [name, shard] of Object.entries(map)) {
    if (typeof shard !== 'string' || shard === '') {
      throw new AwdError(`weight_map value ${JSON.stringify(shard)} is not a file name`, { file, tensor: name, fix: INDEX_FIX });
    }
    const shardPath = resolvePath(folder, shard);
    const rel = relative(folder, shardPath);
    // A shard must live in the index's folder tree: "../x" or "/etc/x" would read files the user never pointed at.
    if (isAbsolute(shard) || rel === '' || rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel)) {
      throw new AwdError(`shard path "${shard}" leaves the index's folder`, { file, tensor: name, fix: 'Shard paths must be relative to the index file, inside its folder' });
    }
    weightMap.set(name, shardPath);
  }
  const meta: [string, string][] = [];
  if (typeof metadata === 'object' && metadata !== null && !Array.isArray(metadata)) {
    for (const [k, v] of Object.entries(metadata)) meta.push([k, typeof v === 'string' ? v : JSON.stringify(v)]);
  }
  const shards = [...new Set(weightMap.values())].sort();
  return { path: file, weightMap, shards, metadata: Object.fromEntries(meta) };
}

/** Reads an index file with a size limit. */
export async function readShardIndex(indexPath: string): Promise<ShardIndex> {
  const file = resolvePath(indexPath);
  let size: number;
  try {
    size = (await fsp.stat(file)).size;
  } catch (e) {
    throw fileOpenError(file, e);
  }
  if (size > MAX_INDEX_BYTES) throw new AwdError(`index file is ${size} bytes, too large to be an index`, { file, fix: INDEX_FIX });
  return parseShardIndex(file, await fsp.readFile(file, 'utf8'));
}

/** All shards of an index as one Checkpoint: reads go to the shard that holds the tensor. */
class ShardedCheckpoint implements Checkpoint {
  readonly files: readonly string[];
  readonly tensors: readonly TensorInfo[];
  private readonly owner = new Map<string, Checkpoint>();

  constructor(
    readonly path: string,
    readonly format: CheckpointFormat,
    private readonly shards: readonly Checkpoint[],
    readonly metadata: Readonly<Record<string, string>>,
  ) {
    this.files = [path, ...shards.flatMap((s) => s.files)];
    const tensors: TensorInfo[] = [];
    for (const shard of shards) {
      for (const t of shard.tensors) {
        tensors.push(t);
        this.owner.set(t.name, shard);
      }
    }
    this.tensors = tensors;
  }

  tensor(name: string): TensorInfo | undefined {
    return this.owner.get(name)?.tensor(name);
  }

  private shardOf(name: string): Checkpoint {
    const shard = this.owner.get(name);
    if (!shard) throw unknownTensorError(this.path, name);
    return shard;
  }

  async readFloat32(name: string, start?: number, end?: number, out?: Float32Array): Promise<Float32Array> {
    return this.shardOf(name).readFloat32(name, start, end, out);
  }

  rawSource(name: string): RawSource | undefined {
    return this.shardOf(name).rawSource?.(name);
  }

  async readBytes(name: string, start?: number, end?: number): Promise<Uint8Array> {
    return this.shardOf(name).readBytes(name, start, end);
  }

  async close(): Promise<void> {
    await Promise.all(this.shards.map((s) => s.close()));
  }
}

/**
 * Opens every shard of `index` with `openShard` and checks the index against them: each listed tensor must be in
 * the shard named for it, and no tensor may be in two shards. Tensors come in shard order, then file order.
 */
export async function openShardedCheckpoint(
  index: ShardIndex,
  format: CheckpointFormat,
  openShard: (path: string) => Promise<Checkpoint>,
): Promise<Checkpoint> {
  const opened: Checkpoint[] = [];
  try {
    for (const shardPath of index.shards) {
      try {
        await fsp.access(shardPath);
      } catch {
        throw new AwdError(`shard "${relative(dirname(index.path), shardPath)}" listed in the index is missing`, {
          file: index.path,
          fix: 'Download or copy every shard file next to the index',
        });
      }
      opened.push(await openShard(shardPath));
    }
    const holder = new Map<string, string>();
    for (const [i, shard] of opened.entries()) {
      for (const t of shard.tensors) {
        const other = holder.get(t.name);
        if (other !== undefined) {
          throw new AwdError(`is stored in two shards (${other} and ${index.shards[i]})`, { file: index.path, tensor: t.name, fix: INDEX_FIX });
        }
        holder.set(t.name, index.shards[i]!);
      }
    }
    for (const [name, shardPath] of index.weightMap) {
      if (holder.get(name) !== shardPath) {
        throw new AwdError(`the index puts it in ${shardPath}, which does not hold it`, { file: index.path, tensor: name, fix: INDEX_FIX });
      }
    }
    const metadata = Object.fromEntries([...opened.flatMap((s) => Object.entries(s.metadata)), ...Object.entries(index.metadata)]);
    return new ShardedCheckpoint(index.path, format, opened, metadata);
  } catch (e) {
    await Promise.all(opened.map((s) => s.close()));
    throw e;
  }
}
