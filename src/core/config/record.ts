/**
 * The reproducibility record of merge-config.md: the config as it ran (every default filled in), the SHA-256 of
 * every input file, tool and version, start/end time, AWD diagnostics and per-tensor statistics of the result.
 * Written beside the output as <name>.awd-record.json and, minus the clock times, into its `__metadata__`.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { AwdError } from '../errors';
import { TOOL_NAME, TOOL_VERSION } from '../version';
import { stringify } from 'yaml';
import { configToPlainObject, parseMergeConfig, RECORD_FORMAT, type LoadedConfig } from './load';
import type { ResolvedMergeConfig } from './schema';

export { RECORD_FORMAT };
export const RECORD_VERSION = 1;

/** `__metadata__` keys the record is stored under. */
export const METADATA_CONFIG_KEY = 'awd_merge.config';
export const METADATA_RECORD_KEY = 'awd_merge.record';

export interface RecordInputFile {
  /** Relative to the record's folder (forward slashes), absolute when on another drive. */
  path: string;
  bytes: number;
  sha256: string;
}

export interface RecordInput {
  role: 'base' | 'model';
  /** Index in `config.models` for role `model`. */
  index?: number;
  /** The path as the config gives it (relative to the record's folder). */
  path: string;
  files: RecordInputFile[];
}

/** One tensor of the result with whatever statistics the executor measured (mean, std, min, max, NaN/Inf counts, norm). */
export type TensorRecordEntry = { name: string } & Record<string, unknown>;

export interface MergeRecord {
  format: typeof RECORD_FORMAT;
  record_version: number;
  tool: { name: string; version: string };
  /** ISO 8601, UTC. */
  started_at: string;
  finished_at: string;
  duration_seconds: number;
  /** The config file the merge ran from, relative to the record's folder (absent when run from memory). */
  config_file?: string;
  /** The config as it ran, every default filled in, paths relative to the record's folder: runnable as is. */
  config: Record<string, unknown>;
  inputs: RecordInput[];
  /** Output files (the single file, or the shards and the index), relative to the record's folder. */
  outputs: string[];
  /** AWD diagnostics as the executor produced them (absent without `awd`). */
  awd?: unknown;
  tensors: TensorRecordEntry[];
}

export interface RecordInputCheckpoint {
  /** Absolute path as in the config. */
  path: string;
  /** Every file whose bytes make up the checkpoint. */
  files: readonly string[];
}

export interface BuildRecordArgs {
  config: ResolvedMergeConfig;
  /** Absolute path of the config file, when there is one. */
  configFile?: string;
  /** Absolute path of the record file (see recordPathFor); relative paths inside the record are relative to its folder. */
  recordFile: string;
  base?: RecordInputCheckpoint;
  models: readonly RecordInputCheckpoint[];
  /** Absolute file → lowercase hex SHA-256, for every input file (see sha256File / hashFilesInBackground). */
  digests: Readonly<Record<string, string>>;
  /** Absolute file → size in bytes, for every input file. */
  sizes: Readonly<Record<string, number>>;
  /** Absolute paths of the files written. */
  outputs: readonly string[];
  startedAt: Date;
  finishedAt: Date;
  awd?: unknown;
  tensors: readonly TensorRecordEntry[];
}

/** The record object; throws if a digest or size of an input file is missing (a bug in the caller, not a user error). */
export function buildRecord(args: BuildRecordArgs): MergeRecord {
  const folder = path.dirname(args.recordFile);
  const rel = (p: string): string => relativeTo(folder, p);
  const input = (role: 'base' | 'model', cp: RecordInputCheckpoint, index?: number): RecordInput => ({
    role,
    ...(index !== undefined ? { index } : {}),
    path: rel(cp.path),
    files: cp.files.map((f) => {
      const sha256 = args.digests[f];
      const bytes = args.sizes[f];
      if (sha256 === undefined || bytes === undefined) throw new Error(`buildRecord: no digest or size for input file ${f}`);
      return { path: rel(f), bytes, sha256 };
    }),
  });
  const record: MergeRecord = {
    format: RECORD_FORMAT,
    record_version: RECORD_VERSION,
    tool: { name: TOOL_NAME, version: TOOL_VERSION },
    started_at: args.startedAt.toISOString(),
    finished_at: args.finishedAt.toISOString(),
    duration_seconds: (args.finishedAt.getTime() - args.startedAt.getTime()) / 1000,
    ...(args.configFile !== undefined ? { config_file: rel(args.configFile) } : {}),
    config: configToPlainObject(args.config, folder),
    inputs: [...(args.base ? [input('base', args.base)] : []), ...args.models.map((m, i) => input('model', m, i))],
    outputs: args.outputs.map(rel),
    ...(args.awd !== undefined ? { awd: jsonSafe(args.awd) } : {}),
    tensors: args.tensors.map((t) => jsonSafe(t) as TensorRecordEntry),
  };
  return record;
}

