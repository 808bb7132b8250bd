/**
 * What a torch.save pickle may reference, as inert descriptors: the allow-list of Python globals (OrderedDict,
 * torch's tensor/parameter rebuild functions, storage types, dtypes; plus data-only helpers seen in real training
 * checkpoints: set/frozenset, _codecs.encode for bytes, torch.Size, torch.device, numpy scalars), storage and
 * tensor descriptors built from them, and the flattening of the unpickled object into dotted tensor names and
 * string metadata. Every builder here is our own TypeScript over already-parsed values; none runs file content.
 */
import { AwdError } from '../errors';
import { dtypeSize, f16BitsToNumber } from './dtypes';
import {
  PickleDict,
  PickleFloat,
  PickleGlobal,
  PickleInstance,
  PickleList,
  PickleSet,
  PickleTuple,
  describe,
  type PickleValue,
} from './pickle';
import type { DType } from './types';

/** A storage type such as torch.FloatStorage; `dtype` undefined for element types we cannot read (complex, …). */
export class TorchStorageType extends PickleGlobal {
  constructor(
    module: string,
    name: string,
    readonly dtype: DType | undefined,
  ) {
    super(module, name);
  }
}

/** A dtype global such as torch.float32 (used by _rebuild_tensor_v3 and untyped storages). */
export class TorchDTypeGlobal extends PickleGlobal {
  constructor(
    name: string,
    readonly dtype: DType | undefined,
  ) {
    super('torch', name);
  }
}

/** One storage: `numel` elements of `dtype` in the data record named `key`, from `byteOffset` (legacy views). */
export class TorchStorage extends PickleInstance {
  readonly typeName = 'torch storage';
  constructor(
    readonly key: string,
    readonly dtype: DType,
    readonly numel: number,
    readonly byteOffset = 0,
  ) {
    super();
  }
  get bytes(): number {
    return this.numel * dtypeSize(this.dtype);
  }
}

/** A tensor view: element (i0, i1, …) lives at storage element offset + Σ i_k · stride_k, in units of `dtype`. */
export class TorchTensor extends PickleInstance {
  readonly typeName = 'tensor';
  readonly elements: number;
  constructor(
    readonly storage: TorchStorage,
    readonly dtype: DType,
    readonly offset: number,
    readonly shape: readonly number[],
    readonly stride: readonly number[],
  ) {
    super();
    this.elements = checkedProduct(shape);
    // The last element a view touches must lie inside the storage, or a lying pickle could read past it.
    if (this.elements > 0) {
      let last = offset;
      for (let k = 0; k < shape.length; k++) last += (shape[k]! - 1) * stride[k]!;
      const size = dtypeSize(dtype);
      if (!Number.isSafeInteger(last) || (last + 1) * size > storage.bytes) {
        throw new Error(
          `a tensor view (offset ${offset}, shape [${shape.join(', ')}], strides [${stride.join(', ')}]) reaches past its storage of ${storage.bytes} bytes`,
        );
      }
    }
  }
}

function checkedProduct(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  if (!Number.isSafeInteger(n)) throw new Error(`a tensor shape [${shape.join(', ')}] has too many elements`);
  return n;
}

const STORAGE_DTYPES: Readonly<Record<string, DType | undefined>> = {
  FloatStorage: 'F32',
  DoubleStorage: 'F64',
  HalfStorage: 'F16',
  BFloat16Storage: 'BF16',
  LongStorage: 'I64',
  IntStorage: 'I32',
  ShortStorage: 'I16',
  CharStorage: 'I8',
  ByteStorage: 'U8',
  BoolStorage: 'BOOL',
  UntypedStorage: 'U8',
  _UntypedStorage: 'U8',
  ComplexFloatStorage: undefined,
  ComplexDoubleStorage: undefined,
  QInt8Storage: undefined,
  QUInt8Storage: undefined,
  QInt32Storage: undefined,
  QUInt4x2Storage: undefined,
  QUInt2x4Storage: undefined,
};

