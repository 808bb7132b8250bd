// Random task vectors and the similarity report the core makes of them, for the similarity UI's unit tests.
import { reportFromGrams, type SimilarityReport } from '../../../src/core/analysis/analyze';
import type { AwdSettings } from '../../../src/core/merge/awdDiagnostics';

/** Deterministic pseudo-random numbers in [-1, 1) (32-bit LCG). */
export function random(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 31 - 1;
  };
}

export interface RandomTaskVectors {
  models: string[];
  /** tensors[t][k] = τ_k restricted to tensor t. */
  tensors: { name: string; tau: Float64Array[] }[];
}

/** K task vectors over the named tensors, with a shared component so that they interfere. */
export function randomTaskVectors(K: number, names: readonly string[], seed: number, size = 12): RandomTaskVectors {
  const next = random(seed);
  return {
    models: Array.from({ length: K }, (_, k) => `/models/ft-${k}.safetensors`),
    tensors: names.map((name, t) => {
      const n = size + t;
      const shared = Float64Array.from({ length: n }, next);
      return { name, tau: Array.from({ length: K }, () => Float64Array.from({ length: n }, (_, i) => next() + 0.7 * shared[i]!)) };
    }),
  };
}

export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

/** The straightforward cosine of two vectors. */
export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  return dot(a, b) / Math.sqrt(dot(a, a) * dot(b, b));
}

/** The report of the core for these task vectors (Gram matrices computed naively here). */
export function reportOf(v: RandomTaskVectors, awd?: AwdSettings): SimilarityReport {
  const K = v.models.length;
  const grams = v.tensors.map((t) => {
    const gram = new Float64Array(K * K);
    for (let i = 0; i < K; i++) for (let j = 0; j < K; j++) gram[i * K + j] = dot(t.tau[i]!, t.tau[j]!);
    return { name: t.name, elements: t.tau[0]!.length, gram };
  });
  return reportFromGrams(v.models, '/models/base.safetensors', grams, { ...(awd ? { awd } : {}), perTensor: true });
}

export const AWD: AwdSettings = { alpha: 0.1, learning_rate: 0.01, iterations: 50, granularity: 'model', norm: 'l2' };
