/**
 * Streaming safetensors writer. The caller plans every tensor (name, dtype, shape) up front, so the header and all
 * data offsets are fixed before the first byte is written; tensors then arrive in plan order, each in one or more
 * chunks (float32 values encoded on the fly, or raw little-endian bytes copied through). Output goes to
 * `<target>.tmp-<random>` files in the target folder, is fsynced, and renamed into place only by `finish()` once
 * every file is complete; any error or `abort()` removes the temporary files.
 *
 * A caller that computes chunks on other threads may write a chunk itself (its bytes in the tensor's dtype), at the position directTarget
 * gives (pwrite on the temporary file's descriptor), and then report it with wroteDirectly: the writer checks order
 * and counts as for any chunk, and its background fdatasync covers those bytes too.
 *
 * `__metadata__` may be given at `finish(metadata)`: the header reserves `metadataReserve` bytes for it (padded with
 * spaces, which JSON allows), so the final header is written in place at offset 0. If it does not fit, the file is
 * rewritten with a larger header and the data copied over (correct, slower; counted in `stats.headerRewrites`).
 *
 * Usage:
 *   const w = await createSafetensorsWriter('out/model.safetensors', plan, { metadataReserve: 65536 });
 *   for (const t of plan) for (const chunk of chunksOf(t)) await w.writeFloat32(t.name, chunk);  // or writeRaw
 *   const files = await w.finish({ merge_record: '…' });
 */
import { randomBytes } from 'node:crypto';
import { constants as fsConstants, promises as fsp } from 'node:fs';
import { basename, dirname, join, resolve as resolvePath } from 'node:path';
import { threadId } from 'node:worker_threads';
import { AwdError } from '../errors';
import { DTYPE_SIZE, encodeFloat32, isDType, isFloatOutputDType } from './dtypes';
import type { DType } from './types';

/** One tensor the writer will receive. */
export interface PlannedTensor {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
}

export interface SafetensorsWriterOptions {
  /** `__metadata__` written if `finish()` is called without metadata. */
  readonly metadata?: Readonly<Record<string, string>>;
  /** Bytes of header room reserved for the `__metadata__` JSON given at `finish()` (default 0: just what fits). */
  readonly metadataReserve?: number;
  /** Split into shards when the total data exceeds this many bytes (default: never). */
  readonly shardSize?: number;
  /** Small writes are coalesced up to this many bytes before hitting the disk (default 4 MiB). */
  readonly bufferBytes?: number;
}

export interface SafetensorsWriter {
  /** Final paths the writer will produce (shards first, then the index), known from the plan. */
  readonly plannedFiles: readonly string[];
  /** How often `finish` had to rewrite a file because the metadata outgrew the reserve. */
  readonly stats: { readonly headerRewrites: number };
  /** Appends float32 values to tensor `name` (an F64/F32/F16/BF16 tensor), encoded to its dtype. */
  writeFloat32(name: string, chunk: Float32Array): Promise<void>;
  /** Appends raw little-endian bytes of the tensor's own dtype (for tensors copied through unchanged). */
  writeRaw(name: string, bytes: Uint8Array): Promise<void>;
  /**
   * Where bytes [byteStart, byteStart + n) of tensor `name` belong: the temporary file's descriptor and the
   * position in it, for a caller that writes them itself (another thread's pwrite), then reports them with
   * `wroteDirectly`. Undefined once the writer is finished or aborted, and for an unplanned tensor. The descriptor
   * is valid until finish() or abort(): the caller must be done writing before calling either.
   */
  directTarget(name: string, byteStart: number): { fd: number; position: number } | undefined;
  /**
   * Counts the next `bytes` of tensor `name` as written: the caller wrote them at the positions directTarget gave
   * (in order, as writeRaw would have). Checks order and counts exactly as writeRaw does.
   */
  wroteDirectly(name: string, bytes: number): Promise<void>;
  /** Checks every tensor is complete, writes the final header(s), fsyncs and renames into place. */
  finish(metadata?: Readonly<Record<string, string>>): Promise<string[]>;
  /** Removes the temporary files; safe to call at any time and more than once. */
  abort(): Promise<void>;
}

