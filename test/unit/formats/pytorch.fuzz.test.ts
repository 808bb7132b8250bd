// Seeded fuzzing of the PyTorch reader: thousands of mutations (bit flips, truncations, byte-range deletions,
// length fields set to extreme values) of the torch.save fixtures, in the raw file and inside data.pkl re-zipped.
// Whatever happens, the reader returns data or an AwdError — no other exception, no hang, no huge allocation.
import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import * as yauzl from 'yauzl';
import { AwdError } from '../../../src/core/errors';
import { unpickle } from '../../../src/core/formats/pickle';
import { openPyTorchCheckpoint } from '../../../src/core/formats/pytorch';
import { TorchPersistentLoader, flattenTorchObject, resolveTorchGlobal } from '../../../src/core/formats/torchPickle';
import { writeZip } from '../../fixtures/pytorch/handmade';
import { seededRandom } from './testFiles';

const DIR = join(__dirname, '..', '..', 'fixtures', 'pytorch');
const ZIP_FIXTURES = ['views.pt', 'nested.pt', 'dtypes.pt', 'module_state_dict.bin', 'protocol4.pt', 'protocol1.pt'];
const ALL_FIXTURES = [...ZIP_FIXTURES, 'legacy.pt'];
const work = mkdtempSync(join(tmpdir(), 'awd-pytorch-fuzz-'));
after(() => rmSync(work, { recursive: true, force: true }));

/** Every entry of a zip, in order, with its bytes (the fixtures are small and stored). */
async function readZip(path: string): Promise<[string, Uint8Array][]> {
  const zip = await yauzl.openPromise(path, { lazyEntries: true });
  const out: [string, Uint8Array][] = [];
  for await (const entry of zip.eachEntry()) {
    const chunks: Buffer[] = [];
    for await (const chunk of (await zip.openReadStreamPromise(entry)) as AsyncIterable<Buffer>) chunks.push(chunk);
    out.push([entry.fileName, new Uint8Array(Buffer.concat(chunks))]);
  }
  zip.close();
  return out;
}

const EXTREMES = [0xff, 0x7f, 0x80, 0x00];

/** One seeded mutation of `data`: flips, a truncation, a deleted range, or a run of extreme bytes (lying lengths). */
function mutate(data: Uint8Array, random: () => number, region: [number, number] = [0, data.length]): Uint8Array {
  const [lo, hi] = region;
  const at = () => lo + Math.floor(random() * (hi - lo));
  const kind = Math.floor(random() * 4);
  if (kind === 0) {
    const out = data.slice();
    const flips = 1 + Math.floor(random() * 4);
    for (let i = 0; i < flips; i++) out[at()]! ^= 1 << Math.floor(random() * 8);
    return out;
  }
  if (kind === 1) return data.slice(0, at());
  if (kind === 2) {
    const start = at();
    const length = 1 + Math.floor(random() * 16);
    return new Uint8Array([...data.subarray(0, start), ...data.subarray(start + length)]);
  }
  const out = data.slice();
  const start = at();
  const value = EXTREMES[Math.floor(random() * EXTREMES.length)]!;
  out.fill(value, start, Math.min(out.length, start + 1 + Math.floor(random() * 8)));
  return out;
}

type Outcome = 'data' | 'refused';

/** Opens and reads every tensor (at most 4096 elements each, so a huge but legal stride-0 view costs nothing). */
async function exercise(path: string): Promise<Outcome> {
  let ckpt;
  try {
    ckpt = await openPyTorchCheckpoint(path, { gatherSpanBytes: 64 });
  } catch (e) {
    if (e instanceof AwdError) return 'refused';
    throw e;
  }
  try {
    for (const info of ckpt.tensors) {
      const end = Math.min(info.elements, 4096);
      const values = await ckpt.readFloat32(info.name, 0, end);
      assert.equal(values.length, end);
      assert.equal((await ckpt.readBytes(info.name, 0, end)).length, info.bytes / Math.max(1, info.elements) * end);
    }
    return 'data';
  } catch (e) {
    if (e instanceof AwdError) return 'refused';
    throw e;
  } finally {
    await ckpt.close();
  }
}

function cpuMs(since: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(since);
  return (used.user + used.system) / 1000;
}

void describe('PyTorch reader under fuzzing', () => {
  void it('1200 mutations of data.pkl alone: unpickle + flatten give data or an AwdError', async () => {
    const random = seededRandom(20261125);
    const counts = { data: 0, refused: 0 };
    for (const file of ZIP_FIXTURES) {
      const pickle = (await readZip(join(DIR, file))).find(([n]) => n.endsWith('/data.pkl'))![1];
      for (let i = 0; i < 200; i++) {
        const mutated = mutate(pickle, random);
        const started = process.cpuUsage();
        try {
          const loader = new TorchPersistentLoader();
          const { value } = unpickle(mutated, { resolveGlobal: resolveTorchGlobal, persistentLoad: loader.load });
          flattenTorchObject(value);
          counts.data++;
        } catch (e) {
          if (!(e instanceof AwdError)) throw new Error(`${file} mutation ${i}: ${String(e)}`);
          counts.refused++;
        }
        assert.ok(cpuMs(started) < 1000, `${file} mutation ${i} took ${cpuMs(started)} ms of CPU`);
      }
    }
    assert.equal(counts.data + counts.refused, 1200);
    assert.ok(counts.refused > 100 && counts.data > 10, JSON.stringify(counts));
  });

  void it('1000 mutated files (raw bytes, or data.pkl mutated and re-zipped): open + read give data or an AwdError', async () => {
    const random = seededRandom(42);
    const counts = { data: 0, refused: 0 };
    let peakArrayBuffers = 0;
    let n = 0;
    for (const file of ALL_FIXTURES) {
      const original = new Uint8Array(readFileSync(join(DIR, file)));
      const entries = file.endsWith('legacy.pt') ? undefined : await readZip(join(DIR, file));
      const cases = Math.ceil(1000 / ALL_FIXTURES.length);
      for (let i = 0; i < cases; i++) {
        let bytes: Uint8Array;
        if (entries && i % 2 === 0) {
          // Mutate the pickle inside a well-formed zip, so the pickle interpreter (not the zip reader) sees it.
          bytes = writeZip(entries.map(([name, data]) => [name, name.endsWith('/data.pkl') ? mutate(data, random) : data] as const));
        } else if (!entries && i % 2 === 0) {
          // Legacy: the object pickle is in the first ~1.5 KB of the file, before the raw storages.
          bytes = mutate(original, random, [0, Math.min(original.length, 1500)]);
        } else {
          bytes = mutate(original, random);
        }
        const path = join(work, `case-${n++}.pt`);
        writeFileSync(path, bytes);
        const started = process.cpuUsage();
        let outcome: Outcome;
        try {
          outcome = await exercise(path);
        } catch (e) {
          throw new Error(`${file} case ${i}: a non-AwdError escaped: ${e instanceof Error ? e.stack : String(e)}`);
        }
        counts[outcome]++;
        assert.ok(cpuMs(started) < 1000, `${file} case ${i} took ${cpuMs(started)} ms of CPU`);
        peakArrayBuffers = Math.max(peakArrayBuffers, process.memoryUsage().arrayBuffers);
        rmSync(path);
      }
    }
    assert.ok(counts.refused > 100 && counts.data > 100, JSON.stringify(counts));
    // Fixtures are a few KB: no lying size may turn into a big buffer.
    assert.ok(peakArrayBuffers < 256 * 1024 * 1024, `array buffers peaked at ${peakArrayBuffers} bytes`);
  });
});
