// Gram kernels against a float64 reference, including data whose cosines are ~0.01 where float32 sums fail.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { accumulateGram, accumulateGramOfDifferences } from '../../../src/core/kernels/gram';
import { accumulateGramJs, accumulateGramOfDifferencesJs } from '../../../src/core/kernels/gramJs';

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}
function gaussian(r: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
}

/** Σ_e x_i x_j in float64, pair by pair (the reference). */
function referenceGram(rows: readonly Float32Array[]): Float64Array {
  const K = rows.length;
  const g = new Float64Array(K * K);
  for (let i = 0; i < K; i++) {
    for (let j = i; j < K; j++) {
      const ri = rows[i]!, rj = rows[j]!;
      let s = 0;
      for (let e = 0; e < ri.length; e++) s += ri[e]! * rj[e]!;
      g[i * K + j] = s;
      g[j * K + i] = s;
    }
  }
  return g;
}

/** Largest |G_ij − R_ij| / |R_ij| over all entries. */
function maxRelative(g: Float64Array, ref: Float64Array): number {
  let worst = 0;
  for (let e = 0; e < ref.length; e++) worst = Math.max(worst, Math.abs(g[e]! - ref[e]!) / Math.abs(ref[e]!));
  return worst;
}

function fill(n: number, f: (e: number) => number): Float32Array {
  const out = new Float32Array(n);
  for (let e = 0; e < n; e++) out[e] = f(e);
  return out;
}

/** Task vectors with pairwise cosines ≈ 0.01 on top of a base with a large common offset. */
function nearlyOrthogonal(K: number, n: number, seed: number) {
  const r = rng(seed);
  const shared = fill(n, () => gaussian(r));
  const base = fill(n, () => 3 + gaussian(r));
  const models = Array.from({ length: K }, () => fill(n, (e) => base[e]! + 0.01 * (0.1 * shared[e]! + gaussian(r))));
  // τ as the kernels define it: rounded to float32 after the subtraction.
  const exactTaus = models.map((m) => fill(n, (e) => m[e]! - base[e]!));
  return { base, models, exactTaus };
}

for (const [name, gram] of [['accumulateGram', accumulateGram], ['accumulateGramJs', accumulateGramJs]] as const) {
  void test(`${name}: matches float64 to 1e-7 relative on cosines ≈ 0.01 (K=9, 200k elements, odd chunks)`, () => {
    const { exactTaus } = nearlyOrthogonal(9, 200001, 1);
    const ref = referenceGram(exactTaus);
    const g = new Float64Array(81);
    for (const [s, e] of [[0, 1], [1, 1000], [1000, 123457], [123457, 200001]] as const) {
      gram(exactTaus.map((t) => t.subarray(s, e)), g);
    }
    const cos01 = ref[1]! / Math.sqrt(ref[0]! * ref[10]!);
    assert.ok(Math.abs(cos01) > 0.003 && Math.abs(cos01) < 0.03, `test data cosine ${cos01}`);
    assert.ok(maxRelative(g, ref) < 1e-7, `relative error ${maxRelative(g, ref)}`);
    for (let i = 0; i < 9; i++) for (let j = 0; j < 9; j++) assert.equal(g[i * 9 + j], g[j * 9 + i]);
  });
}

for (const [name, gram] of [
  ['accumulateGramOfDifferences', accumulateGramOfDifferences],
  ['accumulateGramOfDifferencesJs', accumulateGramOfDifferencesJs],
] as const) {
  void test(`${name}: Gram of fround(models − base) with a large common offset, 1e-7 relative`, () => {
    for (const K of [1, 2, 8]) {
      const { base, models, exactTaus } = nearlyOrthogonal(K, 100003, 2 + K);
      const ref = referenceGram(exactTaus);
      const g = new Float64Array(K * K);
      gram(models.map((m) => m.subarray(0, 777)), base.subarray(0, 777), g);
      gram(models.map((m) => m.subarray(777)), base.subarray(777), g);
      assert.ok(maxRelative(g, ref) < 1e-7, `K=${K}: relative error ${maxRelative(g, ref)}`);
    }
  });
}

void test('the fast float32-product path (chunks ≥ 524288 elements): 1e-7 relative on cosines ≈ 0.01', () => {
  const K = 4;
  const { base, models, exactTaus } = nearlyOrthogonal(K, 600000, 21);
  const ref = referenceGram(exactTaus);
  const g = new Float64Array(K * K);
  accumulateGramOfDifferences(models, base, g);
  assert.ok(maxRelative(g, ref) < 1e-7, `differences: relative error ${maxRelative(g, ref)}`);
  assert.ok(maxRelative(g, ref) > 0, 'the fast path (not the exact one) ran');
  const h = new Float64Array(K * K);
  accumulateGram(exactTaus, h);
  assert.ok(maxRelative(h, ref) < 1e-7, `rows: relative error ${maxRelative(h, ref)}`);
});

void test('Gram kernels add to the accumulator and handle empty rows, K = 1, and small exact cases', () => {
  const g = Float64Array.from([1, 1, 1, 1]);
  accumulateGram([Float32Array.from([1, 2, 3]), Float32Array.from([4, 5, 6])], g);
  assert.deepEqual([...g], [15, 33, 33, 78]);
  accumulateGram([new Float32Array(0), new Float32Array(0)], g);
  assert.deepEqual([...g], [15, 33, 33, 78]);
  const one = new Float64Array(1);
  accumulateGramOfDifferences([Float32Array.from([2, 2])], Float32Array.from([1, -1]), one);
  assert.deepEqual([...one], [10]);
  assert.throws(() => accumulateGram([new Float32Array(2), new Float32Array(3)], new Float64Array(4)), RangeError);
  assert.throws(() => accumulateGram([new Float32Array(2)], new Float64Array(4)), RangeError);
});

void test('naive float32 accumulation would fail this precision test (the test has teeth)', () => {
  const { exactTaus } = nearlyOrthogonal(2, 200001, 1);
  const ref = referenceGram(exactTaus);
  // The squared norm: 200k positive terms summed in float32 lose ~1e-4 of it.
  const acc = new Float32Array(1);
  for (let e = 0; e < exactTaus[0]!.length; e++) acc[0] = acc[0]! + Math.fround(exactTaus[0]![e]! * exactTaus[0]![e]!);
  assert.ok(Math.abs(acc[0]! - ref[0]!) / Math.abs(ref[0]!) > 1e-6, `naive float32 error ${Math.abs(acc[0]! - ref[0]!) / Math.abs(ref[0]!)}`);
});
