// Statistics of merged tensors: against a float64 two-pass reference, NaN/Inf counted apart, and the same bits for
// any chunking (they go into the output's metadata, which must not depend on the memory budget).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TensorStatisticsAccumulator } from '../../../src/core/merge/tensorStats';
import { gaussian, seededRandom } from './executeFixtures';

function statsOf(x: Float32Array, chunk: number): ReturnType<TensorStatisticsAccumulator['result']> {
  const acc = new TensorStatisticsAccumulator();
  for (let s = 0; s < x.length; s += chunk) acc.add(x.subarray(s, Math.min(x.length, s + chunk)));
  return acc.result();
}

void test('mean, std, min, max, L2 norm match a float64 reference; NaN and ±Inf are counted, not summed', () => {
  const normal = gaussian(seededRandom(5));
  const x = Float32Array.from({ length: 200_003 }, () => 3 + 0.02 * normal());
  x[10] = NaN;
  x[20] = Infinity;
  x[30] = -Infinity;
  const finite = Array.from(x).filter(Number.isFinite);
  const mean = finite.reduce((s, v) => s + v, 0) / finite.length;
  const std = Math.sqrt(finite.reduce((s, v) => s + (v - mean) ** 2, 0) / finite.length);
  const r = statsOf(x, 70_001);
  assert.equal(r.elements, x.length);
  assert.ok(Math.abs(r.mean - mean) < 1e-12 * Math.abs(mean));
  assert.ok(Math.abs(r.std - std) < 1e-7 * std, `std ${r.std} vs ${std}`);
  assert.equal(r.min, finite.reduce((a, b) => Math.min(a, b)));
  assert.equal(r.max, finite.reduce((a, b) => Math.max(a, b)));
  const norm = Math.sqrt(finite.reduce((s, v) => s + v * v, 0));
  assert.ok(Math.abs(r.l2_norm - norm) < 1e-9 * norm);
  assert.equal(r.nan_count, 1);
  assert.equal(r.inf_count, 2);
  for (const chunk of [1, 999, 65_536, 1 << 20]) assert.deepEqual(statsOf(x, chunk), r, `chunk ${chunk}`);
});

void test('an empty or all-NaN tensor reports zeros, not NaN', () => {
  assert.deepEqual(statsOf(new Float32Array(0), 4), { elements: 0, mean: 0, std: 0, min: 0, max: 0, l2_norm: 0, nan_count: 0, inf_count: 0 });
  const r = statsOf(new Float32Array(5).fill(NaN), 2);
  assert.equal(r.nan_count, 5);
  assert.equal(r.mean, 0);
});
