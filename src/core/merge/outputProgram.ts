/**
 * The output pass of task arithmetic, TIES and DARE as chunk programs (helperThread.ts): per chunk, the kernel calls
 * that turn the slot's input rows into θ = θ_0 + λ·m and its statistics blocks, with the same kernels in the same
 * order as the one-thread loop of execute.ts, so both give the same bits. A slot's extra buffers hold, in this
 * order: δ, the merged task vector m, the output row (one chunk each), a statistics state per STATISTICS_BLOCK
 * elements, one int32 NaN/Inf count per input row, and the int32 result of the output write.
 *
 * A float32 or bfloat16 output row is written into the output file by the thread that computed it (bfloat16
 * encoded in place by encodeBf16, exactly as the writer encodes; then writeOut at the position the writer gives),
 * so this thread never copies it: what is left here is bookkeeping. The writer's own path takes over for any chunk
 * whose write failed (with the encoded bytes; it reports the error), and for every other output dtype.
 */
import type { InputChunk, ChunkItem } from './chunkReader';
import type { ChunkOp } from './helperThread';
import type { NonFiniteCheckingPipeline } from './nonFiniteGuard';
import type { MergePlan } from './plan';
import { dareRoundKeys, keepBelowOf } from './dare';
import { float32AtLeast } from './ties';
import { combineLanes, STATISTICS_BLOCK, type BlockSums } from './tensorStats';
import { STATE_BYTES } from '../kernels/wasm';


/** Per-slot extra bytes of the output programs for chunks of `chunk` elements. */
export function outputProgramBytes(K: number, chunk: number): number {
  return 3 * chunk * 4 + STATE_BYTES * Math.ceil(chunk / STATISTICS_BLOCK) + 4 * (K + 2) + 256;
}

export interface OutputProgramInputs {
  plan: MergePlan;
  pipeline: NonFiniteCheckingPipeline;
  /** Elements per chunk of the pass. */
  chunk: number;
  /** Float64 in WASM memory: K coefficients per merged tensor (in `tensorIndex` order), then K weights. */
  table: Float64Array;
  tensorIndex: ReadonlyMap<string, number>;
  /** Task arithmetic's coefficients per tensor (λ w_i, or the effective ones with AWD). */
  taCoefficients: ReadonlyMap<string, Float64Array>;
  /** AWD's coefficients a per tensor (δ = Σ a_k τ_k), when AWD is on. */
  awdCoefficients: ReadonlyMap<string, Float64Array>;
  /** TIES's thresholds per tensor, one per model. */
  thresholds: ReadonlyMap<string, number[]>;
  /** Float32 in WASM memory: room for K thresholds per merged tensor (in `tensorIndex` order), for TIES. */
  thresholdTable: Float32Array;
  /**
   * Where an output tensor's bytes from `byteStart` go in the output file (the writer's directTarget): the thread
   * that computed a float32 or bfloat16 chunk then writes it there itself. Undefined: the caller writes every chunk.
   */
  directTarget?: (name: string, byteStart: number) => { fd: number; position: number } | undefined;
}

export interface OutputProgram {
  ops(item: ChunkItem, slot: number, chunk: InputChunk): ChunkOp[];
  /**
   * After a chunk's program ran: its NaN/Inf screening, then its statistics blocks and what the caller is to do
   * with the row: `written` (the program wrote it into the output file), `encoded` (its bytes in the output dtype,
   * to be written raw) or `result` (float32, to be encoded and written).
   */
  finish(item: ChunkItem, slot: number, chunk: InputChunk): Promise<FinishedChunk>;
}

/** A chunk after its program: see OutputProgram.finish. */
export interface FinishedChunk {
  blockSums: BlockSums[];
  written: boolean;
  encoded?: Uint8Array;
  result?: Float32Array;
}

