/**
 * Statistics of a merged tensor, accumulated chunk by chunk in the output pass: mean, std (population), min, max,
 * L2 norm over the finite entries, and the NaN / ±Inf counts. Values are gathered into fixed blocks of the
 * tensor's element index (not the caller's chunks), each block is summed in one pass, and blocks are combined
 * with Chan's pairwise update (n, mean, M2), which stays stable over a whole tensor where Σx² − n·mean² would not:
 * the statistics, which go into the output's metadata, are then the same bits whatever the chunk size.
 */
import { wasmKernels } from '../kernels/wasm';

export interface TensorStatistics {
  elements: number;
  mean: number;
  std: number;
  min: number;
  max: number;
  l2_norm: number;
  nan_count: number;
  inf_count: number;
}

/** Elements per statistics block. */
export const STATISTICS_BLOCK = 65536;
const BLOCK = STATISTICS_BLOCK;

/** Below this many elements the copy into WASM memory costs more than the JS loop. */
const WASM_MIN_ELEMENTS = 1024;

/** Sums of one block: n, Σx, Σx² over its finite entries; min and max continued from the given ones; NaN and ±Inf counts. */
export interface BlockSums {
  n: number;
  sum: number;
  squares: number;
  min: number;
  max: number;
  nan: number;
  inf: number;
}

/** Lanes of the block sums: element e of a block goes to lane e % 4 (four independent float64 sums). */
const LANES = 4;

/**
 * The reference of a block's sums: element e (from the block's start) adds to lane e % 4 of Σx and Σx² (float64;
 * a non-finite x adds +0) and updates that lane's min and max (x < min, x > max: the first of equal values stays)
 * when finite; NaN and ±Inf are counted. The lanes start at 0 and at the min/max carried in, and combineLanes
 * folds them in a fixed order. The WASM kernel (blockSumsWasm) gives the same bits, several times faster.
 */
export function blockSumsJs(x: Float32Array, minBefore: number, maxBefore: number): BlockSums {
  const state = initialLanes(minBefore, maxBefore);
  for (let e = 0; e < x.length; e++) {
    const v = x[e]!;
    const l = e % LANES;
    if (v - v === 0) {
      state[l] = state[l]! + v;
      state[4 + l] = state[4 + l]! + v * v;
      if (v < state[8 + l]!) state[8 + l] = v;
      if (v > state[12 + l]!) state[12 + l] = v;
      state[16]!++;
    } else {
      state[l] = state[l]! + 0;
      state[4 + l] = state[4 + l]! + 0;
      if (v !== v) state[17]!++;
      else state[18]!++;
    }
  }
  return combineLanes(state);
}

/** The lane state (see WasmKernels.statisticsLanes) of an empty block. */
function initialLanes(minBefore: number, maxBefore: number): Float64Array {
  const state = new Float64Array(19);
  state.fill(minBefore, 8, 12);
  state.fill(maxBefore, 12, 16);
  return state;
}

/**
 * The block's sums from its lanes (the 19-float64 state of WasmKernels.statisticsLanes): (l0 + l1) + (l2 + l3);
 * min and max taken lane by lane in order.
 */
export function combineLanes(s: Float64Array): BlockSums {
  let min = s[8]!;
  let max = s[12]!;
  for (let l = 1; l < LANES; l++) {
    if (s[8 + l]! < min) min = s[8 + l]!;
    if (s[12 + l]! > max) max = s[12 + l]!;
  }
  return {
    sum: s[0]! + s[1]! + (s[2]! + s[3]!),
    squares: s[4]! + s[5]! + (s[6]! + s[7]!),
    min,
    max,
    n: s[16]!,
    nan: s[17]!,
    inf: s[18]!,
  };
}

/** blockSumsJs in the WASM kernel (the same bits); the JS loop where WebAssembly SIMD is unavailable. */
export function blockSumsWasm(x: Float32Array, minBefore: number, maxBefore: number): BlockSums {
  const wasm = wasmKernels();
  if (!wasm) return blockSumsJs(x, minBefore, maxBefore);
  const state = initialLanes(minBefore, maxBefore);
  wasm.statisticsLanes(x, state);
  return combineLanes(state);
}

export class TensorStatisticsAccumulator {
  /** The partial block between chunks (allocated on first use: chunks of whole blocks never need it). */
  private blockBuffer: Float32Array | undefined;
  private filled = 0;
  private n = 0;
  private mean = 0;
  private m2 = 0;
  private sumSquares = 0;
  private min = Infinity;
  private max = -Infinity;
  private nan = 0;
  private inf = 0;
  private total = 0;

  /** Adds the next chunk of the tensor (chunks in element order). */
  add(x: Float32Array): void {
    let done = 0;
    // Whole blocks of an aligned chunk are taken in place; only the pieces around block boundaries are copied.
    while (this.filled === 0 && x.length - done >= BLOCK) {
      this.addBlock(x.subarray(done, done + BLOCK));
      done += BLOCK;
    }
    while (done < x.length) {
      const n = Math.min(BLOCK - this.filled, x.length - done);
      this.blockBuffer ??= new Float32Array(BLOCK);
      this.blockBuffer.set(x.subarray(done, done + n), this.filled);
      this.filled += n;
      done += n;
      if (this.filled === BLOCK) this.flush();
    }
  }

  private flush(): void {
    if (this.filled > 0) this.addBlock(this.blockBuffer!.subarray(0, this.filled));
    this.filled = 0;
  }

  /**
   * One pass over a block: Σx, Σx², min, max of the finite entries; the block's M2 = Σx² − (Σx)²/n (float64 over
   * ≤ 65536 values, four lanes: blockSumsJs). The WASM kernel gives the same bits.
   */
  private addBlock(x: Float32Array): void {
    this.addBlockSums(x.length >= WASM_MIN_ELEMENTS ? blockSumsWasm(x, Infinity, -Infinity) : blockSumsJs(x, Infinity, -Infinity), x.length);
  }

  /**
   * Adds the next block (of `length` elements, at a multiple of BLOCK in the tensor) from its sums, computed with
   * min/max starting at ±Infinity (elsewhere, e.g. on another thread). Taking the smaller of the running min and
   * the block's keeps the first of equal values, exactly as carrying the running min into the block would.
   */
  addBlockSums(block: BlockSums, length: number): void {
    this.total += length;
    this.nan += block.nan;
    this.inf += block.inf;
    const { n, sum, squares, min, max } = block;
    if (min < this.min) this.min = min;
    if (max > this.max) this.max = max;
    if (n === 0) return;
    const blockMean = sum / n;
    const blockM2 = Math.max(0, squares - sum * blockMean);
    const combined = this.n + n;
    const delta = blockMean - this.mean;
    this.mean += (delta * n) / combined;
    this.m2 += blockM2 + (delta * delta * this.n * n) / combined;
    this.n = combined;
    this.sumSquares += squares;
  }

  result(): TensorStatistics {
    this.flush();
    const finite = this.n > 0;
    return {
      elements: this.total,
      mean: finite ? this.mean : 0,
      std: finite ? Math.sqrt(this.m2 / this.n) : 0,
      min: finite ? this.min : 0,
      max: finite ? this.max : 0,
      l2_norm: Math.sqrt(this.sumSquares),
      nan_count: this.nan,
      inf_count: this.inf,
    };
  }
}
