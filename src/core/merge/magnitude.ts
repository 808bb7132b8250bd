/**
 * Exact k-th largest magnitude over a stream without holding it (the TIES trim threshold for trim_scope
 * `model`): |x| of a float32 ordered as its bit pattern (sign cleared) is ordered as an unsigned integer, so a
 * histogram of the high 16 bits finds the bucket holding the k-th largest, and a second pass histograms the low
 * 16 bits inside that one bucket. Memory: two 64K-entry count arrays, whatever the stream length. The JS loops
 * are the reference; long chunks go through the WASM kernel, which counts the same.
 */
import { wasmKernels } from '../kernels/wasm';

/** Buckets of a magnitude histogram: one per value of 16 bits of a pattern (the high half, or the low half). */
export const HISTOGRAM_BUCKETS = 1 << 16;
/** The buckets the high 16 bits can reach: the pattern's sign bit is cleared, so they stay below 2^15. */
export const HIGH_BUCKETS = 1 << 15;
const BUCKETS = HISTOGRAM_BUCKETS;

/**
 * The WASM kernel (kernels/wasm.ts magnitudeHistogram: the same counts) pays from this many elements on: each
 * call ends by adding its 65536 uint32 counts into the float64 histogram. Below 2^31 so the uint32 counts of
 * one call cannot wrap.
 */
const WASM_MIN_ELEMENTS = 32768;

function useWasm(chunk: Float32Array): boolean {
  return chunk.length >= WASM_MIN_ELEMENTS && chunk.length < 2 ** 31;
}

/**
 * The bit patterns as int32: the passes clear the sign bit anyway, and V8 keeps int32 elements in registers where
 * uint32 elements ≥ 2^31 (every negative x) become doubles — the int32 view measured twice as fast.
 */