const TORCH_DTYPES: Readonly<Record<string, DType | undefined>> = {
  float32: 'F32',
  float: 'F32',
  float64: 'F64',
  double: 'F64',
  float16: 'F16',
  half: 'F16',
  bfloat16: 'BF16',
  float8_e4m3fn: 'F8_E4M3',
  float8_e5m2: 'F8_E5M2',
  int64: 'I64',
  long: 'I64',
  int32: 'I32',
  int: 'I32',
  int16: 'I16',
  short: 'I16',
  int8: 'I8',
  uint8: 'U8',
  uint16: 'U16',
  uint32: 'U32',
  uint64: 'U64',
  bool: 'BOOL',
  complex64: undefined,
  complex128: undefined,
  cfloat: undefined,
  cdouble: undefined,
};

function int(value: PickleValue, what: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new Error(`${what} is not a non-negative integer (got ${describe(value)})`);
  }
  return value;
}

function intTuple(value: PickleValue, what: string): number[] {
  const items = value instanceof PickleTuple || value instanceof PickleList ? value.items : undefined;
  if (!items) throw new Error(`${what} is not a tuple (got ${describe(value)})`);
  return items.map((v, i) => int(v, `${what}[${i}]`));
}

/** _rebuild_tensor / _v2 / _v3: (storage, storage_offset, size, stride, …[, dtype]) → a tensor descriptor. */
function rebuildTensor(args: readonly PickleValue[], dtypeArg?: PickleValue): TorchTensor {
  const [storage, offset, size, stride] = args;
  if (!(storage instanceof TorchStorage)) throw new Error(`the tensor storage is a ${describe(storage ?? null)}`);
  let dtype = storage.dtype;
  if (dtypeArg !== undefined) {
    if (!(dtypeArg instanceof TorchDTypeGlobal)) throw new Error(`the tensor dtype is a ${describe(dtypeArg)}`);
    if (!dtypeArg.dtype) throw new Error(`tensors of dtype torch.${dtypeArg.name} are not supported`);
    dtype = dtypeArg.dtype;
  }
  const shape = intTuple(size ?? null, 'the tensor size');
  const strides = intTuple(stride ?? null, 'the tensor stride');
  if (shape.length !== strides.length) throw new Error('the tensor size and stride differ in length');
  return new TorchTensor(storage, dtype, int(offset ?? null, 'the storage offset'), shape, strides);
}

function parameterData(args: readonly PickleValue[]): PickleValue {
  const data = args[0];
  if (!(data instanceof TorchTensor)) throw new Error(`a Parameter wraps a ${describe(data ?? null)}, not a tensor`);
  return data;
}

function orderedDict(args: readonly PickleValue[]): PickleDict {
  const dict = new PickleDict();
  const items = args[0];
  if (items === undefined) return dict;
  if (!(items instanceof PickleList || items instanceof PickleTuple)) throw new Error('OrderedDict of a non-list');
  for (const pair of items.items) {
    if (!(pair instanceof PickleTuple || pair instanceof PickleList) || pair.items.length !== 2) {
      throw new Error('OrderedDict items are not pairs');
    }
    dict.set(pair.items[0]!, pair.items[1]!);
  }
  return dict;
}

/** _codecs.encode(text, 'latin1'): how protocol 2 spells a bytes object. */
function codecsEncode(args: readonly PickleValue[]): Uint8Array {
  const [text, encoding] = args;
  if (typeof text !== 'string') throw new Error('_codecs.encode of a non-string');
  if (encoding !== 'latin1' && encoding !== 'latin-1' && encoding !== 'iso-8859-1') {
    throw new Error(`_codecs.encode with encoding ${typeof encoding === 'string' ? encoding : describe(encoding ?? null)}`);
  }
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c > 0xff) throw new Error('_codecs.encode: a character outside latin-1');
    out[i] = c;
  }
  return out;
}

function makeSet(frozen: boolean) {
  return (args: readonly PickleValue[]): PickleSet => {
    const items = args[0];
    if (items === undefined) return new PickleSet([], frozen);
    if (!(items instanceof PickleList || items instanceof PickleTuple)) throw new Error('set of a non-list');
    return new PickleSet([...items.items], frozen);
  };
}

/** numpy.dtype('f8', False, True), with its byte order set by BUILD: only what a numpy scalar needs. */
export class NumpyDType extends PickleInstance {
  readonly typeName = 'numpy.dtype';
  byteOrder = '<';
  constructor(readonly code: string) {
    super();
  }
  override setState(state: PickleValue): void {
    const order = state instanceof PickleTuple ? state.items[1] : undefined;
    if (order !== '<' && order !== '>' && order !== '|' && order !== '=') throw new Error('a numpy dtype state without a byte order');
    this.byteOrder = order;
  }
}

