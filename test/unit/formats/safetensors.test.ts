// safetensors reader: values, ranges and metadata of hand-built files, and every malformed header the spec lists
// refused with an AwdError naming the file (and tensor).
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AwdError } from '../../../src/core/errors';
import { openSafetensors } from '../../../src/core/formats/safetensors';
import { buildSafetensors, bytesOf, rawSafetensors, tempFolder } from './testFiles';

const tmp = tempFolder();
after(tmp.cleanup);
let counter = 0;
function fileWith(bytes: Uint8Array): string {
  const p = join(tmp.dir, `f${counter++}.safetensors`);
  writeFileSync(p, bytes);
  return p;
}

async function rejectsWith(path: string, pattern: RegExp, tensor?: string): Promise<void> {
  await assert.rejects(openSafetensors(path), (e: unknown) => {
    assert.ok(e instanceof AwdError, `expected AwdError, got ${String(e)}`);
    assert.match(e.message, pattern);
    assert.ok(e.message.includes(path), `message names the file: ${e.message}`);
    if (tensor !== undefined) assert.equal(e.tensor, tensor);
    return true;
  });
}

void describe('safetensors reader: well-formed files', () => {
  const w = new Float32Array([1, -2, 3.5, 4, 5, 6]);
  const ids = new BigInt64Array([0n, 1n, -7n, 2n ** 40n]);
  const half = new Uint16Array([0x3c00, 0xc000, 0x7c00]); // 1, -2, Inf
  const bf = new Uint16Array([0x3f80, 0x4040]); // 1, 3
  const path = fileWith(
    buildSafetensors(
      [
        { name: 'w', dtype: 'F32', shape: [2, 3], data: bytesOf(w) },
        { name: 'ids', dtype: 'I64', shape: [4], data: bytesOf(ids) },
        { name: 'scalar', dtype: 'F64', shape: [], data: bytesOf(new Float64Array([0.25])) },
        { name: 'empty', dtype: 'F32', shape: [0, 5], data: new Uint8Array(0) },
        { name: 'h', dtype: 'F16', shape: [3], data: bytesOf(half) },
        { name: 'b', dtype: 'BF16', shape: [1, 2], data: bytesOf(bf) },
        { name: 'mask', dtype: 'BOOL', shape: [3], data: new Uint8Array([0, 1, 2]) },
        { name: 'q', dtype: 'F8_E4M3', shape: [2], data: new Uint8Array([0x38, 0x7e]) },
      ],
      { format: 'pt', note: 'hello' },
    ),
  );

  void it('lists tensors in data order with dtype, shape, elements and bytes', async () => {
    const c = await openSafetensors(path);
    try {
      assert.equal(c.format, 'safetensors');
      assert.deepEqual(c.files, [path]);
      assert.deepEqual(c.metadata, { format: 'pt', note: 'hello' });
      assert.deepEqual(c.tensors.map((t) => t.name), ['w', 'ids', 'scalar', 'empty', 'h', 'b', 'mask', 'q']);
      const info = c.tensor('w')!;
      assert.deepEqual([info.dtype, info.shape, info.elements, info.bytes], ['F32', [2, 3], 6, 24]);
      assert.deepEqual([c.tensor('scalar')!.shape, c.tensor('scalar')!.elements], [[], 1]);
      assert.deepEqual([c.tensor('empty')!.elements, c.tensor('empty')!.bytes], [0, 0]);
      assert.equal(c.tensor('nope'), undefined);
    } finally {
      await c.close();
    }
  });

  void it('reads values, element ranges, into `out`, and raw bytes', async () => {
    const c = await openSafetensors(path);
    try {
      assert.deepEqual([...(await c.readFloat32('w'))], [...w]);
      assert.deepEqual([...(await c.readFloat32('w', 2, 5))], [3.5, 4, 5]);
      const out = new Float32Array(2);
      assert.equal(await c.readFloat32('ids', 1, 3, out), out);
      assert.deepEqual([...out], [1, -7]);
      assert.deepEqual([...(await c.readFloat32('ids'))], [0, 1, -7, 2 ** 40]);
      assert.deepEqual([...(await c.readFloat32('scalar'))], [0.25]);
      assert.deepEqual([...(await c.readFloat32('empty'))], []);
      assert.deepEqual([...(await c.readFloat32('h'))], [1, -2, Infinity]);
      assert.deepEqual([...(await c.readFloat32('b'))], [1, 3]);
      assert.deepEqual([...(await c.readFloat32('mask'))], [0, 1, 1]);
      assert.deepEqual([...(await c.readFloat32('q'))], [1, 448]);
      assert.deepEqual(await c.readBytes('ids', 2, 3), bytesOf(ids.subarray(2, 3)));
      assert.deepEqual(await c.readBytes('w'), bytesOf(w));
    } finally {
      await c.close();
    }
  });

  void it('refuses bad ranges, unknown names, wrong `out` sizes and reads after close', async () => {
    const c = await openSafetensors(path);
    await assert.rejects(c.readFloat32('w', 4, 7), AwdError);
    await assert.rejects(c.readFloat32('w', 3, 2), AwdError);
    await assert.rejects(c.readFloat32('w', 0.5, 2), AwdError);
    await assert.rejects(c.readBytes('missing'), /no such tensor/);
    await assert.rejects(c.readFloat32('w', 0, 3, new Float32Array(2)), AwdError);
    await c.close();
    await assert.rejects(c.readFloat32('w'), /closed/);
  });

  void it('accepts an empty header, header padding and holes between tensors', async () => {
    const empty = await openSafetensors(fileWith(rawSafetensors('{}', new Uint8Array(0))));
    assert.deepEqual(empty.tensors, []);
    await empty.close();
    const nullMetadata = await openSafetensors(fileWith(rawSafetensors('{"__metadata__": null}', new Uint8Array(0))));
    assert.deepEqual(nullMetadata.metadata, {});
    await nullMetadata.close();
    const padded = rawSafetensors(
      '{"b":{"dtype":"U8","shape":[2],"data_offsets":[4,6]},"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}   ',
      new Uint8Array([9, 0, 0, 0, 7, 8]),
    );
    const c = await openSafetensors(fileWith(padded));
    assert.deepEqual(c.tensors.map((t) => t.name), ['a', 'b']);
    assert.deepEqual([...(await c.readFloat32('b'))], [7, 8]);
    await c.close();
  });

  void it('refuses a missing file', async () => {
    await rejectsWith(join(tmp.dir, 'does-not-exist.safetensors'), /no such file/);
  });
});

