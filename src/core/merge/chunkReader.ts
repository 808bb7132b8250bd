/**
 * Reads the same element range of one tensor from the base and from every model, decoded to float32, into buffers
 * allocated once per job: the whole memory of a streaming pass is these K + 1 buffers (plus what a method adds).
 */
import type { Checkpoint } from '../formats/types';
import { plainFloats, wasmKernels, type FloatAllocator } from '../kernels/wasm';
import { helperThreadFor, type ChunkOp, type HelperThread, type RawRead } from './helperThread';

/** Default memory budget of a job's chunk buffers: 256 MiB. */
export const DEFAULT_MEMORY_BUDGET_BYTES = 256 * 1024 * 1024;

/**
 * Elements per block of the Gram accumulation (kernels/gram.ts BlockedGram): blocks are aligned to the element
 * index and each is folded into the float64 Gram matrix on its own, so the Gram matrices — and so AWD and the
 * output — are the same bits whatever the chunks, and a pass whose chunks are whole blocks can sum them on two
 * threads (helperThread.ts). The size of CACHE_CHUNK_ELEMENTS.
 */
export const GRAM_BLOCK_ELEMENTS = 131072;

/**
 * Elements per chunk of the passes whose result does not depend on the chunk size (task arithmetic, DARE, linear,
 * the TIES threshold passes): 2^17, so that a pass's working set — 2(K + 1) + 3 float32 chunks, 10.5 MB for K = 8 —
 * stays in the CPU caches. Measured (bench/merge.ts, 50M parameters, K = 8): the task-arithmetic output loop took
 * 3.8 CPU seconds with 3.1M-element chunks and 1.3 with 131072.
 */
export const CACHE_CHUNK_ELEMENTS = 131072;

/**
 * Elements per chunk for K models under a memory budget: two sets of K + 1 input buffers (one being read while the
 * other is computed on) plus 3 more a method may need (δ, the merged task vector, the output), all float32; a whole
 * number of Gram blocks (at least one).
 */
export function chunkElementsFor(K: number, budgetBytes: number): number {
  const fit = Math.floor(budgetBytes / ((2 * (K + 1) + 3) * 4));
  return Math.max(GRAM_BLOCK_ELEMENTS, fit - (fit % GRAM_BLOCK_ELEMENTS));
}

/** The decoded float32 views of one chunk: `base` (empty when there is no base) and one row per model. */
export interface InputChunk {
  readonly start: number;
  readonly end: number;
  readonly base: Float32Array;
  readonly models: Float32Array[];
}

export class TensorChunkReader {
  private readonly baseBuffer: Float32Array;
  private readonly modelBuffers: Float32Array[];
  /** The inputs in row order: the base (when there is one), then the models. */
  private readonly inputs: readonly Checkpoint[];
  /** The buffers in the same order. */
  readonly rows: readonly Float32Array[];

  constructor(
    private readonly base: Checkpoint | undefined,
    private readonly models: readonly Checkpoint[],
    readonly chunkElements: number,
    alloc: FloatAllocator = plainFloats,
  ) {
    // One block, base first: in a WASM arena the kernels then get the model rows as one pointer and stride.
    const rows = alloc.rows(models.length + (base ? 1 : 0), chunkElements);
    this.baseBuffer = base ? rows[0]! : new Float32Array(0);
    this.modelBuffers = rows.slice(base ? 1 : 0);
    this.rows = rows;
    this.inputs = base ? [base, ...models] : models;
  }

  /** Bytes held by the buffers. */
  get bufferBytes(): number {
    return (this.baseBuffer.length + this.modelBuffers.length * this.chunkElements) * 4;
  }

  /** Elements [start, end) of `name` from every input; the views stay valid until the next call. */
  async read(name: string, start: number, end: number): Promise<InputChunk> {
    const chunk = this.view(start, end);
    await Promise.all([
      this.base ? this.base.readFloat32(name, start, end, chunk.base) : Promise.resolve(chunk.base),
      ...this.models.map((m, i) => m.readFloat32(name, start, end, chunk.models[i])),
    ]);
    return chunk;
  }

