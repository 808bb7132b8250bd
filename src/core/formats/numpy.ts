/**
 * NumPy .npy and .npz. An .npy file is `\x93NUMPY`, version (major, minor), a header length (2 bytes LE in v1,
 * 4 in v2/v3), a Python dict literal `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4)}`, then the raw
 * array. An .npz is a zip of `<name>.npy` entries. The dict is read by a small literal parser (never evaluated);
 * object arrays, which would need pickle, are refused. Fortran-order arrays are returned in row-major order and
 * big-endian ones as little-endian bytes, like every other reader.
 */
import { basename, resolve as resolvePath } from 'node:path';
import { AwdError } from '../errors';
import { decodeToFloat32, DTYPE_SIZE } from './dtypes';
import { PositionalFile } from './positionalFile';
import { checkOutLength, resolveElementRange, unknownTensorError } from './tensorRange';
import type { Checkpoint, CheckpointFormat, DType, TensorInfo } from './types';
import { ZipArchive, type ZipEntry } from './zipArchive';

export const NPY_MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
/** numpy itself refuses headers over 10000 bytes by default; we allow more but not unbounded. */
const MAX_NPY_HEADER_BYTES = 1 << 20;
/** The largest deflated .npz member we inflate into memory (deflate cannot be read at an offset). */
const MAX_INFLATED_BYTES = 2 ** 31 - 1;

const NPY_FIX = 'The file is corrupt or not a NumPy file; re-save it with numpy.save / numpy.savez';

/** A parsed .npy header: where the data starts relative to the header's first byte, and its layout. */
export interface NpyHeader {
  readonly dtype: DType;
  readonly bigEndian: boolean;
  readonly fortranOrder: boolean;
  readonly shape: readonly number[];
  readonly elements: number;
  readonly bytes: number;
  /** Offset of the first data byte from the start of the .npy content. */
  readonly dataOffset: number;
}

// ---------------------------------------------------------------------------------------------------------------
// Header dict: a tiny parser for the Python literals numpy writes (str, int, bool, None, tuple, list, dict)

type PyLiteral = string | number | boolean | null | PyLiteral[] | { [key: string]: PyLiteral };

/** Parses a Python literal; anything outside the literal subset (names, calls, operators) is an error. */
export function parsePythonLiteral(text: string): PyLiteral {
  let i = 0;
  const fail = (what: string): never => {
    throw new SyntaxError(`${what} at character ${i}`);
  };
  const skip = (): void => {
    while (i < text.length && /\s/.test(text[i]!)) i++;
  };
  const value = (depth: number): PyLiteral => {
    if (depth > 32) fail('nesting too deep');
    skip();
    const c = text[i];
    if (c === '{' || c === '(' || c === '[') {
      const close = c === '{' ? '}' : c === '(' ? ')' : ']';
      i++;
      const items: PyLiteral[] = [];
      const dict: { [key: string]: PyLiteral } = {};
      const keys: [string, PyLiteral][] = [];
      for (;;) {
        skip();
        if (text[i] === close) {
          i++;
          break;
        }
        const item = value(depth + 1);
        if (c === '{') {
          if (typeof item !== 'string') fail('dict key is not a string');
          skip();
          if (text[i] !== ':') fail('expected ":"');
          i++;
          keys.push([item as string, value(depth + 1)]);
        } else {
          items.push(item);
        }
        skip();
        if (text[i] === ',') i++;
        else if (text[i] !== close) fail(`expected "," or "${close}"`);
      }
      if (c !== '{') return items;
      for (const [k, v] of keys) Object.defineProperty(dict, k, { value: v, enumerable: true, writable: true, configurable: true });
      return dict;
    }
    if (c === "'" || c === '"') {
      i++;
      let s = '';
      while (i < text.length && text[i] !== c) {
        if (text[i] === '\\') {
          i++;
          const e = text[i];
          s += e === 'n' ? '\n' : e === 't' ? '\t' : (e ?? '');
        } else {
          s += text[i];
        }
        i++;
      }
      if (text[i] !== c) fail('unterminated string');
      i++;
      return s;
    }
    const word = /^(-?\d+)L?|^(True|False|None)\b/.exec(text.slice(i, i + 32));
    if (!word) return fail('unexpected input');
    i += word[0].length;
    if (word[2] === 'True') return true;
    if (word[2] === 'False') return false;
    if (word[2] === 'None') return null;
    return Number(word[1]);
  };
  const result = value(0);
  skip();
  if (i !== text.length) fail('unexpected trailing input');
  return result;
}

