/**
 * Element types: sizes, decoding any dtype's little-endian bytes to float32, and encoding float32 to the dtypes we
 * write (F64, F32, F16, BF16) with IEEE round-to-nearest-even. Every function here is pure over typed arrays.
 * The host is assumed little-endian (every platform Node ships on), so typed-array views read file bytes as-is.
 */
import type { DType } from './types';

/** Bytes per element of each dtype. */
export const DTYPE_SIZE: Readonly<Record<DType, number>> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, F8_E4M3: 1, F8_E5M2: 1,
  I64: 8, I32: 4, I16: 2, I8: 1, U64: 8, U32: 4, U16: 2, U8: 1, BOOL: 1,
};

/** Dtypes the writer can produce from float32 values. */
export type FloatOutputDType = 'F64' | 'F32' | 'F16' | 'BF16';

export const ALL_DTYPES: readonly DType[] = Object.keys(DTYPE_SIZE) as DType[];

/** True when `s` is one of the safetensors dtype names we know. */
export function isDType(s: unknown): s is DType {
  return typeof s === 'string' && Object.prototype.hasOwnProperty.call(DTYPE_SIZE, s);
}

/** True when the dtype can be produced by `encodeFloat32`. */
export function isFloatOutputDType(d: DType): d is FloatOutputDType {
  return d === 'F64' || d === 'F32' || d === 'F16' || d === 'BF16';
}

/** Size in bytes of one element of `dtype`. */
export function dtypeSize(dtype: DType): number {
  return DTYPE_SIZE[dtype];
}

// ---------------------------------------------------------------------------------------------------------------
// Scalar conversions (the readable reference; the array paths below use tables or the same bit arithmetic)

/** IEEE binary16 bits → value: (−1)^s · 2^(e−15) · (1 + m/1024), subnormal 2^−14 · m/1024, e = 31 → Inf/NaN. */
export function f16BitsToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 31) return m === 0 ? sign * Infinity : NaN;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}

/** float8 E4M3FN bits → value: bias 7, subnormal 2^−6 · m/8, no infinities, S.1111.111 = NaN (max ±448). */
export function f8e4m3BitsToNumber(b: number): number {
  const sign = b & 0x80 ? -1 : 1;
  const e = (b >>> 3) & 0xf;
  const m = b & 0x7;
  if (e === 15 && m === 7) return NaN;
  if (e === 0) return sign * m * 2 ** -9;
  return sign * (1 + m / 8) * 2 ** (e - 7);
}

/** float8 E5M2 bits → value: bias 15, subnormal 2^−14 · m/4, e = 31 → Inf/NaN (the upper byte of an f16). */
export function f8e5m2BitsToNumber(b: number): number {
  return f16BitsToNumber(b << 8);
}

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** float32 → bfloat16 bits, round to nearest even on the dropped 16 bits; NaN stays a (quiet) NaN. */
export function float32ToBf16Bits(x: number): number {
  scratchF32[0] = x;
  return bitsToBf16(scratchU32[0]!);
}

/** float32 → IEEE binary16 bits, round to nearest even; overflow → ±Inf, underflow → ±0 or a subnormal. */
export function float32ToF16Bits(x: number): number {
  scratchF32[0] = x;
  return bitsToF16(scratchU32[0]!);
}