interface PlannedEntry extends PlannedTensor {
  readonly bytes: number;
  readonly shard: number;
  /** Offset inside its shard's data section. */
  readonly begin: number;
}

interface Shard {
  readonly target: string;
  readonly tempPath: string;
  readonly entries: PlannedEntry[];
  /** Bytes of header JSON room for `__metadata__`. */
  metadataRoom: number;
  headerLength: number;
  dataBytes: number;
  handle?: fsp.FileHandle;
}

const DEFAULT_BUFFER_BYTES = 4 << 20;
/** Bytes written between background fdatasyncs (see flush). */
const SYNC_EVERY = 32 << 20;

/** Shard file name: `<stem>-0000i-of-0000N.safetensors`, as Hugging Face names them. */
export function shardFileName(stem: string, index: number, count: number): string {
  return `${stem}-${String(index + 1).padStart(5, '0')}-of-${String(count).padStart(5, '0')}.safetensors`;
}

function utf8Length(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

/** Header JSON with `metadataJson` padded to `room` bytes, then padded to a multiple of 8 (data alignment). */
function headerText(shard: Shard, metadataJson: string, room: number): string {
  const tensors = shard.entries
    .map((e) => `${JSON.stringify(e.name)}:${JSON.stringify({ dtype: e.dtype, shape: e.shape, data_offsets: [e.begin, e.begin + e.bytes] })}`)
    .join(',');
  const text = `{"__metadata__":${metadataJson}${' '.repeat(room - utf8Length(metadataJson))}${tensors ? ',' : ''}${tensors}}`;
  const length = utf8Length(text);
  return text + ' '.repeat((8 - (length % 8)) % 8);
}

function writeError(path: string, e: unknown): AwdError {
  if (e instanceof AwdError) return e;
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  const fix =
    code === 'ENOSPC' ? 'Free disk space or write to another disk'
    : code === 'EACCES' || code === 'EPERM' || code === 'EROFS' ? 'Choose a folder you can write to'
    : undefined;
  return new AwdError(`cannot write: ${(e as Error).message}`, { file: path, fix });
}

function validatePlan(target: string, plan: readonly PlannedTensor[]): void {
  const seen = new Set<string>();
  for (const t of plan) {
    const where = { file: target, tensor: t.name };
    if (t.name === '__metadata__') throw new AwdError('"__metadata__" cannot be a tensor name', where);
    if (seen.has(t.name)) throw new AwdError('planned twice', where);
    seen.add(t.name);
    if (!isDType(t.dtype)) throw new AwdError(`unknown dtype ${JSON.stringify(t.dtype)}`, where);
    if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new AwdError(`shape [${t.shape.join(', ')}] is not a list of non-negative integers`, where);
    }
    const bytes = t.shape.reduce((a, d) => a * BigInt(d), 1n) * BigInt(DTYPE_SIZE[t.dtype]);
    if (bytes > BigInt(Number.MAX_SAFE_INTEGER)) throw new AwdError('tensor is too large', where);
  }
}

class StreamingSafetensorsWriter implements SafetensorsWriter {
  readonly plannedFiles: readonly string[];
  readonly stats = { headerRewrites: 0 };
  private readonly entries: PlannedEntry[];
  private readonly byName: ReadonlyMap<string, PlannedEntry>;
  /** The coalescing buffer being filled; `spare` is the other one, possibly still being written out. */
  private buffer: Uint8Array;
  private spare: Uint8Array;
  /** The write of `spare` in flight (write-behind: the caller computes its next chunk meanwhile). */
  private inFlight: Promise<void> | undefined;
  /** A background fdatasync in flight, and the bytes written since the last one started. */
  private syncing: Promise<void> | undefined;
  private unsynced = 0;
  private pending = 0;
  /** Absolute data position (in the current shard's file) of buffer[0]. */
  private pendingPosition = 0;
  private pendingShard = -1;
  private cursor = 0;
  private received = 0;
  private state: 'open' | 'busy' | 'finished' | 'aborted' = 'open';

