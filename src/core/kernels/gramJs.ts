/**
 * Reference Gram kernels in plain JS: every product of two float32 values is exact in float64 and every sum is
 * a float64 sum, so these are the float64 reference the fast kernels are tested against.
 */

/** Elements per block: the K rows of one block stay in L1/L2 cache while all K(K+1)/2 pairs are summed. */
const BLOCK = 2048;

export function checkGramShapes(rows: readonly Float32Array[], gram: Float64Array, what: string): number {
  const K = rows.length;
  if (gram.length !== K * K) throw new RangeError(`${what}: gram has ${gram.length} entries, expected ${K}×${K}`);
  const n = rows[0]?.length ?? 0;
  for (const r of rows) {
    if (r.length !== n) throw new RangeError(`${what}: rows have different lengths (${n} and ${r.length})`);
  }
  return n;
}

/**
 * Adds the dot products of the block [start, end) of every pair i ≤ j to the K×K accumulator acc. Four pairs
 * share one pass (row i read once for rows j..j+3), which keeps four independent sums in flight.
 */
function addBlockDots(rows: readonly Float32Array[], start: number, end: number, acc: Float64Array): void {
  const K = rows.length;
  for (let i = 0; i < K; i++) {
    const ri = rows[i] as Float32Array;
    let j = i;
    for (; j + 4 <= K; j += 4) {
      const r0 = rows[j] as Float32Array;
      const r1 = rows[j + 1] as Float32Array;
      const r2 = rows[j + 2] as Float32Array;
      const r3 = rows[j + 3] as Float32Array;
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (let e = start; e < end; e++) {
        const x = ri[e] as number;
        s0 += x * (r0[e] as number);
        s1 += x * (r1[e] as number);
        s2 += x * (r2[e] as number);
        s3 += x * (r3[e] as number);
      }
      acc[i * K + j] = (acc[i * K + j] as number) + s0;
      acc[i * K + j + 1] = (acc[i * K + j + 1] as number) + s1;
      acc[i * K + j + 2] = (acc[i * K + j + 2] as number) + s2;
      acc[i * K + j + 3] = (acc[i * K + j + 3] as number) + s3;
    }
    for (; j < K; j++) {
      const rj = rows[j] as Float32Array;
      let s = 0;
      for (let e = start; e < end; e++) s += (ri[e] as number) * (rj[e] as number);
      acc[i * K + j] = (acc[i * K + j] as number) + s;
    }
  }
}

/** Mirrors the upper triangle of acc into the full symmetric gram: gram[i*K+j] += acc[min,max]. */
function addSymmetric(acc: Float64Array, K: number, gram: Float64Array): void {
  for (let i = 0; i < K; i++) {
    for (let j = i; j < K; j++) {
      const v = acc[i * K + j] as number;
      gram[i * K + j] = (gram[i * K + j] as number) + v;
      if (j !== i) gram[j * K + i] = (gram[j * K + i] as number) + v;
    }
  }
}

/** gram[i*K+j] += Σ_e rows[i][e]·rows[j][e] for all i, j (float64 sums). */
export function accumulateGramJs(rows: readonly Float32Array[], gram: Float64Array): void {
  const n = checkGramShapes(rows, gram, 'accumulateGram');
  const K = rows.length;
  const acc = new Float64Array(K * K);
  for (let start = 0; start < n; start += BLOCK) addBlockDots(rows, start, Math.min(n, start + BLOCK), acc);
  addSymmetric(acc, K, gram);
}

/** gram[i*K+j] += Σ_e τ_i[e]·τ_j[e] with τ_i = fround(models[i] − base) (float64 sums), τ built one block at a time. */
export function accumulateGramOfDifferencesJs(
  models: readonly Float32Array[],
  base: Float32Array,
  gram: Float64Array,
): void {
  const n = checkGramShapes(models, gram, 'accumulateGramOfDifferences');
  if (base.length !== n) throw new RangeError(`accumulateGramOfDifferences: base has ${base.length} elements, models ${n}`);
  const K = models.length;
  const acc = new Float64Array(K * K);
  const tau = Array.from({ length: K }, () => new Float32Array(BLOCK));
  for (let start = 0; start < n; start += BLOCK) {
    const len = Math.min(BLOCK, n - start);
    for (let i = 0; i < K; i++) {
      const m = models[i] as Float32Array;
      const t = tau[i] as Float32Array;
      for (let e = 0; e < len; e++) t[e] = (m[start + e] as number) - (base[start + e] as number);
    }
    addBlockDots(tau, 0, len, acc);
  }
  addSymmetric(acc, K, gram);
}
