/**
 * The exact per-model magnitude thresholds of TIES at trim_scope `model` (merge/magnitude.ts: a histogram of the
 * high 16 bits of |τ̂|'s pattern over the whole model, then one of the low 16 bits inside the bucket that holds the
 * k-th largest) as chunk programs on both threads (helperThread.ts): each chunk turns its rows into τ̂ and counts
 * them with magnitudeHistogram64 into the histograms of the thread that runs it (two sets, uint64 counts), which
 * are added into the selectors after the pass. Counts are integers, so the sums, hence the thresholds, are those
 * of the one-thread passes whatever thread counted what.
 *
 * Each pass checks its totals (pass 1 counts every entry once; pass 2 counts what pass 1 put in the bucket):
 * a helper that died in the middle of a chunk may have counted part of it before this thread counted it all, and
 * then the caller runs the passes again on this thread (`undefined` here).
 */
import type { ChunkItem, InputChunk } from './chunkReader';
import type { ChunkOp } from './helperThread';
import { HIGH_BUCKETS, HISTOGRAM_BUCKETS as LOW_BUCKETS, MagnitudeThreshold } from './magnitude';
import type { NonFiniteCheckingPipeline } from './nonFiniteGuard';

/** Float32 slots the histograms of modelThresholdPasses take: two threads × K models × 65536 uint64. */
export function histogramFloats(K: number): number {
  return 2 * K * LOW_BUCKETS * 2;
}

export interface ModelThresholdOptions {
  pipeline: NonFiniteCheckingPipeline;
  K: number;
  densities: readonly number[];
  /** Elements of all the tensors together (what each model's threshold ranks). */
  count: number;
  /** Where AWD's coefficients for a tensor are in WASM memory (δ = Σ a_k τ_k per chunk), with AWD. */
  awd?: (name: string) => number;
  /** histogramFloats(K) float32 of WASM memory for the two threads' histograms. */
  histograms: Float32Array;
  /** Called before each pass (one or two), and after each chunk (progress, cancellation). */
  onPass: () => void;
  onChunk: (item: ChunkItem) => void;
}

/** The thresholds (one per model) and the reads they took, or undefined when the caller must count again. */
export async function modelThresholdPasses(opts: ModelThresholdOptions, items: readonly ChunkItem[]): Promise<{ thresholds: number[]; reads: number } | undefined> {
  const { pipeline, K } = opts;
  const selectors = opts.densities.map((d) => new MagnitudeThreshold(opts.count, d));
  const hist = opts.histograms;
  const perThread = K * LOW_BUCKETS * 8;
  const counts = new BigUint64Array(hist.buffer, hist.byteOffset, 2 * K * LOW_BUCKETS);
  /** τ̂ in place in the slot's rows (δ in the slot's first extra row with AWD), then each unsettled model counted. */
  const ops = (buckets: readonly number[]) => (item: ChunkItem, slot: number, chunk: InputChunk): ChunkOp[] => {
    const n = item.end - item.start;
    const stride = K > 1 ? chunk.models[1]!.byteOffset - chunk.models[0]!.byteOffset : 0;
    const rows = chunk.models[0]!.byteOffset;
    const base = chunk.base.byteOffset;
    const delta = pipeline.slotExtra[slot]!.byteOffset;
    const list: ChunkOp[] = [];
    if (opts.awd) list.push({ fn: 'weightedSumOfDifferences', args: [base, rows, K, n, stride, opts.awd(item.name), delta, 0] });
    list.push({ fn: 'subtractFromRows', args: [rows, K, n, stride, base] });
    if (opts.awd) list.push({ fn: 'subtractFromRows', args: [rows, K, n, stride, delta] });
    selectors.forEach((s, i) => {
      if (!s.settled) list.push({ fn: 'magnitudeHistogramLocal', args: [rows + i * stride, n, buckets[i]!, hist.byteOffset + i * LOW_BUCKETS * 8, perThread] });
    });
    return list;
  };
  const pass = async (buckets: readonly number[]): Promise<void> => {
    counts.fill(0n);
    opts.onPass();
    for await (const { item } of pipeline.runPrograms(items, ops(buckets))) opts.onChunk(item);
  };
  /** Model i's count of bucket b, both threads. */
  const countOf = (i: number, b: number): number => Number(counts[i * LOW_BUCKETS + b]! + counts[K * LOW_BUCKETS + i * LOW_BUCKETS + b]!);
  const total = (i: number, buckets: number): number => {
    let sum = 0;
    for (let b = 0; b < buckets; b++) sum += countOf(i, b);
    return sum;
  };

  await pass(selectors.map(() => -1));
  for (const [i, s] of selectors.entries()) {
    if (s.settled) continue;
    if (total(i, HIGH_BUCKETS) !== opts.count) return undefined;
    s.addCounts(1, (b) => countOf(i, b), HIGH_BUCKETS, opts.count);
  }
  const second = selectors.map((s) => s.needsPass2());
  if (!second.some(Boolean)) return { thresholds: selectors.map((s) => s.threshold()), reads: 1 };
  const buckets = selectors.map((s, i) => (second[i] ? s.pass2Bucket : -1));
  // Pass 1's count of each searched bucket, which pass 2 must find again.
  const inBucket = selectors.map((_, i) => (second[i] ? countOf(i, buckets[i]!) : 0));
  await pass(buckets);
  for (const [i, s] of selectors.entries()) {
    if (!second[i]) continue;
    if (total(i, LOW_BUCKETS) !== inBucket[i]) return undefined;
    s.addCounts(2, (b) => countOf(i, b), LOW_BUCKETS, opts.count);
  }
  return { thresholds: selectors.map((s) => s.threshold()), reads: 2 };
}