  constructor(
    private readonly target: string,
    private readonly shards: Shard[],
    private readonly indexPath: string | undefined,
    private readonly metadata: Readonly<Record<string, string>>,
    bufferBytes: number,
  ) {
    this.entries = shards.flatMap((s) => s.entries);
    this.byName = new Map(this.entries.map((e) => [e.name, e]));
    this.buffer = new Uint8Array(bufferBytes);
    this.spare = new Uint8Array(bufferBytes);
    this.plannedFiles = [...shards.map((s) => s.target), ...(indexPath ? [indexPath] : [])];
  }

  /** Creates the temporary files and writes placeholder headers. */
  async start(): Promise<void> {
    const metadataJson = JSON.stringify(this.metadata);
    for (const shard of this.shards) {
      shard.handle = await fsp.open(shard.tempPath, 'wx+');
      const header = headerText(shard, metadataJson, shard.metadataRoom);
      shard.headerLength = utf8Length(header);
      await this.writeHeader(shard, header);
    }
  }

  private async writeHeader(shard: Shard, header: string): Promise<void> {
    const bytes = Buffer.alloc(8 + utf8Length(header));
    bytes.writeBigUInt64LE(BigInt(utf8Length(header)), 0);
    bytes.write(header, 8, 'utf8');
    await writeFully(shard.handle!, bytes, 0);
  }

