// Test helpers for the merge executor, the similarity analysis, the job runner and the CLI: random small models
// written as safetensors (by hand, independent of the project's writer), a reader for the results, and a naive
// whole-in-memory reference implementation of every merge method, written straight from merge-config.md.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dareUniform } from '../../../src/core/merge/dare';
import { seededRandom, tempFolder } from '../../support/testData';

export { seededRandom, tempFolder };

export type FixtureDtype = 'F32' | 'BF16' | 'F16' | 'I64';

export interface FixtureTensor {
  name: string;
  shape: number[];
  dtype: FixtureDtype;
}

/** Standard normal samples (Box–Muller). */
export function gaussian(random: () => number): () => number {
  return () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float32 → bfloat16 bits, round to nearest even (NaN kept NaN). */
export function bf16Bits(x: number): number {
  f32[0] = x;
  const b = u32[0]!;
  if ((b & 0x7fffffff) > 0x7f800000) return 0x7fc0;
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

export function bf16ToNumber(bits: number): number {
  u32[0] = (bits & 0xffff) << 16;
  return f32[0]!;
}

/** The value a float32 becomes when stored as bf16. */
export function roundBf16(x: number): number {
  return bf16ToNumber(bf16Bits(x));
}

function f16ToNumber(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

function encode(dtype: FixtureDtype, values: Float32Array): Uint8Array {
  if (dtype === 'F32') return new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength));
  if (dtype === 'BF16') {
    const out = new Uint16Array(values.length);
    values.forEach((v, i) => (out[i] = bf16Bits(v)));
    return new Uint8Array(out.buffer);
  }
  if (dtype === 'I64') {
    const out = new BigInt64Array(values.length);
    values.forEach((v, i) => (out[i] = BigInt(Math.round(v))));
    return new Uint8Array(out.buffer);
  }
  throw new Error(`fixture: cannot encode ${dtype}`);
}

/** Writes a safetensors file: tensors in the given order, each given as float32 values encoded to its dtype. */
export function writeSafetensorsFile(file: string, tensors: { tensor: FixtureTensor; values: Float32Array }[], metadata?: Record<string, string>): void {
  const header: Record<string, unknown> = metadata ? { __metadata__: metadata } : {};
  const parts: Uint8Array[] = [];
  let offset = 0;
  for (const { tensor, values } of tensors) {
    const bytes = encode(tensor.dtype, values);
    header[tensor.name] = { dtype: tensor.dtype, shape: tensor.shape, data_offsets: [offset, offset + bytes.length] };
    parts.push(bytes);
    offset += bytes.length;
  }
  const headerBytes = Buffer.from(JSON.stringify(header));
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(headerBytes.length));
  writeFileSync(file, Buffer.concat([length, headerBytes, ...parts]));
}

export interface ReadTensor {
  dtype: string;
  shape: number[];
  /** Decoded to float32 (float dtypes only). */
  values: Float32Array;
  raw: Uint8Array;
}

/** Reads a safetensors file whole (tests only): header, metadata and every tensor decoded. */
export function readSafetensorsFile(file: string): { metadata: Record<string, string>; tensors: Map<string, ReadTensor>; order: string[] } {
  const bytes = readFileSync(file);
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8')) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const dataStart = 8 + n;
  const tensors = new Map<string, ReadTensor>();
  const order: string[] = [];
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = entry as unknown as Record<string, string>;
      continue;
    }
    order.push(name);
    const raw = new Uint8Array(bytes.subarray(dataStart + entry.data_offsets[0], dataStart + entry.data_offsets[1]));
    const copy = raw.slice();
    let values: Float32Array;
    if (entry.dtype === 'F32') values = new Float32Array(copy.buffer);
    else if (entry.dtype === 'BF16') values = Float32Array.from(new Uint16Array(copy.buffer), bf16ToNumber);
    else if (entry.dtype === 'F16') values = Float32Array.from(new Uint16Array(copy.buffer), f16ToNumber);
    else values = new Float32Array(0);
    tensors.set(name, { dtype: entry.dtype, shape: entry.shape, values, raw });
  }
  return { metadata, tensors, order };
}

export interface ModelSetOptions {
  K: number;
  tensors: FixtureTensor[];
  seed: number;
  /** Models (0-based) whose task vector is exactly zero (a copy of the base). */
  zeroTaskModels?: number[];
  /** Size of the component all task vectors share (makes them correlated, so AWD has something to remove). */
  shared?: number;
}

export interface ModelSet {
  base: string;
  models: string[];
}

/** Writes base.safetensors and model<i>.safetensors into `dir`: θ_i = θ_0 + shared·s + 0.1·own_i (then stored in each tensor's dtype). */
export function writeModelSet(dir: string, opts: ModelSetOptions): ModelSet {
  const normal = gaussian(seededRandom(opts.seed));
  const elements = (t: FixtureTensor): number => t.shape.reduce((a, b) => a * b, 1);
  const baseValues = opts.tensors.map((t) =>
    t.dtype === 'I64' ? Float32Array.from({ length: elements(t) }, (_, i) => i) : Float32Array.from({ length: elements(t) }, () => 0.5 * normal()),
  );
  const shared = opts.tensors.map((t) => Float32Array.from({ length: elements(t) }, () => normal()));
  const base = join(dir, 'base.safetensors');
  writeSafetensorsFile(base, opts.tensors.map((tensor, i) => ({ tensor, values: baseValues[i]! })));
  const models: string[] = [];
  for (let k = 0; k < opts.K; k++) {
    const file = join(dir, `model${k}.safetensors`);
    const zero = opts.zeroTaskModels?.includes(k) ?? false;
    writeSafetensorsFile(
      file,
      opts.tensors.map((tensor, i) => ({
        tensor,
        values:
          tensor.dtype === 'I64' || zero
            ? baseValues[i]!
            : Float32Array.from(baseValues[i]!, (b, e) => b + (opts.shared ?? 0.05) * shared[i]![e]! + 0.1 * normal()),
      })),
    );
    models.push(file);
  }
  return { base, models };
}

