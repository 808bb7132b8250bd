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
 */
export const GRAM_BLOCK_ELEMENTS = 65536;

/**
 * Elements per chunk for K models under a memory budget: the K + 1 input buffers plus 3 more a method may need
 * (δ, the merged task vector, the output), all float32; a whole number of Gram blocks (at least one).
 */
export function chunkElementsFor(K: number, budgetBytes: number): number {
  const fit = Math.floor(budgetBytes / ((K + 4) * 4));
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