  writeFloat32(name: string, chunk: Float32Array): Promise<void> {
    return this.guard(async () => {
      const entry = this.advanceTo(name);
      const dtype = entry.dtype;
      if (!isFloatOutputDType(dtype)) {
        throw new AwdError(`cannot encode float32 values as ${dtype}; copy its bytes with writeRaw`, { file: this.target, tensor: name });
      }
      const size = DTYPE_SIZE[dtype];
      this.checkCount(entry, chunk.length * size);
      if (dtype === 'F32') {
        await this.append(entry, new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
        return;
      }
      // Encode straight into the coalescing buffer, piece by piece: memory stays bounded whatever the chunk size.
      let done = 0;
      while (done < chunk.length) {
        await this.prepareBuffer(entry);
        let free = Math.floor((this.buffer.byteLength - this.pending) / size);
        if (free === 0) {
          await this.flush();
          free = Math.floor(this.buffer.byteLength / size);
        }
        const n = Math.min(free, chunk.length - done);
        encodeFloat32(dtype, chunk.subarray(done, done + n), this.buffer.subarray(this.pending, this.pending + n * size));
        this.pending += n * size;
        this.received += n * size;
        done += n;
      }
    });
  }

  writeRaw(name: string, bytes: Uint8Array): Promise<void> {
    return this.guard(async () => {
      const entry = this.advanceTo(name);
      if (bytes.byteLength % DTYPE_SIZE[entry.dtype] !== 0) {
        throw new AwdError(`${bytes.byteLength} bytes is not a whole number of ${entry.dtype} elements`, { file: this.target, tensor: name });
      }
      this.checkCount(entry, bytes.byteLength);
      await this.append(entry, bytes);
    });
  }

  directTarget(name: string, byteStart: number): { fd: number; position: number } | undefined {
    if (this.state === 'finished' || this.state === 'aborted') return undefined;
    const entry = this.byName.get(name);
    const handle = entry && this.shards[entry.shard]!.handle;
    if (!entry || !handle) return undefined;
    return { fd: handle.fd, position: 8 + this.shards[entry.shard]!.headerLength + entry.begin + byteStart };
  }

  wroteDirectly(name: string, bytes: number): Promise<void> {
    return this.guard(async () => {
      const entry = this.advanceTo(name);
      this.checkCount(entry, bytes);
      this.received += bytes;
      this.countUnsynced(this.shards[entry.shard]!.handle!, bytes, Promise.resolve());
    });
  }

  /** Moves the cursor to `name`, which must be the next tensor in plan order (finished ones are passed over). */
  private advanceTo(name: string): PlannedEntry {
    for (;;) {
      const current = this.entries[this.cursor];
      if (current === undefined) {
        throw new AwdError('is not in the plan, or was written after all planned tensors', { file: this.target, tensor: name });
      }
      if (current.name === name) return current;
      if (this.received !== current.bytes) {
        throw new AwdError(
          `received ${this.received} of its ${current.bytes} bytes before "${name}" was written`,
          { file: this.target, tensor: current.name, fix: 'Write tensors completely and in plan order' },
        );
      }
      this.cursor++;
      this.received = 0;
    }
  }

  private checkCount(entry: PlannedEntry, incoming: number): void {
    if (this.received + incoming > entry.bytes) {
      throw new AwdError(`received ${this.received + incoming} bytes, more than its shape's ${entry.bytes}`, {
        file: this.target,
        tensor: entry.name,
      });
    }
  }

  /** Makes the coalescing buffer continue exactly where `entry`'s next byte goes. */
  private async prepareBuffer(entry: PlannedEntry): Promise<void> {
    const shard = this.shards[entry.shard]!;
    const position = 8 + shard.headerLength + entry.begin + this.received;
    if (this.pendingShard !== entry.shard || this.pendingPosition + this.pending !== position) {
      await this.flush();
      this.pendingShard = entry.shard;
      this.pendingPosition = position;
    }
  }

  private async append(entry: PlannedEntry, bytes: Uint8Array): Promise<void> {
    await this.prepareBuffer(entry);
    if (bytes.byteLength >= this.buffer.byteLength) {
      // Big chunks go straight through (awaited: the caller reuses them); only small ones are worth coalescing.
      await this.flush();
      await this.settle();
      await writeFully(this.shards[entry.shard]!.handle!, bytes, this.pendingPosition);
      this.pendingPosition += bytes.byteLength;
    } else {
      if (this.pending + bytes.byteLength > this.buffer.byteLength) await this.flush();
      this.buffer.set(bytes, this.pending);
      this.pending += bytes.byteLength;
    }
    this.received += bytes.byteLength;
  }

  /**
   * Starts writing the filled buffer and swaps in the spare one (after its own write has finished), so at most
   * one write is in flight while the caller goes on; a failed write surfaces at the next flush, settle or finish.
   * Every SYNC_EVERY bytes a background fdatasync starts, so that the final fsync finds little left to do.
   */
  private async flush(): Promise<void> {
    if (this.pending === 0) return;
    await this.settle();
    const full = this.buffer;
    const handle = this.shards[this.pendingShard]!.handle!;
    const length = this.pending;
    const written = writeFully(handle, full.subarray(0, length), this.pendingPosition);
    // Observed now, so that a write failing while the caller is busy elsewhere is not an unhandled rejection (which
    // ends the process or worker); settle() and finish() rethrow it.
    written.catch(() => undefined);
    this.inFlight = written;
    this.buffer = this.spare;
    this.spare = full;
    this.pendingPosition += length;
    this.pending = 0;
    this.countUnsynced(handle, length, written);
  }

  /** `length` more bytes reach `handle` once `written` settles: every SYNC_EVERY bytes, a background fdatasync. */
  private countUnsynced(handle: fsp.FileHandle, length: number, written: Promise<void>): void {
    this.unsynced += length;
    if (this.unsynced >= SYNC_EVERY && !this.syncing) {
      this.unsynced = 0;
      this.syncing = written.then(() => handle.datasync()).finally(() => {
        this.syncing = undefined;
      });
      // Observed here; its error, if any, surfaces when finish awaits it.
      this.syncing.catch(() => undefined);
    }
  }

  /** Waits for the write in flight (rethrowing its error). */
  private async settle(): Promise<void> {
    const w = this.inFlight;
    this.inFlight = undefined;
    if (w) await w;
  }

  /** Runs one operation at a time; any failure removes the temporary files. */
  private async guard<T>(op: () => Promise<T>): Promise<T> {
    if (this.state !== 'open') {
      const why = this.state === 'busy' ? 'a previous write is still running (await each write)' : `the writer is already ${this.state}`;
      throw new AwdError(`cannot write: ${why}`, { file: this.target });
    }
    this.state = 'busy';
    try {
      const result = await op();
      if (this.state === 'busy') this.state = 'open';
      return result;
    } catch (e) {
      if (this.state === 'busy') this.state = 'open';
      await this.abort();
      throw writeError(this.target, e);
    }
  }

  finish(metadata?: Readonly<Record<string, string>>): Promise<string[]> {
    return this.guard(async () => {
      for (let i = this.cursor; i < this.entries.length; i++) {
        const e = this.entries[i]!;
        const got = i === this.cursor ? this.received : 0;
        if (got !== e.bytes) {
          throw new AwdError(`received ${got} of its ${e.bytes} bytes`, { file: this.target, tensor: e.name, fix: 'Write every planned tensor completely' });
        }
      }
      await this.flush();
      await this.settle();
      if (this.syncing) await this.syncing;
      const finalMetadata = metadata ?? this.metadata;
      for (const [k, v] of Object.entries(finalMetadata)) {
        if (typeof v !== 'string') throw new AwdError(`metadata value for "${k}" is not a string`, { file: this.target });
      }
      const metadataJson = JSON.stringify(finalMetadata);
      for (const shard of this.shards) {
        if (utf8Length(metadataJson) <= shard.metadataRoom) {
          await this.writeHeader(shard, headerText(shard, metadataJson, shard.metadataRoom));
        } else {
          await this.rewriteWithLargerHeader(shard, metadataJson);
        }
        await shard.handle!.sync();
        await shard.handle!.close();
        shard.handle = undefined;
      }
      let indexTemp: string | undefined;
      if (this.indexPath) {
        const index = {
          metadata: { total_size: this.shards.reduce((a, s) => a + s.dataBytes, 0) },
          weight_map: Object.fromEntries(this.entries.map((e) => [e.name, basename(this.shards[e.shard]!.target)])),
        };
        indexTemp = tempPathFor(this.indexPath);
        const h = await fsp.open(indexTemp, 'wx');
        try {
          await h.writeFile(`${JSON.stringify(index, null, 2)}\n`);
          await h.sync();
        } finally {
          await h.close();
        }
      }
      // Every file is complete and synced: only now does anything appear under its final name.
      const replaced = await holdReplaced(this.plannedFiles);
      try {
        for (const shard of this.shards) await fsp.rename(shard.tempPath, shard.target);
        if (indexTemp && this.indexPath) await fsp.rename(indexTemp, this.indexPath);
        await syncFolder(dirname(this.target));
      } finally {
        // The replaced files are freed as these last descriptors close, in the background (see holdReplaced).
        for (const h of replaced) h.close().catch(() => undefined);
      }
      this.state = 'finished';
      return [...this.plannedFiles];
    });
  }

  /** The metadata outgrew its reserve: write a new temp file with room for it and copy the data section across. */
  private async rewriteWithLargerHeader(shard: Shard, metadataJson: string): Promise<void> {
    this.stats.headerRewrites++;
    const oldHandle = shard.handle!;
    const oldDataStart = 8 + shard.headerLength;
    const oldTemp = `${shard.tempPath}.old`;
    await fsp.rename(shard.tempPath, oldTemp);
    shard.handle = await fsp.open(shard.tempPath, 'wx+');
    try {
      shard.metadataRoom = utf8Length(metadataJson);
      const header = headerText(shard, metadataJson, shard.metadataRoom);
      shard.headerLength = utf8Length(header);
      await this.writeHeader(shard, header);
      const newDataStart = 8 + shard.headerLength;
      for (let done = 0; done < shard.dataBytes; ) {
        const n = Math.min(this.buffer.byteLength, shard.dataBytes - done);
        const { bytesRead } = await oldHandle.read(this.buffer, 0, n, oldDataStart + done);
        if (bytesRead === 0) throw new AwdError('temporary file shrank while being rewritten', { file: oldTemp });
        await writeFully(shard.handle, this.buffer.subarray(0, bytesRead), newDataStart + done);
        done += bytesRead;
      }
    } finally {
      await oldHandle.close();
      await fsp.rm(oldTemp, { force: true });
    }
  }

  async abort(): Promise<void> {
    if (this.state === 'finished' || this.state === 'aborted') return;
    this.state = 'aborted';
    // No write may land after the files are removed.
    await this.settle().catch(() => undefined);
    await this.syncing?.catch(() => undefined);
    for (const shard of this.shards) {
      if (shard.handle) await shard.handle.close().catch(() => undefined);
      shard.handle = undefined;
      await fsp.rm(shard.tempPath, { force: true });
      await fsp.rm(`${shard.tempPath}.old`, { force: true });
    }
  }
}

async function writeFully(handle: fsp.FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < bytes.byteLength) {
    // fs.write takes at most 2 GiB per call.
    const { bytesWritten } = await handle.write(bytes, done, Math.min(bytes.byteLength - done, 1 << 30), position + done);
    done += bytesWritten;
  }
}

