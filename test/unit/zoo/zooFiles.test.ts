// The committed model zoo (samples/workspace/zoo): every file is there, intact and readable through the product's
// checkpoint reader; accuracies clear their floors; one fine-tuned model's accuracy recomputed from the files with an
// independent forward pass matches the manifest; the stored test transforms are the generator's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { openCheckpoint } from '../../../src/core/formats/open';
import { DEFAULT_ZOO_FOLDER } from '../../../scripts/zoo/zooPaths';
import { DEFAULT_ZOO_SETTINGS, MANIFEST_FILE, upToDateManifest, zooBuildHash, type ZooManifest } from '../../../scripts/zoo/zooBuilder';
import { encoderLayerNames, readDenseLayers, readTestData } from '../../../scripts/zoo/zooFiles';
import { taskInputs, zooTasks } from '../../../scripts/zoo/tasks';
import { accuracyReference } from './zooReference';

const zoo = DEFAULT_ZOO_FOLDER;
const manifestPath = join(zoo, MANIFEST_FILE);
const manifest = existsSync(manifestPath) ? (JSON.parse(readFileSync(manifestPath, 'utf8')) as ZooManifest) : undefined;
const needZoo = (): ZooManifest => {
  assert.ok(manifest, `${manifestPath} is missing: run npm run zoo`);
  return manifest;
};

/** Floors the committed zoo must clear (the measured values are in its README). */
const FLOORS = { base: 0.9, fineTuned: 0.85, gainOverProbe: 0.025, tasks: 6, maxBytes: 8 * 1024 * 1024 };

void test('the zoo is built from the current generator and settings, and every file is intact', async () => {
  const m = needZoo();
  assert.equal(m.build_hash, zooBuildHash(DEFAULT_ZOO_SETTINGS), 'the generator changed since the zoo was built: run npm run zoo');
  assert.ok(await upToDateManifest(zoo, m.build_hash), 'a zoo file is missing or was modified: run npm run zoo -- --force');
  assert.ok(m.total_bytes < FLOORS.maxBytes, `the zoo takes ${m.total_bytes} bytes`);
  for (const task of m.tasks) {
    for (const file of ['model.safetensors', 'head.safetensors', 'probe_head.safetensors', 'config.json']) {
      assert.ok(m.files[`${task.name}/${file}`], `${task.name}/${file} not in the manifest`);
    }
  }
});

void test('accuracies clear their floors and every fine-tuned model clearly beats its linear probe', () => {
  const m = needZoo();
  assert.ok(m.tasks.length >= FLOORS.tasks, `${m.tasks.length} tasks`);
  assert.ok(m.base.test_accuracy >= FLOORS.base, `base ${m.base.test_accuracy}`);
  for (const t of m.tasks) {
    assert.ok(t.fine_tuned_accuracy >= FLOORS.fineTuned, `${t.name}: fine-tuned ${t.fine_tuned_accuracy}`);
    assert.ok(t.fine_tuned_accuracy - t.probe_accuracy >= FLOORS.gainOverProbe, `${t.name}: fine-tuned ${t.fine_tuned_accuracy} vs probe ${t.probe_accuracy}`);
  }
});

void test('the checkpoints open through the product reader with PyTorch-style names and shapes', async () => {
  const m = needZoo();
  const widths = [784, ...m.settings.hiddenSizes];
  const expected = encoderLayerNames(m.settings.hiddenSizes.length).flatMap((name, i) => [
    { name: `${name}.weight`, shape: [widths[i + 1], widths[i]] },
    { name: `${name}.bias`, shape: [widths[i + 1]] },
  ]);
  for (const folder of ['base', ...m.tasks.map((t) => t.name)]) {
    const checkpoint = await openCheckpoint(join(zoo, folder)); // a Hugging Face-style folder
    try {
      assert.deepEqual(checkpoint.tensors.map((t) => ({ name: t.name, shape: [...t.shape] })), expected, folder);
      assert.ok(checkpoint.tensors.every((t) => t.dtype === 'F32'));
    } finally {
      await checkpoint.close();
    }
    const config = JSON.parse(readFileSync(join(zoo, folder, 'config.json'), 'utf8')) as { hidden_sizes: number[]; head: { num_labels: number } };
    assert.deepEqual(config.hidden_sizes, m.settings.hiddenSizes);
    const [head] = await readDenseLayers(join(zoo, folder, 'head.safetensors'), ['head']);
    assert.equal(head!.outputs, config.head.num_labels);
    assert.equal(head!.inputs, widths[widths.length - 1]);
  }
});

void test('the stored test transforms are the generator tasks, and a fine-tuned accuracy recomputes from the files', async () => {
  const m = needZoo();
  const stored = await readTestData(join(zoo, 'data', 'test.safetensors'));
  assert.equal(stored.digits.count, m.data.test);
  const generated = zooTasks(m.settings.taskSeed);
  for (const name of m.settings.tasks) {
    const s = stored.tasks.find((t) => t.name === name);
    const g = generated.find((t) => t.name === name);
    assert.ok(s && g, name);
    assert.deepEqual(s.pixelIndex, g.pixelIndex, name);
    assert.deepEqual(s.invertMask, g.invertMask, name);
    assert.deepEqual(s.labelOfDigit, g.labelOfDigit, name);
  }
  // `permute` is the task the base encoder knows least. The reference pass is float64, the manifest's float32
  // (TensorFlow.js): they may disagree on an image whose two best logits nearly tie, so allow one image.
  const name = 'permute';
  const result = m.tasks.find((t) => t.name === name)!;
  const encoder = await readDenseLayers(join(zoo, name), encoderLayerNames(m.settings.hiddenSizes.length));
  const [head] = await readDenseLayers(join(zoo, name, 'head.safetensors'), ['head']);
  const { inputs, labels } = taskInputs(stored.tasks.find((t) => t.name === name)!, stored.digits);
  const recomputed = accuracyReference(encoder, head!, inputs, labels);
  assert.ok(Math.abs(recomputed - result.fine_tuned_accuracy) <= 1 / m.data.test + 1e-12, `recomputed ${recomputed}, manifest ${result.fine_tuned_accuracy}`);
});
