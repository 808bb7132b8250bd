// The element-wise WASM kernels of the merge passes against their JS references, bit for bit: the NaN/Inf screen
// (kernels/finite.ts), a statistics block (merge/tensorStats.ts), the in-place τ subtraction (kernels/combine.ts) and
// the magnitude histograms of the TIES thresholds (merge/magnitude.ts), and task arithmetic's fused θ_0 + Σ c_i τ_i.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { wasmKernels } from '../../../src/core/kernels/wasm';
import { nonFiniteTotal, nonFiniteTotalJs } from '../../../src/core/kernels/finite';
import { baseWithWeightedSumOfDifferences, subtractFromRows, subtractInto } from '../../../src/core/kernels/combine';
import { baseWithWeightedSumOfDifferencesJs, weightedSumOfDifferencesJs } from '../../../src/core/kernels/combineJs';
import { addScaledInto } from '../../../src/core/merge/methodChunk';
import { blockSumsJs, blockSumsWasm } from '../../../src/core/merge/tensorStats';
import { countNonFinite } from '../../../src/core/merge/nonFiniteGuard';
import { kthLargestMagnitude } from '../../../src/core/merge/magnitude';

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

/** Random float32 values with rare specials: NaN, ±Inf, ±0, ±max float32, subnormals. */
function withSpecials(n: number, seed: number, rate: number): Float32Array {
  const r = rng(seed);
  const specials = [NaN, Infinity, -Infinity, 0, -0, 3.4028234663852886e38, -3.4028234663852886e38, 1e-45, -1e-40];
  const out = new Float32Array(n);
  for (let e = 0; e < n; e++) out[e] = r() < rate ? specials[Math.floor(r() * specials.length)]! : (r() - 0.5) * 10;
  return out;
}

const kernels = wasmKernels();

void test('WASM non-finite screen counts exactly the NaN and ±Inf entries (tails, block edges, none)', () => {
  assert.ok(kernels);
  for (const [n, rate] of [[0, 0], [7, 0.5], [8192, 0], [8199, 0.01], [20011, 0.3], [100000, 0.0001]] as const) {
    const x = withSpecials(n, n + 1, rate);
    const kinds = { nan: 0, posInf: 0, negInf: 0 };
    countNonFinite(x, kinds);
    const expected = kinds.nan + kinds.posInf + kinds.negInf;
    assert.equal(nonFiniteTotalJs(x), expected, `JS n=${n}`);
    assert.equal(kernels.countNonFinite(x), expected, `WASM n=${n}`);
    assert.equal(nonFiniteTotal(x), expected, `dispatch n=${n}`);
  }
  // Every NaN payload and both infinities, the largest finite values next to them.
  const bits = new Uint32Array([0x7f800000, 0xff800000, 0x7fc00000, 0xffffffff, 0x7f800001, 0x7f7fffff, 0xff7fffff, 0x00000001, 0x80000000]);
  assert.equal(kernels.countNonFinite(new Float32Array(bits.buffer)), 5);
});

void test('WASM statistics block is bit-identical to the JS loop (sums, min/max carried in, ±0 order, NaN/Inf counts)', () => {
  assert.ok(kernels);
  for (const [n, rate, min, max] of [[1, 0, Infinity, -Infinity], [1024, 0.2, Infinity, -Infinity], [8193, 0.01, -1, 1], [65536, 0.001, 0, -0], [20000, 1, Infinity, -Infinity]] as const) {
    const x = withSpecials(n, 31 * n, rate);
    const ref = blockSumsJs(x, min, max);
    const got = blockSumsWasm(x, min, max);
    assert.deepEqual(got, ref, `n=${n}`);
    assert.ok(Object.is(got.min, ref.min) && Object.is(got.max, ref.max), `signed zeros n=${n}`);
  }
  // +0 then −0: the first of equal values stays, as in the JS loop.
  const zeros = new Float32Array(2048);
  zeros[1] = -0;
  zeros[2000] = -0;
  const z = blockSumsWasm(zeros, Infinity, -Infinity);
  assert.ok(Object.is(z.min, 0) && Object.is(z.max, 0));
});

