// The similarity analysis against float64 references computed from the decoded models: cosines globally and per
// tensor, AWD's cosines after disentanglement recomputed from τ̂ = τ − Σ a_k τ_k directly, and re-analysis from the
// kept Gram matrices.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { planSimilarity } from '../../../src/core/merge/plan';
import { analyzeSimilarity, reanalyzeAwd } from '../../../src/core/analysis/analyze';
import { solveAwd } from '../../../src/core/merge/awd';
import { CancelledError } from '../../../src/core/errors';
import { floatTensors, maxRelativeError, tempFolder, writeModelSet, type FixtureTensor } from '../merge/executeFixtures';

const folder = tempFolder('awd-analyze-');
after(folder.cleanup);

const TENSORS: FixtureTensor[] = [
  { name: 'a.weight', shape: [9, 11], dtype: 'F32' },
  { name: 'a.bias', shape: [11], dtype: 'BF16' },
  { name: 'ids', shape: [4], dtype: 'I64' },
  { name: 'b.weight', shape: [3, 17], dtype: 'F32' },
];
const SELECTED = ['a.weight', 'a.bias', 'b.weight'];

/** τ per model per tensor (float32, as the engine computes it). */
function taskVectors(base: string, models: string[]): Map<string, Float32Array[]> {
  const b = floatTensors(base);
  const ms = models.map(floatTensors);
  return new Map(SELECTED.map((n) => [n, ms.map((m) => Float32Array.from(m.get(n)!, (v, e) => v - b.get(n)![e]!))]));
}

function cosineMatrix(rows: Float64Array[]): number[][] {
  const dot = (x: Float64Array, y: Float64Array): number => x.reduce((s, v, e) => s + v * y[e]!, 0);
  return rows.map((x) => rows.map((y) => {
    const d = Math.sqrt(dot(x, x) * dot(y, y));
    return d > 0 ? dot(x, y) / d : 0;
  }));
}

function concatenated(tau: Map<string, Float32Array[]>, K: number): Float64Array[] {
  return Array.from({ length: K }, (_, i) => Float64Array.from(SELECTED.flatMap((n) => Array.from(tau.get(n)![i]!))));
}

void test('cosines globally and per tensor match a float64 reference (K = 4, chunked)', async () => {
  const dir = join(folder.dir, 'plain');
  mkdirSync(dir);
  const set = writeModelSet(dir, { K: 4, tensors: TENSORS, seed: 21, shared: 0.1 });
  const plan = await planSimilarity(set.base, set.models);
  try {
    const report = await analyzeSimilarity(plan, { perTensor: true, chunkElements: 10 });
    const tau = taskVectors(set.base, set.models);
    const want = cosineMatrix(concatenated(tau, 4));
    assert.ok(maxRelativeError(report.cosine.flat(), want.flat()) < 1e-9);
    for (const n of SELECTED) {
      const wantT = cosineMatrix(tau.get(n)!.map((r) => Float64Array.from(r)));
      assert.ok(maxRelativeError(report.per_tensor![n]!.flat(), wantT.flat()) < 1e-9, n);
    }
    assert.deepEqual(report.tensor_grams.map((g) => g.name), SELECTED, 'non-float tensors are not analysed');
    assert.equal(report.models.length, 4);
    assert.equal(report.awd, undefined);
    assert.equal(report.elements, 99 + 11 + 51);
  } finally {
    await plan.close();
  }
});

