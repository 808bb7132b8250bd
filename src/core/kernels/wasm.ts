/**
 * Loads the WASM SIMD kernels (generated/kernelsWasm.ts, built from assembly/kernels.ts) and runs them.
 *
 * Two ways in, the same bits either way:
 *  - zero-copy: arrays that live in the module's own memory (allocated from an arena, see openArena — the merge
 *    passes' chunk buffers do) are handed to the kernels as pointers, whole chunk at once;
 *  - copy: any other Float32Array is copied into a bounded scratch area in blocks of BLOCK elements and the result
 *    copied out (~13 GB/s per CPU-second in bench/kernels.ts, about a third of the Gram kernel's time for K = 9).
 *    Scratch: (K + 1) rows × BLOCK floats + the K×K accumulators + K×FLUSH doubles, ~340 KB for K = 9.
 * Every kernel walks its elements in the same order and flushes its float32 partial sums at the same element
 * indices on both paths (BLOCK is a multiple of FLUSH), so the choice never changes a result.
 *
 * Growing WebAssembly memory detaches every view of it, so memory grows only when no arena is open: an arena
 * reserves its scratch below itself when it opens, and the copy path never grows memory while one is open.
 */
import { KERNELS_WASM_BASE64 } from './generated/kernelsWasm';

/** The raw exports of assembly/kernels.ts and the memory they work in (pointers are byte offsets into it). */
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
  statisticsLanes(x: number, n: number, state: number): void;
  subtractFromRows(rows: number, K: number, n: number, stride: number, sub: number): void;
  magnitudeHistogram(row: number, n: number, bucket: number, hist: number): void;
  addScaled(out: number, base: number, m: number, n: number, scale: number): void;
  bracketCount(row: number, n: number, lo: number, hi: number, cand: number, cap: number, result: number, dense: number): void;
  decodeBf16(src: number, dst: number, n: number): void;
  encodeBf16(src: number, dst: number, n: number): void;
  magnitudeHistogram64(row: number, n: number, bucket: number, hist: number): void;
  tiesMergeOfDifferences(models: number, K: number, n: number, stride: number, base: number, delta: number, thresholds: number, weights: number, normalize: number, out: number): void;
  awdSolve(gram: number, K: number, alpha: number, learningRate: number, iterations: number, squared: number, a: number, loss: number, work: number): void;
}

/** Elements per row copied in per kernel call: rows of 32 KB keep a K = 9 block inside L2. */
const BLOCK = 8192;
/** The kernels' float32 flush interval (assembly/kernels.ts FLUSH): size of the τ scratch per row. */
const FLUSH = 128;
const PAGE = 65536;
/** Bytes of statisticsLanes' state (19 float64, padded). */
export const STATE_BYTES = 160;
/** Entries of the magnitude histogram (magnitudeHistogram). */
const HIST = 65536;
/** WebAssembly (wasm32) memory can hold at most 65536 pages. */
const MAX_MEMORY_BYTES = 65536 * PAGE;
/** Scratch reserved below an open arena, at least (enough for the copy path of every kernel up to K ≈ 230). */
const MIN_ARENA_RESERVE = 8 << 20;

/** Where a job's float32 buffers come from. */
export interface FloatAllocator {
  /** A zero-filled Float32Array of n elements. */
  floats(n: number): Float32Array;
  /** `count` arrays of n elements each (in an arena: back to back at one stride, one pointer for the kernels). */
  rows(count: number, n: number): Float32Array[];
  /** The shared WASM memory the arrays live in (arenas only). */
  readonly memory?: WebAssembly.Memory;
}

/** Ordinary JS arrays (the kernels copy them into WASM scratch). */
export const plainFloats: FloatAllocator = {
  floats: (n) => new Float32Array(n),
  rows: (count, n) => Array.from({ length: count }, () => new Float32Array(n)),
};

