// Format dispatch by content, sharded indexes and Hugging Face folders.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AwdError } from '../../../src/core/errors';
import { detectFormat, openCheckpoint } from '../../../src/core/formats/open';
import { buildSafetensors, bytesOf, tempFolder } from './testFiles';

const tmp = tempFolder();
after(tmp.cleanup);
const NUMPY = join(__dirname, '../../fixtures/formats/numpy');
let counter = 0;
function folder(): string {
  const d = join(tmp.dir, `d${counter++}`);
  mkdirSync(d);
  return d;
}

function shard(names: string[], start = 0): Uint8Array {
  return buildSafetensors(
    names.map((name, i) => ({ name, dtype: 'F32', shape: [2], data: bytesOf(new Float32Array([start + i, -(start + i)])) })),
    { format: 'pt' },
  );
}

function index(weightMap: Record<string, string> | string): string {
  return typeof weightMap === 'string' ? weightMap : JSON.stringify({ metadata: { total_size: 32 }, weight_map: weightMap });
}

async function rejects(path: string, pattern: RegExp): Promise<void> {
  await assert.rejects(openCheckpoint(path), (e: unknown) => {
    assert.ok(e instanceof AwdError, `AwdError expected, got ${String(e)}`);
    assert.match(e.message, pattern);
    return true;
  });
}

void describe('openCheckpoint: by content, not extension', () => {
  void it('reads a safetensors file whatever its name, and npy/npz renamed', async () => {
    const d = folder();
    writeFileSync(join(d, 'weights.bin'), shard(['a']));
    assert.equal(await detectFormat(join(d, 'weights.bin')), 'safetensors');
    const c = await openCheckpoint(join(d, 'weights.bin'));
    assert.deepEqual([...(await c.readFloat32('a'))], [0, -0]);
    await c.close();
    copyFileSync(join(NUMPY, 'stored.npz'), join(d, 'arrays.dat'));
    copyFileSync(join(NUMPY, 'u8.npy'), join(d, 'u8.safetensors'));
    assert.equal(await detectFormat(join(d, 'arrays.dat')), 'npz');
    assert.equal(await detectFormat(join(d, 'u8.safetensors')), 'npy');
  });

  void it('refuses unknown content, missing paths, and zips that are not checkpoints', async () => {
    const d = folder();
    writeFileSync(join(d, 'notes.txt'), 'hello, this is text');
    await rejects(join(d, 'notes.txt'), /not a checkpoint format we recognise.*Supported/);
    await rejects(join(d, 'missing.safetensors'), /no such file/);
    writeFileSync(join(d, 'empty.dat'), new Uint8Array(0));
    await rejects(join(d, 'empty.dat'), /not a checkpoint format/);
    // Unrecognised content with a known extension goes to that reader for a precise error.
    writeFileSync(join(d, 'empty.bin'), new Uint8Array(0));
    await rejects(join(d, 'empty.bin'), /not a PyTorch checkpoint/);
    writeFileSync(join(d, 'bad.safetensors'), new Uint8Array([1, 2, 3]));
    await rejects(join(d, 'bad.safetensors'), /too short for a safetensors header/);
    writeFileSync(join(d, 'config.json'), '{"hidden_size": 4}');
    await rejects(join(d, 'config.json'), /not a checkpoint format/);
  });
});

