// Test helpers for the format readers: hand-built safetensors files (plus the shared seeded random source and
// temporary folders).
import { seededRandom, tempFolder } from '../../support/testData';

export { seededRandom, tempFolder };

/** A tensor for a hand-built safetensors file: its raw little-endian bytes. */
export interface RawTensor {
  name: string;
  dtype: string;
  shape: number[];
  data: Uint8Array;
}

/** safetensors bytes from a header given as text or object and a data section, written exactly as given. */
export function rawSafetensors(header: string | object, data: Uint8Array, lengthOverride?: bigint): Uint8Array {
  const text = typeof header === 'string' ? header : JSON.stringify(header);
  const headerBytes = new TextEncoder().encode(text);
  const out = new Uint8Array(8 + headerBytes.length + data.length);
  new DataView(out.buffer).setBigUint64(0, lengthOverride ?? BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  out.set(data, 8 + headerBytes.length);
  return out;
}

/** A well-formed safetensors file (per the spec, independent of our writer): tensors laid out in the given order. */
export function buildSafetensors(tensors: RawTensor[], metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.data.length] };
    offset += t.data.length;
  }
  const data = new Uint8Array(offset);
  offset = 0;
  for (const t of tensors) {
    data.set(t.data, offset);
    offset += t.data.length;
  }
  return rawSafetensors(header, data);
}

/** Little-endian bytes of a typed array. */
export function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength).slice();
}
