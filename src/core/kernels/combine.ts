/**
 * Combining task vectors chunk by chunk: the weighted sum of differences is the whole second pass of task
 * arithmetic (with or without AWD); subtractInto builds τ or τ̂ for the other methods.
 */
import { baseWithWeightedSumOfDifferencesJs, checkWeightedSumShapes, weightedSumOfDifferencesJs } from './combineJs';
import { wasmKernels } from './wasm';

/** Below this many elements the copy into WASM memory costs more than the JS loop. */
const WASM_MIN_ELEMENTS = 1024;

/**
 * out[e] = Σ_i coeffs[i]·(models[i][e] − base[e]), τ in float32, the sum in float64 in the order i = 0..K−1,
 * rounded to float32 once. The WASM kernel (f64x2, no fused multiply-add) gives bit-identical results to
 * combineJs.ts, so the choice between them never changes an output.
 */
export function weightedSumOfDifferences(
  base: Float32Array,
  models: readonly Float32Array[],
  coeffs: ArrayLike<number>,
  out: Float32Array,
): void {
  const n = checkWeightedSumShapes(base, models, coeffs, out);
  const wasm = n >= WASM_MIN_ELEMENTS ? wasmKernels() : null;
  if (wasm) wasm.weightedSum(base, models, coeffs, out);
  else weightedSumOfDifferencesJs(base, models, coeffs, out);
}

/**
 * out[e] = fround(base[e] + fround(Σ_i coeffs[i]·(models[i][e] − base[e]))): the whole output step of task
 * arithmetic (λ folded into coeffs) in one pass over the chunk; the same bits as weightedSumOfDifferences
 * followed by out + base.
 */
export function baseWithWeightedSumOfDifferences(
  base: Float32Array,
  models: readonly Float32Array[],
  coeffs: ArrayLike<number>,
  out: Float32Array,
): void {
  const n = checkWeightedSumShapes(base, models, coeffs, out);
  const wasm = n >= WASM_MIN_ELEMENTS ? wasmKernels() : null;
  if (wasm) wasm.weightedSum(base, models, coeffs, out, true);
  else baseWithWeightedSumOfDifferencesJs(base, models, coeffs, out);
}

/**
 * rows[i][e] = fround(rows[i][e] − sub[e]) for every row, in place (τ = θ_i − θ_0, τ̂ = τ − δ): the WASM kernel
 * (f32x4 subtract, the same single rounding) gives the same bits as subtractInto row by row.
 */
export function subtractFromRows(rows: readonly Float32Array[], sub: Float32Array): void {
  for (const row of rows) {
    if (row.length !== sub.length) throw new RangeError(`subtractFromRows: a row has ${row.length} elements, the subtrahend ${sub.length}`);
  }
  const wasm = sub.length >= WASM_MIN_ELEMENTS ? wasmKernels() : null;
  if (wasm) wasm.subtractFromRows(rows, sub);
  else for (const row of rows) subtractInto(row, row, sub);
}

/** out[e] = fround(a[e] − b[e]); out may be a or b. */
export function subtractInto(out: Float32Array, a: Float32Array, b: Float32Array): void {
  if (a.length !== out.length || b.length !== out.length) {
    throw new RangeError(`subtractInto: lengths ${out.length}, ${a.length}, ${b.length} differ`);
  }
  for (let e = 0; e < out.length; e++) out[e] = (a[e] as number) - (b[e] as number);
}
