// dtypes: hand-computed bit patterns for the rounding corners, and every conversion against a plain reference on
// random inputs (the reference finds the nearest representable value by binary search over all of them).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  decodeToFloat32, encodeFloat32, f16BitsToNumber, f8e4m3BitsToNumber, f8e5m2BitsToNumber,
  float32ToBf16Bits, float32ToF16Bits, DTYPE_SIZE, ALL_DTYPES,
} from '../../../src/core/formats/dtypes';
import { seededRandom } from './testFiles';

function f32FromBits(bits: number): number {
  const u = new Uint32Array([bits >>> 0]);
  return new Float32Array(u.buffer)[0]!;
}

function bf16BitsToNumber(h: number): number {
  return f32FromBits(h << 16);
}

/** Reference round-to-nearest-even: nearest of the ascending non-negative finite codes [0, maxCode], tie → even. */
function referenceRound(x: number, maxCode: number, value: (code: number) => number, infCode: number, signBit: number): number {
  if (Number.isNaN(x)) return -1;
  const sign = x < 0 || Object.is(x, -0) ? signBit : 0;
  const a = Math.abs(x);
  const max = value(maxCode);
  const overflowAt = max + (max - value(maxCode - 1)) / 2;
  if (a >= overflowAt) return sign | infCode;
  let lo = 0;
  let hi = maxCode;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (value(mid) <= a) lo = mid;
    else hi = mid;
  }
  const dLo = a - value(lo);
  const dHi = value(hi) - a;
  let code: number;
  if (dLo < dHi) code = lo;
  else if (dHi < dLo) code = hi;
  else code = lo % 2 === 0 ? lo : hi;
  if (value(hi) <= a) code = hi;
  return sign | code;
}

