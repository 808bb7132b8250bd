// Cosines from a Gram matrix against cosines computed directly from the vectors, and the zero-norm conventions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cosineFromGram, disentangledGram, meanAbsOffDiagonal } from '../../../src/core/analysis/similarity';

function dot(x: readonly number[], y: readonly number[]): number {
  return x.reduce((s, v, e) => s + v * y[e]!, 0);
}

void test('cosineFromGram equals the cosines of the vectors, zero vectors give 0, diagonal 1 where norm > 0', () => {
  const rows = [
    [1, 2, 3, 4],
    [0, 0, 0, 0],
    [-1, 0.5, 2, 0],
    [3, 1, -2, 5],
  ];
  const K = rows.length;
  const gram = new Float64Array(K * K);
  for (let i = 0; i < K; i++) for (let j = 0; j < K; j++) gram[i * K + j] = dot(rows[i]!, rows[j]!);
  const cos = cosineFromGram(gram, K);
  for (let i = 0; i < K; i++) {
    for (let j = 0; j < K; j++) {
      const ni = Math.sqrt(dot(rows[i]!, rows[i]!));
      const nj = Math.sqrt(dot(rows[j]!, rows[j]!));
      const expected = ni === 0 || nj === 0 ? 0 : i === j ? 1 : dot(rows[i]!, rows[j]!) / (ni * nj);
      assert.ok(Math.abs(cos[i * K + j]! - expected) < 1e-15, `cos ${i},${j}`);
    }
  }
  assert.equal(cos[1 * K + 1], 0);
});

void test('cosineFromGram clamps rounding just outside [−1, 1]', () => {
  const cos = cosineFromGram(Float64Array.from([1, 1 + 1e-15, 1 + 1e-15, 1]), 2);
  assert.equal(cos[1], 1);
});

void test('meanAbsOffDiagonal averages |cos| over pairs i < j', () => {
  const cos = Float64Array.from([1, -0.2, 0.4, -0.2, 1, 0.0, 0.4, 0.0, 1]);
  assert.ok(Math.abs(meanAbsOffDiagonal(cos, 3) - 0.2) < 1e-15);
  assert.equal(meanAbsOffDiagonal(Float64Array.from([1]), 1), 0);
});

void test('disentangledGram with a = 0 is G, with a = e_0 makes row 0 zero', () => {
  const g = Float64Array.from([4, 1, 1, 9]);
  assert.deepEqual([...disentangledGram(g, [0, 0], 2)], [4, 1, 1, 9]);
  // τ̂_0 = τ_0 − τ_0 = 0, τ̂_1 = τ_1 − τ_0: ‖τ_1 − τ_0‖² = 9 − 2 + 4 = 11.
  assert.deepEqual([...disentangledGram(g, [1, 0], 2)], [0, 0, 0, 11]);
});
