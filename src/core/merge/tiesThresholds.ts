/**
 * TIES at trim_scope `tensor` on both threads: the exact per-model magnitude threshold of every merged tensor
 * (the k-th largest |τ̂_i|, k = floor(density_i · n)) in one streaming pass of whole-chunk programs
 * (helperThread.ts), for models whose tensors do not fit one chunk.
 *
 * 1. A bracket per tensor and model from a sample: 64 slices of 1024 elements spread over the tensor (all of a
 *    tensor of at most 65536 elements), read straight from the files; its (1 − k/n) quantile ± a generous margin.
 * 2. The pass: per chunk and model, the kernel bracketCount counts the entries above the bracket and collects the
 *    bit patterns of those inside it (the same order of |x| as merge/magnitude.ts: bit patterns, sign cleared).
 * 3. Per tensor: when the k-th largest lies inside the bracket (above < k ≤ above + inside) and the inside entries
 *    were all kept, it is found by sorting them; otherwise that tensor goes to the exact histogram passes of
 *    magnitude.ts (two more reads of that tensor alone). Either way the threshold is exact: the sample only decides
 *    how much work it takes, never the result.
 */
import { readSync } from 'node:fs';
import type { Checkpoint } from '../formats/types';
import type { ChunkItem, InputChunk } from './chunkReader';
import type { ChunkOp } from './helperThread';
import type { NonFiniteCheckingPipeline } from './nonFiniteGuard';

/** Candidates one model may keep per chunk in its slot (a quarter of a 131072-element chunk). */
export const CANDIDATES_PER_CHUNK = 32768;
/** Candidates one model may collect per tensor before the tensor goes to the histogram passes. */
const CANDIDATES_PER_TENSOR = 1 << 22;
const SLICES = 64;
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

/** Reads elements [start, end) of a raw float32 or bfloat16 tensor straight from its file (rawSource), as float32. */
function readRaw(c: Checkpoint, name: string, start: number, end: number, out: Float32Array): void {
  const src = c.rawSource?.(name);
  if (!src) throw new Error(`tiesThresholds: ${c.path}: tensor "${name}" is not raw float32 or bfloat16`);
  const size = src.dtype === 'BF16' ? 2 : 4;
  const bytes = new Uint8Array((end - start) * size);
  let done = 0;
  while (done < bytes.byteLength) {
    const got = readSync(src.fd, bytes, done, bytes.byteLength - done, src.offset + start * size + done);
    if (got === 0) throw new Error(`tiesThresholds: ${c.path}: short read`);
    done += got;
  }
  if (size === 4) out.set(new Float32Array(bytes.buffer));
  else {
    const bits = new Uint32Array(out.buffer, out.byteOffset, end - start);
    const halves = new Uint16Array(bytes.buffer);
    for (let e = 0; e < halves.length; e++) bits[e] = halves[e]! << 16;
  }
}