function numpyDType(args: readonly PickleValue[]): NumpyDType {
  const code = args[0];
  if (typeof code !== 'string' || !/^([fiu][1248]|b1)$/.test(code)) {
    throw new Error(`numpy dtype ${typeof code === 'string' ? code.slice(0, 16) : describe(code ?? null)} is not a plain number type`);
  }
  return new NumpyDType(code);
}

/**
 * numpy.core.multiarray.scalar(dtype, bytes): a numpy number (an epoch or accuracy saved as np.float64, …) decoded
 * from its bytes to a Python-like int, float or bool.
 */
function numpyScalar(args: readonly PickleValue[]): PickleValue {
  const [dtype, raw] = args;
  if (!(dtype instanceof NumpyDType) || !(raw instanceof Uint8Array)) throw new Error('a numpy scalar without a dtype and bytes');
  const size = Number(dtype.code.slice(1));
  if (raw.length !== size) throw new Error(`a numpy ${dtype.code} scalar of ${raw.length} bytes`);
  const view = new DataView(raw.buffer, raw.byteOffset, size);
  const little = dtype.byteOrder !== '>';
  switch (dtype.code) {
    case 'b1':
      return raw[0] !== 0;
    case 'f2':
      return new PickleFloat(f16BitsToNumber(view.getUint16(0, little)));
    case 'f4':
      return new PickleFloat(shortestSingle(view.getFloat32(0, little)));
    case 'f8':
      return new PickleFloat(view.getFloat64(0, little));
    case 'i1':
      return view.getInt8(0);
    case 'u1':
      return view.getUint8(0);
    case 'i2':
      return view.getInt16(0, little);
    case 'u2':
      return view.getUint16(0, little);
    case 'i4':
      return view.getInt32(0, little);
    case 'u4':
      return view.getUint32(0, little);
    case 'i8':
      return narrowBigInt(view.getBigInt64(0, little));
    default:
      return narrowBigInt(view.getBigUint64(0, little));
  }
}

/** The shortest decimal that reads back as the same float32, as numpy prints it (0.1, not 0.10000000149011612). */
function shortestSingle(x: number): number {
  if (!Number.isFinite(x)) return x;
  for (let digits = 1; digits < 9; digits++) {
    const candidate = Number(x.toPrecision(digits));
    if (Math.fround(candidate) === x) return candidate;
  }
  return x;
}