/**
 * Opens the files that the renames are about to replace, where they exist. Renaming over a file that nothing holds
 * open frees its blocks and cached pages inside the rename (measured: 62 ms for a 200 MB output here, ~10 % of a task
 * arithmetic merge); held open, the rename only unlinks it, and the freeing happens when the caller closes these
 * descriptors, in the background once the new files are in place. Not on Windows, where an open file may refuse
 * to be replaced.
 */
async function holdReplaced(paths: readonly string[]): Promise<fsp.FileHandle[]> {
  if (process.platform === 'win32') return [];
  const held: fsp.FileHandle[] = [];
  for (const path of paths) {
    try {
      // Non-blocking: a named pipe under that name would otherwise wait here for a writer.
      held.push(await fsp.open(path, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK));
    } catch {
      // Nothing there (the usual first run), or not readable: the rename replaces it as it would anyway.
    }
  }
  return held;
}

/** fsync of the folder makes the renames durable; not every platform allows it, so failure is not an error. */
async function syncFolder(folder: string): Promise<void> {
  try {
    const h = await fsp.open(folder, 'r');
    try {
      await h.sync();
    } finally {
      await h.close();
    }
  } catch {
    // Windows cannot open folders for fsync; the rename is still atomic there.
  }
}

/**
 * Temporary name of an output file: `<final>.tmp-<pid>-<thread>-<random>`. The pid and worker-thread id say who
 * writes it, so a later run can tell the leftovers of a writer that died (process killed, VS Code reloaded, worker
 * thread crashed) from a file another writer is still filling.
 */
