/**
 * Reference kernel for the weighted sum of task vectors in plain JS (the second pass of task arithmetic, with or
 * without AWD); the WASM kernel must give bit-identical results.
 */

/** Elements per block of the float64 accumulator (bounded scratch that stays in cache). */
const BLOCK = 4096;

/** Throws unless base, out and every model have the same length and there is one coefficient per model. */
export function checkWeightedSumShapes(
  base: Float32Array,
  models: readonly Float32Array[],
  coeffs: ArrayLike<number>,
  out: Float32Array,
): number {
  const n = base.length;
  if (out.length !== n) throw new RangeError(`weightedSumOfDifferences: out has ${out.length} elements, base ${n}`);
  if (coeffs.length !== models.length) {
    throw new RangeError(`weightedSumOfDifferences: ${models.length} models but ${coeffs.length} coefficients`);
  }
  for (const m of models) {
    if (m.length !== n) throw new RangeError(`weightedSumOfDifferences: a model has ${m.length} elements, base ${n}`);
  }
  return n;
}

/**
 * out[e] = fround(Σ_i coeffs[i]·fround(models[i][e] − base[e])): τ in float32, the sum in float64 in the fixed
 * order i = 0..K−1, so the result depends neither on chunking nor on the kernel used.
 */
export function weightedSumOfDifferencesJs(
  base: Float32Array,
  models: readonly Float32Array[],
  coeffs: ArrayLike<number>,
  out: Float32Array,
): void {
  const n = checkWeightedSumShapes(base, models, coeffs, out);
  const acc = new Float64Array(Math.min(BLOCK, n));
  for (let start = 0; start < n; start += BLOCK) {
    const len = Math.min(BLOCK, n - start);
    acc.fill(0, 0, len);
    for (let i = 0; i < models.length; i++) {
      const m = models[i] as Float32Array;
      const c = coeffs[i] as number;
      for (let e = 0; e < len; e++) {
        acc[e] = (acc[e] as number) + c * Math.fround((m[start + e] as number) - (base[start + e] as number));
      }
    }
    for (let e = 0; e < len; e++) out[start + e] = acc[e] as number;
  }
}

/** out[e] = fround(base[e] + fround(Σ_i coeffs[i]·fround(models[i][e] − base[e]))): task arithmetic's θ_0 + m. */
export function baseWithWeightedSumOfDifferencesJs(
  base: Float32Array,
  models: readonly Float32Array[],
  coeffs: ArrayLike<number>,
  out: Float32Array,
): void {
  weightedSumOfDifferencesJs(base, models, coeffs, out);
  for (let e = 0; e < out.length; e++) out[e] = (base[e] as number) + (out[e] as number);
}
