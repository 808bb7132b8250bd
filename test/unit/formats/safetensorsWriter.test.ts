// safetensors writer: round trips per output dtype (through our reader and against hand-encoded bits), chunked
// and raw writes, sharding with an index, metadata given at finish (in place and by rewrite), and clean failure.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, readlinkSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { AwdError } from '../../../src/core/errors';
import { float32ToBf16Bits, float32ToF16Bits } from '../../../src/core/formats/dtypes';
import { openSafetensors } from '../../../src/core/formats/safetensors';
import { createSafetensorsWriter, type PlannedTensor } from '../../../src/core/formats/safetensorsWriter';
import { bytesOf, seededRandom, tempFolder } from './testFiles';

const tmp = tempFolder();
after(tmp.cleanup);
let counter = 0;
function freshFolder(): string {
  return join(tmp.dir, `out${counter++}`);
}

function randomFloats(n: number, seed: number): Float32Array {
  const r = seededRandom(seed);
  return Float32Array.from({ length: n }, () => (r() - 0.5) * 1000);
}

/** Header length field and JSON of a written file. */
function headerOf(path: string): { length: number; json: Record<string, unknown>; text: string } {
  const bytes = readFileSync(path);
  const length = Number(bytes.readBigUInt64LE(0));
  const text = bytes.subarray(8, 8 + length).toString('utf8');
  return { length, json: JSON.parse(text) as Record<string, unknown>, text };
}

void describe('safetensors writer: round trips', () => {
  for (const dtype of ['F32', 'F16', 'BF16', 'F64'] as const) {
    void it(`writes ${dtype} in chunks and reads back the rounded values`, async () => {
      const folder = freshFolder();
      const target = join(folder, 'model.safetensors');
      const a = randomFloats(1000, 1);
      const b = randomFloats(7, 2);
      const plan: PlannedTensor[] = [
        { name: 'layer.a', dtype, shape: [10, 100] },
        { name: 'scalar', dtype, shape: [] },
        { name: 'empty', dtype, shape: [0] },
        { name: 'b', dtype, shape: [7] },
      ];
      const w = await createSafetensorsWriter(target, plan, { metadata: { format: 'pt' }, bufferBytes: 256 });
      for (let i = 0; i < a.length; i += 137) await w.writeFloat32('layer.a', a.subarray(i, Math.min(a.length, i + 137)));
      await w.writeFloat32('scalar', new Float32Array([0.1]));
      await w.writeFloat32('b', b);
      assert.deepEqual(await w.finish(), [target]);
      assert.deepEqual(readdirSync(folder), ['model.safetensors'], 'no temporary file left');

      const { length, json } = headerOf(target);
      assert.equal(length % 8, 0, 'header padded to a multiple of 8');
      assert.deepEqual(json.__metadata__, { format: 'pt' });

      const c = await openSafetensors(target);
      try {
        assert.deepEqual(c.tensors.map((t) => [t.name, t.dtype, t.shape]), plan.map((t) => [t.name, t.dtype, t.shape]));
        const got = await c.readFloat32('layer.a');
        const bits = new Uint16Array((await c.readBytes('layer.a')).slice().buffer);
        for (let i = 0; i < a.length; i++) {
          if (dtype === 'F32' || dtype === 'F64') assert.equal(got[i], a[i]);
          else assert.equal(bits[i], dtype === 'F16' ? float32ToF16Bits(a[i]!) : float32ToBf16Bits(a[i]!), `element ${i}`);
        }
        assert.equal((await c.readFloat32('b')).length, 7);
        assert.equal((await c.readFloat32('empty')).length, 0);
      } finally {
        await c.close();
      }
    });
  }

  void it('hand-computed BF16 and F16 bits land in the file', async () => {
    const target = join(freshFolder(), 'x.safetensors');
    const w = await createSafetensorsWriter(target, [
      { name: 'bf', dtype: 'BF16', shape: [3] },
      { name: 'h', dtype: 'F16', shape: [3] },
    ]);
    await w.writeFloat32('bf', new Float32Array([1.00390625, 1.01171875, -2]));
    await w.writeFloat32('h', new Float32Array([65520, 2 ** -25, 3 * 2 ** -25]));
    await w.finish();
    const c = await openSafetensors(target);
    assert.deepEqual([...new Uint16Array((await c.readBytes('bf')).slice().buffer)], [0x3f80, 0x3f82, 0xc000]);
    assert.deepEqual([...new Uint16Array((await c.readBytes('h')).slice().buffer)], [0x7c00, 0x0000, 0x0002]);
    await c.close();
  });

  void it('copies raw bytes of any dtype through unchanged, coalescing small writes and passing big ones', async () => {
    const target = join(freshFolder(), 'raw.safetensors');
    const ids = BigInt64Array.from({ length: 300 }, (_, i) => BigInt(i) * 3n - 5n);
    const mask = Uint8Array.from({ length: 33 }, (_, i) => i % 2);
    const w = await createSafetensorsWriter(target, [
      { name: 'ids', dtype: 'I64', shape: [300] },
      { name: 'mask', dtype: 'BOOL', shape: [3, 11] },
      { name: 'f', dtype: 'F32', shape: [2] },
    ], { bufferBytes: 64 });
    const idBytes = bytesOf(ids);
    await w.writeRaw('ids', idBytes.subarray(0, 8));
    await w.writeRaw('ids', idBytes.subarray(8, 1600)); // larger than the buffer: written straight through
    await w.writeRaw('ids', idBytes.subarray(1600));
    await w.writeRaw('mask', mask);
    await w.writeRaw('f', bytesOf(new Float32Array([1, 2])));
    await w.finish();
    const c = await openSafetensors(target);
    assert.deepEqual(await c.readBytes('ids'), idBytes);
    assert.deepEqual(await c.readBytes('mask'), mask);
    assert.deepEqual([...(await c.readFloat32('f'))], [1, 2]);
    await c.close();
  });
});

