// TIES trim and elect/merge against a naive per-element implementation written from merge-config.md.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tiesMergeChunk, trimBelow } from '../../../src/core/merge/ties';

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

/** merge-config.md, literally: elected sign, agreeing entries, disjoint (weighted) mean or sum. */
function naiveTies(rows: Float32Array[], w: number[], normalize: boolean): Float32Array {
  const n = rows[0]!.length;
  const out = new Float32Array(n);
  for (let e = 0; e < n; e++) {
    const s = Math.sign(rows.reduce((acc, r, i) => acc + w[i]! * r[e]!, 0));
    let num = 0, den = 0;
    rows.forEach((r, i) => {
      const v = r[e]!;
      if (v !== 0 && Math.sign(v) === s) {
        num += w[i]! * v;
        den += w[i]!;
      }
    });
    out[e] = normalize ? (den !== 0 ? num / den : 0) : num;
  }
  return out;
}

void test('trimBelow zeroes |x| < t and keeps ties with t', () => {
  const x = Float32Array.from([0.5, -0.25, 0.25, -1, 0, 0.125]);
  trimBelow(x, 0.25);
  assert.deepEqual([...x], [0.5, -0.25, 0.25, -1, 0, 0]);
  const y = Float32Array.from([1, -2]);
  trimBelow(y, Infinity);
  assert.deepEqual([...y], [0, 0]);
});

for (const K of [2, 3, 8]) {
  for (const normalize of [true, false]) {
    void test(`tiesMergeChunk equals the naive definition (K=${K}, normalize=${normalize})`, () => {
      const r = rng(K * 7 + (normalize ? 1 : 0));
      const n = 5000;
      const rows = Array.from({ length: K }, () =>
        Float32Array.from({ length: n }, () => (r() < 0.4 ? 0 : r() - 0.5)),
      );
      const w = Array.from({ length: K }, (_, i) => (i === 1 ? 2.5 : 0.3 + r()));
      const out = new Float32Array(n);
      tiesMergeChunk(rows, w, normalize, out);
      assert.deepEqual(out, naiveTies(rows, w, normalize));
    });
  }
}

void test('tiesMergeChunk by hand: disjoint mean, no agreement, all-zero', () => {
  const rows = [Float32Array.from([1, 2, 0, 0]), Float32Array.from([3, -4, 0, 5]), Float32Array.from([-1, -1, 0, 0])];
  const out = new Float32Array(4);
  tiesMergeChunk(rows, [1, 1, 1], true, out);
  // e0: Σ = 3 > 0 → mean of 1, 3 = 2; e1: Σ = −3 → mean of −4, −1 = −2.5; e2: nothing → 0; e3: 5.
  assert.deepEqual([...out], [2, -2.5, 0, 5]);
  tiesMergeChunk(rows, [1, 1, 1], false, out);
  assert.deepEqual([...out], [4, -5, 0, 5]);
  tiesMergeChunk(rows, [2, 0.5, 1], true, out);
  // e0: Σ = 2 + 1.5 − 1 > 0 → (2 + 1.5)/2.5 = 1.4; e1: Σ = 4 − 2 − 1 = 1 > 0 → only model 0 agrees → 2.
  assert.ok(Math.abs(out[0]! - 1.4) < 1e-7);
  assert.equal(out[1], 2);
});