  /** Reads elements [start, end) of `name` into row j only (0 = the base when there is one), from its element `at` on. */
  async readRow(j: number, name: string, start: number, end: number, at = 0): Promise<void> {
    await this.inputs[j]!.readFloat32(name, start, end, this.rows[j]!.subarray(at, at + end - start));
  }

  /** The views of elements [start, end) as the buffers hold them now (filled by read, readRow or another thread). */
  view(start: number, end: number): InputChunk {
    const n = end - start;
    if (n > this.chunkElements) throw new Error(`chunk of ${n} elements exceeds the buffer of ${this.chunkElements}`);
    return { start, end, base: this.baseBuffer.subarray(0, this.base ? n : 0), models: this.modelBuffers.map((b) => b.subarray(0, n)) };
  }

  /** Where the reader thread may put row j's elements [start, end) of `name`, or undefined (read it here). */
  rawRead(j: number, name: string, start: number, end: number, at = 0): RawRead | undefined {
    const source = this.inputs[j]!.rawSource?.(name);
    if (!source) return undefined;
    const size = source.dtype === 'BF16' ? 2 : 4;
    return { fd: source.fd, position: source.offset + start * size, bytes: (end - start) * size, dest: this.rows[j]!.byteOffset + at * 4, bf16: source.dtype === 'BF16' };
  }
}

/** [start, end) ranges covering `elements` in pieces of at most `chunkElements` (an empty tensor gives none). */
export function chunkRanges(elements: number, chunkElements: number): [number, number][] {
  const ranges: [number, number][] = [];
  for (let s = 0; s < elements; s += chunkElements) ranges.push([s, Math.min(elements, s + chunkElements)]);
  return ranges;
}

/** Bytes read per element of `name` across the given inputs (their storage dtypes), for progress reporting. */
export function inputBytesPerElement(inputs: readonly (Checkpoint | undefined)[], name: string): number {
  let bytes = 0;
  for (const c of inputs) {
    const t = c?.tensor(name);
    if (t && t.elements > 0) bytes += t.bytes / t.elements;
  }
  return bytes;
}

/** One piece of work of a pass: elements [start, end) of tensor `name`, read from every input when `read`. */
export interface ChunkItem {
  name: string;
  start: number;
  end: number;
  read: boolean;
}

/** Per-slot extra bytes of the Gram pass's programs (gramPass.ts): K×K lanes of two float64, K×128 float64 of scratch. */
export function gramSlotBytes(K: number): number {
  return 16 * K * K + 8 * 128 * K + 64;
}

/** Buffer sets of a pipeline: with a helper thread, up to three chunks are read ahead of the one computed on. */
function slotsFor(chunkElements: number): number {
  return chunkElements <= 2 * CACHE_CHUNK_ELEMENTS ? 4 : 2;
}

/**
 * Reads chunks ahead of the caller, so that reading and computing overlap. With its buffers in the WASM kernels'
 * shared memory (an arena), run() has the inputs' raw float32/bfloat16 rows read by the helper thread
 * (helperThread.ts), up to three chunks ahead, and runPrograms() has both threads read and compute whole chunks;
 * rows that need other decoding, and everything without an arena, are read here one chunk ahead by readFloat32,
 * on libuv's I/O threads. Items with `read: false` (tensors copied through) are handed over in order without
 * reading, the reads running on behind them.
 */
export class ChunkPipeline {
  private readonly slots: TensorChunkReader[];
  private readonly memory: WebAssembly.Memory | undefined;

  constructor(
    base: Checkpoint | undefined,
    models: readonly Checkpoint[],
    readonly chunkElements: number,
    alloc: FloatAllocator = plainFloats,
    /** Bytes of each slot's extra buffers (slotExtra). */
    readonly extraBytes = 0,
  ) {
    this.memory = alloc.memory;
    this.slots = Array.from({ length: this.memory ? slotsFor(chunkElements) : 2 }, () => new TensorChunkReader(base, models, chunkElements, alloc));
    this.slotExtra = this.memory ? this.slots.map(() => alloc.floats(Math.ceil(extraBytes / 4))) : [];
  }

