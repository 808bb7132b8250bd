/**
 * TIES at trim_scope `tensor` on both threads: the exact per-model magnitude threshold of every merged tensor
 * (the k-th largest |τ̂_i|, k = floor(density_i · n)) in one streaming pass of whole-chunk programs
 * (helperThread.ts), for models whose tensors do not fit one chunk.
 *
 * 1. A bracket per tensor and model from a sample: 32 slices of 1024 elements spread over the tensor (all of a
 *    tensor of at most 32768 elements), read and turned into τ̂ by a chunk program per tensor on either thread; its
 *    (1 − k/n) quantile ± a generous margin.
 * 2. The pass: per chunk and model, the kernel bracketCount counts the entries above the bracket and collects the
 *    bit patterns of those inside it (the same order of |x| as merge/magnitude.ts: bit patterns, sign cleared).
 * 3. Per tensor: when the k-th largest lies inside the bracket (above < k ≤ above + inside) and the inside entries
 *    were all kept, it is found by sorting them; otherwise that tensor goes to the exact histogram passes of
 *    magnitude.ts (two more reads of that tensor alone). Either way the threshold is exact: the sample only decides
 *    how much work it takes, never the result.
 */
import type { Checkpoint } from '../formats/types';
import type { ChunkItem, InputChunk } from './chunkReader';
import type { ChunkOp } from './helperThread';
import type { NonFiniteCheckingPipeline } from './nonFiniteGuard';

/** Candidates one model may keep per chunk in its slot (a quarter of a 131072-element chunk). */
export const CANDIDATES_PER_CHUNK = 32768;
/** Candidates one model may collect per tensor before the tensor goes to the histogram passes. */
const CANDIDATES_PER_TENSOR = 1 << 22;
const SLICES = 32;
const SLICE = 1024;

/** What the pass needs to know of one tensor. */
export interface ThresholdTensor {
  name: string;
  elements: number;
}

/** A model's bracket in bit patterns of |x|: candidates lo ≤ a ≤ hi; `fixed` when no search is needed. */
interface Bracket {
  lo: number;
  hi: number;
  k: number;
  fixed?: number;
}

const f32 = new Float32Array(1);
const i32 = new Int32Array(f32.buffer);

function floatOfBits(bits: number): number {
  i32[0] = bits;
  return f32[0]!;
}

/** The element ranges of a tensor's sample: all of it when small, else SLICES slices of SLICE spread over it. */
export function sampleRanges(elements: number): [number, number][] {
  if (elements <= SLICES * SLICE) return [[0, elements]];
  return Array.from({ length: SLICES }, (_, s) => {
    const start = Math.floor((s * (elements - SLICE)) / (SLICES - 1));
    return [start, start + SLICE] as [number, number];
  });
}

function bracketFor(sample: Int32Array, n: number, density: number): Bracket {
  const k = Math.floor(density * n);
  if (k === 0) return { lo: 0, hi: 0, k, fixed: Infinity };
  // Every entry is kept (|x| < 0 holds for none): the trim is the identity, as with the k-th largest as threshold.
  if (k === n) return { lo: 0, hi: 0, k, fixed: 0 };
  const m = sample.length;
  const p = k / n;
  const idx = (1 - p) * m;
  // The sample's quantile is off by about sqrt(p(1 − p)m) ranks; slices are runs of neighbours, so allow more.
  const d = Math.ceil(4 * Math.sqrt(p * (1 - p) * m) + 0.001 * m + 16);
  const loIdx = Math.floor(idx - d);
  const hiIdx = Math.ceil(idx + d);
  const [lo, hi] = twoRanks(sample, Math.max(0, loIdx), Math.min(m - 1, hiIdx));
  return { lo: loIdx < 0 ? 0 : lo, hi: hiIdx >= m ? 0x7fffffff : hi, k };
}

/** The value of rank r (0-based, ascending) in a, reordering a: quickselect with median-of-three pivots. */
export function selectRank(a: Int32Array, r: number): number {
  let lo = 0;
  let hi = a.length - 1;
  while (hi > lo) {
    const mid = (lo + hi) >>> 1;
    // Median of a[lo], a[mid], a[hi] as the pivot.
    const x = a[lo]!, y = a[mid]!, z = a[hi]!;
    const pivot = x < y ? (y < z ? y : x < z ? z : x) : x < z ? x : y < z ? z : y;
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (a[i]! < pivot) i++;
      while (a[j]! > pivot) j--;
      if (i <= j) {
        const t = a[i]!;
        a[i] = a[j]!;
        a[j] = t;
        i++;
        j--;
      }
    }
    if (r <= j) hi = j;
    else if (r >= i) lo = i;
    else return a[r]!;
  }
  return a[r]!;
}

/** selectInRange's bucket counts, reused from call to call. */
const histogram = new Int32Array(65536);

