// DARE masks: a pure function of (seed, model, tensor, element index): independent of chunking, Bernoulli(density).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dareRescaleInPlace, dareUniform, tensorNameHash } from '../../../src/core/merge/dare';

function ramp(n: number): Float32Array {
  return Float32Array.from({ length: n }, (_, e) => 1 + (e % 7));
}

void test('masks are identical for every chunk size and start', () => {
  const n = 10007;
  const key = { seed: 42, model: 1, tensor: 'encoder.layers.0.attn.q_proj.weight' };
  const whole = ramp(n);
  dareRescaleInPlace(whole, 0.3, key, 0);
  for (const chunk of [1, 64, 1000, 4096]) {
    const data = ramp(n);
    for (let s = 0; s < n; s += chunk) dareRescaleInPlace(data.subarray(s, Math.min(n, s + chunk)), 0.3, key, s);
    assert.deepEqual(data, whole, `chunk ${chunk}`);
  }
});

void test('τ′ = τ·mask/density, keep rate ≈ density, and u matches the mask', () => {
  const n = 200000;
  const key = { seed: 7, model: 0, tensor: 'w' };
  for (const density of [0.1, 0.5, 0.9]) {
    const x = new Float32Array(n).fill(0.5);
    dareRescaleInPlace(x, density, key, 0);
    let kept = 0;
    for (let e = 0; e < n; e++) {
      const keep = dareUniform(key, e) < density;
      assert.equal(x[e], keep ? Math.fround(0.5 / density) : 0);
      if (keep) kept++;
    }
    const sd = Math.sqrt(n * density * (1 - density));
    assert.ok(Math.abs(kept - n * density) < 5 * sd, `kept ${kept} of ${n} at ${density}`);
  }
  const y = Float32Array.from([1, -2, 3]);
  dareRescaleInPlace(y, 1, key, 0);
  assert.deepEqual([...y], [1, -2, 3]);
});

void test('different seed, model or tensor give independent masks; the same key the same mask', () => {
  const n = 50000;
  const mask = (seed: number, model: number, tensor: string, start = 0) => {
    const x = new Float32Array(n).fill(1);
    dareRescaleInPlace(x, 0.5, { seed, model, tensor }, start);
    return x;
  };
  const base = mask(1, 0, 'a');
  assert.deepEqual(mask(1, 0, 'a'), base);
  for (const other of [mask(2, 0, 'a'), mask(1, 1, 'a'), mask(1, 0, 'b'), mask(1, 0, 'a', 1), mask(2 ** 40 + 1, 0, 'a')]) {
    let both = 0;
    for (let e = 0; e < n; e++) if (base[e] !== 0 && other[e] !== 0) both++;
    // Independent Bernoulli(0.5) masks agree on keeping ≈ n/4 entries.
    assert.ok(Math.abs(both - n / 4) < 5 * Math.sqrt(n * 0.25 * 0.75), `overlap ${both}`);
  }
});

void test('large element indices (beyond 2^32) are fine and the tensor hash is FNV-1a 64', () => {
  const x = new Float32Array(1000).fill(1);
  dareRescaleInPlace(x, 0.5, { seed: 0, model: 0, tensor: 't' }, 2 ** 33);
  const kept = x.filter((v) => v !== 0).length;
  assert.ok(kept > 400 && kept < 600);
  assert.deepEqual(tensorNameHash(''), [0x84222325, 0xcbf29ce4]);
  assert.throws(() => dareRescaleInPlace(x, 0, { seed: 0, model: 0, tensor: 't' }, 0), RangeError);
});
