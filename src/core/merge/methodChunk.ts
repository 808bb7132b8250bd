/**
 * The small element-wise steps of the output pass that the kernels module does not cover: weighted sums of rows
 * that are already task vectors (after DARE's rescale), θ = θ_0 + λ·m, and the weighted average of `linear`.
 */

/** out[e] = Σ_i w_i · rows[i][e], summed in float64 in the order i = 0..K−1, rounded to float32 once. */
export function weightedSumOfRows(rows: readonly Float32Array[], weights: ArrayLike<number>, out: Float32Array): void {
  const K = rows.length;
  for (let e = 0; e < out.length; e++) {
    let s = 0;
    for (let i = 0; i < K; i++) s += weights[i]! * rows[i]![e]!;
    out[e] = s;
  }
}

/** out[e] = fround(base[e] + fround(λ · m[e])): the merged task vector added to the base in float32. */
export function addScaledInto(out: Float32Array, base: Float32Array, m: Float32Array, lambda: number): void {
  const scale = Math.fround(lambda);
  if (scale === 1) {
    for (let e = 0; e < out.length; e++) out[e] = base[e]! + m[e]!;
  } else {
    for (let e = 0; e < out.length; e++) out[e] = base[e]! + Math.fround(scale * m[e]!);
  }
}

/** out[e] = Σ_i w_i θ_i[e] / Σ_i w_i (float64 sum and division, one rounding). */
export function weightedAverageInto(models: readonly Float32Array[], weights: ArrayLike<number>, out: Float32Array): void {
  let total = 0;
  for (let i = 0; i < models.length; i++) total += weights[i]!;
  const K = models.length;
  for (let e = 0; e < out.length; e++) {
    let s = 0;
    for (let i = 0; i < K; i++) s += weights[i]! * models[i]![e]!;
    out[e] = s / total;
  }
}