function tempPathFor(finalPath: string): string {
  return `${finalPath}.tmp-${process.pid}-${threadId}-${randomBytes(6).toString('hex')}`;
}

/** True when a process with this pid exists (signal 0 checks without sending anything; EPERM = exists, not ours). */
function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The temp-file names a dead writer of output `<stem>.safetensors` (its shards, its index) may have left in
 * `folder`, with the writer's pid and thread id.
 */
export function staleTempFileOwner(name: string, stem: string): { pid: number; thread: number } | undefined {
  if (!name.startsWith(stem)) return undefined;
  const m = /^(?:-\d{5}-of-\d{5})?\.safetensors(?:\.index\.json)?\.tmp-(\d+)-(\d+)-[0-9a-f]+(?:\.old)?$/.exec(name.slice(stem.length));
  return m ? { pid: Number(m[1]), thread: Number(m[2]) } : undefined;
}

/**
 * Removes the temporary files an earlier writer of the same output left when it died: those whose process is gone,
 * and those of this process written by another (hence finished or crashed) worker thread — thread ids are never
 * reused within a process, and merges of one output never run at the same time in one process (jobs are queued).
 * Files of a live other process are left alone: it may still be writing. Failures to list or remove are ignored.
 */
async function removeStaleTempFiles(folder: string, stem: string): Promise<void> {
  let names: string[];
  try {
    names = await fsp.readdir(folder);
  } catch {
    return;
  }
  for (const name of names) {
    const owner = staleTempFileOwner(name, stem);
    if (!owner) continue;
    const stale = owner.pid === process.pid ? owner.thread !== threadId : !processExists(owner.pid);
    if (stale) await fsp.rm(join(folder, name), { force: true }).catch(() => undefined);
  }
}

