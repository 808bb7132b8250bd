/**
 * Loads the WASM SIMD kernels (generated/kernelsWasm.ts, built from assembly/kernels.ts) and runs them on
 * chunks copied into a bounded scratch area of the module's memory. The copy is the price of plain
 * Float32Array inputs: one memcpy of every input element (and of every output element) per call, ~13 GB/s per
 * CPU-second in bench/kernels.ts, i.e. about a third of the Gram kernel's time for K = 9. Scratch: (K + 1) rows
 * × BLOCK floats + the K×K accumulators + K×FLUSH doubles, about 340 KB for K = 9, whatever the chunk length.
 */
import { KERNELS_WASM_BASE64 } from './generated/kernelsWasm';

/** The raw exports of assembly/kernels.ts (pointers are byte offsets into `memory`). */
interface KernelExports {
  memory: WebAssembly.Memory;
  heapBase(): number;
  gramUpper(rows: number, K: number, n: number, stride: number, gram: number): void;
  gramUpperF64(rows: number, K: number, n: number, stride: number, gram: number, wide: number): void;
  gramOfDifferencesUpperF64(models: number, K: number, n: number, stride: number, base: number, gram: number, wide: number): void;
  gramOfDifferencesUpper(models: number, K: number, n: number, stride: number, base: number, gram: number, tau: number): void;
  weightedSumOfDifferences(base: number, models: number, K: number, n: number, stride: number, coeffs: number, out: number, plusBase: number): void;
  trimBelow(row: number, n: number, t: number): void;
  tiesMerge(rows: number, K: number, n: number, stride: number, weights: number, normalize: number, out: number): void;
  dareRescale(row: number, n: number, start: bigint, k0: number, k1: number, k2: number, keepBelow: number, keepAll: number, density: number): void;
  countNonFinite(row: number, n: number): number;
  statisticsBlock(x: number, n: number, state: number): void;
  subtractFromRows(rows: number, K: number, n: number, stride: number, sub: number): void;
  magnitudeHistogram(row: number, n: number, bucket: number, hist: number): void;
}

/** Elements per row copied in per kernel call: rows of 32 KB keep a K = 9 block inside L2. */
const BLOCK = 8192;
/** The kernels' float32 flush interval (assembly/kernels.ts FLUSH): size of the τ scratch per row. */
const FLUSH = 128;
const PAGE = 65536;

function align16(x: number): number {
  return (x + 15) & ~15;
}

/** One instance per thread (each worker has its own); created on first use. */
class WasmKernels {
  private readonly k: KernelExports;
  private readonly base: number;

  constructor(k: KernelExports) {
    this.k = k;
    this.base = align16(k.heapBase());
  }

  /** Makes sure `bytes` of scratch exist after the heap base; returns the scratch start. */
  private scratch(bytes: number): number {
    const need = this.base + bytes;
    const have = this.k.memory.buffer.byteLength;
    if (need > have) this.k.memory.grow(Math.ceil((need - have) / PAGE));
    return this.base;
  }

  /** Bytes of WASM linear memory in use (code data + scratch); stays bounded whatever the chunk length. */
  memoryBytes(): number {
    return this.k.memory.buffer.byteLength;
  }

  private f32(ptr: number, len: number): Float32Array {
    return new Float32Array(this.k.memory.buffer, ptr, len);
  }

  private f64(ptr: number, len: number): Float64Array {
    return new Float64Array(this.k.memory.buffer, ptr, len);
  }

