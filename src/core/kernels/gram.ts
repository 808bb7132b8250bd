/**
 * Gram matrices of task vectors, accumulated chunk by chunk in float64: the whole cost of AWD and of the
 * similarity analysis (K(K+1)/2 multiply-adds per element). gramJs.ts is the float64 reference. The WASM SIMD
 * kernels are used when available: for chunks of at least FAST_FROM elements the fast one (float32 products,
 * f32x4 partial sums over ≤ 128 elements flushed into float64), below that the exact one (float64 products and
 * sums). The fast kernel's error is ~1e-9 of sqrt(G_ii·G_jj) and shrinks relative to G_ij like 1/sqrt(n): from
 * FAST_FROM elements on, entries with |cos| ≥ 0.01 are within 1e-7 relative (test/unit/kernels/gram.test.ts).
 */
import { accumulateGramJs, accumulateGramOfDifferencesJs, checkGramShapes } from './gramJs';
import { wasmKernels } from './wasm';

/** Below this many elements per row the copy into WASM memory costs more than the JS loop. */
const WASM_MIN_ELEMENTS = 1024;
/** From this many elements per row on, the float32-product kernel meets 1e-7 relative for |cos| ≥ 0.01. */
const FAST_FROM = 524288;

/** gram[i*K+j] += Σ_e rows[i][e]·rows[j][e] for all i, j (full symmetric K×K, row-major, K = rows.length). */
export function accumulateGram(rows: readonly Float32Array[], gram: Float64Array): void {
  const n = checkGramShapes(rows, gram, 'accumulateGram');
  const wasm = n >= WASM_MIN_ELEMENTS ? wasmKernels() : null;
  if (wasm) wasm.gram(rows, undefined, gram, n < FAST_FROM);
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
  if (wasm) wasm.gram(models, base, gram, n < FAST_FROM);
  else accumulateGramOfDifferencesJs(models, base, gram);
}
