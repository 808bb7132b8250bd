// `npm run eval --quick` end to end on the committed zoo: every method runs through the product's merge CLI with
// and without AWD, and the task-arithmetic point scores what θ₀ + λ Σ τ_i computed here from the files scores.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_ZOO_FOLDER } from '../../../scripts/zoo/zooPaths';
import { evaluateZoo } from '../../../scripts/zoo/eval';
import { mergeQualityMarkdown } from '../../../scripts/zoo/mergeQualityReport';
import { encoderLayerNames, readDenseLayers, readTestData } from '../../../scripts/zoo/zooFiles';
import { selectDigits } from '../../../scripts/zoo/digits';
import { taskInputs } from '../../../scripts/zoo/tasks';
import { classifierAccuracy, type DenseLayer } from '../../../scripts/zoo/mlp';
import { MANIFEST_FILE } from '../../../scripts/zoo/zooBuilder';

const zoo = DEFAULT_ZOO_FOLDER;

void test('the quick evaluation runs every method with and without AWD through the merge CLI', { timeout: 180_000 }, async () => {
  assert.ok(existsSync(join(zoo, MANIFEST_FILE)), 'no zoo: run npm run zoo');
  const result = await evaluateZoo({ quick: true, zoo, log: () => undefined });
  const methods = ['task_arithmetic', 'ties', 'dare_linear', 'dare_ties'];
  assert.deepEqual([...new Set(result.points.map((p) => p.method))], methods);
  assert.equal(result.points.length, methods.length * 2);
  assert.equal(result.test_images, 500);
  for (const p of result.points) {
    assert.equal(p.accuracies.length, result.tasks.length);
    assert.ok(p.accuracies.every((a) => a >= 0 && a <= 1));
    const normalized = p.accuracies.reduce((s, a, i) => s + a / result.fine_tuned[i]!, 0) / p.accuracies.length;
    assert.ok(Math.abs(p.normalized - normalized) < 1e-12);
    assert.ok(p.average > 0.3, `${p.method} λ=${p.lambda}${p.awd ? ' +AWD' : ''}: average ${p.average} is near chance`);
  }
  assert.ok(result.similarity.mean_abs_cos_before >= 0 && result.similarity.mean_abs_cos_before < 1);
  assert.equal(result.similarity.cos_before.length, result.tasks.length);

  // Task arithmetic recomputed here: θ = θ₀ + λ Σ τ_i in float64, rounded to float32 once.
  const ta = result.points.find((p) => p.method === 'task_arithmetic' && !p.awd)!;
  const names = encoderLayerNames(2);
  const base = await readDenseLayers(join(zoo, 'base'), names);
  const tuned = await Promise.all(result.tasks.map((t) => readDenseLayers(join(zoo, t), names)));
  const merged: DenseLayer[] = base.map((layer, l) => {
    const combine = (key: 'weight' | 'bias'): Float32Array =>
      Float32Array.from(layer[key], (b, k) => b + ta.lambda * tuned.reduce((s, m) => s + (m[l]![key][k]! - b), 0));
    return { ...layer, weight: combine('weight'), bias: combine('bias') };
  });
  const stored = await readTestData(join(zoo, 'data', 'test.safetensors'));
  const digits = selectDigits(stored.digits, Array.from({ length: result.test_images }, (_, i) => i));
  for (const [i, name] of result.tasks.entries()) {
    const { inputs, labels } = taskInputs(stored.tasks.find((t) => t.name === name)!, digits);
    const [head] = await readDenseLayers(join(zoo, name, 'head.safetensors'), ['head']);
    const expected = classifierAccuracy(merged, head!, { inputs, features: 784, labels, classes: 10 });
    // The CLI subtracts in float32, this reference in float64: a near-tie may flip one image.
    assert.ok(Math.abs(expected - ta.accuracies[i]!) <= 1 / result.test_images + 1e-12, `${name}: CLI merge ${ta.accuracies[i]}, reference ${expected}`);
  }

  const markdown = mergeQualityMarkdown(result);
  assert.match(markdown, /Quick run/);
  for (const g of result.grids) assert.ok(markdown.includes(g.label), g.label);
});