/**
 * The value of rank r (0-based, ascending) in a (which it may reorder), whose values all lie in [lo, hi]: a histogram of 65536 buckets
 * over the range finds the bucket holding rank r, whose few values selectRank then orders. Two linear passes:
 * several times faster than selectRank on millions of candidates.
 */
export function selectInRange(a: Int32Array, r: number, lo: number, hi: number): number {
  if (a.length < 4096) return selectRank(a, r);
  const range = hi - lo + 1;
  let shift = 0;
  while (range > 65536 * 2 ** shift) shift++;
  const counts = histogram.fill(0);
  for (let e = 0; e < a.length; e++) counts[(a[e]! - lo) >>> shift]!++;
  let bucket = 0;
  let before = 0;
  while (before + counts[bucket]! <= r) before += counts[bucket++]!;
  const inBucket = new Int32Array(counts[bucket]!);
  let n = 0;
  for (let e = 0; e < a.length; e++) if ((a[e]! - lo) >>> shift === bucket) inBucket[n++] = a[e]!;
  return selectRank(inBucket, r - before);
}

/**
 * The values of ranks r1 ≤ r2 (0-based, ascending) among non-negative int32 a (which it may reorder): one histogram
 * of the top 16 bits for both, then selectRank within each one's bucket.
 */
export function twoRanks(a: Int32Array, r1: number, r2: number): [number, number] {
  if (a.length < 4096) return [selectRank(a, r1), selectRank(a, r2)];
  const counts = histogram.fill(0);
  for (let e = 0; e < a.length; e++) counts[a[e]! >>> 15]!++;
  const locate = (r: number): { bucket: number; before: number } => {
    let bucket = 0;
    let before = 0;
    while (before + counts[bucket]! <= r) before += counts[bucket++]!;
    return { bucket, before };
  };
  const b1 = locate(r1);
  const b2 = locate(r2);
  const in1 = new Int32Array(counts[b1.bucket]!);
  const in2 = b2.bucket === b1.bucket ? in1 : new Int32Array(counts[b2.bucket]!);
  let n1 = 0;
  let n2 = 0;
  for (let e = 0; e < a.length; e++) {
    const bucket = a[e]! >>> 15;
    if (bucket === b1.bucket) in1[n1++] = a[e]!;
    else if (bucket === b2.bucket) in2[n2++] = a[e]!;
  }
  const v1 = selectRank(in1, r1 - b1.before);
  // selectRank reorders in1; a rank in the same bucket is still found in it.
  return [v1, selectRank(in2, r2 - b2.before)];
}

/** Per-tensor state of the pass. */
class TensorSearch {
  readonly above: number[];
  readonly candidates: Int32Array[];
  readonly count: number[];
  readonly overflow: boolean[];

  constructor(readonly brackets: readonly Bracket[]) {
    const K = brackets.length;
    this.above = new Array<number>(K).fill(0);
    this.count = new Array<number>(K).fill(0);
    this.overflow = new Array<boolean>(K).fill(false);
    this.candidates = Array.from({ length: K }, () => new Int32Array(1024));
  }

  add(i: number, above: number, found: number, chunkCandidates: Int32Array): void {
    this.above[i]! += above;
    if (this.overflow[i]) return;
    if (found > chunkCandidates.length || this.count[i]! + found > CANDIDATES_PER_TENSOR) {
      this.overflow[i] = true;
      return;
    }
    let list = this.candidates[i]!;
    if (this.count[i]! + found > list.length) {
      const grown = new Int32Array(Math.max(list.length * 2, this.count[i]! + found));
      grown.set(list.subarray(0, this.count[i]!));
      list = this.candidates[i] = grown;
    }
    list.set(chunkCandidates.subarray(0, found), this.count[i]!);
    this.count[i]! += found;
  }

  /** The exact thresholds, or undefined for a model whose k-th largest was not inside its bracket. */
  resolve(): (number | undefined)[] {
    return this.brackets.map((b, i) => {
      if (b.fixed !== undefined) return b.fixed;
      const above = this.above[i]!;
      const inside = this.count[i]!;
      if (this.overflow[i] || above >= b.k || above + inside < b.k) return undefined;
      return floatOfBits(selectInRange(this.candidates[i]!.subarray(0, inside), inside - (b.k - above), b.lo, b.hi));
    });
  }
}

export interface ThresholdPassOptions {
  pipeline: NonFiniteCheckingPipeline;
  models: readonly Checkpoint[];
  tensors: readonly ThresholdTensor[];
  densities: readonly number[];
  /** AWD's coefficients per tensor (a_k, so that δ = Σ a_k τ_k), and where they are in WASM memory. */
  awd?: { of: (name: string) => Float64Array; pointer: (name: string) => number };
  /** Called after each chunk with its elements (progress, cancellation). */
  onChunk: (item: ChunkItem) => void;
}

