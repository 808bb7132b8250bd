/**
 * Statistics of a merged tensor, accumulated chunk by chunk in the output pass: mean, std (population), min, max,
 * L2 norm over the finite entries, and the NaN / ±Inf counts. Values are gathered into fixed blocks of the
 * tensor's element index (not the caller's chunks), each block is summed in one pass, and blocks are combined
 * with Chan's pairwise update (n, mean, M2), which stays stable over a whole tensor where Σx² − n·mean² would not:
 * the statistics, which go into the output's metadata, are then the same bits whatever the chunk size.
 */
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

  /** One pass over a block: Σx, Σx², min, max of the finite entries; the block's M2 = Σx² − (Σx)²/n (float64 over ≤ 65536 values). */
  private addBlock(x: Float32Array): void {
    this.total += x.length;
    let n = 0;
    let sum = 0;
    let squares = 0;
    let min = this.min;
    let max = this.max;
    for (let e = 0; e < x.length; e++) {
      const v = x[e]!;
      if (v - v === 0) {
        n++;
        sum += v;
        squares += v * v;
        if (v < min) min = v;
        if (v > max) max = v;
      } else if (v !== v) {
        this.nan++;
      } else {
        this.inf++;
      }
    }
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
