/**
 * TIES at trim_scope `tensor` on both threads: the exact per-model magnitude threshold of every merged tensor
 * (the k-th largest |τ̂_i|, k = floor(density_i · n)) in one streaming pass of whole-chunk programs
 * (helperThread.ts), for models whose tensors do not fit one chunk.
 *
 * 1. A bracket per tensor and model from a sample: 64 slices of 2048 elements spread over the tensor (all of a
 *    tensor of at most 131072 elements; 32 slices with 65536-element chunks), read, turned into τ̂ and
 *    histogrammed (magnitudeHistogram: the high 16 bits of |x|'s pattern) by a chunk program per tensor on either
 *    thread; its (1 − k/n) quantile ± a margin from the sample's own spread (sampleBracketJs), widened to whole
 *    histogram buckets, found on that thread too (the kernel sampleBracket).
 * 2. The pass: per chunk and model, the kernel bracketCount counts the entries above the bracket and collects the
 *    bit patterns of those inside it (the same order of |x| as merge/magnitude.ts: bit patterns, sign cleared).
 * 3. Per tensor: when the k-th largest lies inside the bracket (above < k ≤ above + inside) and the inside entries
 *    were all kept, it is found among them (selectInRange: a bucket pass, in WASM, then a quickselect of the one
 *    bucket that holds it); otherwise that tensor goes to the exact histogram passes of
 *    magnitude.ts (two more reads of that tensor alone). Either way the threshold is exact: the sample only decides
 *    how much work it takes, never the result.
 */
import type { Checkpoint } from '../formats/types';
import type { ChunkItem, InputChunk } from './chunkReader';
import type { ChunkOp } from './helperThread';
import type { NonFiniteCheckingPipeline } from './nonFiniteGuard';
import { HIGH_BUCKETS } from './magnitude';
import { wasmKernels } from '../kernels/wasm';

/**
 * Candidates one model may keep per chunk in its slot (a quarter of a 131072-element chunk). The sample pass
 * keeps each model's histogram (HIGH_BUCKETS uint32) in the same area, so this is at least HIGH_BUCKETS.
 */
export const CANDIDATES_PER_CHUNK = 32768;
/**
 * Candidates one model may collect per tensor before the tensor goes to the histogram passes (fewer with many
 * models: candidateAreaSize keeps the area at 32M entries in all).
 */
const CANDIDATES_PER_TENSOR = 1 << 22;
// 64 slices of 2048: 131072 sample elements from 64 × 9 preads per tensor (a pread costs ~5 µs here, whatever
// its size up to tens of KiB: 128 slices of 1024 took twice the time for the same sample size).
const SLICES = 64;
const SLICE = 2048;

/** What the pass needs to know of one tensor. */
export interface ThresholdTensor {
  name: string;
  elements: number;
}

/**
 * A model's bracket in bit patterns of |x|: candidates lo ≤ a ≤ hi; `fixed` when no search is needed; `dense` when
 * the sample put more than DENSE_FRACTION of its entries inside (bracketCount then stores every quad).
 */
interface Bracket {
  lo: number;
  hi: number;
  k: number;
  fixed?: number;
  dense?: boolean;
}

/** Above this fraction of a sample inside its bracket, bracketCount's per-quad branch would mostly mispredict. */
const DENSE_FRACTION = 0.03;

const f32 = new Float32Array(1);
const i32 = new Int32Array(f32.buffer);

function floatOfBits(bits: number): number {
  i32[0] = bits;
  return f32[0]!;
}

/**
 * The element ranges of a tensor's sample: all of it when small, else `slices` slices of SLICE spread over it
 * (SLICES by default; fewer when the pass's chunks are smaller, so that a sample fits one chunk).
 */
export function sampleRanges(elements: number, slices = SLICES): [number, number][] {
  if (elements <= slices * SLICE) return [[0, elements]];
  return Array.from({ length: slices }, (_, s) => {
    const start = Math.floor((s * (elements - SLICE)) / (slices - 1));
    return [start, start + SLICE] as [number, number];
  });
}

/** A model's bracket when its trim needs no search (k = 0: nothing kept; k = n: everything kept). */
function fixedBracket(n: number, density: number): Bracket | undefined {
  const k = Math.floor(density * n);
  if (k === 0) return { lo: 0, hi: 0, k, fixed: Infinity };
  // Every entry is kept (|x| < 0 holds for none): the trim is the identity, as with the k-th largest as threshold.
  if (k === n) return { lo: 0, hi: 0, k, fixed: 0 };
  return undefined;
}

