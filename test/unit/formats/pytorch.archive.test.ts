// Hand-built torch.save-like archives for what torch itself does not write (big-endian storages, a root data.pkl,
// compressed, missing or short storage entries, TorchScript), and the strided gather against a plain reference.
import { strict as assert } from 'node:assert';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { AwdError } from '../../../src/core/errors';
import { gatherStrided, isRowMajor, openPyTorchCheckpoint, storageSpan } from '../../../src/core/formats/pytorch';
import { statePickle, writeZip, type HandmadeEntry, type HandmadeTensor } from '../../fixtures/pytorch/handmade';
import { seededRandom, tempFolder } from './testFiles';

const { dir, cleanup } = tempFolder('awd-pytorch-archive-');
after(cleanup);
let counter = 0;

function archive(entries: readonly HandmadeEntry[]): string {
  const path = join(dir, `case-${counter++}.pt`);
  writeFileSync(path, writeZip(entries));
  return path;
}

const f32 = (values: number[], bigEndian = false) => {
  const b = Buffer.alloc(4 * values.length);
  values.forEach((v, i) => (bigEndian ? b.writeFloatBE(v, 4 * i) : b.writeFloatLE(v, 4 * i)));
  return new Uint8Array(b);
};
const i16 = (values: number[], bigEndian = false) => {
  const b = Buffer.alloc(2 * values.length);
  values.forEach((v, i) => (bigEndian ? b.writeInt16BE(v, 2 * i) : b.writeInt16LE(v, 2 * i)));
  return new Uint8Array(b);
};

const W: HandmadeTensor = { name: 'w', storageType: 'FloatStorage', key: '0', numel: 4, offset: 0, shape: [2, 2], stride: [1, 2] };
const H: HandmadeTensor = { name: 'h', storageType: 'ShortStorage', key: '1', numel: 3, offset: 1, shape: [2], stride: [1] };

async function rejectsWithAwdError(p: Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof AwdError, `expected an AwdError, got ${String(e)}`);
    assert.match(e.message, pattern);
    return true;
  });
}

void describe('hand-built PyTorch archives', () => {
  void it('byte-swaps storages of a checkpoint written big-endian (byteorder = big)', async () => {
    const path = archive([
      ['a/data.pkl', statePickle([W, H])],
      ['a/byteorder', new Uint8Array(Buffer.from('big'))],
      ['a/data/0', f32([1.5, -2, 3, 4], true)],
      ['a/data/1', i16([7, -2, 300], true)],
    ]);
    const ckpt = await openPyTorchCheckpoint(path);
    assert.deepEqual(Array.from(await ckpt.readFloat32('w')), [1.5, 3, -2, 4]);
    assert.deepEqual(Array.from(await ckpt.readFloat32('h')), [-2, 300]);
    assert.deepEqual(await ckpt.readBytes('h'), i16([-2, 300]));
    await ckpt.close();
  });

  void it('reads a data.pkl at the archive root and a tensor named twice (tied weights share a storage)', async () => {
    const path = archive([
      ['data.pkl', statePickle([W, { ...W, name: 'tied', shape: [4], stride: [1] }])],
      ['data/0', f32([1, 2, 3, 4])],
    ]);
    const ckpt = await openPyTorchCheckpoint(path);
    assert.deepEqual(Array.from(await ckpt.readFloat32('w')), [1, 3, 2, 4]);
    assert.deepEqual(Array.from(await ckpt.readFloat32('tied')), [1, 2, 3, 4]);
    await ckpt.close();
  });

  void it('refuses compressed, missing and short storage entries, unknown byte orders and TorchScript archives', async () => {
    const pkl = statePickle([W]);
    await rejectsWithAwdError(openPyTorchCheckpoint(archive([['a/data.pkl', pkl], ['a/data/0', f32([1, 2, 3, 4]), 8]])), /storage "0" is compressed/);
    await rejectsWithAwdError(openPyTorchCheckpoint(archive([['a/data.pkl', pkl]])), /storage "0" has no data\/0 entry/);
    await rejectsWithAwdError(openPyTorchCheckpoint(archive([['a/data.pkl', pkl], ['a/data/0', f32([1, 2, 3])]])), /holds 12 bytes, fewer than the 16/);
    await rejectsWithAwdError(
      openPyTorchCheckpoint(archive([['a/data.pkl', pkl], ['a/byteorder', new Uint8Array([0x6d, 0x69, 0x64])], ['a/data/0', f32([1, 2, 3, 4])]])),
      /unknown byte order "mid"/,
    );
    await rejectsWithAwdError(
      openPyTorchCheckpoint(archive([['a/data.pkl', pkl], ['a/constants.pkl', pkl], ['a/code/__torch__/m.py', new Uint8Array(1)]])),
      /TorchScript archive/,
    );
    await rejectsWithAwdError(openPyTorchCheckpoint(archive([['a/other.txt', pkl]])), /without <archive>\/data\.pkl/);
    await rejectsWithAwdError(
      openPyTorchCheckpoint(archive([['a/data.pkl', statePickle([{ ...W, stride: [1, 3] }])], ['a/data/0', f32([1, 2, 3, 4])]])),
      /reaches past its storage of 16 bytes/,
    );
  });
});