void describe('sharded safetensors', () => {
  void it('presents all shards as one checkpoint', async () => {
    const d = folder();
    writeFileSync(join(d, 'model-00001-of-00002.safetensors'), shard(['a', 'b']));
    writeFileSync(join(d, 'model-00002-of-00002.safetensors'), shard(['c'], 10));
    const indexPath = join(d, 'model.safetensors.index.json');
    writeFileSync(indexPath, index({ c: 'model-00002-of-00002.safetensors', a: 'model-00001-of-00002.safetensors', b: 'model-00001-of-00002.safetensors' }));
    assert.equal(await detectFormat(indexPath), 'safetensors-sharded');
    const c = await openCheckpoint(indexPath);
    try {
      assert.equal(c.format, 'safetensors-sharded');
      assert.equal(c.path, indexPath);
      assert.deepEqual(c.tensors.map((t) => t.name), ['a', 'b', 'c']);
      assert.equal(c.files.length, 3);
      assert.deepEqual(c.metadata, { format: 'pt', total_size: '32' });
      assert.deepEqual([...(await c.readFloat32('c'))], [10, -10]);
      assert.deepEqual([...(await c.readFloat32('b', 1))], [-1]);
      await assert.rejects(c.readBytes('zz'), /no such tensor/);
    } finally {
      await c.close();
    }
  });

  void it('refuses a missing shard, a tensor listed twice, a tensor in two shards, a wrong shard and escaping paths', async () => {
    const d = folder();
    writeFileSync(join(d, 's1.safetensors'), shard(['a', 'b']));
    writeFileSync(join(d, 's2.safetensors'), shard(['b', 'c']));
    const cases: [string, string, RegExp][] = [
      ['missing', index({ a: 's1.safetensors', x: 'nope.safetensors' }), /nope\.safetensors.*missing/],
      ['twice', '{"weight_map": {"a": "s1.safetensors", "a": "s1.safetensors"}}', /"a".*listed twice/],
      ['two shards', index({ a: 's1.safetensors', c: 's2.safetensors' }), /"b".*stored in two shards/],
      ['wrong shard', index({ a: 's1.safetensors', c: 's1.safetensors' }), /"c".*does not hold it/],
      ['parent', index({ a: '../s1.safetensors' }), /leaves the index's folder/],
      ['absolute', index({ a: join(d, 's1.safetensors') }), /leaves the index's folder/],
      ['no weight_map', '{"weight_map": 3}', /not a checkpoint format|no `weight_map`/],
      ['not a file name', index({ a: '' }), /not a file name/],
      ['bad JSON', '{"weight_map": {"a": ', /not valid JSON/],
    ];
    for (const [what, text, pattern] of cases) {
      const p = join(d, `${what.replace(/ /g, '_')}.index.json`);
      writeFileSync(p, text);
      await rejects(p, pattern);
    }
  });

  void it('refuses a shard that is itself an index', async () => {
    const d = folder();
    writeFileSync(join(d, 'inner.index.json'), index({ a: 'x.safetensors' }));
    writeFileSync(join(d, 'outer.index.json'), index({ a: 'inner.index.json' }));
    await rejects(join(d, 'outer.index.json'), /shard-index file, not safetensors/);
  });
});

void describe('Hugging Face folders', () => {
  void it('opens model.safetensors, then the index, under the folder path', async () => {
    const d = folder();
    writeFileSync(join(d, 'config.json'), '{}');
    writeFileSync(join(d, 'model-00001-of-00001.safetensors'), shard(['x']));
    writeFileSync(join(d, 'model.safetensors.index.json'), index({ x: 'model-00001-of-00001.safetensors' }));
    let c = await openCheckpoint(d);
    assert.equal(c.path, d);
    assert.equal(c.format, 'safetensors-sharded');
    assert.deepEqual(c.tensors.map((t) => t.name), ['x']);
    await c.close();
    writeFileSync(join(d, 'model.safetensors'), shard(['y']));
    c = await openCheckpoint(d);
    assert.equal(c.format, 'safetensors');
    assert.deepEqual(c.tensors.map((t) => t.name), ['y']);
    assert.deepEqual([...(await c.readFloat32('y'))], [0, -0]);
    assert.equal(await detectFormat(d), 'safetensors');
    await c.close();
  });

  void it('opens pytorch_model.bin.index.json with PyTorch shards through the same sharded mechanism', async () => {
    const d = folder();
    const torch = join(__dirname, '../../fixtures/pytorch');
    copyFileSync(join(torch, 'module_state_dict.bin'), join(d, 'pytorch_model-00001-of-00002.bin'));
    copyFileSync(join(torch, 'protocol4.pt'), join(d, 'pytorch_model-00002-of-00002.bin'));
    const weightMap: Record<string, string> = {};
    for (const name of ['pytorch_model-00001-of-00002.bin', 'pytorch_model-00002-of-00002.bin']) {
      const shardCheckpoint = await openCheckpoint(join(d, name));
      for (const t of shardCheckpoint.tensors) weightMap[t.name] = name;
      await shardCheckpoint.close();
    }
    writeFileSync(join(d, 'pytorch_model.bin.index.json'), index(weightMap));
    assert.equal(await detectFormat(d), 'pytorch');
    const c = await openCheckpoint(d);
    try {
      assert.equal(c.format, 'pytorch');
      assert.equal(c.path, d);
      assert.deepEqual(c.tensors.map((t) => t.name).sort(), Object.keys(weightMap).sort());
      assert.equal(c.files.length, 3);
      const whole = await openCheckpoint(join(d, 'pytorch_model-00002-of-00002.bin'));
      const name = whole.tensors[0]!.name;
      assert.deepEqual(await c.readFloat32(name), await whole.readFloat32(name));
      await whole.close();
    } finally {
      await c.close();
    }
  });

  void it('falls back to a single *.safetensors, and explains an empty or ambiguous folder', async () => {
    const d = folder();
    await rejects(d, /holds no model weights.*model\.safetensors/);
    writeFileSync(join(d, 'diffusion_pytorch_model.safetensors'), shard(['u']));
    const c = await openCheckpoint(d);
    assert.deepEqual(c.tensors.map((t) => t.name), ['u']);
    await c.close();
    writeFileSync(join(d, 'other.safetensors'), shard(['v']));
    await rejects(d, /several \.safetensors files/);
  });
});
