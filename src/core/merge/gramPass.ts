/**
 * The statistics pass shared by AWD merges and the similarity analysis: one read of every selected tensor of the
 * base and the K models, accumulating the K×K Gram matrix of the task vectors τ_i = θ_i − θ_0 per tensor (float64).
 * The model-level Gram matrix is the sum of the per-tensor ones, added in tensor order so it is deterministic.
 */
import type { Checkpoint } from '../formats/types';
import { accumulateGramOfDifferences } from '../kernels/gram';
import { TensorChunkReader, chunkRanges, inputBytesPerElement, GRAM_BLOCK_ELEMENTS } from './chunkReader';
import { ProgressMeter, throwIfCancelled, type ProgressListener } from './progress';

export interface TensorGram {
  name: string;
  elements: number;
  /** K×K row-major, G_ij = Σ_e τ_i[e] τ_j[e] over the tensor. */
  gram: Float64Array;
}

export interface GramPassOptions {
  chunkElements: number;
  signal?: AbortSignal;
  onProgress?: ProgressListener;
}

/** Gram matrices of the task vectors for each tensor in `tensors` (in that order), in one streaming pass. */
export async function accumulateTensorGrams(
  base: Checkpoint,
  models: readonly Checkpoint[],
  tensors: readonly { name: string; elements: number }[],
  opts: GramPassOptions,
): Promise<TensorGram[]> {
  const K = models.length;
  const reader = new TensorChunkReader(base, models, opts.chunkElements);
  const inputs = [base, ...models];
  const perElement = tensors.map((t) => inputBytesPerElement(inputs, t.name));
  const meter = new ProgressMeter('statistics', tensors.reduce((s, t, i) => s + t.elements * (perElement[i] ?? 0), 0), opts.onProgress);
  const result: TensorGram[] = [];
  for (const [ti, t] of tensors.entries()) {
    const gram = new Float64Array(K * K);
    for (const [start, end] of chunkRanges(t.elements, opts.chunkElements)) {
      throwIfCancelled(opts.signal);
      const chunk = await reader.read(t.name, start, end);
      // Block by block, aligned to the element index (see GRAM_BLOCK_ELEMENTS).
      for (let b = 0; b < end - start; ) {
        const blockEnd = Math.min(end - start, GRAM_BLOCK_ELEMENTS - ((start + b) % GRAM_BLOCK_ELEMENTS) + b);
        accumulateGramOfDifferences(chunk.models.map((m) => m.subarray(b, blockEnd)), chunk.base.subarray(b, blockEnd), gram);
        b = blockEnd;
      }
      meter.add((end - start) * (perElement[ti] ?? 0), t.name);
    }
    result.push({ name: t.name, elements: t.elements, gram });
  }
  throwIfCancelled(opts.signal);
  meter.end();
  return result;
}

/** Σ_t G_t, summed in the given order. */
export function sumGrams(grams: readonly TensorGram[], K: number): Float64Array {
  const total = new Float64Array(K * K);
  for (const g of grams) for (let i = 0; i < K * K; i++) total[i]! += g.gram[i]!;
  return total;
}