/** Plain reference: element j of the row-major range is storage[offset + Σ unravel(first + j)_k · stride_k]. */
function referenceGather(storage: Uint8Array, shape: number[], stride: number[], offset: number, first: number, count: number, size: number): Uint8Array {
  const out = new Uint8Array(count * size);
  for (let j = 0; j < count; j++) {
    let flat = first + j;
    let at = offset;
    for (let k = shape.length - 1; k >= 0; k--) {
      at += (flat % shape[k]!) * stride[k]!;
      flat = Math.floor(flat / shape[k]!);
    }
    out.set(storage.subarray(at * size, (at + 1) * size), j * size);
  }
  return out;
}

void describe('strided gather', () => {
  void it('matches the plain reference on 3000 random views and ranges; the span covers every touched element', () => {
    const random = seededRandom(99);
    const int = (n: number) => Math.floor(random() * n);
    for (let trial = 0; trial < 3000; trial++) {
      const rank = int(5);
      const shape = Array.from({ length: rank }, () => 1 + int(5));
      const stride = Array.from({ length: rank }, () => int(7));
      const size = [1, 2, 4, 8][int(4)]!;
      const offset = int(5);
      const elements = shape.reduce((a, b) => a * b, 1);
      let last = offset;
      shape.forEach((d, k) => (last += (d - 1) * stride[k]!));
      const storage = new Uint8Array((last + 1) * size).map(() => int(256));
      const first = int(elements);
      const count = 1 + int(elements - first);
      const view = { shape, stride, offset };
      const [lo, hi] = storageSpan(view, first, first + count);
      const window = storage.slice(lo * size, (hi + 1) * size);
      const out = new Uint8Array((count + 2) * size);
      gatherStrided(window, lo, out, 1, view, first, count, size);
      const want = referenceGather(storage, shape, stride, offset, first, count, size);
      assert.deepEqual(out.subarray(size, (count + 1) * size), want, JSON.stringify({ shape, stride, offset, first, count }));
      if (isRowMajor(shape, stride)) {
        assert.deepEqual(storage.subarray((offset + first) * size, (offset + first + count) * size), want);
      }
    }
  });

  void it('recognises row-major strides, ignoring size-1 dims, and empty tensors', () => {
    assert.equal(isRowMajor([2, 3], [3, 1]), true);
    assert.equal(isRowMajor([2, 1, 3], [3, 99, 1]), true);
    assert.equal(isRowMajor([], []), true);
    assert.equal(isRowMajor([0, 3], [7, 7]), true);
    assert.equal(isRowMajor([2, 3], [1, 2]), false);
    assert.equal(isRowMajor([4, 3], [0, 1]), false);
  });
});
