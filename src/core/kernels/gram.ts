/**
 * Gram matrices of task vectors, accumulated chunk by chunk in float64: the whole cost of AWD and of the
 * similarity analysis (K(K+1)/2 multiply-adds per element). gramJs.ts is the float64 reference. The WASM SIMD
 * kernels are used when available: for chunks of at least FAST_FROM elements the fast one (float32 products,
 * f32x4 partial sums over ≤ 128 elements flushed into float64), below that the exact one (float64 products and
 * sums). The fast kernel's error is ~1e-9 of sqrt(G_ii·G_jj) and shrinks relative to G_ij like 1/sqrt(n): from
 * FAST_FROM elements on, entries with |cos| ≥ 0.01 are within 1e-7 relative (test/unit/kernels/gram.test.ts).
 */
import { accumulateGramJs, accumulateGramOfDifferencesJs, checkGramShapes } from './gramJs';
import { foldGramLanes, wasmKernels } from './wasm';

/** Below this many elements per row the copy into WASM memory costs more than the JS loop. */
const WASM_MIN_ELEMENTS = 1024;
/** From this many elements per row on, the float32-product kernel meets 1e-7 relative for |cos| ≥ 0.01. */
export const FAST_FROM = 524288;

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

/** Elements per float32 partial-sum segment of the fast kernel (assembly/kernels.ts FLUSH). */
const SEGMENT = 128;

/**
 * The Gram matrix of one tensor's task vectors accumulated over pieces of any length, in element order, with
 * the same bits whatever the pieces: the sums run in blocks of `blockElements` aligned to the element index,
 * each block's lane accumulators (kernels/wasm.ts gramLanes) continued across pieces and folded into the float64
 * Gram when the block is complete, in segments of 128 elements aligned to the block (a piece's unaligned end
 * waits in a small staging copy for the next piece). A tensor of at least FAST_FROM elements takes the fast
 * kernel, a smaller one the exact kernel (the fast kernel's error relative to an entry shrinks with the length
 * summed over) — decided by the tensor, never by a piece.
 */
export class BlockedGram {
  readonly gram: Float64Array;
  private readonly lanes: Float64Array;
  private readonly stageModels: Float32Array[];
  private readonly stageBase = new Float32Array(SEGMENT);
  private staged = 0;
  private done = 0;

  constructor(
    private readonly K: number,
    private readonly elements: number,
    private readonly blockElements: number,
  ) {
    if (blockElements % SEGMENT !== 0) throw new RangeError(`BlockedGram: blocks of ${blockElements} are not whole segments of ${SEGMENT}`);
    this.gram = new Float64Array(K * K);
    this.lanes = new Float64Array(2 * K * K);
    this.stageModels = Array.from({ length: K }, () => new Float32Array(SEGMENT));
  }

  /**
   * Adds a whole block summed elsewhere (kernels/wasm.ts gramLanes from zeroed lanes, by the rules above: the
   * next block in order, fast kernel iff the tensor has FAST_FROM elements), folding its lanes as add() would.
   */
  addBlockLanes(lanes: Float64Array, length: number): void {
    const blockEnd = Math.min(this.elements, this.done + this.blockElements);
    if (this.staged !== 0 || this.done % this.blockElements !== 0 || this.done + length !== blockEnd) {
      throw new RangeError(`BlockedGram: a block of ${length} elements at ${this.done} is not the next whole block`);
    }
    foldGramLanes(lanes, this.K, this.gram);
    this.done = blockEnd;
  }

  /** True when the tensor takes the exact (float64 products) kernel. */
  get exact(): boolean {
    return this.elements < FAST_FROM;
  }

  /** Adds τ_i = fround(models[i] − base) for the next piece of the tensor (pieces in order, no gaps). */
  add(models: readonly Float32Array[], base: Float32Array): void {
    const n = checkGramShapes(models, this.gram, 'BlockedGram');
    if (base.length !== n) throw new RangeError(`BlockedGram: base has ${base.length} elements, models ${n}`);
    if (this.done + n > this.elements) throw new RangeError(`BlockedGram: ${this.done + n} elements added to a tensor of ${this.elements}`);
    for (let b = 0; b < n; ) {
      const at = this.done + b;
      const blockStart = at - (at % this.blockElements);
      const blockEnd = Math.min(this.elements, blockStart + this.blockElements);
      const exact = this.exact;
      let p = b;
      const end = Math.min(n, b + blockEnd - at);
      if (this.staged > 0) {
        // Complete the staged segment first.
        const take = Math.min(SEGMENT - this.staged, end - p);
        for (let i = 0; i < this.K; i++) this.stageModels[i]!.set(models[i]!.subarray(p, p + take), this.staged);
        this.stageBase.set(base.subarray(p, p + take), this.staged);
        this.staged += take;
        p += take;
        if (this.staged === SEGMENT || this.done + p === blockEnd) {
          this.accumulate(this.stageModels.map((r) => r.subarray(0, this.staged)), this.stageBase.subarray(0, this.staged), exact);
          this.staged = 0;
        }
      }
      if (this.staged === 0 && p < end) {
        // Whole segments in place; a block's last segment may be short.
        const whole = this.done + end === blockEnd ? end - p : end - p - ((end - p) % SEGMENT);
        if (whole > 0) this.accumulate(models.map((m) => m.subarray(p, p + whole)), base.subarray(p, p + whole), exact);
        p += whole;
        if (p < end) {
          for (let i = 0; i < this.K; i++) this.stageModels[i]!.set(models[i]!.subarray(p, end));
          this.stageBase.set(base.subarray(p, end));
          this.staged = end - p;
        }
      }
      if (this.done + end === blockEnd) {
        foldGramLanes(this.lanes, this.K, this.gram);
        this.lanes.fill(0);
      }
      b = end;
    }
    this.done += n;
  }

  /**
   * False once a NaN or ±Inf has entered the sums: a non-finite τ element makes its own diagonal entry Inf or
   * NaN (a sum of squares cannot cancel it), so a caller may screen its inputs only when this turns false.
   */
  finite(): boolean {
    for (let i = 0; i < this.K; i++) {
      const d = i * this.K + i;
      if (!Number.isFinite(this.gram[d]!) || !Number.isFinite(this.lanes[2 * d]!) || !Number.isFinite(this.lanes[2 * d + 1]!)) return false;
    }
    return true;
  }

  private accumulate(models: readonly Float32Array[], base: Float32Array, exact: boolean): void {
    const wasm = wasmKernels();
    if (wasm) {
      wasm.gramLanes(models, base, this.lanes, exact);
    } else {
      // Without WebAssembly SIMD: float64 sums, kept in lane 0 of each entry so the fold stays the same.
      const g = new Float64Array(this.K * this.K);
      accumulateGramOfDifferencesJs(models, base, g);
      for (let i = 0; i < this.K; i++) for (let j = i; j < this.K; j++) this.lanes[2 * (i * this.K + j)]! += g[i * this.K + j]!;
    }
  }
}
