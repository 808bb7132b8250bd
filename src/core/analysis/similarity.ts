/**
 * Cosine similarity of task vectors, computed from their K×K Gram matrix G = T Tᵀ (row-major, float64), and the
 * Gram matrix of the disentangled task vectors τ_i − δ with δ = Σ_k a_k τ_k (awd.md).
 */

/** cos_ij = G_ij / sqrt(G_ii G_jj); 0 when either vector has zero norm; diagonal 1 where the norm is > 0. */
export function cosineFromGram(gram: ArrayLike<number>, K: number): Float64Array {
  const norms = new Float64Array(K);
  for (let i = 0; i < K; i++) norms[i] = Math.sqrt(Math.max(0, gram[i * K + i] ?? 0));
  const cos = new Float64Array(K * K);
  for (let i = 0; i < K; i++) {
    const ni = norms[i] ?? 0;
    for (let j = 0; j < K; j++) {
      const nj = norms[j] ?? 0;
      if (ni > 0 && nj > 0) {
        // Clamp: rounding in the Gram can push a cosine a hair outside [−1, 1].
        const c = i === j ? 1 : (gram[i * K + j] ?? 0) / (ni * nj);
        cos[i * K + j] = Math.min(1, Math.max(-1, c));
      }
    }
  }
  return cos;
}

/** Gram of the rows τ_i − Σ_k a_k τ_k: M G Mᵀ with M = I − 1aᵀ, i.e. G_ij − (Ga)_i − (Ga)_j + aᵀGa. */
export function disentangledGram(gram: ArrayLike<number>, a: ArrayLike<number>, K: number): Float64Array {
  const ga = new Float64Array(K);
  for (let i = 0; i < K; i++) {
    let s = 0;
    for (let k = 0; k < K; k++) s += (gram[i * K + k] ?? 0) * (a[k] ?? 0);
    ga[i] = s;
  }
  let aga = 0;
  for (let k = 0; k < K; k++) aga += (a[k] ?? 0) * (ga[k] ?? 0);
  const out = new Float64Array(K * K);
  for (let i = 0; i < K; i++) {
    for (let j = 0; j < K; j++) {
      out[i * K + j] = (gram[i * K + j] ?? 0) - (ga[i] ?? 0) - (ga[j] ?? 0) + aga;
    }
  }
  return out;
}

/** Mean of |cos_ij| over the pairs i < j (the same as over all ordered pairs i ≠ j); 0 when K < 2. */
export function meanAbsOffDiagonal(cos: ArrayLike<number>, K: number): number {
  if (K < 2) return 0;
  let s = 0;
  for (let i = 0; i < K; i++) for (let j = i + 1; j < K; j++) s += Math.abs(cos[i * K + j] ?? 0);
  return s / ((K * (K - 1)) / 2);
}
