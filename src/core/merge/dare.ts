/**
 * DARE (drop and rescale): τ' = τ·mask/density with mask_e ~ Bernoulli(density). The mask comes from a
 * counter-based generator, u = hash(seed, model index, tensor name, element index) → [0, 1): a pure function of
 * those four values, so masks do not depend on chunk size, thread count or tensor order, and a saved config
 * reproduces them bit for bit. merge-config.md keys masks by (seed, tensor name, element index); the model's
 * index in the config's `models` list (0-based) is added so that each model gets an independent mask, as DARE
 * intends (with one mask shared by all models, the same entries would be dropped from every task vector).
 */

import { wasmKernels } from '../kernels/wasm';

/** Below this many elements the copy into WASM memory costs more than the JS loop. */
const WASM_MIN_ELEMENTS = 1024;

/** Identifies one mask: random_seed, the model's 0-based index in `models`, and the tensor name. */
export interface DareMaskKey {
  seed: number;
  model: number;
  tensor: string;
}

/** A 32-bit integer mixer (xorshift-multiply, "lowbias32" constants): a bijection on 32 bits with good avalanche. */
function mix32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

/** 64-bit FNV-1a of the tensor name's UTF-8 bytes, as [low 32 bits, high 32 bits]. */
export function tensorNameHash(name: string): [number, number] {
  let h = 0xcbf29ce484222325n;
  for (const byte of new TextEncoder().encode(name)) {
    h ^= BigInt(byte);
    h = (h * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return [Number(h & 0xffffffffn), Number(h >> 32n)];
}

/** Three 32-bit round keys derived from (seed, model, tensor name); the seed may use up to 53 bits. */
export function dareRoundKeys(key: DareMaskKey): [number, number, number] {
  if (!Number.isSafeInteger(key.seed) || key.seed < 0) throw new RangeError(`DARE: seed must be a non-negative integer, got ${key.seed}`);
  if (!Number.isSafeInteger(key.model) || key.model < 0) throw new RangeError(`DARE: model index must be a non-negative integer, got ${key.model}`);
  const seedLo = key.seed >>> 0;
  const seedHi = Math.floor(key.seed / 4294967296) >>> 0;
  const [hLo, hHi] = tensorNameHash(key.tensor);
  const k0 = mix32(seedLo ^ mix32(hLo ^ 0x9e3779b9));
  const k1 = mix32(seedHi ^ mix32((hHi + k0) >>> 0));
  const k2 = mix32((key.model ^ mix32((k1 + 0x85ebca6b) >>> 0)) >>> 0);
  return [k0, k1, k2];
}

/** The 32-bit hash of one element index (< 2^53) under the round keys. */
function elementHash(k0: number, k1: number, k2: number, index: number): number {
  const lo = index >>> 0;
  const hi = Math.floor(index / 4294967296) >>> 0;
  let h = mix32((lo ^ k0) >>> 0);
  h = mix32((h ^ hi ^ k1) >>> 0);
  return mix32((h + k2) >>> 0);
}

/** The round keys of the last key asked for: per-element callers of dareUniform ask for the same key in a row. */
let lastKey: { seed: number; model: number; tensor: string; keys: [number, number, number] } | undefined;

/** u(key, index) ∈ [0, 1) from 32 random bits; the mask keeps element `index` when u < density. */
export function dareUniform(key: DareMaskKey, index: number): number {
  if (lastKey?.seed !== key.seed || lastKey.model !== key.model || lastKey.tensor !== key.tensor) {
    lastKey = { seed: key.seed, model: key.model, tensor: key.tensor, keys: dareRoundKeys(key) };
  }
  const [k0, k1, k2] = lastKey.keys;
  return elementHash(k0, k1, k2, index) / 4294967296;
}

function checkDareArguments(row: Float32Array, density: number, startElement: number): void {
  if (!(density > 0 && density <= 1)) throw new RangeError(`DARE: density must be in (0, 1], got ${density}`);
  if (!Number.isSafeInteger(startElement) || startElement < 0 || startElement + row.length > Number.MAX_SAFE_INTEGER) {
    throw new RangeError(`DARE: bad start element ${startElement}`);
  }
}

/** Integer form of the mask test: h/2^32 < density ⇔ h < ceil(density·2^32) (both sides exact doubles). */
export function keepBelowOf(density: number): number {
  return Math.ceil(density * 4294967296);
}

/**
 * row[e] = mask_e ? row[e]/density : 0, mask_e = u(key, startElement + e) < density; row holds elements
 * [startElement, startElement + row.length) of the tensor's task vector. WASM SIMD when available (bit-identical
 * to dareRescaleInPlaceJs).
 */
export function dareRescaleInPlace(row: Float32Array, density: number, key: DareMaskKey, startElement: number): void {
  checkDareArguments(row, density, startElement);
  const wasm = row.length >= WASM_MIN_ELEMENTS ? wasmKernels() : null;
  if (wasm) wasm.dareRescale(row, startElement, dareRoundKeys(key), keepBelowOf(density), density);
  else dareRescaleInPlaceJs(row, density, key, startElement);
}

/** The plain-JS reference of dareRescaleInPlace. */
export function dareRescaleInPlaceJs(row: Float32Array, density: number, key: DareMaskKey, startElement: number): void {
  checkDareArguments(row, density, startElement);
  const [k0, k1, k2] = dareRoundKeys(key);
  const keepBelow = keepBelowOf(density);
  for (let e = 0; e < row.length; e++) {
    const h = elementHash(k0, k1, k2, startElement + e);
    row[e] = h < keepBelow ? (row[e] as number) / density : 0;
  }
}