/** Float32 arrays inside WASM memory, handed out for one job; release() ends their use (see openArena). */
export interface WasmArena extends FloatAllocator {
  /**
   * n floats that are neither zeroed nor counted as used: for a large area of which a job may write little (TIES's
   * candidate lists). The caller must not read what it has not written, and reports with `used(bytes)` how far from
   * the start it wrote, so that a later arena zeroes that much before handing it out again.
   */
  lazyFloats(n: number): { floats: Float32Array; used(bytes: number): void };
  /** Bytes handed out so far. */
  readonly bytes: number;
  /** Ends the arena; its arrays must not be used after this. */
  release(): void;
}

function align64(x: number): number {
  return Math.ceil(x / 64) * 64;
}

function align16(x: number): number {
  return (x + 15) & ~15;
}

/** One instance per thread (each worker has its own); created on first use. */
class WasmKernels {
  private readonly k: KernelExports;
  private readonly base: number;
  /** Scratch bytes reserved below the open arena (0: no arena open, memory may grow). */
  private reserve = 0;
  /** End of the memory any arena has handed out: above it, memory is as grown, all zero. */
  private touched = 0;

  constructor(
    k: KernelExports,
    /** The compiled module: a helper thread instantiates it on the same shared memory (merge/helperThread.ts). */
    readonly module: WebAssembly.Module,
  ) {
    this.k = k;
    this.base = align16(k.heapBase());
  }

  /** The shared memory the kernels work in. */
  get memory(): WebAssembly.Memory {
    return this.k.memory;
  }

  /** The raw kernel exports, for code that passes pointers into the shared memory itself (helperThread.ts). */
  get exports(): Readonly<Record<string, unknown>> {
    return this.k as unknown as Record<string, unknown>;
  }

  /** Makes sure `bytes` of scratch exist after the heap base; returns the scratch start. */
  private scratch(bytes: number): number {
    if (this.reserve > 0) {
      // Growing now would detach the open arena's arrays under their users.
      if (bytes > this.reserve) throw new Error(`WASM kernels: ${bytes} bytes of scratch needed, ${this.reserve} reserved by the open arena`);
      return this.base;
    }
    this.ensureMemory(this.base + bytes);
    this.touched = Math.max(this.touched, this.base + bytes);
    return this.base;
  }

  private ensureMemory(bytes: number): void {
    const have = this.k.memory.buffer.byteLength;
    if (bytes > have) this.k.memory.grow(Math.ceil((bytes - have) / PAGE));
  }

  /**
   * Opens an arena of `bytes` (plus alignment) for one job whose kernels see at most `maxRows` rows; null when
   * one is already open in this thread or the memory cannot grow that far (callers then use plain arrays and
   * the copy path). Memory grows here, once; WASM memory never shrinks, so the next arena reuses it.
   */
  openArena(bytes: number, maxRows: number): WasmArena | null {
    if (this.reserve > 0) return null;
    const reserve = align64(Math.max(MIN_ARENA_RESERVE, (maxRows + 2) * BLOCK * 4 + maxRows * maxRows * 16 + align16(maxRows * FLUSH * 8) + HIST * 4 + BLOCK * 4 + 4096));
    const start = align64(this.base + reserve);
    const limit = start + bytes + 64 * 64;
    if (limit > MAX_MEMORY_BYTES) return null;
    try {
      this.ensureMemory(limit);
    } catch {
      return null;
    }
    this.reserve = reserve;
    let next = start;
    let open = true;
    const memory = this.k.memory;
    const dirtyEnd = this.touched;
    const floats = (n: number): Float32Array => {
      if (!open) throw new Error('WASM arena: allocation after release');
      const ptr = next;
      if (ptr + n * 4 > limit) throw new Error(`WASM arena: ${n} floats do not fit the ${bytes} bytes opened`);
      next = align64(ptr + n * 4);
      this.touched = Math.max(this.touched, next);
      const view = new Float32Array(memory.buffer, ptr, n);
      // Only what an earlier arena used needs zeroing: touching fresh pages here would fault them in for nothing
      // (~2.6 ms per MB on this machine kind), the first read fills them anyway.
      view.subarray(0, Math.max(0, Math.min(n, Math.floor((dirtyEnd - ptr) / 4)))).fill(0);
      return view;
    };
    const lazyFloats = (n: number): { floats: Float32Array; used(bytes: number): void } => {
      if (!open) throw new Error('WASM arena: allocation after release');
      const ptr = next;
      if (ptr + n * 4 > limit) throw new Error(`WASM arena: ${n} floats do not fit the ${bytes} bytes opened`);
      next = align64(ptr + n * 4);
      // Not zeroed: what an earlier arena left below `touched` stays counted there, and is zeroed by whichever
      // later floats() hands it out; above `touched` memory is zero, and stays counted as zero until `used`.
      return {
        floats: new Float32Array(memory.buffer, ptr, n),
        used: (written) => {
          this.touched = Math.max(this.touched, ptr + Math.min(written, n * 4));
        },
      };
    };
    return {
      memory,
      floats,
      lazyFloats,
      rows: (count, n) => {
        const all = floats(count * n);
        return Array.from({ length: count }, (_, i) => all.subarray(i * n, (i + 1) * n));
      },
      get bytes() {
        return next - start;
      },
      release: () => {
        if (!open) return;
        open = false;
        this.reserve = 0;
      },
    };
  }

