// NumPy reader against files NumPy itself wrote (test/fixtures/formats/make_numpy_fixtures.py): every dtype,
// C and Fortran order, both byte orders, header versions 1–3, stored and deflated .npz, and the refused kinds.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AwdError } from '../../../src/core/errors';
import { fortranToRowMajor, openNpy, openNpz, parsePythonLiteral } from '../../../src/core/formats/numpy';
import { openCheckpoint } from '../../../src/core/formats/open';

const FIXTURES = join(__dirname, '../../fixtures/formats/numpy');
const expected = JSON.parse(readFileSync(join(FIXTURES, 'expected.json'), 'utf8')) as Record<
  string,
  Record<string, { shape: number[]; values: number[] }>
>;

void describe('numpy reader: files written by NumPy', () => {
  for (const [file, arrays] of Object.entries(expected)) {
    void it(`reads ${file}`, async () => {
      const c = await openCheckpoint(join(FIXTURES, file));
      try {
        assert.equal(c.format, file.endsWith('.npz') ? 'npz' : 'npy');
        assert.deepEqual(new Set(c.tensors.map((t) => t.name)), new Set(Object.keys(arrays)));
        for (const [name, want] of Object.entries(arrays)) {
          const info = c.tensor(name)!;
          assert.deepEqual(info.shape, want.shape, `${name} shape`);
          const got = await c.readFloat32(name);
          assert.deepEqual([...got], want.values.map((v) => Math.fround(v)), `${name} values`);
          // Every sub-range agrees with the whole (Fortran arrays are reordered per range).
          for (let s = 0; s < info.elements; s += 2) {
            const e = Math.min(info.elements, s + 3);
            assert.deepEqual([...(await c.readFloat32(name, s, e))], [...got.subarray(s, e)], `${name} [${s}, ${e})`);
          }
          const bytes = await c.readBytes(name);
          assert.equal(bytes.length, info.bytes);
        }
      } finally {
        await c.close();
      }
    });
  }

  void it('returns little-endian bytes for big-endian arrays', async () => {
    const c = await openNpy(join(FIXTURES, 'i4_big_endian.npy'));
    const bytes = await c.readBytes('i4_big_endian', 3, 4);
    assert.deepEqual([...bytes], [0x80, 0x1a, 0x06, 0x00]); // 400000 = 0x00061A80
    assert.equal(c.tensor('i4_big_endian')!.dtype, 'I32');
    await c.close();
  });

  void it('maps dtypes to safetensors names', async () => {
    const want: Record<string, string> = {
      f32_c: 'F32', f64_fortran: 'F64', f2_big_fortran: 'F16', bool: 'BOOL', u8: 'U8', i8: 'I64', u2: 'U16', v2_header: 'I16',
    };
    for (const [name, dtype] of Object.entries(want)) {
      const c = await openNpy(join(FIXTURES, `${name}.npy`));
      assert.equal(c.tensor(name)!.dtype, dtype);
      await c.close();
    }
  });

  void it('refuses object arrays (pickle) and structured dtypes with an explanation', async () => {
    await assert.rejects(openNpy(join(FIXTURES, 'object.npy')), (e: unknown) => e instanceof AwdError && /pickle/.test(e.message) && /object\.npy/.test(e.message));
    await assert.rejects(openNpy(join(FIXTURES, 'structured.npy')), (e: unknown) => e instanceof AwdError && /structured/.test(e.message));
  });

  void it('inflates a deflated member only as far as its array goes (a bomb costs nothing)', async () => {
    // The member inflates to 16 MB but its zip headers claim ~100 bytes past the array: inflating any further than
    // the array would fail with a size mismatch, so reading the values proves the inflation stopped at the array.
    const c = await openNpz(join(FIXTURES, 'bomb.npz'));
    assert.deepEqual([...(await c.readFloat32('x'))], [0, 0, 0, 0]);
    await c.close();
  });

  void it('refuses zip sizes no deflate stream can produce', async () => {
    await assert.rejects(openNpz(join(FIXTURES, 'lying_sizes.npz')), (e: unknown) => e instanceof AwdError && /impossible/.test(e.message));
  });
});

void describe('numpy reader: pieces', () => {
  void it('parses the header dict literal and nothing else', () => {
    assert.deepEqual(parsePythonLiteral("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }  \n"), {
      descr: '<f4',
      fortran_order: false,
      shape: [3, 4],
    });
    assert.deepEqual(parsePythonLiteral("{'shape': (5,), 'x': None, 'y': [1L, -2]}"), { shape: [5], x: null, y: [1, -2] });
    assert.deepEqual(parsePythonLiteral("{'shape': ()}"), { shape: [] });
    for (const bad of ["{'a': __import__('os')}", "{'a': 1 + 2}", "{'a': 1", "{1: 2}", "{'a': 1} x", "'unterminated"]) {
      assert.throws(() => parsePythonLiteral(bad), SyntaxError, bad);
    }
    assert.throws(() => parsePythonLiteral('['.repeat(100)), SyntaxError);
  });

  void it('reorders Fortran data like a naive index computation', () => {
    const shape = [3, 4, 5];
    const n = 60;
    const src = new Uint8Array(n).map((_, i) => i); // value = column-major offset
    const got = fortranToRowMajor(src, shape, 1, 7, 41);
    for (let i = 7; i < 41; i++) {
      const c0 = Math.floor(i / 20);
      const c1 = Math.floor(i / 5) % 4;
      const c2 = i % 5;
      assert.equal(got[i - 7], c0 + 3 * c1 + 12 * c2, `element ${i}`);
    }
  });
});