/** The sample's τ̂ bit patterns of |x| per model: τ = θ_i − θ_0 in float32, minus δ = Σ a_k τ_k with AWD. */
function sampleMagnitudes(base: Checkpoint, models: readonly Checkpoint[], t: ThresholdTensor, a: Float64Array | undefined): Int32Array[] {
  const K = models.length;
  const ranges: [number, number][] = [];
  if (t.elements <= SLICES * SLICE) ranges.push([0, t.elements]);
  else for (let s = 0; s < SLICES; s++) {
    const start = Math.floor((s * (t.elements - SLICE)) / (SLICES - 1));
    ranges.push([start, start + SLICE]);
  }
  const m = ranges.reduce((n, [s, e]) => n + e - s, 0);
  const tau = Array.from({ length: K }, () => new Float32Array(m));
  const b = new Float32Array(Math.max(...ranges.map(([s, e]) => e - s)));
  const row = new Float32Array(b.length);
  let at = 0;
  for (const [s, e] of ranges) {
    const n = e - s;
    readRaw(base, t.name, s, e, b.subarray(0, n));
    for (let i = 0; i < K; i++) {
      readRaw(models[i]!, t.name, s, e, row.subarray(0, n));
      const ti = tau[i]!;
      for (let j = 0; j < n; j++) ti[at + j] = row[j]! - b[j]!;
    }
    at += n;
  }
  if (a) {
    for (let j = 0; j < m; j++) {
      let d = 0;
      for (let k = 0; k < K; k++) d += a[k]! * tau[k]![j]!;
      const df = Math.fround(d);
      for (let i = 0; i < K; i++) tau[i]![j] = tau[i]![j]! - df;
    }
  }
  return tau.map((x) => {
    const bits = new Int32Array(x.buffer);
    for (let j = 0; j < bits.length; j++) bits[j] = bits[j]! & 0x7fffffff;
    return bits;
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
  const lo = loIdx < 0 ? 0 : selectRank(sample, loIdx);
  // selectRank left the ranks above loIdx to the right of it: the second search needs only that part.
  const hi = hiIdx >= m ? 0x7fffffff : loIdx < 0 ? selectRank(sample, hiIdx) : selectRank(sample.subarray(loIdx), hiIdx - loIdx);
  return { lo, hi, k };
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

/**
 * The value of rank r (0-based, ascending) in a, whose values all lie in [lo, hi]: a histogram of 65536 buckets
 * over the range finds the bucket holding rank r, whose few values selectRank then orders. Two linear passes:
 * several times faster than selectRank on millions of candidates.
 */
export function selectInRange(a: Int32Array, r: number, lo: number, hi: number): number {
  const range = hi - lo + 1;
  let shift = 0;
  while (range > 65536 * 2 ** shift) shift++;
  const counts = new Int32Array(65536);
  for (let e = 0; e < a.length; e++) counts[(a[e]! - lo) >>> shift]!++;
  let bucket = 0;
  let before = 0;
  while (before + counts[bucket]! <= r) before += counts[bucket++]!;
  const inBucket = new Int32Array(counts[bucket]!);
  let n = 0;
  for (let e = 0; e < a.length; e++) if ((a[e]! - lo) >>> shift === bucket) inBucket[n++] = a[e]!;
  return selectRank(inBucket, r - before);
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
  base: Checkpoint;
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
  const { pipeline, base, models, densities } = opts;
  const K = models.length;
  const searches = new Map<string, TensorSearch>();
  for (const t of opts.tensors) {
    const sample = sampleMagnitudes(base, models, t, opts.awd?.of(t.name));
    searches.set(t.name, new TensorSearch(sample.map((s, i) => bracketFor(s, t.elements, densities[i]!))));
  }
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
  const ops = (item: ChunkItem, slot: number, chunk: InputChunk): ChunkOp[] => {
    const n = item.end - item.start;
    const { delta, cand, results } = layout(slot);
    const stride = K > 1 ? chunk.models[1]!.byteOffset - chunk.models[0]!.byteOffset : 0;
    const models0 = chunk.models[0]!.byteOffset;
    const list: ChunkOp[] = [];
    if (opts.awd) list.push({ fn: 'weightedSumOfDifferences', args: [chunk.base.byteOffset, models0, K, n, stride, opts.awd.pointer(item.name), delta, 0] });
    list.push({ fn: 'subtractFromRows', args: [models0, K, n, stride, chunk.base.byteOffset] });
    if (opts.awd) list.push({ fn: 'subtractFromRows', args: [models0, K, n, stride, delta] });
    const search = searches.get(item.name)!;
    search.brackets.forEach((b, i) => {
      if (b.fixed !== undefined) return;
      list.push({ fn: 'bracketCount', args: [models0 + i * stride, n, b.lo, b.hi, cand + i * CANDIDATES_PER_CHUNK * 4, CANDIDATES_PER_CHUNK, results + 8 * i] });
    });
    return list;
  };
  const thresholds = new Map<string, number[]>();
  const unresolved: ThresholdTensor[] = [];
  const byName = new Map(opts.tensors.map((t) => [t.name, t]));
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