void describe('safetensors writer: sharding and metadata', () => {
  void it('shards when the total exceeds shardSize, with an index giving total_size and weight_map', async () => {
    const folder = freshFolder();
    const target = join(folder, 'model.safetensors');
    const plan: PlannedTensor[] = [
      { name: 'a', dtype: 'F32', shape: [10] }, // 40
      { name: 'b', dtype: 'F32', shape: [10] }, // 40 → a+b = 80 ≤ 100
      { name: 'c', dtype: 'F32', shape: [30] }, // 120 > shard size: a shard of its own
      { name: 'd', dtype: 'BF16', shape: [4] }, // 8
    ];
    const w = await createSafetensorsWriter(target, plan, { shardSize: 100, metadata: { m: '1' } });
    const names = ['model-00001-of-00003.safetensors', 'model-00002-of-00003.safetensors', 'model-00003-of-00003.safetensors'];
    assert.deepEqual(w.plannedFiles, [...names.map((n) => join(folder, n)), join(folder, 'model.safetensors.index.json')]);
    assert.deepEqual(readdirSync(folder).filter((n) => !n.includes('.tmp-')), [], 'nothing under a final name before finish');
    for (const t of plan) {
      const n = t.shape.reduce((x, y) => x * y, 1);
      await w.writeFloat32(t.name, Float32Array.from({ length: n }, (_, i) => i + t.name.charCodeAt(0)));
    }
    const files = await w.finish();
    assert.deepEqual(files, w.plannedFiles);
    assert.deepEqual(readdirSync(folder).sort(), [...names, 'model.safetensors.index.json'].sort());
    const index = JSON.parse(readFileSync(join(folder, 'model.safetensors.index.json'), 'utf8')) as {
      metadata: { total_size: number };
      weight_map: Record<string, string>;
    };
    assert.equal(index.metadata.total_size, 40 + 40 + 120 + 8);
    assert.deepEqual(index.weight_map, { a: names[0], b: names[0], c: names[1], d: names[2] });
    const second = await openSafetensors(join(folder, names[1]!));
    assert.deepEqual(second.metadata, { m: '1' });
    assert.deepEqual([...(await second.readFloat32('c', 0, 3))], [99, 100, 101]);
    await second.close();
  });

  void it('replaces existing outputs (shards and index) whole, and lets go of the replaced files once done', async () => {
    const folder = freshFolder();
    const target = join(folder, 'model.safetensors');
    const plan: PlannedTensor[] = [
      { name: 'a', dtype: 'F32', shape: [30] },
      { name: 'b', dtype: 'F32', shape: [30] },
    ];
    const run = async (offset: number): Promise<string[]> => {
      const w = await createSafetensorsWriter(target, plan, { shardSize: 100 });
      for (const t of plan) await w.writeFloat32(t.name, Float32Array.from({ length: 30 }, (_, i) => i + offset));
      return w.finish();
    };
    /** Descriptors of this process on files that are gone (a replaced file held open). */
    const deletedOpen = (): string[] =>
      readdirSync('/proc/self/fd').flatMap((fd) => {
        try {
          const link = readlinkSync(`/proc/self/fd/${fd}`);
          return link.startsWith(folder) && link.endsWith('(deleted)') ? [link] : [];
        } catch {
          return [];
        }
      });
    const first = await run(0);
    const files = await run(1000);
    assert.deepEqual(files, first);
    for (const [shard, name] of [[files[0]!, 'a'], [files[1]!, 'b']] as const) {
      const c = await openSafetensors(shard);
      assert.deepEqual([...(await c.readFloat32(name, 0, 3))], [1000, 1001, 1002]);
      await c.close();
    }
    assert.deepEqual(readdirSync(folder).filter((n) => n.includes('.tmp-')), []);
    if (process.platform === 'linux') {
      // The replaced files were held open across the renames; those descriptors close in the background.
      for (let i = 0; i < 50 && deletedOpen().length > 0; i++) await new Promise((r) => setTimeout(r, 10));
      assert.deepEqual(deletedOpen(), []);
    }
  });

  void it('replaces a named pipe under the output name without waiting on it', { skip: process.platform === 'win32', timeout: 10_000 }, async () => {
    const folder = freshFolder();
    mkdirSync(folder, { recursive: true });
    const target = join(folder, 'model.safetensors');
    execFileSync('mkfifo', [target]);
    const w = await createSafetensorsWriter(target, [{ name: 'a', dtype: 'F32', shape: [4] }]);
    await w.writeFloat32('a', Float32Array.from([1, 2, 3, 4]));
    await w.finish();
    assert.ok(statSync(target).isFile());
    const c = await openSafetensors(target);
    assert.deepEqual([...(await c.readFloat32('a', 0, 4))], [1, 2, 3, 4]);
    await c.close();
  });

  void it('writes metadata given at finish into the reserved room, in place', async () => {
    const target = join(freshFolder(), 'm.safetensors');
    const w = await createSafetensorsWriter(target, [{ name: 'x', dtype: 'F32', shape: [3] }], { metadataReserve: 4096 });
    await w.writeFloat32('x', new Float32Array([1, 2, 3]));
    const record = { record: JSON.stringify({ stats: [1, 2, 3], note: 'ünïcode ✓' }) };
    await w.finish(record);
    assert.equal(w.stats.headerRewrites, 0);
    const { length, text } = headerOf(target);
    assert.ok(length > 4096 && length % 8 === 0);
    assert.ok(text.includes(' '.repeat(100)), 'unused reserve is padding');
    const c = await openSafetensors(target);
    assert.deepEqual(c.metadata, record);
    assert.deepEqual([...(await c.readFloat32('x'))], [1, 2, 3]);
    await c.close();
  });

  void it('rewrites the file with a larger header when the metadata outgrows the reserve', async () => {
    const folder = freshFolder();
    const target = join(folder, 'big.safetensors');
    const values = randomFloats(5000, 3);
    const w = await createSafetensorsWriter(target, [
      { name: 'x', dtype: 'F32', shape: [5000] },
      { name: 'y', dtype: 'BF16', shape: [5000] },
    ], { metadataReserve: 16, bufferBytes: 1024 });
    await w.writeFloat32('x', values);
    await w.writeFloat32('y', values);
    const record = { record: 'r'.repeat(10_000) };
    await w.finish(record);
    assert.equal(w.stats.headerRewrites, 1);
    assert.deepEqual(readdirSync(folder), ['big.safetensors']);
    const c = await openSafetensors(target);
    assert.deepEqual(c.metadata, record);
    assert.deepEqual(await c.readFloat32('x'), values);
    assert.equal((await c.readBytes('y')).length, 10000);
    await c.close();
  });
});