  /** Floats the pipeline's buffers take from an allocator at most, for sizing an arena. */
  static floatsFor(hasBase: boolean, K: number, chunkElements: number, extraBytes = 0): number {
    return slotsFor(chunkElements) * ((K + (hasBase ? 1 : 0)) * chunkElements + Math.ceil(extraBytes / 4) + 16);
  }

  /**
   * Per slot, the buffers a program pass keeps beside the input rows (output rows, Gram lanes, statistics states,
   * results), in WASM memory: `extraBytes` each, as the constructor was given. Empty without an arena.
   */
  readonly slotExtra: readonly Float32Array[];

  get bufferBytes(): number {
    return this.slots.reduce((s, r) => s + r.bufferBytes, 0);
  }

  /**
   * The items in order, each with its chunk when read. A chunk's views stay valid until the next item is asked
   * for. Leaving the loop early (break, throw) waits for the reads in flight, so no read outlives the pass.
   */
  run<T extends ChunkItem>(items: readonly T[]): AsyncGenerator<{ item: T; chunk: InputChunk | undefined }> {
    const thread = this.helper();
    return thread ? this.runThreaded(thread, items) : this.runHere(items);
  }

  /** Buffer sets (slots) of the pipeline: item r of a pass is in slot r mod slotCount. */
  get slotCount(): number {
    return this.slots.length;
  }

  private helper(): HelperThread | undefined {
    const kernels = this.memory ? wasmKernels() : null;
    return kernels && kernels.memory === this.memory ? helperThreadFor(kernels) : undefined;
  }

  /**
   * True when runPrograms can run `items` with `extraBytes` of per-slot buffers: the buffers are in the kernels'
   * shared memory with that much extra per slot, the helper thread is up, and every input row of every item is
   * raw float32 that the threads can read themselves.
   */
  canRunPrograms(items: readonly ChunkItem[], extraBytes: number): boolean {
    if (extraBytes > this.extraBytes || !this.helper()) return false;
    const slot = this.slots[0]!;
    return items.every((it) => !it.read || slot.rows.every((_, j) => slot.rawRead(j, it.name, it.start, it.end) !== undefined));
  }

  /**
   * A pass in which both threads read and compute: for each read item, `ops(item, slot)` gives the kernel calls
   * to run on it once its rows are in slot `slot` (pointers into that slot's buffers, and into whatever per-slot
   * buffers the caller keeps). Items come back in order, after their calls ran, with their chunk views; copied
   * items pass through. `ranges` (default: [start, end)) lists the element ranges that fill an item's rows, back
   * to back, e.g. a tensor's sample slices. Check canRunPrograms first. Leaving early stops the helper first.
   */
  async *runPrograms<T extends ChunkItem>(
    items: readonly T[],
    ops: (item: T, slot: number, chunk: InputChunk) => ChunkOp[],
    ranges: (item: T) => readonly (readonly [number, number])[] = (item) => [[item.start, item.end]],
  ): AsyncGenerator<{ item: T; chunk: InputChunk | undefined; slot: number }> {
    const thread = this.helper();
    if (!thread) throw new Error('runPrograms: no helper thread (check canRunPrograms)');
    const S = this.slots.length;
    const rowsOf = Array.from({ length: this.slots[0]!.rows.length }, (_, j) => j);
    const reads = items.filter((it) => it.read);
    /** Each range of an item and where it goes in the rows (element offset): back to back from 0. */
    const placed = (it: T): { start: number; end: number; at: number }[] => {
      let at = 0;
      return ranges(it).map(([start, end]) => {
        const p = { start, end, at };
        at += end - start;
        return p;
      });
    };
    const programs = reads.map((it, r) => {
      const slot = this.slots[r % S]!;
      const pieces = placed(it);
      return { reads: rowsOf.flatMap((j) => pieces.map((p) => slot.rawRead(j, it.name, p.start, p.end, p.at)!)), ops: ops(it, r % S, slot.view(it.start, it.end)) };
    });
    const pass = thread.startPrograms(programs, S);
    let r = 0;
    try {
      for (const item of items) {
        if (!item.read) {
          yield { item, chunk: undefined, slot: -1 };
          continue;
        }
        const slot = this.slots[r % S]!;
        if (!(await pass.ready(r))) {
          // A read failed on a thread (or the helper died): read here, with readFloat32's errors, and compute here.
          await Promise.all(rowsOf.flatMap((j) => placed(item).map((p) => slot.readRow(j, item.name, p.start, p.end, p.at))));
          pass.runHere(r);
        }
        yield { item, chunk: slot.view(item.start, item.end), slot: r % S };
        pass.release(r);
        r++;
      }
    } finally {
      await pass.finish();
    }
  }

