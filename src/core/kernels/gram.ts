/**
 * Gram matrices of task vectors, accumulated chunk by chunk in float64: the whole cost of AWD and of the
 * similarity analysis (K(K+1)/2 multiply-adds per element). The WASM SIMD kernel (float32 products, f32x4
 * partial sums over ≤ 256 elements flushed into float64) is used when available and the chunk is big enough to
 * repay copying it into WASM memory; gramJs.ts is the float64 reference. Both match float64 to ~1e-9 of
 * sqrt(G_ii·G_jj) (cosines to ~1e-9); entries with |cos| ≥ 0.01 to 1e-7 relative (test/unit/kernels/gram.test.ts).
 */
import { accumulateGramJs, accumulateGramOfDifferencesJs, checkGramShapes } from './gramJs';
import { wasmKernels } from './wasm';

/** Below this many elements per row the copy into WASM memory costs more than the JS loop. */
const WASM_MIN_ELEMENTS = 1024;

/** gram[i*K+j] += Σ_e rows[i][e]·rows[j][e] for all i, j (full symmetric K×K, row-major, K = rows.length). */
export function accumulateGram(rows: readonly Float32Array[], gram: Float64Array): void {
  const n = checkGramShapes(rows, gram, 'accumulateGram');
  const wasm = n >= WASM_MIN_ELEMENTS ? wasmKernels() : null;
  if (wasm) wasm.gram(rows, undefined, gram);
  else accumulateGramJs(rows, gram);
}

/** The same for τ_i = fround(models[i] − base), without the caller materialising τ. */
export function accumulateGramOfDifferences(
  models: readonly Float32Array[],
  base: Float32Array,
  gram: Float64Array,
): void {
  const n = checkGramShapes(models, gram, 'accumulateGramOfDifferences');
  if (base.length !== n) throw new RangeError(`accumulateGramOfDifferences: base has ${base.length} elements, models ${n}`);
  const wasm = n >= WASM_MIN_ELEMENTS ? wasmKernels() : null;
  if (wasm) wasm.gram(models, base, gram);
  else accumulateGramOfDifferencesJs(models, base, gram);
}