void test('with AWD: coefficients from the solver, cos after equals the cosines of τ − Σ a_k τ_k, for both granularities', async () => {
  const dir = join(folder.dir, 'awd');
  mkdirSync(dir);
  const K = 3;
  const set = writeModelSet(dir, { K, tensors: TENSORS, seed: 22, shared: 0.15 });
  const plan = await planSimilarity(set.base, set.models);
  const tau = taskVectors(set.base, set.models);
  try {
    const settings = { alpha: 0.1, learning_rate: 0.02, iterations: 100, norm: 'l2' as const };
    const model = await analyzeSimilarity(plan, { awd: { ...settings, granularity: 'model' }, chunkElements: 7 });
    const rows = concatenated(tau, K);
    const gram = new Float64Array(K * K);
    rows.forEach((x, i) => rows.forEach((y, j) => (gram[i * K + j] = x.reduce((s, v, e) => s + v * y[e]!, 0))));
    const want = solveAwd(gram, K, { alpha: 0.1, learningRate: 0.02, iterations: 100, norm: 'l2' });
    const awd = model.awd!;
    assert.ok(maxRelativeError(awd.coefficients!, want.coefficients) < 1e-9);
    const a = awd.coefficients!;
    const disentangled = rows.map((x) => Float64Array.from(x, (v, e) => v - rows.reduce((s, r, k) => s + a[k]! * r[e]!, 0)));
    assert.ok(maxRelativeError(awd.cos_after.flat(), cosineMatrix(disentangled).flat()) < 1e-9);
    assert.ok(awd.mean_abs_cos_after < awd.mean_abs_cos_before);
    assert.equal(awd.loss.length, 101);
    assert.ok(maxRelativeError(awd.effective_ta_coefficients!, Array.from(a, (ak) => 1 - K * ak)) < 1e-14);
    const deltaNorm = Math.sqrt(rows[0]!.reduce((s, _, e) => s + rows.reduce((t, r, k) => t + a[k]! * r[e]!, 0) ** 2, 0));
    assert.ok(Math.abs(awd.delta_norm - deltaNorm) < 1e-9 * deltaNorm);

    const perTensor = await analyzeSimilarity(plan, { awd: { ...settings, granularity: 'tensor' }, perTensor: true, chunkElements: 7 });
    const pawd = perTensor.awd!;
    assert.equal(pawd.coefficients, undefined, 'granularity tensor: one δ per tensor, coefficients per tensor');
    let deltaSquared = 0;
    const after: Float64Array[] = Array.from({ length: K }, () => new Float64Array(0));
    for (const n of SELECTED) {
      const t = pawd.per_tensor[n]!;
      const at = t.coefficients!;
      const r = tau.get(n)!.map((x) => Float64Array.from(x));
      const delta = Float64Array.from(r[0]!, (_, e) => r.reduce((s, x, k) => s + at[k]! * x[e]!, 0));
      deltaSquared += delta.reduce((s, v) => s + v * v, 0);
      const hat = r.map((x) => Float64Array.from(x, (v, e) => v - delta[e]!));
      assert.ok(maxRelativeError(t.cos_after.flat(), cosineMatrix(hat).flat()) < 1e-9, n);
      hat.forEach((h, i) => (after[i] = Float64Array.from([...after[i]!, ...h])));
    }
    assert.ok(Math.abs(pawd.delta_norm - Math.sqrt(deltaSquared)) < 1e-9 * Math.sqrt(deltaSquared));
    assert.ok(maxRelativeError(pawd.cos_after.flat(), cosineMatrix(after).flat()) < 1e-9, 'global cos after from the per-tensor δ_t');

    // Re-running AWD from the kept Gram matrices gives the same as a fresh pass.
    const again = reanalyzeAwd(model, { ...settings, granularity: 'tensor' }, true);
    assert.ok(maxRelativeError(again.awd!.cos_after.flat(), pawd.cos_after.flat()) < 1e-12);
    assert.equal(reanalyzeAwd(model, undefined).awd, undefined);
  } finally {
    await plan.close();
  }
});

void test('the analysis stops on cancel', async () => {
  const dir = join(folder.dir, 'cancel');
  mkdirSync(dir);
  const set = writeModelSet(dir, { K: 2, tensors: TENSORS, seed: 23 });
  const plan = await planSimilarity(set.base, set.models);
  try {
    const controller = new AbortController();
    controller.abort();
    await assert.rejects(analyzeSimilarity(plan, { signal: controller.signal, chunkElements: 5 }), CancelledError);
  } finally {
    await plan.close();
  }
});