void test('WASM row subtraction is bit-identical to subtractInto (K = 1..9, tails, in place)', () => {
  for (const [K, n] of [[1, 5], [1, 1024], [3, 8191], [8, 8197], [9, 20003]] as const) {
    const r = rng(K * 1000 + n);
    const sub = Float32Array.from({ length: n }, () => (r() - 0.5) * 4);
    const rows = Array.from({ length: K }, () => Float32Array.from({ length: n }, (_, e) => sub[e]! + (r() - 0.5) * 1e-3));
    const ref = rows.map((row) => {
      const out = new Float32Array(n);
      subtractInto(out, row, sub);
      return out;
    });
    subtractFromRows(rows, sub);
    rows.forEach((row, i) => assert.deepEqual(row, ref[i], `K=${K} n=${n} row ${i}`));
  }
  assert.throws(() => subtractFromRows([new Float32Array(3)], new Float32Array(4)), RangeError);
});

void test('WASM magnitude histograms count as the JS passes (both passes, signs, specials, tails); thresholds equal sorting', () => {
  assert.ok(kernels);
  const r = rng(77);
  for (const n of [3, 8191, 40003]) {
    const x = withSpecials(n, n, 0.01);
    for (let e = 0; e < n; e += 97) x[e] = -0.5; // many exact ties in one bucket, negative
    const bits = new Uint32Array(x.buffer);
    const high = new Float64Array(65536);
    const refHigh = new Float64Array(65536);
    for (const b of bits) refHigh[(b & 0x7fffffff) >>> 16]!++;
    kernels.magnitudeHistogram(x, -1, high);
    kernels.magnitudeHistogram(x, -1, high); // adds to what is there
    assert.deepEqual(high, refHigh.map((c) => 2 * c), `pass 1 n=${n}`);
    for (const bucket of [0, (0x3f000000 >>> 16) & 0x7fff, (bits[Math.floor(r() * n)]! & 0x7fffffff) >>> 16, 0x7f80]) {
      const low = new Float64Array(65536);
      const refLow = new Float64Array(65536);
      for (const b of bits) if ((b & 0x7fffffff) >>> 16 === bucket) refLow[b & 0xffff]!++;
      kernels.magnitudeHistogram(x, bucket, low);
      assert.deepEqual(low, refLow, `pass 2 n=${n} bucket ${bucket}`);
    }
  }
  // Through MagnitudeThreshold, chunks long enough for the WASM path, against sorting.
  const values = Float32Array.from({ length: 70001 }, (_, e) => (e % 11 === 0 ? 0.25 : (r() - 0.5) * 10 ** Math.floor(r() * 6 - 4)));
  const sorted = Float32Array.from(values, Math.abs).sort();
  for (const k of [1, 2, 1000, 7000, 35000, 70001]) assert.equal(kthLargestMagnitude(values, k), sorted[sorted.length - k], `k=${k}`);
});

void test('task arithmetic in one pass (θ_0 + Σ c_i τ_i) is bit-identical to the weighted sum then + base, WASM and JS', () => {
  assert.ok(kernels);
  for (const [K, n] of [[1, 3], [2, 1024], [8, 8197], [9, 20003]] as const) {
    const r = rng(500 + K * n);
    const base = Float32Array.from({ length: n }, () => (r() - 0.5) * 8);
    const models = Array.from({ length: K }, () => Float32Array.from({ length: n }, (_, e) => base[e]! + (r() - 0.5) * 1e-2));
    const coeffs = Array.from({ length: K }, () => (r() - 0.3) * 2);
    const m = new Float32Array(n);
    weightedSumOfDifferencesJs(base, models, coeffs, m);
    const ref = new Float32Array(n);
    addScaledInto(ref, base, m, 1);
    const js = new Float32Array(n);
    baseWithWeightedSumOfDifferencesJs(base, models, coeffs, js);
    assert.deepEqual(js, ref, `JS K=${K} n=${n}`);
    const wasm = new Float32Array(n);
    kernels.weightedSum(base, models, coeffs, wasm, true);
    assert.deepEqual(wasm, ref, `WASM K=${K} n=${n}`);
    const dispatched = new Float32Array(n);
    baseWithWeightedSumOfDifferences(base, models, coeffs, dispatched);
    assert.deepEqual(dispatched, ref, `dispatch K=${K} n=${n}`);
  }
});