  /** Byte offset of `a` in WASM memory, or -1 when it is an ordinary array. */
  private at(a: Float32Array): number {
    return a.buffer === this.k.memory.buffer ? a.byteOffset : -1;
  }

  /** Pointer and stride of rows that lie in WASM memory at one stride (non-overlapping), else null. */
  private rowsAt(rows: readonly Float32Array[]): { ptr: number; stride: number } | null {
    const first = rows[0];
    if (!first) return null;
    const ptr = this.at(first);
    if (ptr < 0) return null;
    if (rows.length === 1) return { ptr, stride: align16(first.byteLength) };
    const second = this.at(rows[1]!);
    const stride = second - ptr;
    if (second < 0 || stride < first.byteLength) return null;
    for (let i = 2; i < rows.length; i++) if (this.at(rows[i]!) !== ptr + i * stride) return null;
    return { ptr, stride };
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
    const lanes = new Float64Array(2 * K * K);
    this.gramLanes(rows, base, lanes, exact);
    foldGramLanes(lanes, K, gram);
  }

  /**
   * The kernels' own accumulators, continued: lanes (2·K·K float64, two lanes per entry of the upper triangle,
   * see assembly/kernels.ts flushTo) += the products of rows (τ_i = fround(rows[i] − base) when base is given).
   * Successive calls over consecutive pieces whose lengths are multiples of 128 give the same bits as one call
   * over the whole; foldGramLanes turns lanes into Gram entries.
   */
  gramLanes(rows: readonly Float32Array[], base: Float32Array | undefined, lanes: Float64Array, exact: boolean): void {
    const K = rows.length;
    const n = rows[0]?.length ?? 0;
    const gramBytes = K * K * 16;
    const tauBytes = align16(K * FLUSH * 8);
    const stride = BLOCK * 4;
    const start = this.scratch(gramBytes + tauBytes + (K + 1) * stride);
    const gramPtr = start;
    const tauPtr = gramPtr + gramBytes;
    const rowsPtr = tauPtr + tauBytes;
    const basePtr = rowsPtr + K * stride;
    this.f64(gramPtr, 2 * K * K).set(lanes);
    const direct = this.rowsAt(rows);
    const directBase = base === undefined ? 0 : this.at(base);
    if (direct && directBase >= 0) {
      if (base === undefined) {
        if (exact) this.k.gramUpperF64(direct.ptr, K, n, direct.stride, gramPtr, tauPtr);
        else this.k.gramUpper(direct.ptr, K, n, direct.stride, gramPtr);
      } else if (exact) this.k.gramOfDifferencesUpperF64(direct.ptr, K, n, direct.stride, directBase, gramPtr, tauPtr);
      else this.k.gramOfDifferencesUpper(direct.ptr, K, n, direct.stride, directBase, gramPtr, tauPtr);
    } else {
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
    }
    lanes.set(this.f64(gramPtr, 2 * K * K));
  }