/** numpy dtype descr (kind + size, byte order aside) → our dtype. */
const NUMPY_DTYPES: Readonly<Record<string, DType>> = {
  f2: 'F16', f4: 'F32', f8: 'F64',
  i1: 'I8', i2: 'I16', i4: 'I32', i8: 'I64',
  u1: 'U8', u2: 'U16', u4: 'U32', u8: 'U64',
  b1: 'BOOL', '?': 'BOOL',
};

/** Parses an .npy preamble + header (`bytes` must hold at least the whole header); `file` names it in errors. */
export function parseNpyHeader(file: string, bytes: Uint8Array, tensor?: string): NpyHeader & { headerEnd: number } {
  const where = { file, tensor, fix: NPY_FIX };
  if (bytes.length < 10 || NPY_MAGIC.some((b, k) => bytes[k] !== b)) throw new AwdError('not a NumPy .npy array (bad magic)', where);
  const major = bytes[6]!;
  if (major < 1 || major > 3) throw new AwdError(`unsupported .npy format version ${major}.${bytes[7]}`, where);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const prefix = major === 1 ? 10 : 12;
  if (bytes.length < prefix) throw new AwdError('the .npy header is truncated', where);
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  if (headerLength > MAX_NPY_HEADER_BYTES) throw new AwdError(`the .npy header claims ${headerLength} bytes, more than the ${MAX_NPY_HEADER_BYTES} allowed`, where);
  const headerEnd = prefix + headerLength;
  if (bytes.length < headerEnd) throw new AwdError('the .npy header is truncated', where);
  const raw = bytes.subarray(prefix, headerEnd);
  let text: string;
  try {
    text = new TextDecoder(major === 3 ? 'utf-8' : 'latin1', { fatal: true }).decode(raw);
  } catch {
    throw new AwdError('the .npy header is not valid text', where);
  }
  let dict: PyLiteral;
  try {
    dict = parsePythonLiteral(text);
  } catch (e) {
    throw new AwdError(`the .npy header is not a Python dict literal (${(e as Error).message})`, where);
  }
  if (typeof dict !== 'object' || dict === null || Array.isArray(dict)) throw new AwdError('the .npy header is not a dict', where);
  const { descr, fortran_order: fortran, shape } = dict;
  if (typeof descr !== 'string') {
    throw new AwdError('structured arrays (record dtypes) are not supported', { file, tensor, fix: 'Save each field as its own array' });
  }
  const hasOrder = /^[<>|=]/.test(descr);
  const order = hasOrder ? descr[0]! : '=';
  const code = hasOrder ? descr.slice(1) : descr;
  if (code.startsWith('O')) {
    throw new AwdError('object arrays are not read: loading them needs pickle, which can run arbitrary code', {
      file,
      tensor,
      fix: 'Save a numeric array instead (e.g. np.asarray(x, dtype=np.float32))',
    });
  }
  const dtype = NUMPY_DTYPES[code];
  if (!dtype) {
    throw new AwdError(`NumPy dtype "${descr}" is not supported`, {
      file,
      tensor,
      fix: 'Supported: float16/32/64, int8–64, uint8–64 and bool; convert with arr.astype(np.float32)',
    });
  }
  if (typeof fortran !== 'boolean') throw new AwdError('the .npy header has no boolean fortran_order', where);
  if (!Array.isArray(shape) || !shape.every((d) => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0)) {
    throw new AwdError('the .npy header shape is not a tuple of non-negative integers', where);
  }
  const dims = shape as number[];
  const elements = dims.reduce((a, d) => a * BigInt(d), 1n);
  const size = DTYPE_SIZE[dtype];
  if (elements * BigInt(size) > BigInt(Number.MAX_SAFE_INTEGER)) throw new AwdError('the .npy shape is impossibly large', where);
  return {
    dtype,
    bigEndian: order === '>' && size > 1,
    fortranOrder: fortran && dims.length > 1,
    shape: dims,
    elements: Number(elements),
    bytes: Number(elements) * size,
    dataOffset: headerEnd,
    headerEnd,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Layout conversion

/** Reverses the bytes of each `size`-byte element in place (big-endian ↔ little-endian). */
export function swapBytesInPlace(bytes: Uint8Array, size: number): void {
  if (size === 1) return;
  for (let p = 0; p < bytes.length; p += size) {
    for (let a = p, b = p + size - 1; a < b; a++, b--) {
      const t = bytes[a]!;
      bytes[a] = bytes[b]!;
      bytes[b] = t;
    }
  }
}

/**
 * Row-major elements [start, end) of a column-major array: out[i − start] = src[Σ_k c_k · Π_{j<k} shape_j] where
 * (c_0 … c_{d−1}) is the row-major coordinate of element i.
 */
export function fortranToRowMajor(src: Uint8Array, shape: readonly number[], size: number, start: number, end: number): Uint8Array {
  const d = shape.length;
  const out = new Uint8Array((end - start) * size);
  if (end <= start) return out;
  const fStride = new Array<number>(d);
  let s = 1;
  for (let k = 0; k < d; k++) {
    fStride[k] = s;
    s *= shape[k]!;
  }
  const coord = new Array<number>(d).fill(0);
  let rest = start;
  for (let k = d - 1; k >= 0; k--) {
    coord[k] = rest % shape[k]!;
    rest = Math.floor(rest / shape[k]!);
  }
  let offset = coord.reduce((a, c, k) => a + c * fStride[k]!, 0);
  for (let i = 0; i < end - start; i++) {
    out.set(src.subarray(offset * size, offset * size + size), i * size);
    // Odometer step in row-major order: the last axis moves fastest.
    for (let k = d - 1; k >= 0; k--) {
      coord[k]!++;
      offset += fStride[k]!;
      if (coord[k]! < shape[k]!) break;
      offset -= coord[k]! * fStride[k]!;
      coord[k] = 0;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Checkpoint

/** Where a tensor's data lives: positional reads of a file range, or an inflated buffer loaded on demand. */
interface NpyTensor extends TensorInfo {
  readonly header: NpyHeader;
  /** Bytes [offset, offset + length) of the array data. */
  readonly readData: (offset: number, length: number) => Promise<Uint8Array>;
}

class NumpyCheckpoint implements Checkpoint {
  readonly files: readonly string[];
  readonly metadata: Readonly<Record<string, string>> = {};
  private readonly byName = new Map<string, NpyTensor>();
  /** The last whole Fortran-order array read, kept because chunked reads of it each need all of it. */
  private fortranCache?: { name: string; bytes: Promise<Uint8Array> };
  private closed = false;

  constructor(
    readonly path: string,
    readonly format: CheckpointFormat,
    readonly tensors: readonly NpyTensor[],
    private readonly release: () => Promise<void>,
  ) {
    this.files = [path];
    for (const t of tensors) this.byName.set(t.name, t);
  }

  tensor(name: string): TensorInfo | undefined {
    return this.byName.get(name);
  }

  async readBytes(name: string, start?: number, end?: number): Promise<Uint8Array> {
    if (this.closed) throw new AwdError('read after the checkpoint was closed', { file: this.path });
    const t = this.byName.get(name);
    if (!t) throw unknownTensorError(this.path, name);
    const [s, e] = resolveElementRange(this.path, t, start, end);
    const size = DTYPE_SIZE[t.dtype];
    let bytes: Uint8Array;
    if (t.header.fortranOrder) {
      if (this.fortranCache?.name !== name) this.fortranCache = { name, bytes: t.readData(0, t.bytes) };
      bytes = fortranToRowMajor(await this.fortranCache.bytes, t.shape, size, s, e);
    } else {
      bytes = (await t.readData(s * size, (e - s) * size)).slice();
    }
    if (t.header.bigEndian) swapBytesInPlace(bytes, size);
    return bytes;
  }

  async readFloat32(name: string, start?: number, end?: number, out?: Float32Array): Promise<Float32Array> {
    const t = this.byName.get(name);
    if (!t) throw unknownTensorError(this.path, name);
    const [s, e] = resolveElementRange(this.path, t, start, end);
    checkOutLength(this.path, t, out, e - s);
    return decodeToFloat32(t.dtype, await this.readBytes(name, s, e), out);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.fortranCache = undefined;
    await this.release();
  }
}

function npyTensor(name: string, header: NpyHeader, readData: NpyTensor['readData']): NpyTensor {
  return { name, dtype: header.dtype, shape: header.shape, elements: header.elements, bytes: header.bytes, header, readData };
}

/** Opens a .npy file: one tensor, named after the file (without `.npy`). */
export async function openNpy(path: string): Promise<Checkpoint> {
  const file = await PositionalFile.open(resolvePath(path));
  try {
    const head = await file.read(0, Math.min(file.size, 12));
    let headerBytes = head;
    if (head.length >= 12) {
      const major = head[6];
      const length = major === 1 ? head[8]! | (head[9]! << 8) : new DataView(head.buffer).getUint32(8, true);
      const want = (major === 1 ? 10 : 12) + Math.min(length, MAX_NPY_HEADER_BYTES + 1);
      headerBytes = await file.read(0, Math.min(file.size, want));
    }
    const header = parseNpyHeader(file.path, headerBytes);
    if (header.dataOffset + header.bytes > file.size) {
      throw new AwdError(`the array needs ${header.bytes} bytes but the file holds ${Math.max(0, file.size - header.dataOffset)}`, {
        file: file.path,
        fix: 'The file is truncated; re-save it',
      });
    }
    const name = basename(file.path).replace(/\.npy$/i, '');
    const tensor = npyTensor(name, header, (offset, length) => file.read(header.dataOffset + offset, length));
    return new NumpyCheckpoint(file.path, 'npy', [tensor], () => file.close());
  } catch (e) {
    await file.close();
    throw e;
  }
}

/** Opens an .npz archive: one tensor per `<name>.npy` member, stored members read in place, deflated ones inflated. */
export async function openNpz(path: string): Promise<Checkpoint> {
  const file = await PositionalFile.open(resolvePath(path));
  let zip: ZipArchive | undefined;
  try {
    zip = await ZipArchive.open(file, NPY_FIX);
    const archive = zip;
    const tensors: NpyTensor[] = [];
    const seen = new Set<string>();
    const lastInflated = {};
    for (const entry of archive.entries) {
      if (!entry.fileName.endsWith('.npy')) continue;
      const name = entry.fileName.slice(0, -'.npy'.length);
      if (seen.has(name)) throw new AwdError('the archive holds this array twice', { file: file.path, tensor: name, fix: NPY_FIX });
      seen.add(name);
      const header = await readMemberHeader(archive, file.path, entry, name);
      if (header.dataOffset + header.bytes > entry.uncompressedSize) {
        throw new AwdError(`the array needs ${header.bytes} bytes but its archive member holds fewer`, { file: file.path, tensor: name, fix: NPY_FIX });
      }
      tensors.push(npyTensor(name, header, memberReader(archive, entry, header, lastInflated)));
    }
    return new NumpyCheckpoint(file.path, 'npz', tensors, async () => {
      archive.close();
      await file.close();
    });
  } catch (e) {
    zip?.close();
    await file.close();
    throw e;
  }
}

async function readMemberHeader(zip: ZipArchive, file: string, entry: ZipEntry, name: string): Promise<NpyHeader> {
  const head = await zip.readPrefix(entry, 12);
  if (head.length < 10) return parseNpyHeader(file, head, name);
  const major = head[6];
  const length = major === 1 ? head[8]! | (head[9]! << 8) : head.length >= 12 ? new DataView(head.buffer, head.byteOffset).getUint32(8, true) : 0;
  const want = (major === 1 ? 10 : 12) + Math.min(length, MAX_NPY_HEADER_BYTES + 1);
  return parseNpyHeader(file, await zip.readPrefix(entry, want), name);
}

/**
 * Stored members are read at their offset. Deflate cannot be entered mid-stream, so a deflated member is inflated
 * whole (up to its array's end) on first read; only the most recently inflated member is kept, bounding memory to
 * one array.
 */
function memberReader(
  zip: ZipArchive,
  entry: ZipEntry,
  header: NpyHeader,
  lastInflated: { entry?: ZipEntry; data?: Promise<Uint8Array> },
): NpyTensor['readData'] {
  if (ZipArchive.isStored(entry)) {
    return (offset, length) => zip.readStoredRange(entry, header.dataOffset + offset, length);
  }
  return async (offset, length) => {
    if (lastInflated.entry !== entry || !lastInflated.data) {
      lastInflated.entry = entry;
      // Inflate only as far as the .npy header says the array goes: a member that inflates further is not read on.
      const size = header.dataOffset + header.bytes;
      if (size > MAX_INFLATED_BYTES) {
        throw new AwdError(`a compressed array of ${size} bytes is too large to inflate in memory`, {
          file: zip.path,
          fix: 'Save it uncompressed (numpy.savez instead of numpy.savez_compressed) or as safetensors',
        });
      }
      lastInflated.data = zip.readPrefix(entry, size);
    }
    const all = await lastInflated.data;
    return all.subarray(header.dataOffset + offset, header.dataOffset + offset + length);
  };
}