function narrowBigInt(v: bigint): number | bigint {
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

/** The allow-list. Everything not named here is refused by the interpreter with the global's name. */
export function resolveTorchGlobal(module: string, name: string): PickleGlobal | undefined {
  const g = (call: (args: readonly PickleValue[]) => PickleValue) => new PickleGlobal(module, name, call);
  if (module === 'collections' && name === 'OrderedDict') return g(orderedDict);
  if (module === 'torch._utils') {
    switch (name) {
      case '_rebuild_tensor':
      case '_rebuild_tensor_v2':
        return g((args) => rebuildTensor(args));
      case '_rebuild_tensor_v3':
        return g((args) => rebuildTensor(args, args[6]));
      case '_rebuild_parameter':
      case '_rebuild_parameter_with_state':
        return g(parameterData);
    }
    return undefined;
  }
  if ((module === 'torch' || module === 'torch.cuda' || module === 'torch.storage') && name in STORAGE_DTYPES) {
    return new TorchStorageType(module, name, STORAGE_DTYPES[name]);
  }
  if (module === 'torch' && name in TORCH_DTYPES) return new TorchDTypeGlobal(name, TORCH_DTYPES[name]);
  if (module === 'torch' && name === 'device') {
    // torch.device('cuda', 0) → the string torch prints, "cuda:0".
    return g((args) => args.map((a) => (typeof a === 'string' || typeof a === 'number' ? String(a) : describe(a))).join(':'));
  }
  if (module === 'torch' && name === 'Size') {
    return g((args) => new PickleTuple(intTuple(args[0] ?? null, 'torch.Size')));
  }
  if ((module === 'builtins' || module === '__builtin__') && (name === 'set' || name === 'frozenset')) {
    return g(makeSet(name === 'frozenset'));
  }
  if (module === '_codecs' && name === 'encode') return g(codecsEncode);
  if (module === 'numpy' && name === 'dtype') return g(numpyDType);
  if ((module === 'numpy.core.multiarray' || module === 'numpy._core.multiarray') && name === 'scalar') return g(numpyScalar);
  return undefined;
}

/**
 * persistent_load for torch pickles: ('storage', storage_type, key, location, numel[, view_metadata]) → one
 * TorchStorage per key (kept in `storages`). The legacy format's view_metadata (view_key, offset, size) makes a
 * view into a root storage.
 */
export class TorchPersistentLoader {
  /** Root storages by key, in the order the pickle first named them. */
  readonly storages = new Map<string, TorchStorage>();

  readonly load = (pid: PickleValue): PickleValue => {
    if (!(pid instanceof PickleTuple) || pid.items[0] !== 'storage' || pid.items.length < 5) {
      throw new Error(`a persistent id that is not a torch storage (${describe(pid)})`);
    }
    const [, type, key, , numelValue, view] = pid.items;
    if (!(type instanceof TorchStorageType)) throw new Error(`a storage of type ${describe(type ?? null)}`);
    if (!type.dtype) throw new Error(`tensors stored as ${type.qualifiedName} are not supported`);
    if (typeof key !== 'string') throw new Error('a storage key is not a string');
    // An untyped storage counts bytes; a typed one counts elements of its dtype.
    const numel = int(numelValue ?? null, 'a storage size');
    const seen = this.storages.get(key);
    if (seen && (seen.dtype !== type.dtype || seen.numel !== numel)) {
      throw new Error(`storage ${key} is declared twice with different types or sizes`);
    }
    const storage = seen ?? new TorchStorage(key, type.dtype, numel);
    this.storages.set(key, storage);
    if (view === undefined || view === null) return storage;
    if (!(view instanceof PickleTuple) || view.items.length !== 3) throw new Error('bad storage view metadata');
    const [viewKey, viewOffset, viewSize] = view.items;
    const offset = int(viewOffset ?? null, 'a storage view offset');
    const size = int(viewSize ?? null, 'a storage view size');
    if (typeof viewKey !== 'string' || offset + size > storage.numel) throw new Error('a storage view outside its storage');
    return new TorchStorage(key, storage.dtype, size, offset * dtypeSize(storage.dtype));
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Flattening

export interface FlattenedTorchObject {
  /** Tensors in pickle order, with dotted names. */
  readonly tensors: readonly (readonly [string, TorchTensor])[];
  /** Non-tensor leaves as strings (Python's repr for numbers, None, bools). */
  readonly metadata: Record<string, string>;
}

const MAX_DEPTH = 1000;
const MAX_VISITS = 1_000_000;
const MAX_METADATA = 100_000;
const MAX_METADATA_CHARS = 2000;

/**
 * Flattens the unpickled object: dicts give dotted names (`state_dict.layer.weight`), lists and tuples that hold
 * containers or tensors give index names (`a.0`), a list of plain values becomes one metadata string. Iterative,
 * with a depth limit, cycle check and a visit budget, so a hostile object graph cannot blow the stack or the clock.
 */
export function flattenTorchObject(root: PickleValue, file?: string): FlattenedTorchObject {
  const tensors: (readonly [string, TorchTensor])[] = [];
  const tensorNames = new Set<string>();
  // A Map while building: a plain object with a million string keys is many times slower.
  const metadata = new Map<string, string>();
  let visits = 0;
  const onPath = new Set<object>();
  type Job = { readonly value: PickleValue; readonly name: string; readonly depth: number } | { readonly leave: object };
  const jobs: Job[] = [{ value: root, name: '', depth: 0 }];
  const fail = (message: string) => new AwdError(message, { file, fix: 'Convert the checkpoint to safetensors with PyTorch' });

  while (jobs.length) {
    const job = jobs.pop()!;
    if ('leave' in job) {
      onPath.delete(job.leave);
      continue;
    }
    const { value, name, depth } = job;
    if (++visits > MAX_VISITS) throw fail(`the pickled object has more than ${MAX_VISITS} parts`);
    if (depth > MAX_DEPTH) throw fail(`the pickled object is nested more than ${MAX_DEPTH} levels deep`);
    if (value instanceof TorchTensor) {
      const tensorName = name === '' ? 'tensor' : name;
      if (tensorNames.has(tensorName)) throw fail(`two tensors are both named "${tensorName}"`);
      tensorNames.add(tensorName);
      tensors.push([tensorName, value]);
      continue;
    }
    const children = childrenOf(value);
    if (!children) {
      if (metadata.size >= MAX_METADATA) throw fail(`the pickled object has more than ${MAX_METADATA} plain values`);
      metadata.set(name === '' ? 'value' : name, pythonRepr(value));
      continue;
    }
    if (onPath.has(value as object)) throw fail('the pickled object contains itself');
    onPath.add(value as object);
    jobs.push({ leave: value as object });
    // Pushed in reverse so that popping visits children in file order.
    for (let i = children.length - 1; i >= 0; i--) {
      const [key, child] = children[i]!;
      jobs.push({ value: child, name: name === '' ? key : `${name}.${key}`, depth: depth + 1 });
    }
  }
  return { tensors, metadata: Object.fromEntries(metadata) };
}

/** The named children of a container that is flattened, or undefined for a leaf. */
function childrenOf(value: PickleValue): (readonly [string, PickleValue])[] | undefined {
  if (value instanceof PickleDict) {
    if (value.size === 0) return undefined;
    return [...value.items()].map(([k, v]) => [typeof k === 'string' ? k : pythonRepr(k), v] as const);
  }
  if (value instanceof PickleList || value instanceof PickleTuple) {
    if (value.items.every(isPlain)) return undefined;
    return value.items.map((v, i) => [String(i), v] as const);
  }
  return undefined;
}

function isPlain(value: PickleValue): boolean {
  return !(
    value instanceof PickleDict ||
    value instanceof PickleList ||
    value instanceof PickleTuple ||
    value instanceof PickleInstance
  );
}

/** Python's repr, shortened to a readable length (metadata is for people, not a round trip). */
export function pythonRepr(value: PickleValue): string {
  const out: string[] = [];
  let length = 0;
  const emit = (s: string) => {
    out.push(s);
    length += s.length;
  };
  const walk = (v: PickleValue, depth: number): void => {
    if (length > MAX_METADATA_CHARS) return;
    if (depth > 8) return emit('...');
    if (v === null) return emit('None');
    if (typeof v === 'boolean') return emit(v ? 'True' : 'False');
    if (typeof v === 'number' || typeof v === 'bigint') return emit(String(v));
    if (typeof v === 'string') return emit(depth === 0 ? v : `'${v}'`);
    if (v instanceof PickleFloat) return emit(floatRepr(v.value));
    if (v instanceof Uint8Array) return emit(`<${v.length} bytes>`);
    if (v instanceof PickleGlobal) return emit(v.qualifiedName);
    if (v instanceof TorchTensor) return emit(`tensor(${v.dtype}, [${v.shape.join(', ')}])`);
    if (v instanceof PickleInstance) return emit(`<${v.typeName}>`);
    const [open, close, items] =
      v instanceof PickleList
        ? ['[', ']', v.items]
        : v instanceof PickleTuple
          ? ['(', v.items.length === 1 ? ',)' : ')', v.items]
          : v instanceof PickleSet
            ? ['{', '}', v.items]
            : ['{', '}', null];
    emit(open);
    if (items) {
      items.forEach((item, i) => {
        if (i) emit(', ');
        walk(item, depth + 1);
      });
    } else if (v instanceof PickleDict) {
      let i = 0;
      for (const [k, item] of v.items()) {
        if (i++) emit(', ');
        walk(k, depth + 1);
        emit(': ');
        walk(item, depth + 1);
        if (length > MAX_METADATA_CHARS) break;
      }
    }
    emit(close);
  };
  walk(value, 0);
  const text = out.join('');
  return text.length > MAX_METADATA_CHARS ? `${text.slice(0, MAX_METADATA_CHARS)}…` : text;
}

/** Python prints integral floats with ".0" and uses e-notation at 1e16 and below 1e-4. */
function floatRepr(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  if (Number.isInteger(x) && Math.abs(x) < 1e16) return x.toFixed(1);
  return String(x);
}