/** The output program of a plan whose method is not `linear`. */
export function outputProgram(p: OutputProgramInputs): OutputProgram {
  const { plan, pipeline, chunk, table, tensorIndex } = p;
  const config = plan.config;
  const method = config.merge_method;
  const K = plan.models.length;
  const awd = p.awdCoefficients.size > 0;
  const memory = table.buffer;
  const merged = [...tensorIndex.keys()];
  merged.forEach((name, i) => table.set((method === 'task_arithmetic' ? p.taCoefficients.get(name) : p.awdCoefficients.get(name)) ?? new Float64Array(K), i * K));
  table.set(plan.weights, merged.length * K);
  /** Merged tensors the threads write themselves, by output dtype (float32, or bfloat16 encoded in place). */
  const directOutput = new Map<string, 'F32' | 'BF16'>();
  for (const t of plan.tensors) if (t.action === 'merge' && (t.outDtype === 'F32' || t.outDtype === 'BF16')) directOutput.set(t.name, t.outDtype);
  const coefficients = (name: string): number => table.byteOffset + tensorIndex.get(name)! * K * 8;
  const weights = table.byteOffset + merged.length * K * 8;
  // TIES's thresholds as trimBelow takes them: the smallest float32 at least the exact threshold.
  // (An empty tensor has no chunk, and no thresholds.)
  if (method === 'ties') merged.forEach((name, i) => p.thresholdTable.set((p.thresholds.get(name) ?? []).map(float32AtLeast), i * K));
  const thresholdsOf = (name: string): number => p.thresholdTable.byteOffset + tensorIndex.get(name)! * K * 4;
  const scale = Math.fround(config.parameters.lambda);
  const layout = (slot: number): { delta: number; m: number; out: number; states: number; counts: number } => {
    const at = pipeline.slotExtra[slot]!.byteOffset;
    const states = at + 3 * chunk * 4;
    return { delta: at, m: at + chunk * 4, out: at + 2 * chunk * 4, states, counts: states + STATE_BYTES * Math.ceil(chunk / STATISTICS_BLOCK) };
  };

  /** Items whose program writes the output row itself, by the dtype it writes (bfloat16: encoded in place first). */
  const writtenAs = new WeakMap<ChunkItem, 'F32' | 'BF16'>();
  const ops = (item: ChunkItem, slot: number, c: InputChunk): ChunkOp[] => {
    const n = item.end - item.start;
    const { delta, m, out, states, counts } = layout(slot);
    const stride = K > 1 ? c.models[1]!.byteOffset - c.models[0]!.byteOffset : 0;
    const rows = c.models[0]!.byteOffset;
    const base = c.base.byteOffset;
    const list: ChunkOp[] = [];
    if (method === 'task_arithmetic') {
      // θ_0 + Σ c_i τ_i in one kernel; its inputs are screened only when the result shows a NaN/Inf.
      list.push({ fn: 'weightedSumOfDifferences', args: [base, rows, K, n, stride, coefficients(item.name), out, 1] });
    } else {
      // The inputs' NaN/Inf counts first (TIES and DARE can drop a NaN, so every row is screened), then δ with AWD.
      [c.base, ...c.models].forEach((row, j) => list.push({ fn: 'countNonFiniteInto', args: [row.byteOffset, n, counts + 4 * j] }));
      if (awd) list.push({ fn: 'weightedSumOfDifferences', args: [base, rows, K, n, stride, coefficients(item.name), delta, 0] });
      if (method === 'ties') {
        // τ' (left in the rows), trim and merge in one kernel: the same bits as subtractFromRows, trimBelow and
        // tiesMerge one after the other (the one-thread loop of execute.ts), in one pass over the rows fewer.
        list.push({ fn: 'tiesMergeOfDifferences', args: [rows, K, n, stride, base, awd ? delta : 0, thresholdsOf(item.name), weights, config.parameters.normalize ? 1 : 0, m] });
      } else {
        // DARE: the rows become τ' in place.
        list.push({ fn: 'subtractFromRows', args: [rows, K, n, stride, base] });
        if (awd) list.push({ fn: 'subtractFromRows', args: [rows, K, n, stride, delta] });
        for (let i = 0; i < K; i++) {
          const [k0, k1, k2] = dareRoundKeys({ seed: config.random_seed, model: i, tensor: item.name });
          const keepBelow = keepBelowOf(plan.densities[i]!);
          const keepAll = keepBelow >= 4294967296 ? 1 : 0;
          list.push({ fn: 'dareRescale', args: [rows + i * stride, n, item.start, k0, k1, k2, keepAll ? 0 : keepBelow, keepAll, plan.densities[i]!] });
        }
        if (method === 'dare_linear') {
          // Σ w_i τ'_i as the weighted sum of differences from a zero row (x − 0 = x exactly).
          list.push({ fn: 'fill0', args: [delta, n * 4] }, { fn: 'weightedSumOfDifferences', args: [delta, rows, K, n, stride, weights, m, 0] });
        } else {
          list.push({ fn: 'tiesMerge', args: [rows, K, n, stride, weights, config.parameters.normalize ? 1 : 0, m] });
        }
      }
      list.push({ fn: 'addScaled', args: [out, base, m, n, scale] });
    }
    for (let b = 0; b * STATISTICS_BLOCK < n; b++) {
      const state = states + STATE_BYTES * b;
      list.push({ fn: 'statsInit', args: [state] }, { fn: 'statisticsLanes', args: [out + b * STATISTICS_BLOCK * 4, Math.min(STATISTICS_BLOCK, n - b * STATISTICS_BLOCK), state] });
    }
    if (method === 'task_arithmetic') list.push({ fn: 'countNonFiniteInto', args: [out, n, counts] });
    const dtype = directOutput.get(item.name);
    const size = dtype === 'BF16' ? 2 : 4;
    const target = dtype ? p.directTarget?.(item.name, item.start * size) : undefined;
    if (dtype && target) {
      if (dtype === 'BF16') list.push({ fn: 'encodeBf16', args: [out, out, n] });
      list.push({ fn: 'writeOut', args: [out, n * size, target.fd, target.position, counts + 4 * (K + 1)] });
      writtenAs.set(item, dtype);
    }
    return list;
  };

  const finish = async (item: ChunkItem, slot: number, c: InputChunk): Promise<FinishedChunk> => {
    const n = item.end - item.start;
    const { out, states, counts } = layout(slot);
    if (method === 'task_arithmetic') {
      if (new Int32Array(memory, counts, 1)[0]! > 0) pipeline.screen(item.name, c);
    } else if (new Int32Array(memory, counts, K + 1).some((x) => x > 0)) {
      // The rows are τ' now: read the inputs again to count their NaN/Inf (the pass then refuses or logs).
      await pipeline.reread(slot, item);
      pipeline.screen(item.name, c);
    }
    const blockSums = Array.from({ length: Math.ceil(n / STATISTICS_BLOCK) }, (_, b) => combineLanes(new Float64Array(memory, states + STATE_BYTES * b, 19)));
    // The write's result in the slot is this item's only when its program had a writeOut.
    const dtype = writtenAs.get(item);
    if (dtype && new Int32Array(memory, counts + 4 * (K + 1), 1)[0] === 1) return { blockSums, written: true };
    // Not written by the program: a row it encoded to bfloat16 goes raw, any other row as float32.
    return dtype === 'BF16' ? { blockSums, written: false, encoded: new Uint8Array(memory, out, n * 2) } : { blockSums, written: false, result: new Float32Array(memory, out, n) };
  };

  return { ops, finish };
}