void describe('safetensors writer: failures', () => {
  void it('refuses out-of-order tensors and removes its temporary file', async () => {
    const folder = freshFolder();
    const w = await createSafetensorsWriter(join(folder, 'o.safetensors'), [
      { name: 'a', dtype: 'F32', shape: [2] },
      { name: 'b', dtype: 'F32', shape: [2] },
    ]);
    await w.writeFloat32('a', new Float32Array([1]));
    await assert.rejects(w.writeFloat32('b', new Float32Array([1, 2])), (e: unknown) => e instanceof AwdError && /received 4 of its 8 bytes/.test(e.message));
    assert.deepEqual(readdirSync(folder), []);
    await assert.rejects(w.writeFloat32('a', new Float32Array([1])), /aborted/);
  });

  void it('refuses too many bytes, an unplanned name, float writes to an integer tensor and an incomplete finish', async () => {
    const plan: PlannedTensor[] = [{ name: 'a', dtype: 'F32', shape: [2] }, { name: 'i', dtype: 'I32', shape: [1] }];
    const cases: [string, (w: Awaited<ReturnType<typeof createSafetensorsWriter>>) => Promise<unknown>, RegExp][] = [
      ['too many', (w) => w.writeFloat32('a', new Float32Array(3)), /more than its shape's 8/],
      ['unplanned', async (w) => { await w.writeFloat32('a', new Float32Array(2)); await w.writeRaw('i', new Uint8Array(4)); await w.writeRaw('zz', new Uint8Array(4)); }, /not in the plan/],
      ['float to int', async (w) => { await w.writeFloat32('a', new Float32Array(2)); await w.writeFloat32('i', new Float32Array(1)); }, /cannot encode float32 values as I32/],
      ['partial element', (w) => w.writeRaw('a', new Uint8Array(3)), /whole number of F32/],
      ['incomplete', async (w) => { await w.writeFloat32('a', new Float32Array(2)); await w.finish(); }, /received 0 of its 4 bytes/],
    ];
    for (const [what, op, pattern] of cases) {
      const folder = freshFolder();
      const w = await createSafetensorsWriter(join(folder, 'f.safetensors'), plan);
      await assert.rejects(op(w), (e: unknown) => e instanceof AwdError && pattern.test(e.message), what);
      assert.deepEqual(readdirSync(folder), [], `${what}: temporary file removed`);
    }
  });

  void it('refuses a bad plan and concurrent writes; abort removes the temporary files', async () => {
    const target = join(freshFolder(), 'p.safetensors');
    await assert.rejects(createSafetensorsWriter(target, [{ name: 'a', dtype: 'F32', shape: [1] }, { name: 'a', dtype: 'F32', shape: [1] }]), /planned twice/);
    await assert.rejects(createSafetensorsWriter(target, [{ name: 'a', dtype: 'F32', shape: [-1] }]), /non-negative/);
    await assert.rejects(createSafetensorsWriter(target, [{ name: '__metadata__', dtype: 'F32', shape: [1] }]), /cannot be a tensor name/);
    const folder = freshFolder();
    const w = await createSafetensorsWriter(join(folder, 'c.safetensors'), [{ name: 'a', dtype: 'F32', shape: [4] }], { shardSize: 8 });
    const first = w.writeFloat32('a', new Float32Array(2));
    await assert.rejects(w.writeFloat32('a', new Float32Array(2)), /still running/);
    await first.catch(() => undefined);
    await w.abort();
    await w.abort();
    assert.deepEqual(readdirSync(folder), []);
  });
});

void describe('safetensors writer: bytes written by the caller (directTarget, wroteDirectly)', () => {
  void it('gives the same file as writing every chunk through the writer, sharded too, in any mix', async () => {
    const a = randomFloats(1000, 11);
    const b = randomFloats(300, 12);
    const c = randomFloats(50, 13);
    const plan: PlannedTensor[] = [
      { name: 'a', dtype: 'F32', shape: [1000] },
      { name: 'b', dtype: 'F32', shape: [300] },
      { name: 'c', dtype: 'F32', shape: [50] },
    ];
    for (const shardSize of [undefined, 2000]) {
      const folder = freshFolder();
      const reference = join(folder, 'reference.safetensors');
      const w1 = await createSafetensorsWriter(reference, plan, { metadataReserve: 64, ...(shardSize ? { shardSize } : {}) });
      for (const [name, values] of [['a', a], ['b', b], ['c', c]] as const) await w1.writeFloat32(name, values);
      const files1 = await w1.finish({ k: 'v' });

      const direct = join(folder, 'direct.safetensors');
      const w2 = await createSafetensorsWriter(direct, plan, { metadataReserve: 64, bufferBytes: 256, ...(shardSize ? { shardSize } : {}) });
      // a: two chunks by the caller; b: the writer, then the caller; c: the writer.
      for (const [start, end] of [[0, 600], [600, 1000]] as const) {
        const target = w2.directTarget('a', start * 4)!;
        writeSync(target.fd, new Uint8Array(a.buffer, start * 4, (end - start) * 4), 0, (end - start) * 4, target.position);
        await w2.wroteDirectly('a', (end - start) * 4);
      }
      await w2.writeFloat32('b', b.subarray(0, 100));
      const tb = w2.directTarget('b', 400)!;
      writeSync(tb.fd, new Uint8Array(b.buffer, 400, 800), 0, 800, tb.position);
      await w2.wroteDirectly('b', 800);
      await w2.writeFloat32('c', c);
      const files2 = await w2.finish({ k: 'v' });
      assert.equal(files2.length, files1.length);
      files1.forEach((f, i) => {
        if (f.endsWith('.json')) return;
        assert.ok(readFileSync(files2[i]!).equals(readFileSync(f)), `${f} and ${files2[i]} hold the same bytes`);
      });
      assert.equal(w2.directTarget('a', 0), undefined, 'no target once finished');
    }
  });

  void it('checks order and counts as writeRaw does, and an unplanned tensor has no target', async () => {
    const folder = freshFolder();
    const w = await createSafetensorsWriter(join(folder, 'm.safetensors'), [
      { name: 'a', dtype: 'F32', shape: [4] },
      { name: 'b', dtype: 'F32', shape: [4] },
    ]);
    assert.equal(w.directTarget('nope', 0), undefined);
    await assert.rejects(w.wroteDirectly('a', 20), /more than its shape's 16/);
    assert.deepEqual(readdirSync(folder), [], 'the failure removed the temporary file');
    const w2 = await createSafetensorsWriter(join(folder, 'm.safetensors'), [
      { name: 'a', dtype: 'F32', shape: [4] },
      { name: 'b', dtype: 'F32', shape: [4] },
    ]);
    await w2.wroteDirectly('a', 8);
    await assert.rejects(w2.wroteDirectly('b', 16), /received 8 of its 16 bytes before "b"/);
  });
});