void describe('dtypes: hand-computed bit patterns', () => {
  void it('bf16 rounds to nearest, ties to even', () => {
    assert.equal(float32ToBf16Bits(1), 0x3f80);
    assert.equal(float32ToBf16Bits(1.00390625), 0x3f80); // 1 + 2^-8: exact tie, 0x3F80 is even
    assert.equal(float32ToBf16Bits(1.01171875), 0x3f82); // 1 + 3·2^-8: tie, 0x3F81 odd → up
    assert.equal(float32ToBf16Bits(f32FromBits(0x3f808001)), 0x3f81); // just above the tie → up
    assert.equal(float32ToBf16Bits(-2), 0xc000);
    assert.equal(float32ToBf16Bits(f32FromBits(0x7f7fffff)), 0x7f80); // f32 max rounds past bf16 max → +Inf
    assert.equal(float32ToBf16Bits(f32FromBits(0x7f7f0000)), 0x7f7f); // bf16 max is exact
    assert.equal(float32ToBf16Bits(-Infinity), 0xff80);
    assert.equal(float32ToBf16Bits(-0), 0x8000);
    assert.equal(float32ToBf16Bits(f32FromBits(0x00000001)), 0x0000); // smallest f32 subnormal → 0
    const nan = float32ToBf16Bits(NaN);
    assert.ok((nan & 0x7f80) === 0x7f80 && (nan & 0x7f) !== 0, 'NaN stays NaN');
    assert.ok((float32ToBf16Bits(f32FromBits(0x7f800001)) & 0x7f) !== 0, 'signalling NaN with low payload stays NaN');
  });

  void it('f16 normals, ties, max, overflow', () => {
    assert.equal(float32ToF16Bits(1), 0x3c00);
    assert.equal(float32ToF16Bits(-2.5), 0xc100);
    assert.equal(float32ToF16Bits(1 + 2 ** -11), 0x3c00); // tie → even
    assert.equal(float32ToF16Bits(1 + 3 * 2 ** -11), 0x3c02); // tie → even (up)
    assert.equal(float32ToF16Bits(65504), 0x7bff); // max
    assert.equal(float32ToF16Bits(65519), 0x7bff); // below the midpoint to 65536
    assert.equal(float32ToF16Bits(65520), 0x7c00); // midpoint: 0x7BFF is odd → rounds up to Inf
    assert.equal(float32ToF16Bits(1e6), 0x7c00);
    assert.equal(float32ToF16Bits(-1e6), 0xfc00);
    assert.equal(float32ToF16Bits(Infinity), 0x7c00);
    assert.equal(float32ToF16Bits(-0), 0x8000);
    const nan = float32ToF16Bits(NaN);
    assert.ok((nan & 0x7c00) === 0x7c00 && (nan & 0x3ff) !== 0);
  });

  void it('f16 subnormals', () => {
    assert.equal(float32ToF16Bits(2 ** -14), 0x0400); // smallest normal
    assert.equal(float32ToF16Bits(2 ** -24), 0x0001); // smallest subnormal
    assert.equal(float32ToF16Bits(2 ** -25), 0x0000); // half of it: tie → even (0)
    assert.equal(float32ToF16Bits(2 ** -25 * 1.0001), 0x0001);
    assert.equal(float32ToF16Bits(3 * 2 ** -25), 0x0002); // 1.5 units: tie → even (2)
    assert.equal(float32ToF16Bits(2 ** -14 - 2 ** -25), 0x0400); // tie between 0x3FF and 0x400 → 0x400
    assert.equal(float32ToF16Bits(2 ** -14 - 2 ** -24), 0x03ff); // largest subnormal
    assert.equal(float32ToF16Bits(-(2 ** -24)), 0x8001);
    assert.equal(float32ToF16Bits(2 ** -26), 0x0000);
    assert.equal(f16BitsToNumber(0x0001), 2 ** -24);
    assert.equal(f16BitsToNumber(0x03ff), 1023 * 2 ** -24);
    assert.equal(f16BitsToNumber(0x7bff), 65504);
    assert.equal(f16BitsToNumber(0xfc00), -Infinity);
  });

  void it('float8 E4M3FN and E5M2', () => {
    assert.equal(f8e4m3BitsToNumber(0x38), 1);
    assert.equal(f8e4m3BitsToNumber(0x7e), 448);
    assert.equal(f8e4m3BitsToNumber(0xfe), -448);
    assert.ok(Number.isNaN(f8e4m3BitsToNumber(0x7f)));
    assert.ok(Number.isNaN(f8e4m3BitsToNumber(0xff)));
    assert.equal(f8e4m3BitsToNumber(0x78), 256); // e = 15, m = 0 is a number in the fn variant, not Inf
    assert.equal(f8e4m3BitsToNumber(0x01), 2 ** -9);
    assert.equal(f8e4m3BitsToNumber(0x07), 7 * 2 ** -9);
    assert.equal(f8e4m3BitsToNumber(0x08), 2 ** -6);
    assert.equal(f8e5m2BitsToNumber(0x3c), 1);
    assert.equal(f8e5m2BitsToNumber(0x7b), 57344);
    assert.equal(f8e5m2BitsToNumber(0x7c), Infinity);
    assert.ok(Number.isNaN(f8e5m2BitsToNumber(0x7d)));
    assert.equal(f8e5m2BitsToNumber(0x01), 2 ** -16);
    assert.equal(f8e5m2BitsToNumber(0x80), -0);
  });
});