/**
 * Most a bracket's margin may grow from the slices' spread, as a fraction of the sample (each side): 4 % keeps the
 * candidates under ~10 % of a tensor's entries where the sample is far from independent (below).
 */
const CLUSTER_MARGIN_CAP = 0.04;

/**
 * What a tensor's bracket needs besides its sample (n elements, a sample of m, keeping k = floor(density · n)):
 * the sample's rank idx = (1 − k/n)·m of the k-th largest, `binomial` = 4 standard errors of that rank were the
 * sample's entries independent, a floor of 0.001·m + 16 ranks, and the cap of the slices' spread. Undefined when
 * the trim needs no search (fixedBracket).
 */
export function sampleMargins(m: number, n: number, density: number): { k: number; idx: number; binomial: number; floorTerm: number; cap: number } | undefined {
  if (fixedBracket(n, density)) return undefined;
  const k = Math.floor(density * n);
  const p = k / n;
  return { k, idx: (1 - p) * m, binomial: 4 * Math.sqrt(p * (1 - p) * m), floorTerm: 0.001 * m + 16, cap: CLUSTER_MARGIN_CAP * m };
}

/** The bracket from what sampleBracket (the kernel) or sampleBracketJs found: [loIdx, hiIdx, their buckets]. */
export function bracketFromSampleResult(m: number, n: number, density: number, found: ArrayLike<number>): Bracket {
  const fixed = fixedBracket(n, density);
  if (fixed) return fixed;
  const k = Math.floor(density * n);
  const bracket: Bracket = {
    lo: found[0]! <= 0 ? 0 : found[2]! * 65536,
    hi: found[1]! >= m - 1 ? 0x7fffffff : found[3]! * 65536 + 65535,
    k,
  };
  // The ranks' span is what the sample holds inside, before the widening to whole buckets.
  if (Math.min(found[1]!, m - 1) - Math.max(found[0]!, 0) > DENSE_FRACTION * m) bracket.dense = true;
  return bracket;
}

/** The bucket holding rank r (0-based, ascending) of a histogram; the last one at most. */
function rankBucket(histogram: Uint32Array, r: number): number {
  let b = 0;
  for (let before = 0; b < HIGH_BUCKETS - 1 && before + histogram[b]! <= r; b++) before += histogram[b]!;
  return b;
}

/**
 * The bracket of a tensor of n elements from its sample (m values of τ̂ in slices of sliceLength, back to back):
 * the readable reference of what the sample programs compute on their thread (the kernel sampleBracket, the same
 * arithmetic in the same order). Buckets are the high 16 bits of |x|'s pattern (b holds b·65536 … b·65536 + 65535);
 * the bracket runs from the bucket of the sample's rank idx − d to that of idx + d, whole buckets. The margin d
 * takes the larger of two spreads: independent sampling's, and the spread of the slices' own counts above idx's
 * bucket — slices are runs of neighbours, and where rows of a matrix differ in scale (as fine-tuning updates do)
 * the slices' counts differ far more than independent entries' would: with row scales lognormal σ = 0.3, 0.6, 1
 * (4096 × 1024, 6 seeds × 5 densities) the independent margin alone missed the k-th largest in 15, 21 and 23 of 30
 * cases, sending the tensor to two more reads; this margin in none, its bracket holding 6–8 % of the entries.
 */