  /** Reads item's rows into `slot` again (its chunk as the files hold it), e.g. after a program changed them. */
  async reread(slot: number, item: ChunkItem): Promise<void> {
    const s = this.slots[slot]!;
    await Promise.all(s.rows.map((_, j) => s.readRow(j, item.name, item.start, item.end)));
  }

  private async *runThreaded<T extends ChunkItem>(thread: HelperThread, items: readonly T[]): AsyncGenerator<{ item: T; chunk: InputChunk | undefined }> {
    const S = this.slots.length;
    const rowCount = this.slots[0]!.rows.length;
    const rowsOf = Array.from({ length: rowCount }, (_, j) => j);
    const reads = items.filter((it) => it.read);
    const plans = reads.map((it, r) => {
      const slot = this.slots[r % S]!;
      const raw = rowsOf.map((j) => slot.rawRead(j, it.name, it.start, it.end));
      return { raw: raw.filter((x): x is RawRead => x !== undefined), here: rowsOf.filter((j) => raw[j] === undefined) };
    });
    const pass = thread.startReads(
      plans.map((p) => p.raw),
      S,
    );
    let r = 0;
    try {
      for (const item of items) {
        if (!item.read) {
          yield { item, chunk: undefined };
          continue;
        }
        const slot = this.slots[r % S]!;
        const failed = await pass.ready(r);
        const here = failed ? rowsOf : plans[r]!.here;
        if (here.length > 0) await Promise.all(here.map((j) => slot.readRow(j, item.name, item.start, item.end)));
        yield { item, chunk: slot.view(item.start, item.end) };
        pass.release(r);
        r++;
      }
    } finally {
      await pass.finish();
    }
  }

  private async *runHere<T extends ChunkItem>(items: readonly T[]): AsyncGenerator<{ item: T; chunk: InputChunk | undefined }> {
    let slot = 0;
    const nextRead = (from: number): number => {
      for (let j = from; j < items.length; j++) if (items[j]!.read) return j;
      return -1;
    };
    const start = (j: number): Promise<InputChunk> => {
      const it = items[j]!;
      const p = this.slots[slot++ % 2]!.read(it.name, it.start, it.end);
      // Observed here so that a read failing after the caller stopped is not an unhandled rejection.
      p.catch(() => undefined);
      return p;
    };
    let pendingIndex = nextRead(0);
    let pending = pendingIndex >= 0 ? start(pendingIndex) : undefined;
    try {
      for (let i = 0; i < items.length; i++) {
        const item = items[i]!;
        if (!item.read) {
          yield { item, chunk: undefined };
          continue;
        }
        const chunk = await pending!;
        pendingIndex = nextRead(i + 1);
        pending = pendingIndex >= 0 ? start(pendingIndex) : undefined;
        yield { item, chunk };
      }
    } finally {
      if (pending) await pending.catch(() => undefined);
    }
  }
}

/** The chunk items of the given tensors, in order. */
export function chunkItems(tensors: readonly { name: string; elements: number }[], chunkElements: number): ChunkItem[] {
  return tensors.flatMap((t) => chunkRanges(t.elements, chunkElements).map(([start, end]) => ({ name: t.name, start, end, read: true })));
}