void describe('dtypes: arrays against the reference', () => {
  const rand = seededRandom(42);
  /** Random float32 bit patterns spread over every exponent, plus values near the f16 range. */
  function randomValues(n: number): Float32Array {
    const v = new Float32Array(n);
    const bits = new Uint32Array(v.buffer);
    for (let i = 0; i < n; i++) {
      if (i % 3 === 0) bits[i] = Math.floor(rand() * 2 ** 32);
      else v[i] = (rand() - 0.5) * 2 ** Math.floor(rand() * 44 - 28);
    }
    return v;
  }

  void it('bf16 encode matches the nearest-even reference', () => {
    const v = randomValues(20000);
    const enc = new Uint16Array(encodeFloat32('BF16', v).buffer);
    for (let i = 0; i < v.length; i++) {
      const want = referenceRound(v[i]!, 0x7f7f, bf16BitsToNumber, 0x7f80, 0x8000);
      if (want === -1) assert.ok(Number.isNaN(bf16BitsToNumber(enc[i]!)), `NaN at ${i}`);
      else assert.equal(enc[i], want, `bf16 of ${v[i]} (bits ${new Uint32Array(v.buffer)[i]!.toString(16)})`);
    }
  });

  void it('f16 encode matches the nearest-even reference', () => {
    const v = randomValues(20000);
    const enc = new Uint16Array(encodeFloat32('F16', v).buffer);
    for (let i = 0; i < v.length; i++) {
      const want = referenceRound(v[i]!, 0x7bff, f16BitsToNumber, 0x7c00, 0x8000);
      if (want === -1) assert.ok(Number.isNaN(f16BitsToNumber(enc[i]!)), `NaN at ${i}`);
      else assert.equal(enc[i], want, `f16 of ${v[i]}`);
    }
  });

  void it('every f16 and bf16 code decodes and re-encodes to itself (except NaN payloads)', () => {
    const codes = new Uint16Array(65536).map((_, i) => i);
    const bytes = new Uint8Array(codes.buffer);
    for (const dtype of ['F16', 'BF16'] as const) {
      const decoded = decodeToFloat32(dtype, bytes);
      const back = new Uint16Array(encodeFloat32(dtype, decoded).buffer);
      const ref = dtype === 'F16' ? f16BitsToNumber : bf16BitsToNumber;
      for (let h = 0; h < 65536; h++) {
        const x = ref(h);
        if (Number.isNaN(x)) {
          assert.ok(Number.isNaN(decoded[h]!));
          continue;
        }
        assert.ok(Object.is(decoded[h], Math.fround(x)), `${dtype} decode of ${h.toString(16)}`);
        assert.equal(back[h], h, `${dtype} round trip of ${h.toString(16)}`);
      }
    }
  });

  void it('decodes every dtype against DataView reads, at aligned and unaligned offsets', () => {
    const n = 257;
    for (const dtype of ALL_DTYPES) {
      const size = DTYPE_SIZE[dtype];
      for (const offset of [0, 1, 3]) {
        const backing = new Uint8Array(n * size + offset);
        for (let i = 0; i < backing.length; i++) backing[i] = Math.floor(rand() * 256);
        const bytes = backing.subarray(offset);
        const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
        const got = decodeToFloat32(dtype, bytes);
        const out = new Float32Array(n);
        assert.equal(decodeToFloat32(dtype, bytes, out), out);
        for (let i = 0; i < n; i++) {
          const p = i * size;
          let want: number;
          switch (dtype) {
            case 'F64': want = view.getFloat64(p, true); break;
            case 'F32': want = view.getFloat32(p, true); break;
            case 'F16': want = f16BitsToNumber(view.getUint16(p, true)); break;
            case 'BF16': want = bf16BitsToNumber(view.getUint16(p, true)); break;
            case 'F8_E4M3': want = f8e4m3BitsToNumber(view.getUint8(p)); break;
            case 'F8_E5M2': want = f8e5m2BitsToNumber(view.getUint8(p)); break;
            case 'I64': want = Number(view.getBigInt64(p, true)); break;
            case 'U64': want = Number(view.getBigUint64(p, true)); break;
            case 'I32': want = view.getInt32(p, true); break;
            case 'U32': want = view.getUint32(p, true); break;
            case 'I16': want = view.getInt16(p, true); break;
            case 'U16': want = view.getUint16(p, true); break;
            case 'I8': want = view.getInt8(p); break;
            case 'U8': want = view.getUint8(p); break;
            case 'BOOL': want = view.getUint8(p) !== 0 ? 1 : 0; break;
          }
          const w = Math.fround(want);
          assert.ok(Object.is(got[i], w) || (Number.isNaN(w) && Number.isNaN(got[i]!)), `${dtype}@${offset}[${i}]: ${got[i]} vs ${w}`);
          assert.ok(Object.is(out[i], got[i]) || Number.isNaN(got[i]!));
        }
      }
    }
  });

  void it('F64 and F32 encode exactly, also into unaligned output', () => {
    const v = randomValues(100);
    for (const dtype of ['F64', 'F32'] as const) {
      const size = DTYPE_SIZE[dtype];
      const backing = new Uint8Array(v.length * size + 1);
      const out = backing.subarray(1);
      encodeFloat32(dtype, v, out);
      const back = decodeToFloat32(dtype, out);
      for (let i = 0; i < v.length; i++) assert.ok(Object.is(back[i], v[i]) || Number.isNaN(v[i]!));
    }
    const odd = new Uint8Array(v.length * 2 + 1).subarray(1);
    encodeFloat32('BF16', v, odd);
    const aligned = encodeFloat32('BF16', v);
    assert.deepEqual([...odd], [...aligned]);
  });

  void it('rejects a byte count that is not a whole number of elements', () => {
    assert.throws(() => decodeToFloat32('F32', new Uint8Array(6)), RangeError);
    assert.throws(() => decodeToFloat32('F16', new Uint8Array(4), new Float32Array(3)), RangeError);
  });
});
