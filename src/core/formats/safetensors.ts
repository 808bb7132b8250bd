/**
 * safetensors reader. Layout: 8-byte little-endian header length N, N bytes of UTF-8 JSON
 * `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}}`, then the data section;
 * offsets are relative to the data section's start (8 + N). The header is validated in full before any offset in
 * it is trusted, and tensor bytes are read positionally on demand.
 */
import { resolve as resolvePath } from 'node:path';
import { AwdError } from '../errors';
import { decodeToFloat32, DTYPE_SIZE, isDType } from './dtypes';
import { findDuplicateJsonKey } from './jsonDuplicateKeys';
import { PositionalFile } from './positionalFile';
import { checkOutLength, resolveElementRange, unknownTensorError } from './tensorRange';
import type { Checkpoint, DType, RawSource, TensorInfo } from './types';
import { endianness } from 'node:os';

/** Largest header we accept (the reference implementation's limit): a bigger one is corrupt or hostile. */
export const MAX_HEADER_BYTES = 100_000_000;

const CORRUPT_FIX = 'The file is corrupt or not a safetensors file; re-download or re-save it';

/** One validated header entry: offsets are relative to the data section. */
export interface SafetensorsEntry extends TensorInfo {
  readonly begin: number;
  readonly end: number;
}

export interface SafetensorsHeader {
  /** Entries in data order (ascending begin). */
  readonly entries: readonly SafetensorsEntry[];
  readonly metadata: Readonly<Record<string, string>>;
}

function corrupt(file: string, what: string, tensor?: string): AwdError {
  return new AwdError(what, { file, tensor, fix: CORRUPT_FIX });
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Validates a header's JSON bytes against a data section of `dataSize` bytes: known dtypes, shapes of non-negative
 * integers, elements × dtype size = end − begin (BigInt, so no overflow), offsets inside the data, no overlaps.
 */
export function parseSafetensorsHeader(file: string, headerBytes: Uint8Array, dataSize: number): SafetensorsHeader {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(headerBytes);
  } catch {
    throw corrupt(file, 'the safetensors header is not valid UTF-8');
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw corrupt(file, `the safetensors header is not valid JSON (${(e as Error).message})`);
  }
  if (!isPlainObject(json)) throw corrupt(file, 'the safetensors header is not a JSON object');
  const duplicate = findDuplicateJsonKey(text);
  if (duplicate !== undefined) throw corrupt(file, 'the header lists this name twice', duplicate);

  const metadataPairs: [string, string][] = [];
  const entries: SafetensorsEntry[] = [];
  for (const [name, value] of Object.entries(json)) {
    if (name === '__metadata__') {
      if (value === null) continue; // the reference implementation reads null as "no metadata"
      if (!isPlainObject(value)) throw corrupt(file, '`__metadata__` is not an object of strings');
      for (const [k, v] of Object.entries(value)) {
        if (typeof v !== 'string') throw corrupt(file, `\`__metadata__\` value for "${k}" is not a string`);
        metadataPairs.push([k, v]);
      }
      continue;
    }
    entries.push(parseEntry(file, name, value, dataSize));
  }
  // Stable sort: zero-size tensors may share an offset; they keep header order.
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  for (let i = 1; i < entries.length; i++) {
    const prev = entries[i - 1]!;
    const cur = entries[i]!;
    if (cur.begin < prev.end) {
      throw corrupt(file, `its bytes [${cur.begin}, ${cur.end}) overlap tensor "${prev.name}" [${prev.begin}, ${prev.end})`, cur.name);
    }
  }
  // fromEntries defines own properties, so a key like "__proto__" stays plain data.
  return { entries, metadata: Object.fromEntries(metadataPairs) };
}

function parseEntry(file: string, name: string, value: unknown, dataSize: number): SafetensorsEntry {
  if (!isPlainObject(value)) throw corrupt(file, 'header entry is not an object', name);
  const { dtype, shape, data_offsets: offsets } = value;
  if (!isDType(dtype)) {
    throw new AwdError(`unknown dtype ${JSON.stringify(dtype)}`, {
      file,
      tensor: name,
      fix: `Supported dtypes: ${Object.keys(DTYPE_SIZE).join(', ')}`,
    });
  }
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) {
    throw corrupt(file, `shape ${JSON.stringify(shape)} is not a list of non-negative integers`, name);
  }
  if (
    !Array.isArray(offsets) || offsets.length !== 2 ||
    !offsets.every((o) => Number.isSafeInteger(o) && (o as number) >= 0)
  ) {
    throw corrupt(file, `data_offsets ${JSON.stringify(offsets)} is not a pair of non-negative integers`, name);
  }
  const [begin, end] = offsets as [number, number];
  if (end < begin) throw corrupt(file, `data_offsets [${begin}, ${end}] end before they begin`, name);
  if (end > dataSize) {
    throw corrupt(file, `data_offsets [${begin}, ${end}] run past the data section's ${dataSize} bytes (truncated file?)`, name);
  }
  const dims = shape as number[];
  let elements = 1n;
  for (const d of dims) elements *= BigInt(d);
  const size = DTYPE_SIZE[dtype];
  if (elements * BigInt(size) !== BigInt(end - begin)) {
    throw corrupt(
      file,
      `shape [${dims.join(', ')}] of ${dtype} needs ${elements * BigInt(size)} bytes but data_offsets give ${end - begin}`,
      name,
    );
  }
  return { name, dtype: dtype as DType, shape: dims, elements: Number(elements), bytes: end - begin, begin, end };
}