function bitsToBf16(bits: number): number {
  if ((bits & 0x7fffffff) > 0x7f800000) return ((bits >>> 16) | 0x0040) & 0xffff;
  // Adding 0x7FFF plus the lowest kept bit rounds ties to even; a carry into the exponent gives Inf on overflow.
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

function bitsToF16(bits: number): number {
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  const mant = bits & 0x7fffff;
  if (exp === 0xff) return mant === 0 ? sign | 0x7c00 : sign | 0x7e00 | (mant >>> 13);
  const e = exp - 127;
  if (e > 15) return sign | 0x7c00;
  if (e >= -14) {
    let h = ((e + 15) << 10) | (mant >>> 13);
    const rest = mant & 0x1fff;
    // A carry out of the mantissa bumps the exponent, which is exactly the right result (up to Inf at 65520).
    if (rest > 0x1000 || (rest === 0x1000 && (h & 1) === 1)) h++;
    return sign | h;
  }
  if (e < -25) return sign;
  // Subnormal: value = m · 2^(e−23) with the implicit bit, in units of 2^−24 that is m >> (−e−1).
  const m = mant | 0x800000;
  const shift = -e - 1;
  let h = m >>> shift;
  const rest = m & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  if (rest > half || (rest === half && (h & 1) === 1)) h++;
  return sign | h;
}

// ---------------------------------------------------------------------------------------------------------------
// Lookup tables, built on first use

let f16Table: Uint32Array | undefined;
let e4m3Table: Float32Array | undefined;
let e5m2Table: Float32Array | undefined;

/** All 65536 binary16 values as float32 bit patterns (exact: every f16 is a float32; NaN payloads kept). */
function f16Lookup(): Uint32Array {
  if (!f16Table) {
    const values = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) values[h] = f16BitsToNumber(h);
    f16Table = new Uint32Array(values.buffer);
    // Copy integer bits, not floats, so NaN keeps its sign and payload: f16 NaN (s, m) → f32 NaN (s, m << 13).
    for (let h = 0; h < 65536; h++) if ((h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0) f16Table[h] = ((h & 0x8000) << 16) | 0x7f800000 | ((h & 0x3ff) << 13);
  }
  return f16Table;
}

function e4m3Lookup(): Float32Array {
  if (!e4m3Table) {
    e4m3Table = new Float32Array(256);
    for (let b = 0; b < 256; b++) e4m3Table[b] = f8e4m3BitsToNumber(b);
  }
  return e4m3Table;
}

function e5m2Lookup(): Float32Array {
  if (!e5m2Table) {
    e5m2Table = new Float32Array(256);
    for (let b = 0; b < 256; b++) e5m2Table[b] = f8e5m2BitsToNumber(b);
  }
  return e5m2Table;
}

// ---------------------------------------------------------------------------------------------------------------
// Decoding

/** A typed-array view of `bytes` when aligned, else an aligned copy (a file read may land anywhere). */
function alignedView<T>(
  bytes: Uint8Array,
  size: number,
  make: (buffer: ArrayBufferLike, byteOffset: number, length: number) => T,
): T {
  const n = bytes.byteLength / size;
  if (bytes.byteOffset % size === 0) return make(bytes.buffer, bytes.byteOffset, n);
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  return make(copy.buffer, 0, n);
}

/**
 * Decodes little-endian elements of `dtype` to float32: out[i] = value(bytes[i·size … (i+1)·size)).
 * Integers are rounded to the nearest float32; BOOL gives 0 or 1. `out`, when given, must hold exactly
 * bytes.length / size elements. Without `out`, aligned F32 input is returned as a zero-copy view.
 */
export function decodeToFloat32(dtype: DType, bytes: Uint8Array, out?: Float32Array): Float32Array {
  const size = DTYPE_SIZE[dtype];
  if (bytes.byteLength % size !== 0) {
    throw new RangeError(`decodeToFloat32: ${bytes.byteLength} bytes is not a whole number of ${dtype} elements`);
  }
  const n = bytes.byteLength / size;
  if (out && out.length !== n) {
    throw new RangeError(`decodeToFloat32: out holds ${out.length} elements, expected ${n}`);
  }
  if (dtype === 'F32') {
    if (!out) return alignedView(bytes, 4, (b, o, l) => new Float32Array(b, o, l));
    new Uint8Array(out.buffer, out.byteOffset, n * 4).set(bytes);
    return out;
  }
  const result = out ?? new Float32Array(n);
  switch (dtype) {
    case 'BF16': {
      // bf16 is the upper half of an f32: move the 16 bits into place through a Uint32 view of the output.
      const dst = new Uint32Array(result.buffer, result.byteOffset, n);
      if (bytes.byteOffset % 4 === 0) {
        // Two elements per 32-bit load (little-endian: element 2i in the low half): about twice the one-by-one rate.
        const pairs = n >>> 1;
        const src = new Uint32Array(bytes.buffer, bytes.byteOffset, pairs);
        for (let i = 0, j = 0; i < pairs; i++, j += 2) {
          const x = src[i]!;
          dst[j] = x << 16;
          dst[j + 1] = x & 0xffff0000;
        }
        if (n % 2 === 1) dst[n - 1] = (bytes[2 * n - 2]! | (bytes[2 * n - 1]! << 8)) << 16;
      } else {
        const src = alignedView(bytes, 2, (b, o, l) => new Uint16Array(b, o, l));
        for (let i = 0; i < n; i++) dst[i] = src[i]! << 16;
      }
      break;
    }
    case 'F16': {
      const src = alignedView(bytes, 2, (b, o, l) => new Uint16Array(b, o, l));
      const table = f16Lookup();
      const dst = new Uint32Array(result.buffer, result.byteOffset, n);
      for (let i = 0; i < n; i++) dst[i] = table[src[i]!]!;
      break;
    }
    case 'F64': {
      const src = alignedView(bytes, 8, (b, o, l) => new Float64Array(b, o, l));
      for (let i = 0; i < n; i++) result[i] = src[i]!;
      break;
    }
    case 'F8_E4M3': {
      const table = e4m3Lookup();
      for (let i = 0; i < n; i++) result[i] = table[bytes[i]!]!;
      break;
    }
    case 'F8_E5M2': {
      const table = e5m2Lookup();
      for (let i = 0; i < n; i++) result[i] = table[bytes[i]!]!;
      break;
    }
    case 'I64':
    case 'U64': {
      // Two 32-bit halves: hi · 2^32 + lo is exact in a double up to 2^53, then rounded once more to float32.
      const src = alignedView(bytes, 4, (b, o, l) => new Uint32Array(b, o, l));
      const signed = dtype === 'I64';
      for (let i = 0; i < n; i++) {
        const lo = src[2 * i]!;
        const hi = signed ? src[2 * i + 1]! | 0 : src[2 * i + 1]!;
        result[i] = hi * 4294967296 + lo;
      }
      break;
    }
    case 'I32': {
      const src = alignedView(bytes, 4, (b, o, l) => new Int32Array(b, o, l));
      for (let i = 0; i < n; i++) result[i] = src[i]!;
      break;
    }
    case 'U32': {
      const src = alignedView(bytes, 4, (b, o, l) => new Uint32Array(b, o, l));
      for (let i = 0; i < n; i++) result[i] = src[i]!;
      break;
    }
    case 'I16': {
      const src = alignedView(bytes, 2, (b, o, l) => new Int16Array(b, o, l));
      for (let i = 0; i < n; i++) result[i] = src[i]!;
      break;
    }
    case 'U16': {
      const src = alignedView(bytes, 2, (b, o, l) => new Uint16Array(b, o, l));
      for (let i = 0; i < n; i++) result[i] = src[i]!;
      break;
    }
    case 'I8': {
      const src = new Int8Array(bytes.buffer, bytes.byteOffset, n);
      for (let i = 0; i < n; i++) result[i] = src[i]!;
      break;
    }
    case 'U8':
      for (let i = 0; i < n; i++) result[i] = bytes[i]!;
      break;
    case 'BOOL':
      for (let i = 0; i < n; i++) result[i] = bytes[i]! !== 0 ? 1 : 0;
      break;
  }
  return result;
}

// ---------------------------------------------------------------------------------------------------------------
// Encoding

/**
 * Encodes float32 values as little-endian `dtype` bytes: F64 exactly, F32 as-is, F16 and BF16 rounded to nearest
 * even (NaN stays NaN, overflow → ±Inf). `out`, when given, must hold values.length · size bytes.
 */
export function encodeFloat32(dtype: FloatOutputDType, values: Float32Array, out?: Uint8Array): Uint8Array {
  const n = values.length;
  const size = DTYPE_SIZE[dtype];
  const result = out ?? new Uint8Array(n * size);
  if (result.byteLength !== n * size) {
    throw new RangeError(`encodeFloat32: out holds ${result.byteLength} bytes, expected ${n * size}`);
  }
  const src = new Uint32Array(values.buffer, values.byteOffset, n);
  switch (dtype) {
    case 'F32':
      result.set(new Uint8Array(values.buffer, values.byteOffset, n * 4));
      break;
    case 'F64': {
      if (result.byteOffset % 8 === 0) {
        const dst = new Float64Array(result.buffer, result.byteOffset, n);
        for (let i = 0; i < n; i++) dst[i] = values[i]!;
      } else {
        const dst = new DataView(result.buffer, result.byteOffset, n * 8);
        for (let i = 0; i < n; i++) dst.setFloat64(i * 8, values[i]!, true);
      }
      break;
    }
    case 'BF16':
    case 'F16': {
      const dst = result.byteOffset % 2 === 0 ? new Uint16Array(result.buffer, result.byteOffset, n) : new Uint16Array(n);
      if (dtype === 'BF16') {
        for (let i = 0; i < n; i++) {
          const b = src[i]!;
          // Same rounding as bitsToBf16, inlined: this loop is the writer's hot path.
          dst[i] = (b & 0x7fffffff) > 0x7f800000 ? ((b >>> 16) | 0x0040) & 0xffff : (b + 0x7fff + ((b >>> 16) & 1)) >>> 16;
        }
      } else {
        for (let i = 0; i < n; i++) {
          const b = src[i]!;
          const a = b & 0x7fffffff;
          // Normal f16 range [2^-14, 2^16): rebias the exponent by 112 and round the 13 dropped bits to even in one
          // add (a carry into the exponent is right, up to Inf); everything else takes the general path.
          dst[i] = a >= 0x38800000 && a < 0x47800000
            ? ((a - 0x38000000 + 0xfff + ((a >>> 13) & 1)) >>> 13) | ((b >>> 16) & 0x8000)
            : bitsToF16(b);
        }
      }
      if (dst.byteOffset !== result.byteOffset || dst.buffer !== result.buffer) result.set(new Uint8Array(dst.buffer, 0, n * 2));
      break;
    }
  }
  return result;
}