  /**
   * gram += rows·rowsᵀ (full symmetric), base = undefined; or the same for τ_i = fround(rows[i] − base).
   * exact: float64 products and sums (no float32 rounding beyond τ's own), about half the speed of float32
   * partial sums.
   */
  gram(rows: readonly Float32Array[], base: Float32Array | undefined, gram: Float64Array, exact = false): void {
    const K = rows.length;
    const n = rows[0]?.length ?? 0;
    // Two float64 lanes per entry (assembly/kernels.ts flushTo), summed below.
    const gramBytes = K * K * 16;
    const tauBytes = align16(K * FLUSH * 8);
    const stride = BLOCK * 4;
    const start = this.scratch(gramBytes + tauBytes + (K + 1) * stride);
    const gramPtr = start;
    const tauPtr = gramPtr + gramBytes;
    const rowsPtr = tauPtr + tauBytes;
    const basePtr = rowsPtr + K * stride;
    this.f64(gramPtr, 2 * K * K).fill(0);
    for (let s = 0; s < n; s += BLOCK) {
      const len = Math.min(BLOCK, n - s);
      for (let i = 0; i < K; i++) this.f32(rowsPtr + i * stride, len).set((rows[i] as Float32Array).subarray(s, s + len));
      if (base === undefined) {
        if (exact) this.k.gramUpperF64(rowsPtr, K, len, stride, gramPtr, tauPtr);
        else this.k.gramUpper(rowsPtr, K, len, stride, gramPtr);
      } else {
        this.f32(basePtr, len).set(base.subarray(s, s + len));
        if (exact) this.k.gramOfDifferencesUpperF64(rowsPtr, K, len, stride, basePtr, gramPtr, tauPtr);
        else this.k.gramOfDifferencesUpper(rowsPtr, K, len, stride, basePtr, gramPtr, tauPtr);
      }
    }
    const acc = this.f64(gramPtr, 2 * K * K);
    for (let i = 0; i < K; i++) {
      for (let j = i; j < K; j++) {
        const v = (acc[2 * (i * K + j)] as number) + (acc[2 * (i * K + j) + 1] as number);
        gram[i * K + j] = (gram[i * K + j] as number) + v;
        if (j !== i) gram[j * K + i] = (gram[j * K + i] as number) + v;
      }
    }
  }

  /**
   * out = Σ_i coeffs[i]·fround(models[i] − base), bit-identical to weightedSumOfDifferencesJs; with plusBase,
   * out = fround(base + that), bit-identical to baseWithWeightedSumOfDifferencesJs.
   */
  weightedSum(base: Float32Array, models: readonly Float32Array[], coeffs: ArrayLike<number>, out: Float32Array, plusBase = false): void {
    const K = models.length;
    const n = base.length;
    const coeffBytes = align16(K * 8);
    const stride = BLOCK * 4;
    const start = this.scratch(coeffBytes + (K + 2) * stride);
    const coeffPtr = start;
    const basePtr = coeffPtr + coeffBytes;
    const outPtr = basePtr + stride;
    const modelsPtr = outPtr + stride;
    const c = this.f64(coeffPtr, K);
    for (let i = 0; i < K; i++) c[i] = coeffs[i] as number;
    for (let s = 0; s < n; s += BLOCK) {
      const len = Math.min(BLOCK, n - s);
      this.f32(basePtr, len).set(base.subarray(s, s + len));
      for (let i = 0; i < K; i++) this.f32(modelsPtr + i * stride, len).set((models[i] as Float32Array).subarray(s, s + len));
      this.k.weightedSumOfDifferences(basePtr, modelsPtr, K, len, stride, coeffPtr, outPtr, plusBase ? 1 : 0);
      out.set(this.f32(outPtr, len), s);
    }
  }

  /** TIES elect + disjoint merge of trimmed rows, bit-identical to tiesMergeChunk's JS loop. */
  tiesMerge(rows: readonly Float32Array[], weights: ArrayLike<number>, normalize: boolean, out: Float32Array): void {
    const K = rows.length;
    const n = out.length;
    const weightBytes = align16(K * 8);
    const stride = BLOCK * 4;
    const start = this.scratch(weightBytes + (K + 1) * stride);
    const weightPtr = start;
    const outPtr = weightPtr + weightBytes;
    const rowsPtr = outPtr + stride;
    const w = this.f64(weightPtr, K);
    for (let i = 0; i < K; i++) w[i] = weights[i] as number;
    for (let s = 0; s < n; s += BLOCK) {
      const len = Math.min(BLOCK, n - s);
      for (let i = 0; i < K; i++) this.f32(rowsPtr + i * stride, len).set((rows[i] as Float32Array).subarray(s, s + len));
      this.k.tiesMerge(rowsPtr, K, len, stride, weightPtr, normalize ? 1 : 0, outPtr);
      out.set(this.f32(outPtr, len), s);
    }
  }

  /** row[e] = 0 where |row[e]| < t32, t32 a float32 (for float32 data the same as comparing with t ≤ t32). */
  trimBelow(row: Float32Array, t32: number): void {
    const ptr = this.scratch(BLOCK * 4);
    for (let s = 0; s < row.length; s += BLOCK) {
      const len = Math.min(BLOCK, row.length - s);
      this.f32(ptr, len).set(row.subarray(s, s + len));
      this.k.trimBelow(ptr, len, t32);
      row.set(this.f32(ptr, len), s);
    }
  }

  /** How many entries of values are NaN or ±Inf. */
  countNonFinite(values: Float32Array): number {
    const ptr = this.scratch(BLOCK * 4);
    let count = 0;
    for (let s = 0; s < values.length; s += BLOCK) {
      const len = Math.min(BLOCK, values.length - s);
      this.f32(ptr, len).set(values.subarray(s, s + len));
      count += this.k.countNonFinite(ptr, len);
    }
    return count;
  }

