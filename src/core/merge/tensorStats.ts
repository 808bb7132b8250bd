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
const BLOCK = 65536;

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

/** The reference loop of a block's sums (float64, element order). */
export function blockSumsJs(x: Float32Array, minBefore: number, maxBefore: number): BlockSums {
  let n = 0;
  let sum = 0;
  let squares = 0;
  let min = minBefore;
  let max = maxBefore;
  let nan = 0;
  let inf = 0;
  for (let e = 0; e < x.length; e++) {
    const v = x[e]!;
    if (v - v === 0) {
      n++;
      sum += v;
      squares += v * v;
      if (v < min) min = v;
      if (v > max) max = v;
    } else if (v !== v) {
      nan++;
    } else {
      inf++;
    }
  }
  return { n, sum, squares, min, max, nan, inf };
}

const wasmState = new Float64Array(7);

/** blockSumsJs in the WASM kernel (the same bits); the JS loop where WebAssembly SIMD is unavailable. */
export function blockSumsWasm(x: Float32Array, minBefore: number, maxBefore: number): BlockSums {
  const wasm = wasmKernels();
  if (!wasm) return blockSumsJs(x, minBefore, maxBefore);
  const s = wasmState;
  s.fill(0);
  s[2] = minBefore;
  s[3] = maxBefore;
  wasm.statisticsBlock(x, s);
  return { sum: s[0]!, squares: s[1]!, min: s[2]!, max: s[3]!, n: s[4]!, nan: s[5]!, inf: s[6]! };
}

export class TensorStatisticsAccumulator {
  private readonly block = new Float32Array(BLOCK);
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
      this.block.set(x.subarray(done, done + n), this.filled);
      this.filled += n;
      done += n;
      if (this.filled === BLOCK) this.flush();
    }
  }

  private flush(): void {
    if (this.filled > 0) this.addBlock(this.block.subarray(0, this.filled));
    this.filled = 0;
  }

  /**
   * One pass over a block: Σx, Σx², min, max of the finite entries; the block's M2 = Σx² − (Σx)²/n (float64 over
   * ≤ 65536 values). The WASM kernel runs the same loop in the same order (the same bits) about 2–4× faster.
   */
  private addBlock(x: Float32Array): void {
    this.total += x.length;
    const block = x.length >= WASM_MIN_ELEMENTS ? blockSumsWasm(x, this.min, this.max) : blockSumsJs(x, this.min, this.max);
    this.nan += block.nan;
    this.inf += block.inf;
    const { n, sum, squares, min, max } = block;
    this.min = min;
    this.max = max;
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
