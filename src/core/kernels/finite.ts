/**
 * The screening count of the NaN/Inf guard (merge/nonFiniteGuard.ts): every input element passes through it once,
 * so it runs in the WASM SIMD kernel (exponent bits all ones ⇔ NaN or ±Inf), ~10× the JS loop; the guard runs its
 * JS count (which tells NaN from +Inf and −Inf) only on the rare chunk where this is not 0.
 */
import { wasmKernels } from './wasm';

/** Below this many elements the copy into WASM memory costs more than the JS loop. */
const WASM_MIN_ELEMENTS = 1024;

/** #{e : values[e] is NaN or ±Inf}. */
export function nonFiniteTotal(values: Float32Array): number {
  const wasm = values.length >= WASM_MIN_ELEMENTS ? wasmKernels() : null;
  return wasm ? wasm.countNonFinite(values) : nonFiniteTotalJs(values);
}

/** Reference for nonFiniteTotal: x − x is 0 for every finite x, NaN otherwise. */
export function nonFiniteTotalJs(values: Float32Array): number {
  let count = 0;
  for (let e = 0; e < values.length; e++) {
    const x = values[e]!;
    if (x - x !== 0) count++;
  }
  return count;
}
