/**
 * TIES merging (merge-config.md): trim each task vector to its largest-magnitude entries, elect a sign per
 * entry, and merge only the entries that agree with it. WASM SIMD kernels when available, bit-identical to the
 * JS references kept here (trimBelowJs, tiesMergeChunkJs).
 */
import { wasmKernels } from '../kernels/wasm';

/** Below this many elements the copy into WASM memory costs more than the JS loop. */
const WASM_MIN_ELEMENTS = 1024;


/** x[e] = 0 where |x[e]| < threshold (entries tied with the threshold are kept; +Infinity zeroes everything). */
export function trimBelow(x: Float32Array, threshold: number): void {
  const wasm = x.length >= WASM_MIN_ELEMENTS ? wasmKernels() : null;
  if (wasm) wasm.trimBelow(x, float32AtLeast(threshold));
  else trimBelowJs(x, threshold);
}

/** The plain-JS reference of trimBelow. */
export function trimBelowJs(x: Float32Array, threshold: number): void {
  for (let e = 0; e < x.length; e++) {
    const v = x[e] as number;
    if (Math.abs(v) < threshold) x[e] = 0;
  }
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The smallest float32 ≥ t: for a float32 x, |x| < t ⇔ |x| < float32AtLeast(t). */
export function float32AtLeast(t: number): number {
  f32[0] = t;
  if ((f32[0] as number) < t && t > 0) u32[0] = (u32[0] as number) + 1;
  return f32[0] as number;
}

/**
 * s = sign(Σ_i w_i τ'_i); agree_i ⇔ τ'_i ≠ 0 ∧ sign(τ'_i) = s; out = Σ_agree w_i τ'_i / Σ_agree w_i when normalize
 * (0 where none agree or the agreeing weights sum to 0), else Σ_agree w_i τ'_i. Sums in float64, order i = 0..K−1.
 */
export function tiesMergeChunk(
  rows: readonly Float32Array[],
  weights: ArrayLike<number>,
  normalize: boolean,
  out: Float32Array,
): void {
  checkTiesShapes(rows, weights, out);
  const wasm = out.length >= WASM_MIN_ELEMENTS ? wasmKernels() : null;
  if (wasm) wasm.tiesMerge(rows, weights, normalize, out);
  else tiesMergeChunkJs(rows, weights, normalize, out);
}

function checkTiesShapes(rows: readonly Float32Array[], weights: ArrayLike<number>, out: Float32Array): void {
  if (weights.length !== rows.length) throw new RangeError(`tiesMergeChunk: ${rows.length} rows but ${weights.length} weights`);
  for (const r of rows) {
    if (r.length !== out.length) throw new RangeError(`tiesMergeChunk: a row has ${r.length} elements, out ${out.length}`);
  }
}

/** The plain-JS reference of tiesMergeChunk (the WASM kernel is bit-identical to it). */
export function tiesMergeChunkJs(
  rows: readonly Float32Array[],
  weights: ArrayLike<number>,
  normalize: boolean,
  out: Float32Array,
): void {
  checkTiesShapes(rows, weights, out);
  const K = rows.length;
  const n = out.length;
  const w = Float64Array.from({ length: K }, (_, i) => weights[i] as number);
  for (let e = 0; e < n; e++) {
    let total = 0;
    for (let i = 0; i < K; i++) total += (w[i] as number) * ((rows[i] as Float32Array)[e] as number);
    let sum = 0;
    let wsum = 0;
    if (total > 0) {
      for (let i = 0; i < K; i++) {
        const v = (rows[i] as Float32Array)[e] as number;
        if (v > 0) {
          sum += (w[i] as number) * v;
          wsum += w[i] as number;
        }
      }
    } else if (total < 0) {
      for (let i = 0; i < K; i++) {
        const v = (rows[i] as Float32Array)[e] as number;
        if (v < 0) {
          sum += (w[i] as number) * v;
          wsum += w[i] as number;
        }
      }
    }
    out[e] = normalize ? (wsum !== 0 ? sum / wsum : 0) : sum;
  }
}
