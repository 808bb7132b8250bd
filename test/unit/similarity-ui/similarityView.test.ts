import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { groupByPrefix, modelLabels, namePrefix, reportFromSource, usefulPrefixDepths, viewFromReport } from '../../../src/extension/similarityPanel/similarityView';
import { AWD, cosine, randomTaskVectors, reportOf } from './randomReport';

void test('name prefixes and groups by the first parts of a tensor name', () => {
  assert.equal(namePrefix('encoder.layer.3.attn.q.weight', 3), 'encoder.layer.3');
  assert.equal(namePrefix('bias', 2), 'bias');
  const names = ['encoder.layer.0.q.weight', 'encoder.layer.0.q.bias', 'encoder.layer.1.q.weight', 'head.weight'];
  assert.deepEqual(groupByPrefix(names, 3), [
    { name: 'encoder.layer.0', members: [0, 1] },
    { name: 'encoder.layer.1', members: [2] },
    { name: 'head.weight', members: [3] },
  ]);
  assert.deepEqual(groupByPrefix(names, 0).map((g) => g.members), [[0], [1], [2], [3]]);
  // depth 1 gives 2 rows (encoder, head); 2 gives the same 2 rows (skipped); 3 gives 3 rows; 4 gives 4 = every tensor (not useful).
  assert.deepEqual(usefulPrefixDepths(names), [1, 3]);
});

void test('model labels are file names, with the folder when those collide, m1..mK as the last resort', () => {
  assert.deepEqual(modelLabels(['/a/ft-x.safetensors', '/a/ft-y.bin']), ['ft-x', 'ft-y']);
  assert.deepEqual(modelLabels(['/z/flip/model.safetensors', '/z/rot/model.safetensors']), ['flip/model', 'rot/model']);
  assert.deepEqual(modelLabels(['/p/q/model.safetensors', '/r/q/model.safetensors']), ['m1', 'm2']);
});

void test('the view holds the report numbers exactly, and layer rows are the cosines of the concatenated task vectors', () => {
  const names = ['block.0.attn.weight', 'block.0.attn.bias', 'block.0.mlp.weight', 'block.1.attn.weight', 'block.1.mlp.weight', 'head.weight'];
  const vectors = randomTaskVectors(5, names, 42);
  const report = reportOf(vectors, AWD);
  const view = viewFromReport(report);
  const K = 5;
  assert.deepEqual(Array.from(view.cos), report.cosine.flat());
  assert.deepEqual(Array.from(view.awd!.cosAfter), report.awd!.cos_after.flat());
  const tensors = view.levels[0]!;
  assert.equal(tensors.depth, 0);
  names.forEach((n, r) => {
    assert.deepEqual(Array.from(tensors.cos.subarray(r * K * K, (r + 1) * K * K)), report.per_tensor![n]!.flat());
    assert.deepEqual(Array.from(tensors.cosAfter!.subarray(r * K * K, (r + 1) * K * K)), report.awd!.per_tensor[n]!.cos_after.flat());
    assert.equal(tensors.meanAbs[r], report.awd!.per_tensor[n]!.mean_abs_cos_before);
  });

  // Reference: concatenate the group's task vectors, and τ̂_k = τ_k − Σ_m a_m τ_m, then take plain cosines.
  const a = report.awd!.coefficients!;
  const level = view.levels.find((l) => l.depth === 2)!;
  assert.deepEqual(level.names, ['block.0', 'block.1', 'head.weight']);
  level.names.forEach((g, r) => {
    const members = vectors.tensors.filter((t) => t.name === g || t.name.startsWith(`${g}.`));
    const concat = (k: number): number[] => members.flatMap((t) => Array.from(t.tau[k]!));
    const disentangled = (k: number): number[] => members.flatMap((t) => Array.from(t.tau[k]!, (_, i) => t.tau[k]![i]! - a.reduce((s, am, m) => s + am * t.tau[m]![i]!, 0)));
    for (let i = 0; i < K; i++) {
      for (let j = 0; j < K; j++) {
        const expected = i === j ? 1 : cosine(concat(i), concat(j));
        assert.ok(Math.abs(level.cos[r * K * K + i * K + j]! - expected) < 1e-12, `${g} cos[${i}][${j}]`);
        const expectedAfter = i === j ? 1 : cosine(disentangled(i), disentangled(j));
        assert.ok(Math.abs(level.cosAfter![r * K * K + i * K + j]! - expectedAfter) < 1e-9, `${g} cos after[${i}][${j}]`);
      }
      assert.ok(Math.abs(level.norms[r * K + i]! - Math.sqrt(concat(i).reduce((s, x) => s + x * x, 0))) < 1e-12);
    }
  });
});

void test('a report rebuilt from the kept Gram matrices equals the original, and AWD can be re-run or dropped', () => {
  const report = reportOf(randomTaskVectors(4, ['a.w', 'a.b', 'b.w'], 9), AWD);
  const view = viewFromReport(report);
  const rebuilt = reportFromSource(view.source);
  assert.deepEqual({ ...rebuilt, seconds: 0 }, { ...report, seconds: 0 });
  const other = reportFromSource(view.source, { ...AWD, granularity: 'tensor', iterations: 20 });
  assert.equal(other.awd!.settings.granularity, 'tensor');
  assert.deepEqual(other.cosine, report.cosine);
  const tensorView = viewFromReport(other);
  assert.equal(tensorView.awd!.coefficients, undefined, 'per-tensor AWD has no model-level coefficients');
  assert.deepEqual(Array.from(tensorView.levels[0]!.cosAfter!.subarray(0, 16)), other.awd!.per_tensor['a.w']!.cos_after.flat());
  const none = viewFromReport(reportFromSource(view.source, null));
  assert.equal(none.awd, undefined);
});
