// Exact k-th largest magnitude by two histogram passes, against sorting.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MagnitudeThreshold, kthLargestMagnitude } from '../../../src/core/merge/magnitude';

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

function sortedKth(values: Float32Array, k: number): number {
  if (k === 0) return Infinity;
  const abs = Float32Array.from(values, Math.abs).sort();
  return abs[abs.length - k]!;
}

void test('kthLargestMagnitude equals sorting for every kind of k, with ties, zeros and wide exponents', () => {
  const r = rng(3);
  const values = Float32Array.from({ length: 20000 }, (_, i) => {
    if (i % 17 === 0) return 0;
    if (i % 13 === 0) return 0.5 * (r() < 0.5 ? -1 : 1); // many exact ties
    return (r() - 0.5) * 10 ** Math.floor(r() * 12 - 8);
  });
  for (const k of [0, 1, 2, 7, 100, 1176, 5000, 12345, 19999, 20000]) {
    assert.equal(kthLargestMagnitude(values, k), sortedKth(values, k), `k = ${k}`);
  }
  assert.throws(() => kthLargestMagnitude(values, 20001), RangeError);
});

void test('streaming over chunks equals in-memory, k = floor(density·count), ties kept', () => {
  const r = rng(9);
  const chunks = [3000, 1, 4999, 2000].map((n) => Float32Array.from({ length: n }, () => (r() - 0.5) * r()));
  const all = new Float32Array(10000);
  let o = 0;
  for (const c of chunks) {
    all.set(c, o);
    o += c.length;
  }
  for (const density of [0.2, 0.5, 0.999, 1, 0.00001]) {
    const t = new MagnitudeThreshold(all.length, density);
    for (const c of chunks) t.pass1(c);
    if (t.needsPass2()) for (const c of chunks) t.pass2(c);
    const k = Math.floor(density * all.length);
    assert.equal(t.k, k);
    assert.equal(t.threshold(), sortedKth(all, k), `density ${density}`);
    const kept = all.filter((x) => Math.abs(x) >= t.threshold()).length;
    assert.ok(kept >= k);
  }
});

void test('k = 0 gives +Infinity without a second pass; all-equal data gives that value', () => {
  const t = new MagnitudeThreshold(10, 0.05);
  t.pass1(new Float32Array(10));
  assert.equal(t.needsPass2(), false);
  assert.equal(t.threshold(), Infinity);
  assert.equal(kthLargestMagnitude(new Float32Array(8).fill(-0.3), 5), Math.fround(0.3));
  assert.equal(kthLargestMagnitude(new Float32Array(8), 8), 0);
});

void test('threshold() before the passes are complete is a programming error', () => {
  const t = new MagnitudeThreshold(4, 0.5);
  t.pass1(Float32Array.from([1, 2]));
  assert.throws(() => t.needsPass2());
});