  /**
   * Continues the running statistics in state (Σx, Σx², min, max of the finite x; counts of finite, NaN, ±Inf)
   * over x in element order: the same bits as the JS loop of merge/tensorStats.ts.
   */
  statisticsBlock(x: Float32Array, state: Float64Array): void {
    const statePtr = this.scratch(64 + BLOCK * 4);
    const ptr = statePtr + 64;
    this.f64(statePtr, 7).set(state);
    for (let s = 0; s < x.length; s += BLOCK) {
      const len = Math.min(BLOCK, x.length - s);
      this.f32(ptr, len).set(x.subarray(s, s + len));
      this.k.statisticsBlock(ptr, len, statePtr);
    }
    state.set(this.f64(statePtr, 7));
  }

  /** rows[i][e] = fround(rows[i][e] − sub[e]) for every row, bit-identical to subtractInto. */
  subtractFromRows(rows: readonly Float32Array[], sub: Float32Array): void {
    const K = rows.length;
    const n = sub.length;
    const stride = BLOCK * 4;
    const subPtr = this.scratch((K + 1) * stride);
    const rowsPtr = subPtr + stride;
    for (let s = 0; s < n; s += BLOCK) {
      const len = Math.min(BLOCK, n - s);
      this.f32(subPtr, len).set(sub.subarray(s, s + len));
      for (let i = 0; i < K; i++) this.f32(rowsPtr + i * stride, len).set((rows[i] as Float32Array).subarray(s, s + len));
      this.k.subtractFromRows(rowsPtr, K, len, stride, subPtr);
      for (let i = 0; i < K; i++) (rows[i] as Float32Array).set(this.f32(rowsPtr + i * stride, len), s);
    }
  }

  /**
   * counts[b] += #{e : high 16 bits of |row[e]|'s bit pattern = b} (bucket < 0), or, for the second pass,
   * #{e : high 16 bits = bucket, low 16 bits = b}: merge/magnitude.ts's histograms, counted in uint32 in WASM
   * memory for this call (row.length < 2^32) and added to the float64 counts at the end.
   */
  magnitudeHistogram(row: Float32Array, bucket: number, counts: Float64Array): void {
    const HIST = 65536;
    const histPtr = this.scratch(HIST * 4 + BLOCK * 4);
    const ptr = histPtr + HIST * 4;
    const hist = new Int32Array(this.k.memory.buffer, histPtr, HIST);
    hist.fill(0);
    for (let s = 0; s < row.length; s += BLOCK) {
      const len = Math.min(BLOCK, row.length - s);
      this.f32(ptr, len).set(row.subarray(s, s + len));
      this.k.magnitudeHistogram(ptr, len, bucket, histPtr);
    }
    // Counts stay below 2^31 (a chunk is far shorter), so the int32 view reads them as they are.
    for (let b = 0; b < HIST; b++) {
      const c = hist[b] as number;
      if (c !== 0) counts[b] = (counts[b] as number) + c;
    }
  }

  /**
   * DARE in place on row (elements startElement…), with the round keys of dare.ts; keep when hash < keepBelow
   * (keepBelow = 2^32: keep all), bit-identical to dare.ts's JS loop.
   */
  dareRescale(row: Float32Array, startElement: number, keys: readonly [number, number, number], keepBelow: number, density: number): void {
    const ptr = this.scratch(BLOCK * 4);
    const keepAll = keepBelow >= 4294967296 ? 1 : 0;
    for (let s = 0; s < row.length; s += BLOCK) {
      const len = Math.min(BLOCK, row.length - s);
      const view = this.f32(ptr, len);
      view.set(row.subarray(s, s + len));
      this.k.dareRescale(ptr, len, BigInt(startElement + s), keys[0], keys[1], keys[2], keepAll ? 0 : keepBelow, keepAll, density);
      row.set(this.f32(ptr, len), s);
    }
  }
}

let loaded: WasmKernels | null | undefined;

/** The WASM kernels, or null where WebAssembly SIMD is unavailable (the JS kernels are used then). */
export function wasmKernels(): WasmKernels | null {
  if (loaded === undefined) {
    try {
      const bytes = Buffer.from(KERNELS_WASM_BASE64, 'base64');
      const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), {});
      loaded = new WasmKernels(instance.exports as unknown as KernelExports);
    } catch {
      loaded = null;
    }
  }
  return loaded;
}

export type { WasmKernels };