/** The record as JSON text (non-finite numbers written as the strings "NaN", "Infinity", "-Infinity"). */
export function recordToJson(record: MergeRecord): string {
  return `${JSON.stringify(jsonSafe(record), null, 2)}\n`;
}

/**
 * The record for the output's `__metadata__`: the config as YAML (paths relative to the output's folder, which
 * is the record's) and the record as JSON without the clock times, so that re-running a config gives a
 * byte-identical file (the times stay in the record file beside it).
 */
export function recordMetadata(record: MergeRecord): Record<string, string> {
  const { started_at: _s, finished_at: _f, duration_seconds: _d, ...timeless } = record;
  return {
    // The stored config already holds paths relative to the output's folder.
    [METADATA_CONFIG_KEY]: stringify(record.config, { lineWidth: 0 }),
    [METADATA_RECORD_KEY]: JSON.stringify(jsonSafe(timeless)),
  };
}

/** merged/model.safetensors → merged/model.awd-record.json (also for sharded output, whose index sits beside it). */
export function recordPathFor(outPath: string): string {
  const dir = path.dirname(outPath);
  const base = path.basename(outPath).replace(/\.safetensors$/, '');
  return path.join(dir, `${base}.awd-record.json`);
}

/** SHA-256 of a file, streamed (lowercase hex). */
export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file, { highWaterMark: 4 << 20 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** The config stored in a record, ready to run again (paths relative to the record's folder). */
export async function configFromRecord(recordFile: string): Promise<LoadedConfig> {
  const abs = path.resolve(recordFile);
  let text: string;
  try {
    text = await readFile(abs, 'utf8');
  } catch (e) {
    throw new AwdError(`cannot read the merge record (${(e as NodeJS.ErrnoException).code ?? String(e)})`, { file: abs, fix: 'Check the path' });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new AwdError('not a merge record: the file is not JSON', { file: abs, fix: 'Give the <name>.awd-record.json file written beside a merge output' });
  }
  if (typeof parsed !== 'object' || parsed === null || (parsed as { format?: unknown }).format !== RECORD_FORMAT) {
    throw new AwdError(`not a merge record: no "format": "${RECORD_FORMAT}"`, { file: abs, fix: 'Give the <name>.awd-record.json file written beside a merge output' });
  }
  // parseMergeConfig recognises a record and validates its `config` with line numbers from this very text.
  return parseMergeConfig(text, abs);
}

/** Reads the record a merged file carries in its `__metadata__`, if any. */
export function recordFromMetadata(metadata: Readonly<Record<string, string>>): Omit<MergeRecord, 'started_at' | 'finished_at' | 'duration_seconds'> | undefined {
  const text = metadata[METADATA_RECORD_KEY];
  if (text === undefined) return undefined;
  try {
    const r = JSON.parse(text) as { format?: unknown };
    return r.format === RECORD_FORMAT ? (r as Omit<MergeRecord, 'started_at' | 'finished_at' | 'duration_seconds'>) : undefined;
  } catch {
    return undefined;
  }
}

function relativeTo(folder: string, p: string): string {
  const rel = path.relative(folder, p);
  if (rel === '') return '.';
  if (path.isAbsolute(rel)) return p;
  return rel.split(path.sep).join('/');
}

/** Deep copy with NaN/±Infinity as strings and typed arrays as plain arrays, so JSON keeps them. */
function jsonSafe(v: unknown): unknown {
  if (typeof v === 'number') return Number.isFinite(v) ? v : String(v);
  if (Array.isArray(v)) return v.map(jsonSafe);
  if (ArrayBuffer.isView(v) && !(v instanceof DataView)) return Array.from(v as unknown as ArrayLike<number>, jsonSafe);
  if (typeof v === 'object' && v !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) if (x !== undefined) out[k] = jsonSafe(x);
    return out;
  }
  return v;
}