  /**
   * AWD's gradient descent (assembly/kernels.ts awdSolve, bit-identical to merge/awd.ts awdDescentJs): the
   * coefficients a and 3 float64 per iterate (total loss, orthogonality loss, ‖δ‖), iterations + 1 of them; or
   * undefined when its scratch does not fit (below an open arena, whose reserve is at least 8 MB: ~330,000
   * iterations; or over 32 MB of losses), and the caller runs the JS loop. Compiled ahead, it skips the JS loop's warm-up: 25–30 ms on
   * its first call in a process here, against ~1 ms.
   */
  awdSolve(gram: Float64Array, K: number, alpha: number, learningRate: number, iterations: number, squared: boolean): { coefficients: Float64Array; loss: Float64Array } | undefined {
    const lossLength = 3 * (iterations + 1);
    // Memory grown for a run of millions of iterations would stay with the process: those run in JS.
    if (lossLength * 8 > 32 << 20) return undefined;
    let start: number;
    try {
      start = this.scratch((2 * K * K + 5 * K + lossLength) * 8 + 64);
    } catch {
      return undefined;
    }
    const gramPtr = align16(start);
    const aPtr = gramPtr + K * K * 8;
    const lossPtr = aPtr + K * 8;
    const workPtr = lossPtr + lossLength * 8;
    this.f64(gramPtr, K * K).set(gram);
    this.k.awdSolve(gramPtr, K, alpha, learningRate, iterations, squared ? 1 : 0, aPtr, lossPtr, workPtr);
    return { coefficients: this.f64(aPtr, K).slice(), loss: this.f64(lossPtr, lossLength).slice() };
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
    const direct = this.rowsAt(models);
    const directBase = this.at(base);
    const directOut = this.at(out);
    if (direct && directBase >= 0 && directOut >= 0) {
      this.k.weightedSumOfDifferences(directBase, direct.ptr, K, n, direct.stride, coeffPtr, directOut, plusBase ? 1 : 0);
      return;
    }
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
    const direct = this.rowsAt(rows);
    const directOut = this.at(out);
    if (direct && directOut >= 0) {
      this.k.tiesMerge(direct.ptr, K, n, direct.stride, weightPtr, normalize ? 1 : 0, directOut);
      return;
    }
    for (let s = 0; s < n; s += BLOCK) {
      const len = Math.min(BLOCK, n - s);
      for (let i = 0; i < K; i++) this.f32(rowsPtr + i * stride, len).set((rows[i] as Float32Array).subarray(s, s + len));
      this.k.tiesMerge(rowsPtr, K, len, stride, weightPtr, normalize ? 1 : 0, outPtr);
      out.set(this.f32(outPtr, len), s);
    }
  }

