/**
 * Reads the same element range of one tensor from the base and from every model, decoded to float32, into buffers
 * allocated once per job: the whole memory of a streaming pass is these K + 1 buffers (plus what a method adds).
 */
import type { Checkpoint } from '../formats/types';

/** Default memory budget of a job's chunk buffers: 256 MiB. */
export const DEFAULT_MEMORY_BUDGET_BYTES = 256 * 1024 * 1024;

/**
 * Elements per block of the Gram accumulation: blocks are aligned to the tensor's element index, so when chunks are
 * whole blocks the Gram matrices — and so AWD and the output — are the same bits whatever the memory budget.
 * 2^19: the size from which kernels/gram.ts takes its fast kernel (smaller calls take the exact, slower one).
 */
export const GRAM_BLOCK_ELEMENTS = 524288;

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

  constructor(
    private readonly base: Checkpoint | undefined,
    private readonly models: readonly Checkpoint[],
    readonly chunkElements: number,
  ) {
    this.baseBuffer = new Float32Array(base ? chunkElements : 0);
    this.modelBuffers = models.map(() => new Float32Array(chunkElements));
  }

  /** Bytes held by the buffers. */
  get bufferBytes(): number {
    return (this.baseBuffer.length + this.modelBuffers.length * this.chunkElements) * 4;
  }

  /** Elements [start, end) of `name` from every input; the views stay valid until the next call. */
  async read(name: string, start: number, end: number): Promise<InputChunk> {
    const n = end - start;
    if (n > this.chunkElements) throw new Error(`chunk of ${n} elements exceeds the buffer of ${this.chunkElements}`);
    const base = this.baseBuffer.subarray(0, this.base ? n : 0);
    const models = this.modelBuffers.map((b) => b.subarray(0, n));
    await Promise.all([
      this.base ? this.base.readFloat32(name, start, end, base) : Promise.resolve(base),
      ...this.models.map((m, i) => m.readFloat32(name, start, end, models[i])),
    ]);
    return { start, end, base, models };
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

/**
 * Reads chunks one ahead: while the caller computes on chunk n (in one buffer set), chunk n + 1 is being read into
 * the other, on libuv's I/O threads, so reading and computing overlap. Items with `read: false` (tensors copied
 * through) are handed over in order without reading, the prefetch running on behind them.
 */
export class ChunkPipeline {
  private readonly readers: [TensorChunkReader, TensorChunkReader];
  private slot = 0;

  constructor(base: Checkpoint | undefined, models: readonly Checkpoint[], readonly chunkElements: number) {
    this.readers = [new TensorChunkReader(base, models, chunkElements), new TensorChunkReader(base, models, chunkElements)];
  }

  get bufferBytes(): number {
    return this.readers[0].bufferBytes + this.readers[1].bufferBytes;
  }

  /**
   * The items in order, each with its chunk when read. A chunk's views stay valid until the next item is asked
   * for. Leaving the loop early (break, throw) waits for the read in flight, so no read outlives the pass.
   */
  async *run<T extends ChunkItem>(items: readonly T[]): AsyncGenerator<{ item: T; chunk: InputChunk | undefined }> {
    const nextRead = (from: number): number => {
      for (let j = from; j < items.length; j++) if (items[j]!.read) return j;
      return -1;
    };
    const start = (j: number): Promise<InputChunk> => {
      const it = items[j]!;
      const p = this.readers[this.slot++ % 2]!.read(it.name, it.start, it.end);
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