/** Reads and validates the header of an open file; returns it with the data section's absolute start. */
export async function readSafetensorsHeader(file: PositionalFile): Promise<SafetensorsHeader & { dataStart: number }> {
  if (file.size < 8) throw corrupt(file.path, `file is ${file.size} bytes, too short for a safetensors header`);
  const lengthBytes = await file.read(0, 8);
  const headerLength = new DataView(lengthBytes.buffer).getBigUint64(0, true);
  if (headerLength > BigInt(MAX_HEADER_BYTES)) {
    throw corrupt(file.path, `header length ${headerLength} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  }
  if (headerLength > BigInt(file.size - 8)) {
    throw corrupt(file.path, `header length ${headerLength} is larger than the rest of the file (${file.size - 8} bytes)`);
  }
  const n = Number(headerLength);
  const header = parseSafetensorsHeader(file.path, await file.read(8, n), file.size - 8 - n);
  return { ...header, dataStart: 8 + n };
}

/** A safetensors file as a Checkpoint; tensors are listed in data order. */
export class SafetensorsCheckpoint implements Checkpoint {
  readonly format = 'safetensors' as const;
  readonly files: readonly string[];
  private readonly byName = new Map<string, SafetensorsEntry>();

  private constructor(
    private readonly file: PositionalFile,
    readonly tensors: readonly SafetensorsEntry[],
    readonly metadata: Readonly<Record<string, string>>,
    private readonly dataStart: number,
  ) {
    this.files = [file.path];
    for (const t of tensors) this.byName.set(t.name, t);
  }

  get path(): string {
    return this.file.path;
  }

  /** Opens and validates `path`; the handle stays open until `close()`. */
  static async open(path: string): Promise<SafetensorsCheckpoint> {
    const file = await PositionalFile.open(resolvePath(path));
    try {
      const { entries, metadata, dataStart } = await readSafetensorsHeader(file);
      return new SafetensorsCheckpoint(file, entries, metadata, dataStart);
    } catch (e) {
      await file.close();
      throw e;
    }
  }

  tensor(name: string): TensorInfo | undefined {
    return this.byName.get(name);
  }

  private entry(name: string): SafetensorsEntry {
    const e = this.byName.get(name);
    if (!e) throw unknownTensorError(this.path, name);
    return e;
  }

  async readBytes(name: string, start?: number, end?: number): Promise<Uint8Array> {
    const e = this.entry(name);
    const [s, t] = resolveElementRange(this.path, e, start, end);
    const size = DTYPE_SIZE[e.dtype];
    return this.file.read(this.dataStart + e.begin + s * size, (t - s) * size);
  }

  async readFloat32(name: string, start?: number, end?: number, out?: Float32Array): Promise<Float32Array> {
    const e = this.entry(name);
    const [s, t] = resolveElementRange(this.path, e, start, end);
    const n = t - s;
    checkOutLength(this.path, e, out, n);
    const size = DTYPE_SIZE[e.dtype];
    const position = this.dataStart + e.begin + s * size;
    if (e.dtype === 'F32') {
      // Read straight into the float32 destination: no intermediate buffer, no decode.
      const result = out ?? new Float32Array(n);
      await this.file.readInto(position, new Uint8Array(result.buffer, result.byteOffset, n * 4));
      return result;
    }
    return decodeToFloat32(e.dtype, await this.file.read(position, n * size), out);
  }

  rawSource(name: string): RawSource | undefined {
    const e = this.entry(name);
    // safetensors stores little-endian: as it is on the machines we run on, else decoded by readFloat32.
    if ((e.dtype !== 'F32' && e.dtype !== 'BF16') || endianness() !== 'LE') return undefined;
    return { fd: this.file.fd, offset: this.dataStart + e.begin, dtype: e.dtype };
  }

  close(): Promise<void> {
    return this.file.close();
  }
}

/** Opens a safetensors file as a Checkpoint. */
export function openSafetensors(path: string): Promise<SafetensorsCheckpoint> {
  return SafetensorsCheckpoint.open(path);
}
