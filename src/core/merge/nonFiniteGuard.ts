/**
 * NaN and ±Inf in the inputs of a merge: counted per input and tensor as the chunks stream past (each chunk once,
 * whichever pass reads it first), and — unless the config sets `allow_nonfinite: true` — the merge stops at the end
 * of that pass, before anything is renamed into place, with one problem per (input, tensor) naming the counts.
 * A NaN in one model would otherwise silently turn whole merged tensors (and, with AWD, the Gram matrix and every
 * coefficient) into NaN. Only merged tensors are read through the pipeline; copied tensors go through byte for byte.
 */
import { AwdError, AwdErrorList } from '../errors';
import type { Checkpoint } from '../formats/types';
import { ChunkPipeline, type ChunkItem, type InputChunk } from './chunkReader';
import { nonFiniteTotal } from '../kernels/finite';
import { plainFloats, type FloatAllocator } from '../kernels/wasm';
import type { ChunkOp } from './helperThread';

/** NaN, +Inf and −Inf counts of one tensor of one input. */
export interface NonFiniteCount {
  /** The input's path (base or model). */
  input: string;
  tensor: string;
  nan: number;
  posInf: number;
  negInf: number;
}

/** Adds the NaN / +Inf / −Inf entries of `values` to `count` (x ≠ x ⇔ NaN; |x| = ∞ ⇔ ±Inf). */
export function countNonFinite(values: Float32Array, count: { nan: number; posInf: number; negInf: number }): void {
  for (let i = 0; i < values.length; i++) {
    const x = values[i]!;
    // One comparison for the common case: x − x is 0 for every finite x, NaN otherwise.
    if (x - x === 0) continue;
    if (x !== x) count.nan++;
    else if (x > 0) count.posInf++;
    else count.negInf++;
  }
}

/** The one message of a refused merge: which inputs, which tensors, how many of each kind. */
export function nonFiniteError(counts: readonly NonFiniteCount[]): AwdError {
  const problems = counts.map(
    (c) =>
      new AwdError(`holds ${describeCount(c)}`, {
        file: c.input,
        tensor: c.tensor,
      }),
  );
  const total = counts.reduce((s, c) => s + c.nan + c.posInf + c.negInf, 0);
  return new AwdErrorList(
    problems,
    `the inputs hold ${total} non-finite value(s) (NaN/Inf) in ${counts.length} tensor(s); nothing was written. ` +
      'Fix or re-export those checkpoints, or set `allow_nonfinite: true` in the config to merge anyway',
  );
}

/** "3 NaN, 1 +Inf" */
export function describeCount(c: { nan: number; posInf: number; negInf: number }): string {
  const parts: string[] = [];
  if (c.nan) parts.push(`${c.nan} NaN`);
  if (c.posInf) parts.push(`${c.posInf} +Inf`);
  if (c.negInf) parts.push(`${c.negInf} −Inf`);
  return parts.join(', ');
}

/**
 * A ChunkPipeline that inspects every chunk it hands out (before the caller computes on it in place) and, at the
 * end of a pass that found non-finite values, throws the listing (or logs it once when `allow` is set).
 */
export class NonFiniteCheckingPipeline extends ChunkPipeline {
  private readonly inputs: readonly Checkpoint[];
  /** "tensor\0start" of the chunks already inspected: a later pass re-reads the same bytes. */
  private readonly seen = new Set<string>();
  private readonly counts = new Map<string, NonFiniteCount>();
  private reported = false;

  constructor(
    base: Checkpoint | undefined,
    models: readonly Checkpoint[],
    chunkElements: number,
    private readonly allow: boolean,
    private readonly log: (message: string) => void = () => undefined,
    alloc: FloatAllocator = plainFloats,
    extraBytes = 0,
  ) {
    super(base, models, chunkElements, alloc, extraBytes);
    this.inputs = [...(base ? [base] : []), ...models];
  }

  /** What was found so far, in input then tensor order of discovery. */
  get found(): NonFiniteCount[] {
    return [...this.counts.values()];
  }

  /**
   * The items as ChunkPipeline.run gives them. `eager`: every chunk is screened before it is handed out.
   * `deferred`: the caller screens (screen()) only the chunks whose result shows a non-finite value — for
   * computations where any NaN/Inf input is bound to reach the result (task arithmetic's output, a Gram
   * diagonal), which spares reading every input element once more.
   */
  override async *run<T extends ChunkItem>(items: readonly T[], mode: 'eager' | 'deferred' = 'eager'): AsyncGenerator<{ item: T; chunk: InputChunk | undefined }> {
    for await (const entry of super.run(items)) {
      if (entry.chunk && mode === 'eager') this.inspect(entry.item.name, entry.chunk);
      yield entry;
    }
    this.endOfPass();
  }

  /** ChunkPipeline.runPrograms, screened as a `deferred` run (the caller calls screen()). */
  override async *runPrograms<T extends ChunkItem>(
    items: readonly T[],
    ops: (item: T, slot: number, chunk: InputChunk) => ChunkOp[],
    ranges?: (item: T) => readonly (readonly [number, number])[],
  ): AsyncGenerator<{ item: T; chunk: InputChunk | undefined; slot: number }> {
    yield* super.runPrograms(items, ops, ranges);
    this.endOfPass();
  }

  /** At the end of a pass that found non-finite values: the listing is thrown (or logged once when allowed). */
  private endOfPass(): void {
    if (this.counts.size === 0 || this.reported) return;
    if (!this.allow) throw nonFiniteError(this.found);
    this.reported = true;
    for (const c of this.found) this.log(`warning: ${c.input}, tensor "${c.tensor}": holds ${describeCount(c)} (allow_nonfinite: true, merged anyway)`);
  }

  /** Screens a chunk of a deferred run (its inputs as read: unchanged by the caller). */
  screen(tensor: string, chunk: InputChunk): void {
    this.inspect(tensor, chunk);
  }

  private inspect(tensor: string, chunk: InputChunk): void {
    const key = `${tensor}\0${chunk.start}`;
    if (this.seen.has(key)) return;
    this.seen.add(key);
    const rows = this.inputs.length > chunk.models.length ? [chunk.base, ...chunk.models] : chunk.models;
    rows.forEach((row, i) => {
      const input = this.inputs[i]!;
      // The SIMD screen first: nearly every chunk is all finite, and the per-kind JS count is 10× slower.
      if (nonFiniteTotal(row) === 0) return;
      const c = { nan: 0, posInf: 0, negInf: 0 };
      countNonFinite(row, c);
      if (c.nan + c.posInf + c.negInf === 0) return;
      const id = `${i}\0${tensor}`;
      const total = this.counts.get(id) ?? { input: input.path, tensor, nan: 0, posInf: 0, negInf: 0 };
      total.nan += c.nan;
      total.posInf += c.posInf;
      total.negInf += c.negInf;
      this.counts.set(id, total);
    });
  }
}
