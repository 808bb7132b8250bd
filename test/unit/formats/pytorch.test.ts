// The PyTorch reader against fixtures written by real torch.save (test/fixtures/pytorch/make_fixtures.py):
// every tensor's dtype, shape, values and bytes, views sharing storages, metadata, and refusal of unsafe files.
import { strict as assert } from 'node:assert';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { AwdError } from '../../../src/core/errors';
import { openPyTorchCheckpoint } from '../../../src/core/formats/pytorch';
import { seededRandom } from './testFiles';

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

async function rejectsWithAwdError(p: Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof AwdError, `expected an AwdError, got ${String(e)}`);
    assert.match(e.message, pattern);
    return true;
  });
}

void describe('PyTorch checkpoints from torch.save', () => {
  for (const [file, want] of Object.entries(expected)) {
    void it(`${file}: every tensor's dtype, shape, values and bytes; metadata`, async () => {
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

  void it('reads random element ranges of every view, into a given buffer too, and through tiny gather windows', async () => {
    const random = seededRandom(7);
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

  void it('names nested dicts with dots, lists by index, and keeps non-tensor leaves as metadata', async () => {
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

  void it('reports bad requests as AwdErrors: unknown tensor, range outside, wrong out length, read after close', async () => {
    const ckpt = await openPyTorchCheckpoint(join(DIR, 'views.pt'));
    await rejectsWithAwdError(ckpt.readFloat32('nope'), /no such tensor/);
    await rejectsWithAwdError(ckpt.readFloat32('base', 0, 25), /outside/);
    await rejectsWithAwdError(ckpt.readBytes('base', 5, 4), /outside/);
    await rejectsWithAwdError(ckpt.readFloat32('base', 0, 4, new Float32Array(3)), /output buffer/);
    await ckpt.close();
    await rejectsWithAwdError(ckpt.readFloat32('base'), /closed/);
  });

  void it('refuses malicious pickles by naming the global, and runs nothing', async () => {
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

  void it('reports a zip64 record pointing beyond 2^53 as an AwdError (yauzl alone would throw out of a callback)', async () => {
    const bytes = readFileSync(join(DIR, 'views.pt'));
    const locator = bytes.indexOf(Buffer.from([0x50, 0x4b, 0x06, 0x07]));
    assert.ok(locator > 0, 'torch.save writes a zip64 end-of-directory locator');
    bytes[locator + 15]! ^= 0x80;
    const dir = mkdtempSync(join(tmpdir(), 'awd-pytorch-'));
    try {
      writeFileSync(join(dir, 'zip64.pt'), bytes);
      await rejectsWithAwdError(openPyTorchCheckpoint(join(dir, 'zip64.pt')), /points outside the file/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  void it('refuses plain pickles, other files and missing paths with a way out', async () => {
    await rejectsWithAwdError(openPyTorchCheckpoint(join(DIR, 'plain.pkl')), /plain Python pickle, not a PyTorch checkpoint/);
    await rejectsWithAwdError(openPyTorchCheckpoint(join(DIR, 'expected.json')), /not a PyTorch checkpoint/);
    await rejectsWithAwdError(openPyTorchCheckpoint(join(DIR, 'missing.pt')), /no such file/);
  });
});