export function sampleBracketJs(sample: Float32Array, sliceLength: number, n: number, density: number): Bracket {
  const m = sample.length;
  const margins = sampleMargins(m, n, density);
  if (!margins) return fixedBracket(n, density)!;
  const bits = new Uint32Array(sample.buffer, sample.byteOffset, m);
  const histogram = new Uint32Array(HIGH_BUCKETS);
  for (const x of bits) histogram[(x & 0x7fffffff) >>> 16]!++;
  const star = rankBucket(histogram, Math.floor(margins.idx));
  const slices = Math.ceil(m / sliceLength);
  let total = 0;
  let squares = 0;
  for (let s = 0; s < slices; s++) {
    let c = 0;
    for (let e = s * sliceLength; e < Math.min(m, (s + 1) * sliceLength); e++) if ((bits[e]! & 0x7fffffff) >>> 16 >= star) c++;
    total += c;
    squares += c * c;
  }
  const spread = Math.max(0, squares - (total * total) / slices);
  const se = slices > 1 ? Math.sqrt((slices / (slices - 1)) * spread) : 0;
  const d = Math.ceil(Math.max(margins.binomial, Math.min(4 * se, margins.cap)) + margins.floorTerm);
  const loIdx = Math.floor(margins.idx - d);
  const hiIdx = Math.ceil(margins.idx + d);
  return bracketFromSampleResult(m, n, density, [loIdx, hiIdx, loIdx <= 0 ? 0 : rankBucket(histogram, loIdx), hiIdx >= m - 1 ? 0 : rankBucket(histogram, hiIdx)]);
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

/** selectInRange's bucket counts, reused from call to call (made on first use: the passes rank in WASM). */
let histogram: Int32Array | undefined;

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
  const counts = (histogram ??= new Int32Array(65536)).fill(0);
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
 * Per-model candidate lists in WASM memory (an arena area the merge opens for the pass), reused from tensor to
 * tensor: the pass consumes chunks in order, so one tensor collects at a time. Chunks' candidates are copied in
 * from their slots (a memmove), and the selection's first step runs in WASM (selectBucket): with wide brackets
 * (rows that differ in scale) a tensor may have millions of candidates, and JS took ~13 ns each.
 */
export interface CandidateArea {
  /** K lists of `perModel` int32 each, back to back, in WASM memory. */
  lists: Int32Array;
  perModel: number;
  /** SELECT_SCRATCH int32 in WASM memory: selectBucket's histogram and result. */
  scratch: Int32Array;
  /** Told how far the pass wrote (the arena's lazyFloats): the scratch, or the lists to `listBytes` from their start. */
  used(what: { scratch: true } | { listBytes: number }): void;
}

/** Int32 of selectBucket's scratch: its histogram and result. */
const SELECT_SCRATCH = 65536 + 2;

/** Int32 a candidate area needs for K models: its lists (at most 32M entries in all) and the scratch. */
export function candidateAreaSize(K: number): { perModel: number; total: number } {
  const perModel = Math.min(CANDIDATES_PER_TENSOR, Math.floor((32 << 20) / K));
  return { perModel, total: K * perModel + SELECT_SCRATCH };
}

/**
 * The candidate area of K models laid out in `area` (candidateAreaSize(K).total floats from the arena's lazyFloats):
 * the scratch first, so that using it reports 256 KiB as used rather than the whole area, then the lists.
 */
export function candidateArea(area: { floats: Float32Array; used(bytes: number): void }, K: number): CandidateArea {
  const { perModel, total } = candidateAreaSize(K);
  const all = new Int32Array(area.floats.buffer, area.floats.byteOffset, total);
  return {
    scratch: all.subarray(0, SELECT_SCRATCH),
    lists: all.subarray(SELECT_SCRATCH),
    perModel,
    used: (what) => area.used('scratch' in what ? SELECT_SCRATCH * 4 : SELECT_SCRATCH * 4 + what.listBytes),
  };
}

/** selectInRange over a list in WASM memory: the bucket found and moved to the front by selectBucket, then ranked. */
export function selectInRangeWasm(list: Int32Array, r: number, lo: number, hi: number, scratch: Int32Array): number {
  if (list.length < 4096) return selectRank(list, r);
  const range = hi - lo + 1;
  let shift = 0;
  while (range > 65536 * 2 ** shift) shift++;
  const k = wasmKernels()!.exports as unknown as { selectBucket(list: number, len: number, r: number, lo: number, shift: number, hist: number, result: number): void };
  k.selectBucket(list.byteOffset, list.length, r, lo, shift, scratch.byteOffset, scratch.byteOffset + 65536 * 4);
  const found = scratch[65536]!;
  const before = scratch[65537]!;
  return selectRank(list.subarray(0, found), r - before);
}

/** Per-tensor state of the pass. */
class TensorSearch {
  readonly above: number[];
  readonly count: number[];
  readonly overflow: boolean[];

  constructor(
    readonly brackets: readonly Bracket[],
    private readonly area: CandidateArea,
  ) {
    const K = brackets.length;
    this.above = new Array<number>(K).fill(0);
    this.count = new Array<number>(K).fill(0);
    this.overflow = new Array<boolean>(K).fill(false);
  }

  add(i: number, above: number, found: number, chunkCandidates: Int32Array): void {
    this.above[i]! += above;
    if (this.overflow[i]) return;
    if (found > chunkCandidates.length || this.count[i]! + found > this.area.perModel) {
      this.overflow[i] = true;
      return;
    }
    this.list(i).set(chunkCandidates.subarray(0, found), this.count[i]!);
    this.count[i]! += found;
    this.area.used({ listBytes: (i * this.area.perModel + this.count[i]!) * 4 });
  }

  private list(i: number): Int32Array {
    return this.area.lists.subarray(i * this.area.perModel, (i + 1) * this.area.perModel);
  }

  /** The exact thresholds, or undefined for a model whose k-th largest was not inside its bracket. */
  resolve(): (number | undefined)[] {
    return this.brackets.map((b, i) => {
      if (b.fixed !== undefined) return b.fixed;
      const above = this.above[i]!;
      const inside = this.count[i]!;
      if (this.overflow[i] || above >= b.k || above + inside < b.k) return undefined;
      if (inside >= 4096) this.area.used({ scratch: true });
      return floatOfBits(selectInRangeWasm(this.list(i).subarray(0, inside), inside - (b.k - above), b.lo, b.hi, this.area.scratch));
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
  /** Where the candidates go (candidateAreaSize), in the kernels' memory. */
  candidates: CandidateArea;
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
   * Slot layout: δ row, then K candidate areas, then int32 results (4 per model: the sample's bracket; 2 in the pass). No NaN/Inf screening here: the
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
  // The samples, one program per tensor (its slices read, turned into τ̂ and histogrammed, per model, in the
  // candidate areas, on either thread), then the brackets.
  const byName = new Map(opts.tensors.map((t) => [t.name, t]));
  const slices = Math.min(SLICES, Math.floor(pipeline.chunkElements / SLICE));
  const sampleItems: ChunkItem[] = opts.tensors.filter((t) => t.elements > 0).map((t) => ({ name: t.name, start: 0, end: Math.min(t.elements, slices * SLICE), read: true }));
  const histogramOf = (slot: number, i: number): number => layout(slot).cand + i * CANDIDATES_PER_CHUNK * 4;
  // Each model's sample histogrammed and its bracket found (sampleBracket: margin, ranks, buckets) on the thread
  // that read it: this thread only turns four numbers into a bracket.
  const sampleOps = (item: ChunkItem, slot: number, chunk: InputChunk): ChunkOp[] => {
    const list = taskVectorOps(item, slot, chunk);
    const n = byName.get(item.name)!.elements;
    const m = item.end - item.start;
    const sliceLength = n > slices * SLICE ? SLICE : m;
    const { results } = layout(slot);
    chunk.models.forEach((row, i) => {
      const margins = sampleMargins(m, n, densities[i]!);
      if (!margins) return;
      list.push(
        { fn: 'fill0', args: [histogramOf(slot, i), HIGH_BUCKETS * 4] },
        { fn: 'magnitudeHistogram', args: [row.byteOffset, m, -1, histogramOf(slot, i)] },
        { fn: 'sampleBracket', args: [row.byteOffset, m, sliceLength, histogramOf(slot, i), margins.idx, margins.binomial, margins.floorTerm, margins.cap, results + 16 * i] },
      );
    });
    return list;
  };
  for await (const { item, slot } of pipeline.runPrograms(sampleItems, sampleOps, (it) => sampleRanges(byName.get(it.name)!.elements, slices))) {
    const t = byName.get(item.name)!;
    const m = item.end - item.start;
    const found = new Int32Array(memory, layout(slot).results, 4 * K);
    // (A model with a fixed bracket had no sample program: bracketFromSampleResult returns it without looking.)
    const brackets = models.map((_, i) => bracketFromSampleResult(m, t.elements, densities[i]!, found.subarray(4 * i, 4 * i + 4)));
    searches.set(t.name, new TensorSearch(brackets, opts.candidates));
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
      list.push({ fn: 'bracketCount', args: [models0 + i * stride, n, b.lo, b.hi, cand + i * CANDIDATES_PER_CHUNK * 4, CANDIDATES_PER_CHUNK, results + 8 * i, b.dense ? 1 : 0] });
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