/**
 * Runs the pass; returns the thresholds found (per tensor, one per model) and the tensors that still need the
 * histogram passes. The pipeline's items must be whole chunks for program passes (canRunPrograms).
 */
export async function sampledThresholdPass(opts: ThresholdPassOptions, items: readonly ChunkItem[]): Promise<{ thresholds: Map<string, number[]>; unresolved: ThresholdTensor[] }> {
  const { pipeline, models, densities } = opts;
  const K = models.length;
  const searches = new Map<string, TensorSearch>();
  const memory = pipeline.slotExtra[0]!.buffer;
  /**
   * Slot layout: δ row, then K candidate areas, then int32 results (2 per model). No NaN/Inf screening here: the
   * output pass screens every input row of every chunk and refuses the merge (or logs) before anything is written.
   */
  const layout = (slot: number): { delta: number; cand: number; results: number } => {
    const at = pipeline.slotExtra[slot]!.byteOffset;
    const cand = at + pipeline.chunkElements * 4;
    return { delta: at, cand, results: cand + K * CANDIDATES_PER_CHUNK * 4 };
  };
  /** τ̂ = τ − δ in place in the slot's model rows (τ alone without AWD): the calls both passes start with. */
  const taskVectorOps = (item: ChunkItem, slot: number, chunk: InputChunk): ChunkOp[] => {
    const n = item.end - item.start;
    const stride = K > 1 ? chunk.models[1]!.byteOffset - chunk.models[0]!.byteOffset : 0;
    const models0 = chunk.models[0]!.byteOffset;
    const { delta } = layout(slot);
    const list: ChunkOp[] = [];
    if (opts.awd) list.push({ fn: 'weightedSumOfDifferences', args: [chunk.base.byteOffset, models0, K, n, stride, opts.awd.pointer(item.name), delta, 0] });
    list.push({ fn: 'subtractFromRows', args: [models0, K, n, stride, chunk.base.byteOffset] });
    if (opts.awd) list.push({ fn: 'subtractFromRows', args: [models0, K, n, stride, delta] });
    return list;
  };
  // The samples, one program per tensor (its slices read and turned into τ̂ on either thread), then the brackets.
  const byName = new Map(opts.tensors.map((t) => [t.name, t]));
  const sampleItems: ChunkItem[] = opts.tensors.filter((t) => t.elements > 0).map((t) => ({ name: t.name, start: 0, end: Math.min(t.elements, SLICES * SLICE), read: true }));
  for await (const { item, chunk } of pipeline.runPrograms(sampleItems, taskVectorOps, (it) => sampleRanges(byName.get(it.name)!.elements))) {
    const t = byName.get(item.name)!;
    const brackets = chunk!.models.map((row, i) => {
      // Copied out of the shared memory first: element loops over a SharedArrayBuffer view are several times slower.
      const bits = new Int32Array(row.length);
      bits.set(new Int32Array(row.buffer, row.byteOffset, row.length));
      for (let e = 0; e < bits.length; e++) bits[e] = bits[e]! & 0x7fffffff;
      return bracketFor(bits, t.elements, densities[i]!);
    });
    searches.set(t.name, new TensorSearch(brackets));
  }
  const ops = (item: ChunkItem, slot: number, chunk: InputChunk): ChunkOp[] => {
    const n = item.end - item.start;
    const { cand, results } = layout(slot);
    const stride = K > 1 ? chunk.models[1]!.byteOffset - chunk.models[0]!.byteOffset : 0;
    const models0 = chunk.models[0]!.byteOffset;
    const list = taskVectorOps(item, slot, chunk);
    const search = searches.get(item.name)!;
    search.brackets.forEach((b, i) => {
      if (b.fixed !== undefined) return;
      list.push({ fn: 'bracketCount', args: [models0 + i * stride, n, b.lo, b.hi, cand + i * CANDIDATES_PER_CHUNK * 4, CANDIDATES_PER_CHUNK, results + 8 * i] });
    });
    return list;
  };
  const thresholds = new Map<string, number[]>();
  const unresolved: ThresholdTensor[] = [];
  for await (const { item, slot } of pipeline.runPrograms(items, ops)) {
    const { cand, results } = layout(slot);
    const r = new Int32Array(memory, results, 2 * K);
    const search = searches.get(item.name)!;
    search.brackets.forEach((b, i) => {
      if (b.fixed === undefined) search.add(i, r[2 * i]!, r[2 * i + 1]!, new Int32Array(memory, cand + i * CANDIDATES_PER_CHUNK * 4, CANDIDATES_PER_CHUNK));
    });
    if (item.end === byName.get(item.name)!.elements) {
      const found = search.resolve();
      if (found.every((x) => x !== undefined)) thresholds.set(item.name, found as number[]);
      else unresolved.push(byName.get(item.name)!);
      searches.delete(item.name);
    }
    opts.onChunk(item);
  }
  return { thresholds, unresolved };
}
