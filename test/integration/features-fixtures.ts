// Small checkpoints for the feature suites, written with the project's own safetensors writer into the test
// workspace: a base and three fine-tuned models (float32, plus an int64 buffer that merges copy from the base),
// and a larger set that keeps a merge busy for a moment (cancellation, responsiveness).
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import * as vscode from 'vscode';
import { createSafetensorsWriter } from '../../src/core/formats/safetensorsWriter';
import { openCheckpoint } from '../../src/core/formats/open';

/** Deterministic values in [-1, 1): a 32-bit LCG seeded per file and tensor, so reruns write identical fixtures. */
export function pseudoRandom(seed: number, n: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

export const SMALL_TENSORS: { name: string; shape: number[] }[] = [
  { name: 'embed.weight', shape: [32, 16] },
  { name: 'layer.0.weight', shape: [16, 16] },
  { name: 'layer.0.bias', shape: [16] },
];

export interface Zoo {
  root: string;
  small: { base: string; models: string[] };
  big: { base: string; models: string[] };
}

function workspaceRoot(): string {
  const folder = vscode.workspace.workspaceFolders?.[0];
  if (!folder) throw new Error('no workspace folder is open');
  return folder.uri.fsPath;
}

/** Values are generated in blocks of this many and tiled, so the large fixtures cost little CPU to write. */
const BLOCK = 1 << 16;

/** Fine-tuned model k = base + 0.1·(its own direction) + 0.05·(a shared direction): task vectors that interfere. */
function values(model: number, tensorIndex: number, elements: number): Float32Array {
  const n = Math.min(elements, BLOCK);
  const block = pseudoRandom(1000 + tensorIndex, n);
  if (model > 0) {
    const own = pseudoRandom(7919 * model + tensorIndex, n);
    const shared = pseudoRandom(424242 + tensorIndex, n);
    for (let i = 0; i < n; i++) block[i] = block[i]! + 0.1 * own[i]! + 0.05 * shared[i]!;
  }
  if (n === elements) return block;
  const out = new Float32Array(elements);
  for (let s = 0; s < elements; s += n) out.set(block.subarray(0, Math.min(n, elements - s)), s);
  return out;
}

async function writeModel(file: string, model: number, tensors: { name: string; shape: number[] }[], chunk = 1 << 20): Promise<void> {
  if (existsSync(file)) return;
  const plan = [...tensors.map((t) => ({ name: t.name, dtype: 'F32' as const, shape: t.shape })), { name: 'position_ids', dtype: 'I64' as const, shape: [8] }];
  const writer = await createSafetensorsWriter(file, plan, { metadata: { fixture: `model ${model}` } });
  try {
    for (let t = 0; t < tensors.length; t++) {
      const elements = tensors[t]!.shape.reduce((a, d) => a * d, 1);
      const v = values(model, t, elements);
      for (let s = 0; s < elements; s += chunk) await writer.writeFloat32(tensors[t]!.name, v.subarray(s, Math.min(elements, s + chunk)));
    }
    const ids = new BigInt64Array(8).map((_, i) => BigInt(i));
    await writer.writeRaw('position_ids', new Uint8Array(ids.buffer));
    await writer.finish();
  } catch (e) {
    await writer.abort();
    throw e;
  }
}

/** Writes the fixture zoo once per workspace (later calls return the same paths). */
export async function ensureZoo(): Promise<Zoo> {
  const root = join(workspaceRoot(), 'features-zoo');
  const smallDir = join(root, 'small');
  const bigDir = join(root, 'big');
  mkdirSync(smallDir, { recursive: true });
  mkdirSync(bigDir, { recursive: true });
  const small = { base: join(smallDir, 'base.safetensors'), models: ['ft-a', 'ft-b', 'ft-c'].map((n) => join(smallDir, `${n}.safetensors`)) };
  const big = { base: join(bigDir, 'big-base.safetensors'), models: ['big-a', 'big-b', 'big-c'].map((n) => join(bigDir, `${n}.safetensors`)) };
  const bigTensors = [
    { name: 'block.0.weight', shape: [2048, 2048] },
    { name: 'block.1.weight', shape: [2048, 2048] },
  ];
  await Promise.all([small.base, ...small.models].map((f, k) => writeModel(f, k, SMALL_TENSORS)));
  for (const [k, f] of [big.base, ...big.models].entries()) await writeModel(f, k, bigTensors);
  return { root, small, big };
}

/** Every tensor of a checkpoint as float32, by name. */
export async function readAll(file: string): Promise<Map<string, Float32Array>> {
  const c = await openCheckpoint(file);
  try {
    const out = new Map<string, Float32Array>();
    for (const t of c.tensors) out.set(t.name, await c.readFloat32(t.name));
    return out;
  } finally {
    await c.close();
  }
}

/** Every tensor's raw bytes, by name (for bit-identical comparisons). */
export async function readAllBytes(file: string): Promise<Map<string, Uint8Array>> {
  const c = await openCheckpoint(file);
  try {
    const out = new Map<string, Uint8Array>();
    for (const t of c.tensors) out.set(t.name, await c.readBytes(t.name));
    return out;
  } finally {
    await c.close();
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `check` until it returns true or `timeoutMs` passes. */
export async function waitUntil(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(100);
  }
}
