/**
 * PyTorch checkpoints written by torch.save: the zip format (default since PyTorch 1.6: `<archive>/data.pkl` plus
 * one stored entry `<archive>/data/<key>` per storage) and the legacy format before it (magic, protocol and
 * system-info pickles, the object pickle, the storage key list, then each storage as an 8-byte element count and
 * raw bytes). The pickles go through our allow-listed interpreter; storage bytes are read lazily at file offsets,
 * and strided views are gathered into row-major order.
 */
import * as path from 'node:path';
import { AwdError } from '../errors';
import { decodeToFloat32, dtypeSize } from './dtypes';
import { PickleDict, PickleList, PickleTruncatedError, unpickle, type PickleOptions, type PickleValue } from './pickle';
import { PositionalFile } from './positionalFile';
import { ZipArchive } from './zipArchive';
import { checkOutLength, resolveElementRange, unknownTensorError } from './tensorRange';
import {
  TorchPersistentLoader,
  flattenTorchObject,
  resolveTorchGlobal,
  type TorchTensor,
} from './torchPickle';
import type { Checkpoint, TensorInfo } from './types';

/** The largest pickle we parse in memory; real state-dict pickles are kilobytes to a few megabytes. */
const MAX_PICKLE_BYTES = 256 * 1024 * 1024;
/** The most storage bytes a strided gather holds at once, by default. */
const GATHER_SPAN_BYTES = 64 * 1024 * 1024;
/** pickle.dumps(0x1950a86a20f9469cfc6c): the legacy format's first pickle. */
const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;
const LEGACY_PROTOCOL = 1001;

const FIX_CONVERT =
  'Load it with PyTorch and re-save it with torch.save(obj, path) (zip format, the default since 1.6), or save it as safetensors';

/** Where each storage's bytes start in the file. */
interface StorageLocator {
  /** Absolute file offset of byte 0 of the root storage `key`. */
  dataStart(key: string): number;
  /** True when the storages were written big-endian (they are byte-swapped after reading). */
  readonly bigEndian: boolean;
}

export interface PyTorchReadOptions {
  /** The most storage bytes a strided (non-contiguous) read holds at once; default 64 MiB. */
  readonly gatherSpanBytes?: number;
}

/** Opens a torch.save checkpoint (zip or legacy); anything else, and any unsafe pickle, is an AwdError. */
export async function openPyTorchCheckpoint(filePath: string, options: PyTorchReadOptions = {}): Promise<Checkpoint> {
  const absolute = path.resolve(filePath);
  const file = await PositionalFile.open(absolute);
  const span = options.gatherSpanBytes ?? GATHER_SPAN_BYTES;
  try {
    const head = await file.read(0, Math.min(file.size, 512));
    if (head[0] === 0x50 && head[1] === 0x4b && head[2] === 0x03 && head[3] === 0x04) return await openZip(file, span);
    if (head[0] === 0x80) return await openLegacy(file, span);
    if (isTar(head)) {
      throw new AwdError('this is a very old PyTorch checkpoint (tar format), which is not supported', {
        file: absolute,
        fix: FIX_CONVERT,
      });
    }
    throw new AwdError('not a PyTorch checkpoint (neither a zip archive nor a pickle)', {
      file: absolute,
      fix: 'Check the path; PyTorch checkpoints are written with torch.save',
    });
  } catch (e) {
    await file.close();
    throw e;
  }
}

function isTar(head: Uint8Array): boolean {
  return head.length >= 262 && String.fromCharCode(...head.subarray(257, 262)) === 'ustar';
}

function pickleOptions(file: string, loader: TorchPersistentLoader): PickleOptions {
  return { file, resolveGlobal: resolveTorchGlobal, persistentLoad: loader.load };
}

// ---------------------------------------------------------------------------------------------------------------
// Zip format