/**
 * Plans the output (shards, offsets, header room) and creates the temporary files. `targetPath` names the single
 * output file; when the data exceeds `shardSize` it is split into `<stem>-0000i-of-0000N.safetensors` files beside it
 * plus `<stem>.safetensors.index.json` (`metadata.total_size`, `weight_map`).
 */
export async function createSafetensorsWriter(
  targetPath: string,
  plan: readonly PlannedTensor[],
  options: SafetensorsWriterOptions = {},
): Promise<SafetensorsWriter> {
  const target = resolvePath(targetPath);
  validatePlan(target, plan);
  const metadata = options.metadata ?? {};
  const shardSize = options.shardSize ?? Infinity;
  const bufferBytes = Math.max(8, Math.floor(options.bufferBytes ?? DEFAULT_BUFFER_BYTES));
  if (!(shardSize > 0)) throw new AwdError(`shard size must be positive, got ${shardSize}`, { file: target });

  const sized = plan.map((t) => ({ ...t, shape: [...t.shape], bytes: t.shape.reduce((a, d) => a * d, 1) * DTYPE_SIZE[t.dtype] }));
  const total = sized.reduce((a, t) => a + t.bytes, 0);
  // Greedy split in plan order; a tensor larger than the shard size gets a shard of its own.
  const groups: (typeof sized)[] = [[]];
  let groupBytes = 0;
  for (const t of sized) {
    const last = groups[groups.length - 1]!;
    if (total > shardSize && last.length > 0 && groupBytes + t.bytes > shardSize) {
      groups.push([t]);
      groupBytes = t.bytes;
    } else {
      last.push(t);
      groupBytes += t.bytes;
    }
  }
  const folder = dirname(target);
  const name = basename(target);
  const stem = name.endsWith('.safetensors') ? name.slice(0, -'.safetensors'.length) : name;
  const sharded = groups.length > 1;
  const room = Math.max(options.metadataReserve ?? 0, utf8Length(JSON.stringify(metadata)));
  const shards: Shard[] = groups.map((group, i) => {
    const shardTarget = sharded ? join(folder, shardFileName(stem, i, groups.length)) : target;
    let offset = 0;
    const entries = group.map((t) => {
      const e: PlannedEntry = { ...t, shard: i, begin: offset };
      offset += t.bytes;
      return e;
    });
    return {
      target: shardTarget,
      tempPath: tempPathFor(shardTarget),
      entries,
      metadataRoom: room,
      headerLength: 0,
      dataBytes: offset,
    };
  });
  const indexPath = sharded ? join(folder, `${stem}.safetensors.index.json`) : undefined;
  const writer = new StreamingSafetensorsWriter(target, shards, indexPath, metadata, bufferBytes);
  try {
    await fsp.mkdir(folder, { recursive: true });
    await removeStaleTempFiles(folder, stem);
    await writer.start();
  } catch (e) {
    await writer.abort();
    throw writeError(target, e);
  }
  return writer;
}
