// Weighted sum of task vectors against a per-element reference; bit-identical whatever the chunking.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { subtractInto, weightedSumOfDifferences } from '../../../src/core/kernels/combine';
import { weightedSumOfDifferencesJs } from '../../../src/core/kernels/combineJs';

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

function reference(base: Float32Array, models: Float32Array[], c: number[]): Float32Array {
  return Float32Array.from(base, (b, e) => models.reduce((s, m, i) => s + c[i]! * Math.fround(m[e]! - b), 0));
}

for (const [name, fn] of [['weightedSumOfDifferences', weightedSumOfDifferences], ['weightedSumOfDifferencesJs', weightedSumOfDifferencesJs]] as const) {
  void test(`${name} is bit-identical to the per-element reference for any chunking (K = 1, 3, 9)`, () => {
    for (const K of [1, 3, 9]) {
      const r = rng(K);
      const n = 10003;
      const base = Float32Array.from({ length: n }, () => r() * 4 - 2);
      const models = Array.from({ length: K }, () => Float32Array.from(base, (b) => b + (r() - 0.5) * 0.01));
      const c = Array.from({ length: K }, () => r() * 2 - 0.5);
      const ref = reference(base, models, c);
      const out = new Float32Array(n);
      fn(base, models, c, out);
      assert.deepEqual(out, ref);
      const chunked = new Float32Array(n);
      for (let s = 0; s < n; s += 999) {
        const e = Math.min(n, s + 999);
        fn(base.subarray(s, e), models.map((m) => m.subarray(s, e)), c, chunked.subarray(s, e));
      }
      assert.deepEqual(chunked, ref);
    }
  });
}

void test('weightedSumOfDifferences rejects mismatched shapes; subtractInto is a float32 difference', () => {
  assert.throws(() => weightedSumOfDifferences(new Float32Array(2), [new Float32Array(3)], [1], new Float32Array(2)), RangeError);
  assert.throws(() => weightedSumOfDifferences(new Float32Array(2), [new Float32Array(2)], [1, 2], new Float32Array(2)), RangeError);
  const out = new Float32Array(2);
  subtractInto(out, Float32Array.from([1.1, 3]), Float32Array.from([0.1, 5]));
  assert.deepEqual([...out], [Math.fround(Math.fround(1.1) - Math.fround(0.1)), -2]);
});
