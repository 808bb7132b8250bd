// Fuzzing the readers: thousands of seeded mutations (bit flips, truncations, byte splices, header edits) of
// safetensors, npy and npz files. Opening and fully reading each one must end in data or an AwdError — never another
// exception, never more than a second of CPU time (nor a hang), never an allocation a lying header asked for.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AwdError } from '../../../src/core/errors';
import { openCheckpoint } from '../../../src/core/formats/open';
import { buildSafetensors, bytesOf, seededRandom, tempFolder } from './testFiles';
import { int, mutate } from '../../support/mutations';

const tmp = tempFolder();
after(tmp.cleanup);
const NUMPY = join(__dirname, '../../fixtures/formats/numpy');

/** Opens `path` and reads every tensor whole and in a range; returns 'data' or 'error', throws anything else. */
async function exercise(path: string): Promise<'data' | 'error'> {
  try {
    const c = await openCheckpoint(path);
    try {
      for (const t of c.tensors) {
        await c.readFloat32(t.name);
        await c.readBytes(t.name, Math.floor(t.elements / 2));
      }
    } finally {
      await c.close();
    }
    return 'data';
  } catch (e) {
    if (e instanceof AwdError) return 'error';
    throw e;
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms} ms (hang?)`)), ms);
    }),
  ]);
}

const seeds: [string, Uint8Array, number][] = [
  [
    'safetensors',
    buildSafetensors(
      [
        { name: 'w', dtype: 'F32', shape: [4, 3], data: bytesOf(Float32Array.from({ length: 12 }, (_, i) => i / 3)) },
        { name: 'b', dtype: 'BF16', shape: [3], data: bytesOf(new Uint16Array([0x3f80, 0x4000, 0xbf80])) },
        { name: 'ids', dtype: 'I64', shape: [2], data: bytesOf(new BigInt64Array([1n, 2n])) },
        { name: 'e', dtype: 'F16', shape: [0], data: new Uint8Array(0) },
        { name: 's', dtype: 'F8_E5M2', shape: [], data: new Uint8Array([0x3c]) },
      ],
      { format: 'pt' },
    ),
    800,
  ],
  ['npy', new Uint8Array(readFileSync(join(NUMPY, 'f64_fortran.npy'))), 400],
  ['npy-big-endian', new Uint8Array(readFileSync(join(NUMPY, 'i4_big_endian.npy'))), 200],
  ['npz-stored', new Uint8Array(readFileSync(join(NUMPY, 'stored.npz'))), 300],
  ['npz-deflated', new Uint8Array(readFileSync(join(NUMPY, 'deflated.npz'))), 300],
];

void describe('format readers under fuzzing', () => {
  for (const [kind, seed, count] of seeds) {
    void it(`${count} mutations of a ${kind} file end in data or an AwdError`, async () => {
      const r = seededRandom(0xf00d + seed.length);
      const path = join(tmp.dir, `${kind}.fuzz`);
      // The unmutated file must read cleanly, or the fuzzing proves nothing.
      writeFileSync(path, seed);
      assert.equal(await exercise(path), 'data');
      const outcomes = { data: 0, error: 0 };
      let slowest = 0;
      for (let i = 0; i < count; i++) {
        const bytes = mutate(seed, r);
        writeFileSync(path, bytes);
        const c0 = process.cpuUsage();
        let outcome: 'data' | 'error';
        try {
          // Wall time only catches hangs (the machine may be shared); the per-case budget is checked in CPU time.
          outcome = await withTimeout(exercise(path), 10_000, `${kind} case ${i}`);
        } catch (e) {
          writeFileSync(join(tmp.dir, `${kind}-failing-${i}.bin`), bytes);
          throw new Error(`${kind} mutation ${i}: ${(e as Error).stack ?? String(e)}`);
        }
        const cpu = process.cpuUsage(c0);
        slowest = Math.max(slowest, (cpu.user + cpu.system) / 1000);
        outcomes[outcome]++;
        // A reader that believed a lying size would hold (or have held) a huge buffer by now.
        if (i % 50 === 0) assert.ok(process.memoryUsage().arrayBuffers < 256 << 20, `${kind} case ${i}: array buffers grew`);
      }
      assert.ok(slowest < 1000, `slowest case took ${slowest.toFixed(0)} ms of CPU time`);
      assert.ok(outcomes.error > count / 4, `most mutations are caught (${JSON.stringify(outcomes)})`);
    });
  }
});

void describe('sharded index under fuzzing', () => {
  void it('400 mutations of an index (and its shards) end in data or an AwdError', async () => {
    const dir = join(tmp.dir, 'sharded');
    mkdirSync(dir);
    const shard = (names: string[]): Uint8Array =>
      buildSafetensors(names.map((name) => ({ name, dtype: 'F32', shape: [2], data: bytesOf(new Float32Array([1, 2])) })));
    writeFileSync(join(dir, 'model-00001-of-00002.safetensors'), shard(['a', 'b']));
    writeFileSync(join(dir, 'model-00002-of-00002.safetensors'), shard(['c']));
    const index = new TextEncoder().encode(
      JSON.stringify({
        metadata: { total_size: 24 },
        weight_map: { a: 'model-00001-of-00002.safetensors', b: 'model-00001-of-00002.safetensors', c: 'model-00002-of-00002.safetensors' },
      }),
    );
    const path = join(dir, 'model.safetensors.index.json');
    writeFileSync(path, index);
    assert.equal(await exercise(path), 'data');
    const r = seededRandom(0x1de);
    const texts = ['"../x.safetensors"', '"/etc/passwd"', '"model-00001-of-00002.safetensors"', '"a"', '{}', '[]', 'null', '""', '"model.safetensors.index.json"'];
    for (let i = 0; i < 400; i++) {
      let bytes: Uint8Array;
      if (i % 2 === 0) {
        bytes = mutate(index, r);
      } else {
        // Replace one JSON string value with something hostile (path escapes, self-reference, wrong types).
        const text = new TextDecoder().decode(index);
        const strings = [...text.matchAll(/"[^"]*"/g)];
        const m = strings[int(r, strings.length)]!;
        bytes = new TextEncoder().encode(text.slice(0, m.index) + texts[int(r, texts.length)]! + text.slice(m.index + m[0].length));
      }
      writeFileSync(path, bytes);
      try {
        await withTimeout(exercise(path), 10_000, `index case ${i}`);
      } catch (e) {
        throw new Error(`index mutation ${i} (${new TextDecoder().decode(bytes).slice(0, 300)}): ${(e as Error).stack ?? String(e)}`);
      }
    }
  });
});
