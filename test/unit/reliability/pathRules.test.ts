// The path rules (docs/reliability.md): an index's shard paths must stay inside the index's folder as written
// (links the user made inside it are followed, as the Hugging Face cache is built of them); a config's model paths
// may point anywhere the user can read, but its out_path may not overwrite an input or lie inside an input folder.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AwdError } from '../../../src/core/errors';
import { openCheckpoint } from '../../../src/core/formats/open';
import { parseMergeConfig } from '../../../src/core/config/load';
import { planMerge } from '../../../src/core/merge/plan';
import { buildSafetensors, bytesOf } from '../formats/testFiles';
import { tempFolder } from '../merge/executeFixtures';

const folder = tempFolder('awd-paths-');
after(folder.cleanup);
const shard = (names: string[]): Uint8Array => buildSafetensors(names.map((name) => ({ name, dtype: 'F32', shape: [2], data: bytesOf(new Float32Array([1, 2])) })));

void describe('shard paths of an index', () => {
  const dir = join(folder.dir, 'index');
  const outside = join(folder.dir, 'outside.safetensors');
  mkdirSync(join(dir, 'sub'), { recursive: true });
  writeFileSync(outside, shard(['c']));
  writeFileSync(join(dir, 'a.safetensors'), shard(['a']));
  writeFileSync(join(dir, 'sub', 'c.safetensors'), shard(['c']));
  symlinkSync(outside, join(dir, 'linked.safetensors'));
  const index = (c: string): string => {
    const file = join(dir, `model-${Math.random().toString(36).slice(2)}.safetensors.index.json`);
    writeFileSync(file, JSON.stringify({ weight_map: { a: 'a.safetensors', c } }));
    return file;
  };

  for (const escape of ['../outside.safetensors', outside, 'sub/../../outside.safetensors', '..', '.']) {
    void it(`"${escape}" leaves the index's folder: refused`, async () => {
      await assert.rejects(openCheckpoint(index(escape)), (e: unknown) => e instanceof AwdError && /leaves the index's folder/.test(e.message));
    });
  }

  void it('a sub-folder path and a link made inside the folder are followed', async () => {
    for (const c of ['sub/c.safetensors', 'linked.safetensors']) {
      const checkpoint = await openCheckpoint(index(c));
      assert.deepEqual(checkpoint.tensors.map((t) => t.name).sort(), ['a', 'c']);
      await checkpoint.close();
    }
  });
});

void describe('paths of a merge config', () => {
  const dir = join(folder.dir, 'config');
  const elsewhere = join(folder.dir, 'elsewhere');
  mkdirSync(dir, { recursive: true });
  mkdirSync(join(elsewhere, 'hf'), { recursive: true });
  const model = (name: string, shift: number): string => {
    const file = join(elsewhere, name);
    writeFileSync(file, buildSafetensors([{ name: 'w', dtype: 'F32', shape: [3], data: bytesOf(new Float32Array([shift, 1, 2])) }]));
    return file;
  };
  const base = model('base.safetensors', 0);
  const a = model('a.safetensors', 1);
  writeFileSync(join(elsewhere, 'hf', 'config.json'), '{}');
  writeFileSync(join(elsewhere, 'hf', 'model.safetensors'), buildSafetensors([{ name: 'w', dtype: 'F32', shape: [3], data: bytesOf(new Float32Array([2, 1, 2])) }]));
  symlinkSync(elsewhere, join(dir, 'link-to-elsewhere'));
  const plan = async (outPath: string, models = [a, join(elsewhere, 'hf')]) =>
    planMerge(parseMergeConfig(JSON.stringify({ merge_method: 'task_arithmetic', base_model: base, models: models.map((m) => ({ model: m })), out_path: outPath }), join(dir, 'x.merge.json')));

  void it('inputs outside the config folder (absolute, or ../ relative) are allowed', async () => {
    const p = await plan(join(dir, 'out', 'merged.safetensors'), [a, '../elsewhere/hf']);
    assert.equal(p.models.length, 2);
    await p.close();
  });

  const forbidden: [string, () => string][] = [
    ['the base model itself', () => base],
    ['a model through a symlinked folder', () => join(dir, 'link-to-elsewhere', 'a.safetensors')],
    ['the weights file of an input folder', () => join(elsewhere, 'hf', 'model.safetensors')],
    ['a new file inside an input folder', () => join(elsewhere, 'hf', 'merged.safetensors')],
  ];
  for (const [what, outPath] of forbidden) {
    void it(`out_path onto ${what}: refused before anything is opened for writing`, async () => {
      await assert.rejects(plan(outPath()), (e: unknown) => e instanceof AwdError && /overwrite|inside the folder/.test(e.message));
    });
  }
});
