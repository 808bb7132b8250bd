/**
 * The statistics pass shared by AWD merges and the similarity analysis: one read of every selected tensor of the
 * base and the K models, accumulating the K×K Gram matrix of the task vectors τ_i = θ_i − θ_0 per tensor (float64).
 * The model-level Gram matrix is the sum of the per-tensor ones, added in tensor order so it is deterministic.
 */
import type { Checkpoint } from '../formats/types';
import { BlockedGram } from '../kernels/gram';
import { openArena } from '../kernels/wasm';
import { ChunkPipeline, chunkItems, gramSlotBytes, inputBytesPerElement, GRAM_BLOCK_ELEMENTS, type ChunkItem, type InputChunk } from './chunkReader';
import type { ChunkOp } from './helperThread';
import { NonFiniteCheckingPipeline } from './nonFiniteGuard';
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
  pipeline?: ChunkPipeline,
): Promise<TensorGram[]> {
  if (pipeline) return gramPass(base, models, tensors, opts, pipeline);
  // A pipeline of its own, its buffers in WASM memory (zero-copy kernels) where possible.
  const extra = gramSlotBytes(models.length);
  const arena = openArena(ChunkPipeline.floatsFor(true, models.length, opts.chunkElements, extra) * 4, models.length + 1);
  try {
    return await gramPass(base, models, tensors, opts, new ChunkPipeline(base, models, opts.chunkElements, arena ?? undefined, extra));
  } finally {
    arena?.release();
  }
}

async function gramPass(
  base: Checkpoint,
  models: readonly Checkpoint[],
  tensors: readonly { name: string; elements: number }[],
  opts: GramPassOptions,
  pipeline: ChunkPipeline,
): Promise<TensorGram[]> {
  const K = models.length;
  const inputs = [base, ...models];
  const perElement = new Map(tensors.map((t) => [t.name, inputBytesPerElement(inputs, t.name)]));
  const meter = new ProgressMeter('statistics', tensors.reduce((s, t) => s + t.elements * perElement.get(t.name)!, 0), opts.onProgress);
  // Blocks aligned to the element index (see GRAM_BLOCK_ELEMENTS): the same bits whatever the chunks.
  const grams = new Map(tensors.map((t) => [t.name, new BlockedGram(K, t.elements, GRAM_BLOCK_ELEMENTS)]));
  throwIfCancelled(opts.signal);
  // With the NaN/Inf guard, an input chunk is screened only when its Gram diagonal stops being finite.
  const guard = pipeline instanceof NonFiniteCheckingPipeline ? pipeline : undefined;
  const items = chunkItems(tensors, Math.min(opts.chunkElements, pipeline.chunkElements));
  const elements = new Map(tensors.map((t) => [t.name, t.elements]));
  const wholeBlocks = items.every((it) => it.start % GRAM_BLOCK_ELEMENTS === 0 && (it.end - it.start === GRAM_BLOCK_ELEMENTS || it.end === elements.get(it.name)));
  if (wholeBlocks && pipeline.canRunPrograms(items, gramSlotBytes(K))) {
    // Both threads read and sum whole blocks; this one folds each block's lanes into its tensor's Gram, in order.
    const lanesBytes = 16 * K * K;
    const lanes = pipeline.slotExtra.map((x) => new Float64Array(x.buffer, x.byteOffset, 2 * K * K));
    const ops = (item: ChunkItem, slot: number, chunk: InputChunk): ChunkOp[] => {
      const at = pipeline.slotExtra[slot]!.byteOffset;
      const stride = K > 1 ? chunk.models[1]!.byteOffset - chunk.models[0]!.byteOffset : 0;
      const args = [chunk.models[0]!.byteOffset, K, item.end - item.start, stride, chunk.base.byteOffset, at, at + lanesBytes];
      return [
        { fn: 'fill0', args: [at, lanesBytes] },
        { fn: grams.get(item.name)!.exact ? 'gramOfDifferencesUpperF64' : 'gramOfDifferencesUpper', args },
      ];
    };
    for await (const { item, chunk, slot } of pipeline.runPrograms(items, ops)) {
      const gram = grams.get(item.name)!;
      gram.addBlockLanes(lanes[slot]!, item.end - item.start);
      if (guard && !gram.finite()) guard.screen(item.name, chunk!);
      meter.add((item.end - item.start) * perElement.get(item.name)!, item.name);
      throwIfCancelled(opts.signal);
    }
    meter.end();
    return tensors.map((t) => ({ name: t.name, elements: t.elements, gram: grams.get(t.name)!.gram }));
  }
  for await (const { item, chunk } of guard ? guard.run(items, 'deferred') : pipeline.run(items)) {
    const gram = grams.get(item.name)!;
    gram.add(chunk!.models, chunk!.base);
    if (guard && !gram.finite()) guard.screen(item.name, chunk!);
    meter.add((item.end - item.start) * perElement.get(item.name)!, item.name);
    throwIfCancelled(opts.signal);
  }
  meter.end();
  return tensors.map((t) => ({ name: t.name, elements: t.elements, gram: grams.get(t.name)!.gram }));
}

/** Σ_t G_t, summed in the given order. */
export function sumGrams(grams: readonly TensorGram[], K: number): Float64Array {
  const total = new Float64Array(K * K);
  for (const g of grams) for (let i = 0; i < K * K; i++) total[i]! += g.gram[i]!;
  return total;
}