async function openZip(file: PositionalFile, gatherSpanBytes: number): Promise<Checkpoint> {
  const where = { file: file.path };
  const zip = await ZipArchive.open(file, FIX_CONVERT);
  try {
    const entries = new Map(zip.entries.map((e) => [e.fileName, e]));
    // torch.save writes `<archive>/data.pkl`; a bare `data.pkl` at the root is accepted too.
    const pickles = [...entries.keys()].filter((n) => /^([^/]+\/)?data\.pkl$/.test(n));
    // A TorchScript archive also has a data.pkl, but its pickle names the model's own classes: say what it is.
    if ([...entries.keys()].some((n) => /^([^/]+\/)?(code\/|constants\.pkl$)/.test(n))) {
      throw new AwdError('this is a TorchScript archive (torch.jit.save), not a torch.save checkpoint', {
        ...where,
        fix: "Save the model's state_dict() with torch.save, or load it in PyTorch and save it as safetensors",
      });
    }
    if (pickles.length !== 1) {
      throw new AwdError(
        pickles.length ? 'the zip archive holds more than one data.pkl' : 'a zip archive without <archive>/data.pkl: not a PyTorch checkpoint',
        { ...where, fix: FIX_CONVERT },
      );
    }
    const prefix = pickles[0]!.slice(0, -'data.pkl'.length);
    const dataPkl = await zip.readWhole(entries.get(pickles[0]!)!, MAX_PICKLE_BYTES);
    const byteOrderEntry = entries.get(`${prefix}byteorder`);
    const byteOrder = byteOrderEntry ? new TextDecoder().decode(await zip.readWhole(byteOrderEntry, 16)).trim() : 'little';
    if (byteOrder !== 'little' && byteOrder !== 'big') {
      throw new AwdError(`unknown byte order "${byteOrder}"`, { ...where, fix: FIX_CONVERT });
    }

    const loader = new TorchPersistentLoader();
    const { value } = unpickle(dataPkl, pickleOptions(file.path, loader));
    // Every storage must be a stored (uncompressed) entry inside the file, at least as large as its tensors need:
    // checked now, so no size taken from the pickle can exceed the file (reads allocate their length).
    const dataStarts = new Map<string, number>();
    for (const storage of loader.storages.values()) {
      const entry = entries.get(`${prefix}data/${storage.key}`);
      if (!entry) {
        throw new AwdError(`storage "${storage.key}" has no data/${storage.key} entry in the archive`, { ...where, fix: FIX_CONVERT });
      }
      if (!ZipArchive.isStored(entry) || entry.compressedSize !== entry.uncompressedSize) {
        throw new AwdError(`storage "${storage.key}" is compressed in the archive; torch.save stores tensor data uncompressed`, {
          ...where,
          fix: FIX_CONVERT,
        });
      }
      if (entry.uncompressedSize < storage.bytes) {
        throw new AwdError(`storage "${storage.key}" holds ${entry.uncompressedSize} bytes, fewer than the ${storage.bytes} its tensors need`, {
          ...where,
          fix: FIX_CONVERT,
        });
      }
      // One small local-header read per storage, so the zip can be closed and later reads are plain preads.
      dataStarts.set(storage.key, await zip.dataStart(entry));
    }
    const locator: StorageLocator = {
      bigEndian: byteOrder === 'big',
      dataStart: (key) => dataStarts.get(key)!,
    };
    return new TorchCheckpoint(file, value, locator, gatherSpanBytes);
  } finally {
    zip.close();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Legacy (pre-1.6) format

async function openLegacy(file: PositionalFile, gatherSpanBytes: number): Promise<Checkpoint> {
  const where = { file: file.path };
  const loader = new TorchPersistentLoader();
  const options = pickleOptions(file.path, loader);
  const noCode: PickleOptions = { file: file.path, resolveGlobal: resolveTorchGlobal };

  const magic = await unpickleAt(file, 0, noCode);
  if (magic.value !== LEGACY_MAGIC) {
    throw new AwdError('a plain Python pickle, not a PyTorch checkpoint', {
      ...where,
      fix: 'Only torch.save checkpoints are read; save the tensors with torch.save or as safetensors',
    });
  }
  const protocol = await unpickleAt(file, magic.end, noCode);
  if (protocol.value !== LEGACY_PROTOCOL) {
    throw new AwdError(`unsupported legacy PyTorch format version ${String(protocol.value)}`, { ...where, fix: FIX_CONVERT });
  }
  const sysInfo = await unpickleAt(file, protocol.end, noCode);
  const littleEndian = sysInfo.value instanceof PickleDict ? sysInfo.value.get('little_endian') : undefined;
  if (littleEndian === false) {
    throw new AwdError('a legacy checkpoint written on a big-endian machine is not supported', { ...where, fix: FIX_CONVERT });
  }
  const object = await unpickleAt(file, sysInfo.end, options);
  const keys = await unpickleAt(file, object.end, noCode);
  const keyList = keys.value instanceof PickleList ? keys.value.items : undefined;
  if (!keyList || !keyList.every((k): k is string => typeof k === 'string')) {
    throw new AwdError('the legacy checkpoint has no storage key list after its object', { ...where, fix: FIX_CONVERT });
  }

  // Storages follow in key order, each as an int64 element count and its bytes; walking the counts finds them.
  const starts = new Map<string, number>();
  let pos = keys.end;
  for (const key of keyList) {
    const storage = loader.storages.get(key);
    if (!storage) throw new AwdError(`the storage list names "${key}", which no tensor uses`, { ...where, fix: FIX_CONVERT });
    const count = new DataView((await file.read(pos, 8)).buffer).getBigInt64(0, true);
    if (count !== BigInt(storage.numel)) {
      throw new AwdError(`storage "${key}" records ${count} elements where the pickle says ${storage.numel}`, { ...where, fix: FIX_CONVERT });
    }
    starts.set(key, pos + 8);
    pos += 8 + storage.bytes;
    if (pos > file.size) {
      throw new AwdError(`storage "${key}" runs past the end of the file`, { ...where, fix: 'The file is truncated; re-download or re-save it' });
    }
  }
  for (const key of loader.storages.keys()) {
    if (!starts.has(key)) throw new AwdError(`storage "${key}" is missing from the file`, { ...where, fix: FIX_CONVERT });
  }
  const locator: StorageLocator = {
    bigEndian: false,
    dataStart: (key) => starts.get(key)!,
  };
  return new TorchCheckpoint(file, object.value, locator, gatherSpanBytes);
}

/** One pickle starting at `start`, read in growing pieces so a small header never costs a big read. */
async function unpickleAt(file: PositionalFile, start: number, options: PickleOptions): Promise<{ value: PickleValue; end: number }> {
  let length = 64 * 1024;
  for (;;) {
    const available = Math.min(file.size - start, length, MAX_PICKLE_BYTES);
    const bytes = await file.read(start, Math.max(0, available));
    try {
      const { value, end } = unpickle(bytes, options);
      return { value, end: start + end };
    } catch (e) {
      const more = available < file.size - start && available < MAX_PICKLE_BYTES;
      if (!(e instanceof PickleTruncatedError) || !more) throw e;
      length *= 4;
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The checkpoint

interface TorchTensorEntry {
  readonly info: TensorInfo;
  readonly tensor: TorchTensor;
}

class TorchCheckpoint implements Checkpoint {
  readonly path: string;
  readonly format = 'pytorch' as const;
  readonly tensors: readonly TensorInfo[];
  readonly metadata: Readonly<Record<string, string>>;
  readonly files: readonly string[];
  private readonly byName = new Map<string, TorchTensorEntry>();

  constructor(
    private readonly file: PositionalFile,
    root: PickleValue,
    private readonly locator: StorageLocator,
    private readonly gatherSpanBytes: number,
  ) {
    this.path = file.path;
    this.files = [file.path];
    const flat = flattenTorchObject(root, file.path);
    this.metadata = flat.metadata;
    this.tensors = flat.tensors.map(([name, tensor]) => {
      const info: TensorInfo = {
        name,
        dtype: tensor.dtype,
        shape: tensor.shape,
        elements: tensor.elements,
        bytes: tensor.elements * dtypeSize(tensor.dtype),
      };
      this.byName.set(name, { info, tensor });
      return info;
    });
  }

  tensor(name: string): TensorInfo | undefined {
    return this.byName.get(name)?.info;
  }

  async readFloat32(name: string, start?: number, end?: number, out?: Float32Array): Promise<Float32Array> {
    const { info } = this.entry(name);
    const [s, e] = resolveElementRange(this.path, info, start, end);
    checkOutLength(this.path, info, out, e - s);
    return decodeToFloat32(info.dtype, await this.readBytes(name, s, e), out);
  }

  async readBytes(name: string, start?: number, end?: number): Promise<Uint8Array> {
    const { info, tensor } = this.entry(name);
    const [s, e] = resolveElementRange(this.path, info, start, end);
    const size = dtypeSize(tensor.dtype);
    const base = this.locator.dataStart(tensor.storage.key) + tensor.storage.byteOffset;
    let bytes: Uint8Array;
    if (isRowMajor(tensor.shape, tensor.stride)) {
      bytes = await this.file.read(base + (tensor.offset + s) * size, (e - s) * size);
    } else {
      bytes = new Uint8Array((e - s) * size);
      for (let pos = s; pos < e; ) {
        // Hold at most gatherSpanBytes of storage at once: halve the element chunk until its span fits.
        let count = e - pos;
        let span = storageSpan(tensor, pos, pos + count);
        while (count > 1 && (span[1] - span[0] + 1) * size > this.gatherSpanBytes) {
          count = Math.ceil(count / 2);
          span = storageSpan(tensor, pos, pos + count);
        }
        const [lo, hi] = span;
        const window = await this.file.read(base + lo * size, (hi - lo + 1) * size);
        gatherStrided(window, lo, bytes, pos - s, tensor, pos, count, size);
        pos += count;
      }
    }
    if (this.locator.bigEndian) swapBytes(bytes, size);
    return bytes;
  }

  async close(): Promise<void> {
    await this.file.close();
  }

  private entry(name: string): TorchTensorEntry {
    const entry = this.byName.get(name);
    if (!entry) throw unknownTensorError(this.path, name);
    return entry;
  }
}

/** True when strides are the row-major ones (dims of size 1 may have any stride): the view is one byte run. */
export function isRowMajor(shape: readonly number[], stride: readonly number[]): boolean {
  if (shape.includes(0)) return true;
  let expected = 1;
  for (let k = shape.length - 1; k >= 0; k--) {
    if (shape[k] !== 1 && stride[k] !== expected) return false;
    expected *= shape[k]!;
  }
  return true;
}

/** Row-major multi-index of element `flat`. */
function unravel(shape: readonly number[], flat: number): number[] {
  const index = new Array<number>(shape.length).fill(0);
  for (let k = shape.length - 1; k >= 0; k--) {
    index[k] = flat % shape[k]!;
    flat = Math.floor(flat / shape[k]!);
  }
  return index;
}

/**
 * Storage elements [lo, hi] (relative to the tensor's storage) covering row-major elements [a, b), b > a: the
 * dims before the first one where a and b − 1 differ are fixed, that dim spans its two coordinates, later dims
 * are taken whole (strides are non-negative, so this bounds the touched set).
 */
export function storageSpan(tensor: Pick<TorchTensor, 'shape' | 'stride' | 'offset'>, a: number, b: number): [number, number] {
  const { shape, stride } = tensor;
  const first = unravel(shape, a);
  const last = unravel(shape, b - 1);
  let lo = tensor.offset;
  let d = 0;
  for (; d < shape.length && first[d] === last[d]; d++) lo += first[d]! * stride[d]!;
  let hi = lo;
  if (d < shape.length) {
    lo += first[d]! * stride[d]!;
    hi += last[d]! * stride[d]!;
    for (let k = d + 1; k < shape.length; k++) hi += (shape[k]! - 1) * stride[k]!;
  }
  return [lo, hi];
}

/**
 * Copies row-major elements [first, first + count) of a strided view out of `window` (storage elements from
 * `windowStart`) into `out` at element `outStart`: out[j] = storage[offset + Σ i_k · stride_k] for i = unravel(first + j).
 */
export function gatherStrided(
  window: Uint8Array,
  windowStart: number,
  out: Uint8Array,
  outStart: number,
  tensor: Pick<TorchTensor, 'shape' | 'stride' | 'offset'>,
  first: number,
  count: number,
  size: number,
): void {
  const { shape, stride } = tensor;
  const rank = shape.length;
  const index = unravel(shape, first);
  let at = tensor.offset - windowStart;
  for (let k = 0; k < rank; k++) at += index[k]! * stride[k]!;
  const innerSize = rank ? shape[rank - 1]! : 1;
  const innerStride = rank ? stride[rank - 1]! : 0;
  // Copy in the widest aligned words an element splits into (4-byte words for f32/i64, 2 for bf16): 2–4× faster.
  const candidate = size % 4 === 0 ? 4 : size % 2 === 0 ? 2 : 1;
  const aligned = [window, out].every((a) => a.byteOffset % candidate === 0 && a.byteLength % candidate === 0);
  const word = aligned ? candidate : 1;
  const words = (a: Uint8Array) =>
    word === 4 ? new Uint32Array(a.buffer, a.byteOffset, a.byteLength / 4) : word === 2 ? new Uint16Array(a.buffer, a.byteOffset, a.byteLength / 2) : a;
  const src = words(window);
  const dst = words(out);
  const per = size / word;
  let o = outStart * per;
  for (let j = 0; j < count; ) {
    // Run along the last dim as far as this row and the chunk go, then carry into the outer dims.
    const inner = rank ? index[rank - 1]! : 0;
    const run = Math.min(innerSize - inner, count - j);
    if (per === 1) {
      for (let r = 0, p = at; r < run; r++, p += innerStride) dst[o++] = src[p]!;
    } else {
      for (let r = 0; r < run; r++) {
        const p = (at + r * innerStride) * per;
        for (let q = 0; q < per; q++) dst[o++] = src[p + q]!;
      }
    }
    j += run;
    if (j >= count || rank === 0) break;
    at += run * innerStride;
    index[rank - 1] = inner + run;
    for (let k = rank - 1; k > 0 && index[k] === shape[k]; k--) {
      at -= shape[k]! * stride[k]!;
      index[k] = 0;
      index[k - 1]! += 1;
      at += stride[k - 1]!;
    }
  }
}

/** Reverses the bytes of each `size`-byte element in place (big-endian storage → little-endian). */
function swapBytes(bytes: Uint8Array, size: number): void {
  if (size === 1) return;
  for (let i = 0; i < bytes.length; i += size) bytes.subarray(i, i + size).reverse();
}