export type Method = 'task_arithmetic' | 'ties' | 'dare_linear' | 'dare_ties' | 'linear';

export interface ReferenceSettings {
  method: Method;
  weights: number[];
  densities: number[];
  lambda: number;
  normalize: boolean;
  trimScope: 'tensor' | 'model';
  seed: number;
  /** AWD's coefficients a per merged tensor (δ_t = Σ_k a_k τ_k,t), when AWD is on. */
  awdCoefficients?: Map<string, ArrayLike<number>>;
}

/** The k-th largest |x| over `values` (k ≥ 1) by sorting; +Infinity for k = 0. */
function kthLargestBySort(values: Float32Array, k: number): number {
  if (k === 0) return Infinity;
  const mags = Float64Array.from(values, Math.abs).sort();
  return mags[mags.length - k]!;
}

/**
 * The merged tensors (float64 values) for `names`, computed whole in memory straight from merge-config.md:
 * τ_i = fround(θ_i − θ_0), τ̂_i = fround(τ_i − fround(Σ a_k τ_k)), then the method.
 */
export function referenceMerge(
  s: ReferenceSettings,
  base: Map<string, Float32Array>,
  models: Map<string, Float32Array>[],
  names: string[],
): Map<string, Float64Array> {
  const K = models.length;
  const result = new Map<string, Float64Array>();
  if (s.method === 'linear') {
    const total = s.weights.reduce((a, b) => a + b, 0);
    for (const name of names) {
      const n = models[0]!.get(name)!.length;
      result.set(name, Float64Array.from({ length: n }, (_, e) => models.reduce((acc, m, i) => acc + s.weights[i]! * m.get(name)![e]!, 0) / total));
    }
    return result;
  }
  // τ̂ per model per tensor.
  const tau = new Map<string, Float32Array[]>();
  for (const name of names) {
    const b = base.get(name)!;
    const rows = models.map((m) => Float32Array.from(m.get(name)!, (v, e) => v - b[e]!));
    const a = s.awdCoefficients?.get(name);
    if (a) {
      const delta = Float32Array.from({ length: b.length }, (_, e) => rows.reduce((acc, r, k) => acc + a[k]! * r[e]!, 0));
      for (const r of rows) for (let e = 0; e < r.length; e++) r[e] = r[e]! - delta[e]!;
    }
    tau.set(name, rows);
  }
  if (s.method === 'ties') {
    const thresholds = new Map<string, number[]>();
    if (s.trimScope === 'model') {
      const perModel = Array.from({ length: K }, (_, i) => {
        const all = Float32Array.from(names.flatMap((n) => Array.from(tau.get(n)![i]!)));
        return kthLargestBySort(all, Math.floor(s.densities[i]! * all.length));
      });
      for (const n of names) thresholds.set(n, perModel);
    } else {
      for (const n of names) thresholds.set(n, tau.get(n)!.map((r, i) => kthLargestBySort(r, Math.floor(s.densities[i]! * r.length))));
    }
    for (const n of names) tau.get(n)!.forEach((r, i) => r.forEach((v, e) => (r[e] = Math.abs(v) >= thresholds.get(n)![i]! ? v : 0)));
  }
  if (s.method === 'dare_linear' || s.method === 'dare_ties') {
    for (const n of names) {
      tau.get(n)!.forEach((r, i) => r.forEach((v, e) => (r[e] = dareUniform({ seed: s.seed, model: i, tensor: n }, e) < s.densities[i]! ? v / s.densities[i]! : 0)));
    }
  }
  for (const n of names) {
    const b = base.get(n)!;
    const rows = tau.get(n)!;
    const out = new Float64Array(b.length);
    for (let e = 0; e < b.length; e++) {
      let m = 0;
      if (s.method === 'task_arithmetic' || s.method === 'dare_linear') {
        for (let i = 0; i < K; i++) m += s.weights[i]! * rows[i]![e]!;
      } else {
        let total = 0;
        for (let i = 0; i < K; i++) total += s.weights[i]! * rows[i]![e]!;
        const sign = Math.sign(total);
        let sum = 0;
        let wsum = 0;
        for (let i = 0; i < K; i++) {
          const v = rows[i]![e]!;
          if (v !== 0 && Math.sign(v) === sign) {
            sum += s.weights[i]! * v;
            wsum += s.weights[i]!;
          }
        }
        m = s.normalize ? (wsum !== 0 ? sum / wsum : 0) : sum;
      }
      out[e] = b[e]! + s.lambda * m;
    }
    result.set(n, out);
  }
  return result;
}

/** Every float tensor of a file, decoded. */
export function floatTensors(file: string): Map<string, Float32Array> {
  const { tensors } = readSafetensorsFile(file);
  return new Map([...tensors].filter(([, t]) => t.values.length > 0 || t.raw.length === 0).map(([n, t]) => [n, t.values]));
}

/** max_e |got − want| / (1 + max |want|). */
export function maxRelativeError(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let err = 0;
  let scale = 0;
  for (let e = 0; e < want.length; e++) {
    err = Math.max(err, Math.abs(got[e]! - want[e]!));
    scale = Math.max(scale, Math.abs(want[e]!));
  }
  if (got.length !== want.length) return Infinity;
  return err / (1 + scale);
}