void describe('safetensors reader: malformed headers', () => {
  const t = (over: Record<string, unknown> = {}): Record<string, unknown> => ({ dtype: 'F32', shape: [2], data_offsets: [0, 8], ...over });
  const data8 = new Uint8Array(8);
  const cases: [string, Uint8Array, RegExp, string?][] = [
    ['a file shorter than 8 bytes', new Uint8Array(5), /too short/],
    ['a header length over 100 MB', rawSafetensors({ x: t() }, data8, 100_000_001n), /exceeds/],
    ['a header length past the end of the file', rawSafetensors({ x: t() }, data8, 1000n), /larger than the rest of the file/],
    ['a 2^64 − 1 header length', rawSafetensors({ x: t() }, data8, 2n ** 64n - 1n), /exceeds/],
    ['invalid UTF-8', rawSafetensors('{"ab":1}', data8).map((b, i) => (i === 10 ? 0xff : b)), /UTF-8/],
    ['invalid JSON', rawSafetensors('{"x": {', data8), /not valid JSON/],
    ['a JSON array', rawSafetensors('[1, 2]', data8), /not a JSON object/],
    ['JSON null', rawSafetensors('null', data8), /not a JSON object/],
    ['an entry that is not an object', rawSafetensors({ x: 5 }, data8), /not an object/, 'x'],
    ['an unknown dtype', rawSafetensors({ x: t({ dtype: 'F128' }) }, data8), /unknown dtype "F128"/, 'x'],
    ['a missing dtype', rawSafetensors({ x: { shape: [2], data_offsets: [0, 8] } }, data8), /unknown dtype/, 'x'],
    ['a negative dimension', rawSafetensors({ x: t({ shape: [-2] }) }, data8), /non-negative integers/, 'x'],
    ['a fractional dimension', rawSafetensors({ x: t({ shape: [1.5] }) }, data8), /non-negative integers/, 'x'],
    ['a string dimension', rawSafetensors({ x: t({ shape: ['2'] }) }, data8), /non-negative integers/, 'x'],
    ['a shape that is not a list', rawSafetensors({ x: t({ shape: 2 }) }, data8), /non-negative integers/, 'x'],
    ['an unsafe-integer dimension', rawSafetensors('{"x":{"dtype":"F32","shape":[1e300],"data_offsets":[0,8]}}', data8), /non-negative integers/, 'x'],
    ['three data offsets', rawSafetensors({ x: t({ data_offsets: [0, 4, 8] }) }, data8), /pair of non-negative/, 'x'],
    ['negative data offsets', rawSafetensors({ x: t({ data_offsets: [-8, 0] }) }, data8), /pair of non-negative/, 'x'],
    ['offsets ending before they begin', rawSafetensors({ x: t({ data_offsets: [8, 0] }) }, data8), /end before they begin/, 'x'],
    ['elements × size ≠ byte span', rawSafetensors({ x: t({ shape: [3] }) }, data8), /needs 12 bytes but data_offsets give 8/, 'x'],
    ['a shape product that overflows 2^64', rawSafetensors({ x: t({ shape: [2 ** 52, 2 ** 52, 2 ** 52, 1] }) }, data8), /needs/, 'x'],
    ['offsets past the data section', rawSafetensors({ x: t({ shape: [4], data_offsets: [0, 16] }) }, data8), /run past the data section/, 'x'],
    [
      'overlapping tensors',
      rawSafetensors({ a: t({ data_offsets: [0, 8] }), b: t({ shape: [1], data_offsets: [4, 8] }) }, data8),
      /overlap tensor "a"/,
      'b',
    ],
    ['a non-string metadata value', rawSafetensors({ __metadata__: { epoch: 3 }, x: t() }, data8), /"epoch" is not a string/],
    ['metadata that is not an object', rawSafetensors({ __metadata__: 'x', x: t() }, data8), /not an object of strings/],
    ['a tensor listed twice', rawSafetensors('{"x":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"x":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}', data8), /twice/, 'x'],
  ];
  for (const [what, bytes, pattern, tensor] of cases) {
    void it(`refuses ${what}`, async () => {
      await rejectsWith(fileWith(bytes), pattern, tensor);
    });
  }

  void it('reports a file truncated after it was opened', async () => {
    const p = fileWith(buildSafetensors([{ name: 'x', dtype: 'F32', shape: [4], data: new Uint8Array(16) }]));
    const c = await openSafetensors(p);
    writeFileSync(p, new Uint8Array(10));
    await assert.rejects(c.readFloat32('x'), /truncated/);
    await c.close();
  });
});