  /** row[e] = 0 where |row[e]| < t32, t32 a float32 (for float32 data the same as comparing with t ≤ t32). */
  trimBelow(row: Float32Array, t32: number): void {
    const direct = this.at(row);
    if (direct >= 0) {
      this.k.trimBelow(direct, row.length, t32);
      return;
    }
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
    const direct = this.at(values);
    if (direct >= 0) return this.k.countNonFinite(direct, values.length);
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
   * Continues the lane statistics in state (19 float64: Σx, Σx², min, max in four lanes each, then the counts of
   * finite, NaN and ±Inf entries; see assembly/kernels.ts statisticsLanes) over x, whose first element is a
   * multiple of 4 from the block's start: the same bits as merge/tensorStats.ts blockLanesJs.
   */
  statisticsLanes(x: Float32Array, state: Float64Array): void {
    const statePtr = this.scratch(STATE_BYTES + BLOCK * 4);
    const ptr = statePtr + STATE_BYTES;
    this.f64(statePtr, 19).set(state);
    const direct = this.at(x);
    if (direct >= 0) this.k.statisticsLanes(direct, x.length, statePtr);
    for (let s = 0; s < x.length && direct < 0; s += BLOCK) {
      const len = Math.min(BLOCK, x.length - s);
      this.f32(ptr, len).set(x.subarray(s, s + len));
      this.k.statisticsLanes(ptr, len, statePtr);
    }
    state.set(this.f64(statePtr, 19));
  }

  /** rows[i][e] = fround(rows[i][e] − sub[e]) for every row, bit-identical to subtractInto. */
  subtractFromRows(rows: readonly Float32Array[], sub: Float32Array): void {
    const K = rows.length;
    const n = sub.length;
    const stride = BLOCK * 4;
    const direct = this.rowsAt(rows);
    const directSub = this.at(sub);
    if (direct && directSub >= 0) {
      this.k.subtractFromRows(direct.ptr, K, n, direct.stride, directSub);
      return;
    }
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
    const histPtr = this.scratch(HIST * 4 + BLOCK * 4);
    const ptr = histPtr + HIST * 4;
    const hist = new Int32Array(this.k.memory.buffer, histPtr, HIST);
    hist.fill(0);
    const direct = this.at(row);
    if (direct >= 0) this.k.magnitudeHistogram(direct, row.length, bucket, histPtr);
    for (let s = 0; s < row.length && direct < 0; s += BLOCK) {
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
    const keepAll = keepBelow >= 4294967296 ? 1 : 0;
    const direct = this.at(row);
    if (direct >= 0) {
      this.k.dareRescale(direct, row.length, BigInt(startElement), keys[0], keys[1], keys[2], keepAll ? 0 : keepBelow, keepAll, density);
      return;
    }
    const ptr = this.scratch(BLOCK * 4);
    for (let s = 0; s < row.length; s += BLOCK) {
      const len = Math.min(BLOCK, row.length - s);
      const view = this.f32(ptr, len);
      view.set(row.subarray(s, s + len));
      this.k.dareRescale(ptr, len, BigInt(startElement + s), keys[0], keys[1], keys[2], keepAll ? 0 : keepBelow, keepAll, density);
      row.set(this.f32(ptr, len), s);
    }
  }
}

/** gram[i*K+j] (and gram[j*K+i]) += the two lanes of upper-triangle entry (i, j) of gramLanes' accumulators. */
export function foldGramLanes(lanes: Float64Array, K: number, gram: Float64Array): void {
  for (let i = 0; i < K; i++) {
    for (let j = i; j < K; j++) {
      const v = (lanes[2 * (i * K + j)] as number) + (lanes[2 * (i * K + j) + 1] as number);
      gram[i * K + j] = (gram[i * K + j] as number) + v;
      if (j !== i) gram[j * K + i] = (gram[j * K + i] as number) + v;
    }
  }
}

let loaded: WasmKernels | null | undefined;

/** The WASM kernels, or null where WebAssembly SIMD is unavailable (the JS kernels are used then). */
export function wasmKernels(): WasmKernels | null {
  if (loaded === undefined) {
    try {
      const bytes = Buffer.from(KERNELS_WASM_BASE64, 'base64');
      // Shared, so that the helper thread can read and compute in it (merge/helperThread.ts); growing a shared
      // memory never moves it.
      const memory = new WebAssembly.Memory({ initial: 1, maximum: 65536, shared: true });
      const module = new WebAssembly.Module(bytes);
      const instance = new WebAssembly.Instance(module, { env: { memory } });
      loaded = new WasmKernels({ ...(instance.exports as unknown as Omit<KernelExports, 'memory'>), memory }, module);
    } catch {
      loaded = null;
    }
  }
  return loaded;
}

/**
 * An arena of `bytes` in WASM memory for one job (kernels see at most `maxRows` rows), or null where WebAssembly
 * SIMD is unavailable, one is already open in this thread, or memory cannot grow that far: use plainFloats then.
 */
export function openArena(bytes: number, maxRows: number): WasmArena | null {
  return wasmKernels()?.openArena(bytes, maxRows) ?? null;
}

export type { WasmKernels };