function bitsOf(chunk: Float32Array): Int32Array {
  return new Int32Array(chunk.buffer, chunk.byteOffset, chunk.length);
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The float32 whose bit pattern is `bits`. */
function floatOfBits(bits: number): number {
  u32[0] = bits;
  return f32[0] as number;
}

/**
 * threshold() = the k-th largest |x| over all pass1 chunks, k = floor(density·count); +Infinity when k = 0.
 * Feed every chunk to pass1, then, when needsPass2(), every chunk again (same data) to pass2.
 */
export class MagnitudeThreshold {
  /** How many entries to keep at least: floor(density·count). */
  readonly k: number;
  private readonly count: number;
  private readonly high = new Float64Array(BUCKETS);
  private low: Float64Array | undefined;
  private seen = 0;
  private seenPass2 = 0;
  /** The high 16 bits of the k-th largest magnitude, and its rank inside that bucket (1-based). */
  private bucket = -1;
  private rankInBucket = 0;
  private result: number | undefined;

  /** rank, when given, replaces floor(density·count) (for callers that know k exactly). */
  constructor(count: number, density: number, rank?: number) {
    if (!Number.isInteger(count) || count < 0) {
      throw new RangeError(`MagnitudeThreshold: count must be a non-negative integer, got ${count}`);
    }
    if (!(density >= 0 && density <= 1)) throw new RangeError(`MagnitudeThreshold: density must be in [0, 1], got ${density}`);
    this.count = count;
    this.k = rank ?? Math.floor(density * count);
    if (!Number.isInteger(this.k) || this.k < 0 || this.k > count) {
      throw new RangeError(`MagnitudeThreshold: rank must be an integer in [0, ${count}], got ${this.k}`);
    }
    if (this.k === 0) this.result = Infinity;
  }

  /** First pass: histogram of the high 16 bits of |x|. */
  pass1(chunk: Float32Array): void {
    if (this.result !== undefined) return;
    const wasm = useWasm(chunk) ? wasmKernels() : null;
    if (wasm) {
      wasm.magnitudeHistogram(chunk, -1, this.high);
    } else {
      const bits = bitsOf(chunk);
      const high = this.high;
      for (let e = 0; e < bits.length; e++) {
        const b = ((bits[e] as number) & 0x7fffffff) >>> 16;
        high[b] = (high[b] as number) + 1;
      }
    }
    this.seen += chunk.length;
  }

  /** True when the low 16 bits must be resolved by a second pass over the same data. */
  needsPass2(): boolean {
    if (this.result !== undefined) return false;
    this.locateBucket();
    return true;
  }

  /** Second pass: histogram of the low 16 bits of the |x| that fall into the located bucket. */
  pass2(chunk: Float32Array): void {
    if (this.result !== undefined) return;
    this.locateBucket();
    const low = (this.low ??= new Float64Array(BUCKETS));
    const bucket = this.bucket;
    const wasm = useWasm(chunk) ? wasmKernels() : null;
    if (wasm) {
      wasm.magnitudeHistogram(chunk, bucket, low);
    } else {
      const bits = bitsOf(chunk);
      for (let e = 0; e < bits.length; e++) {
        const v = (bits[e] as number) & 0x7fffffff;
        if (v >>> 16 === bucket) {
          const l = v & 0xffff;
          low[l] = (low[l] as number) + 1;
        }
      }
    }
    this.seenPass2 += chunk.length;
  }

  /** True when the threshold is known without looking at the data (k = 0). */
  get settled(): boolean {
    return this.result !== undefined;
  }

  /** The bucket (high 16 bits) that pass 2 histograms; call after the whole of pass 1, when needsPass2(). */
  get pass2Bucket(): number {
    this.locateBucket();
    return this.bucket;
  }

  /**
   * Adds a histogram computed elsewhere (magnitudeHistogram64 on another thread: `counts(b)` for bucket b of
   * `buckets`) over `elements` entries, as pass1 (high 16 bits) or pass2 (low 16 bits in pass2Bucket) would.
   */
  addCounts(pass: 1 | 2, counts: (bucket: number) => number, buckets: number, elements: number): void {
    if (this.result !== undefined) return;
    const into = pass === 1 ? this.high : (this.low ??= new Float64Array(BUCKETS));
    for (let b = 0; b < buckets; b++) into[b]! += counts(b);
    if (pass === 1) this.seen += elements;
    else this.seenPass2 += elements;
  }

  /** The k-th largest |x| (+Infinity when k = 0); entries with |x| ≥ threshold are the ones kept. */
  threshold(): number {
    if (this.result !== undefined) return this.result;
    if (this.seenPass2 !== this.count) {
      throw new Error(`MagnitudeThreshold: pass2 saw ${this.seenPass2} of ${this.count} entries`);
    }
    const low = this.low ?? new Float64Array(BUCKETS);
    let remaining = this.rankInBucket;
    for (let l = BUCKETS - 1; l >= 0; l--) {
      remaining -= low[l] as number;
      if (remaining <= 0) {
        this.result = floatOfBits(((this.bucket << 16) | l) >>> 0);
        return this.result;
      }
    }
    throw new Error('MagnitudeThreshold: pass2 data differs from pass1 data');
  }

  private locateBucket(): void {
    if (this.bucket >= 0) return;
    if (this.seen !== this.count) throw new Error(`MagnitudeThreshold: pass1 saw ${this.seen} of ${this.count} entries`);
    let remaining = this.k;
    for (let b = BUCKETS - 1; b >= 0; b--) {
      const c = this.high[b] as number;
      if (remaining <= c) {
        this.bucket = b;
        this.rankInBucket = remaining;
        return;
      }
      remaining -= c;
    }
    throw new Error('MagnitudeThreshold: fewer entries than k');
  }
}

/** The k-th largest |x| of values (1 ≤ k ≤ length), +Infinity when k = 0; two histogram passes, no sort. */
export function kthLargestMagnitude(values: Float32Array, k: number): number {
  if (!Number.isInteger(k) || k < 0 || k > values.length) {
    throw new RangeError(`kthLargestMagnitude: k must be an integer in [0, ${values.length}], got ${k}`);
  }
  const t = new MagnitudeThreshold(values.length, 0, k);
  t.pass1(values);
  if (t.needsPass2()) t.pass2(values);
  return t.threshold();
}
