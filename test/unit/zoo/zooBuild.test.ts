// The zoo generator: a tiny variant built twice gives identical bytes, a second build is served from the cache,
// and a damaged file forces a rebuild; the task transforms and the seeded generator behave as documented.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildZoo, TINY_ZOO_SETTINGS } from '../../../scripts/zoo/zooBuilder';
import { taskInputs, zooTasks } from '../../../scripts/zoo/tasks';
import { SeededRandom } from '../../../scripts/zoo/seededRandom';
import { niceTicks } from '../../../scripts/zoo/accuracyPlot';

const scratch = mkdtempSync(join(tmpdir(), 'awd-zoo-test-'));
after(() => rmSync(scratch, { recursive: true, force: true }));
const quiet = { log: () => undefined };

void test('a tiny zoo built twice is byte-identical; the second build of the same folder is cached', async () => {
  const a = await buildZoo(TINY_ZOO_SETTINGS, join(scratch, 'a'), quiet);
  const b = await buildZoo(TINY_ZOO_SETTINGS, join(scratch, 'b'), quiet);
  assert.equal(a.cached, false);
  assert.equal(b.cached, false);
  const files = Object.keys(a.manifest.files);
  assert.deepEqual(Object.keys(b.manifest.files), files);
  assert.ok(files.includes('base/model.safetensors') && files.includes('data/test.safetensors') && files.includes('rot90/head.safetensors'));
  for (const f of [...files, 'zoo-manifest.json']) {
    assert.ok(readFileSync(join(scratch, 'a', f)).equals(readFileSync(join(scratch, 'b', f))), `${f} differs between two builds`);
  }
  const again = await buildZoo(TINY_ZOO_SETTINGS, join(scratch, 'a'), quiet);
  assert.equal(again.cached, true);

  // A modified file no longer matches the manifest's hash: the next build replaces it with the same bytes.
  const damaged = join(scratch, 'a', 'rot90', 'model.safetensors');
  const original = readFileSync(damaged);
  writeFileSync(damaged, Buffer.concat([original.subarray(0, original.length - 4), Buffer.alloc(4)]));
  const rebuilt = await buildZoo(TINY_ZOO_SETTINGS, join(scratch, 'a'), quiet);
  assert.equal(rebuilt.cached, false);
  assert.ok(readFileSync(damaged).equals(original));
});

void test('the builder refuses to replace a non-empty folder that is not a zoo', async () => {
  writeFileSync(join(scratch, 'keep.txt'), 'x');
  await assert.rejects(buildZoo(TINY_ZOO_SETTINGS, scratch, quiet), /refusing to replace/);
  assert.equal(readFileSync(join(scratch, 'keep.txt'), 'utf8'), 'x');
});

/** A 28×28 test image whose pixel at (r, c) is (r · 28 + c) mod 256, so every pixel's origin is recognisable. */
function numberedImage(): { count: number; pixels: Uint8Array; digits: Uint8Array } {
  return { count: 1, pixels: Uint8Array.from({ length: 784 }, (_, i) => i % 256), digits: Uint8Array.of(7) };
}

void test('task transforms match hand-computed pixels', () => {
  const tasks = new Map(zooTasks(1).map((t) => [t.name, t]));
  const image = numberedImage();
  const at = (name: string, r: number, c: number): number => Math.round(taskInputs(tasks.get(name)!, image).inputs[r * 28 + c]! * 255);
  // rot90 clockwise: the output's top row is the input's left column read bottom-up.
  assert.equal(at('rot90', 0, 0), (27 * 28 + 0) % 256);
  assert.equal(at('rot90', 0, 27), 0);
  assert.equal(at('flip_lr', 3, 0), (3 * 28 + 27) % 256);
  assert.equal(at('flip_ud', 0, 5), (27 * 28 + 5) % 256);
  assert.equal(at('invert', 2, 2), 255 - ((2 * 28 + 2) % 256));
  // checker inverts the tiles whose (tile row + tile column) is odd: (0, 7) is in tile (0, 1).
  assert.equal(at('checker', 0, 0), 0);
  assert.equal(at('checker', 0, 7), 255 - 7);
  assert.equal(at('shift', 3, 10), 0); // vacated by the shift down
  assert.equal(at('shift', 10, 10), (6 * 28 + 6) % 256);
  for (const t of tasks.values()) {
    assert.equal(taskInputs(t, image).labels[0], 7); // every task keeps the digit classes
    if (t.name !== 'shift') assert.deepEqual([...t.pixelIndex].sort((a, b) => a - b), Array.from({ length: 784 }, (_, i) => i), `${t.name} is a permutation`);
  }
  // Four quarter turns are the identity.
  const rot = tasks.get('rot90')!.pixelIndex;
  const four = Int32Array.from({ length: 784 }, (_, i) => rot[rot[rot[rot[i]!]!]!]!);
  assert.deepEqual(four, Int32Array.from({ length: 784 }, (_, i) => i));
  // The tile shuffle moves whole 7×7 tiles and no tile stays in place.
  const tiles = tasks.get('tiles')!.pixelIndex;
  for (let tile = 0; tile < 16; tile++) {
    const r0 = Math.floor(tile / 4) * 7;
    const c0 = (tile % 4) * 7;
    const src = tiles[r0 * 28 + c0]!;
    assert.ok(src % 7 === 0 && Math.floor(src / 28) % 7 === 0, 'tile corners map to tile corners');
    assert.notEqual(src, r0 * 28 + c0);
    assert.equal(tiles[(r0 + 6) * 28 + c0 + 6], src + 6 * 28 + 6);
  }
});

void test('the seeded generator is reproducible, uniform enough, and its normals have unit variance', () => {
  const a = new SeededRandom(42);
  const b = new SeededRandom(42);
  const xs = Array.from({ length: 20000 }, () => a.next());
  assert.deepEqual(xs.slice(0, 100), Array.from({ length: 100 }, () => b.next()));
  assert.ok(xs.every((x) => x >= 0 && x < 1));
  const m = xs.reduce((s, x) => s + x, 0) / xs.length;
  assert.ok(Math.abs(m - 0.5) < 0.01, `mean ${m}`);
  const normals = Array.from({ length: 20000 }, () => a.nextNormal());
  const mu = normals.reduce((s, x) => s + x, 0) / normals.length;
  const variance = normals.reduce((s, x) => s + (x - mu) ** 2, 0) / normals.length;
  assert.ok(Math.abs(mu) < 0.03 && Math.abs(variance - 1) < 0.05, `mean ${mu}, variance ${variance}`);
  const p = new SeededRandom(1).permutation(1000);
  assert.deepEqual([...p].sort((x, y) => x - y), Array.from({ length: 1000 }, (_, i) => i));
});

void test('plot ticks are round numbers covering the range', () => {
  assert.deepEqual(niceTicks(0, 1, 5), [0, 0.2, 0.4, 0.6, 0.8, 1]);
  assert.deepEqual(niceTicks(47.3, 93.1, 6), [40, 50, 60, 70, 80, 90, 100]);
  assert.deepEqual(niceTicks(0, 2, 5), [0, 0.5, 1, 1.5, 2]);
});
