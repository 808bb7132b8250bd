// The PyTorch reader against fixtures written by real torch.save (test/fixtures/pytorch/make_fixtures.py):
// every tensor's dtype, shape, values and bytes, views sharing storages, metadata, and refusal of unsafe files.
import { strict as assert } from 'node:assert';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { AwdError } from '../../../src/core/errors';
import { openPyTorchCheckpoint } from '../../../src/core/formats/pytorch';

const DIR = join(__dirname, '..', '..', 'fixtures', 'pytorch');
const MARKER = '/tmp/awd-merge-pickle-marker';

interface ExpectedTensor {
  dtype: string;
  shape: number[];
  values: number[];
  hex: string;
}
const expected = JSON.parse(readFileSync(join(DIR, 'expected.json'), 'utf8')) as Record<
  string,
  { tensors: Record<string, ExpectedTensor>; metadata: Record<string, string> }
>;

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

/** Deterministic [0, 1) stream (mulberry32) so random ranges are the same on every run. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function rejectsWithAwdError(p: Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof AwdError, `expected an AwdError, got ${String(e)}`);
    assert.match(e.message, pattern);
    return true;
  });
}

describe('PyTorch checkpoints from torch.save', () => {
  for (const [file, want] of Object.entries(expected)) {
    it(`${file}: every tensor's dtype, shape, values and bytes; metadata`, async () => {
      const ckpt = await openPyTorchCheckpoint(join(DIR, file));
      try {
        assert.equal(ckpt.format, 'pytorch');
        assert.deepEqual(ckpt.files, [join(DIR, file)]);
        assert.deepEqual(
          ckpt.tensors.map((t) => t.name),
          Object.keys(want.tensors),
        );
        assert.deepEqual(ckpt.metadata, want.metadata);
        for (const info of ckpt.tensors) {
          const t = want.tensors[info.name]!;
          assert.equal(info.dtype, t.dtype, info.name);
          assert.deepEqual(info.shape, t.shape, info.name);
          assert.equal(info.elements, t.values.length, info.name);
          assert.equal(info.bytes, t.hex.length / 2, info.name);
          assert.equal(ckpt.tensor(info.name), info);
          const values = await ckpt.readFloat32(info.name);
          assert.deepEqual(Array.from(values), t.values.map(Math.fround), info.name);
          assert.equal(hex(await ckpt.readBytes(info.name)), t.hex, info.name);
        }
      } finally {
        await ckpt.close();
      }
    });
  }

  it('reads random element ranges of every view, into a given buffer too, and through tiny gather windows', async () => {
    const random = rng(7);
    for (const file of ['views.pt', 'legacy.pt', 'nested.pt']) {
      const want = expected[file]!;
      for (const gatherSpanBytes of [undefined, 8, 20]) {
        const ckpt = await openPyTorchCheckpoint(join(DIR, file), { gatherSpanBytes });
        for (const info of ckpt.tensors) {
          const t = want.tensors[info.name]!;
          const size = t.hex.length / 2 / Math.max(1, t.values.length);
          for (let trial = 0; trial < 6; trial++) {
            const a = Math.floor(random() * (info.elements + 1));
            const b = a + Math.floor(random() * (info.elements - a + 1));
            const expectValues = t.values.slice(a, b).map(Math.fround);
            assert.deepEqual(Array.from(await ckpt.readFloat32(info.name, a, b)), expectValues, `${file} ${info.name} [${a}, ${b})`);
            const out = new Float32Array(b - a);
            assert.equal(await ckpt.readFloat32(info.name, a, b, out), out);
            assert.deepEqual(Array.from(out), expectValues);
            assert.equal(hex(await ckpt.readBytes(info.name, a, b)), t.hex.slice(2 * a * size, 2 * b * size));
          }
        }
        await ckpt.close();
      }
    }
  });

  it('names nested dicts with dots, lists by index, and keeps non-tensor leaves as metadata', async () => {
    const ckpt = await openPyTorchCheckpoint(join(DIR, 'nested.pt'));
    assert.deepEqual(
      ckpt.tensors.map((t) => t.name),
      ['state_dict.layer.weight', 'state_dict.layer.bias', 'state_dict.head.weight', 'model.embed', 'list.0', 'list.1', 'param'],
    );
    assert.equal(ckpt.metadata.epoch, '7');
    assert.equal(ckpt.metadata.loss, '1.0');
    assert.equal(ckpt.metadata.betas, '(0.9, 0.999)');
    await ckpt.close();
  });

  it('reports bad requests as AwdErrors: unknown tensor, range outside, wrong out length, read after close', async () => {
    const ckpt = await openPyTorchCheckpoint(join(DIR, 'views.pt'));
    await rejectsWithAwdError(ckpt.readFloat32('nope'), /no such tensor/);
    await rejectsWithAwdError(ckpt.readFloat32('base', 0, 25), /outside/);
    await rejectsWithAwdError(ckpt.readBytes('base', 5, 4), /outside/);
    await rejectsWithAwdError(ckpt.readFloat32('base', 0, 4, new Float32Array(3)), /output buffer/);
    await ckpt.close();
    await rejectsWithAwdError(ckpt.readFloat32('base'), /closed/);
  });

  it('refuses malicious pickles by naming the global, and runs nothing', async () => {
    rmSync(MARKER, { force: true });
    const cases: [string, RegExp][] = [
      ['malicious_toplevel.pkl', /refusing to load: the pickle references os\.system/],
      ['malicious_stack_global.pkl', /refusing to load: the pickle references builtins\.exec/],
      ['malicious_zip.pt', /refusing to load: the pickle references os\.system/],
      ['malicious_legacy.pt', /refusing to load: the pickle references os\.system/],
    ];
    for (const [file, pattern] of cases) {
      await rejectsWithAwdError(openPyTorchCheckpoint(join(DIR, file)), pattern);
    }
    assert.equal(existsSync(MARKER), false, 'a payload ran');
  });

  it('refuses plain pickles, other files and missing paths with a way out', async () => {
    await rejectsWithAwdError(openPyTorchCheckpoint(join(DIR, 'plain.pkl')), /plain Python pickle, not a PyTorch checkpoint/);
    await rejectsWithAwdError(openPyTorchCheckpoint(join(DIR, 'expected.json')), /not a PyTorch checkpoint/);
    await rejectsWithAwdError(openPyTorchCheckpoint(join(DIR, 'missing.pt')), /no such file/);
  });
});
