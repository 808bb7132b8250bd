/**
 * The inspector's statistics job (runs in the worker): per requested tensor, mean / std / min / max / L2 norm and
 * NaN/Inf counts, and ‖θ − θ_base‖₂ when a base is given — streamed chunk by chunk under the memory budget with the
 * same accumulator and chunk reader as the merge's output pass, so the numbers agree with a merge record's.
 */
import { AwdError, CancelledError } from '../core/errors';
import { openCheckpoint } from '../core/formats/open';
import type { Checkpoint } from '../core/formats/types';
import { subtractInto } from '../core/kernels/combine';
import { DEFAULT_MEMORY_BUDGET_BYTES, TensorChunkReader, chunkElementsFor, chunkRanges } from '../core/merge/chunkReader';
import { TensorStatisticsAccumulator, type TensorStatistics } from '../core/merge/tensorStats';
import type { JobProgress } from './protocol';

/** Statistics of one tensor; `diff_norm` = ‖θ − θ_base‖₂ over the finite differences. */
export interface TensorStatsEntry extends Omit<TensorStatistics, 'elements'> {
  name: string;
  diff_norm?: number;
  /** Why `diff_norm` is missing although a base was given. */
  diff_problem?: string;
}

export interface TensorStatsJobRequest {
  kind: 'tensorStats';
  checkpoint: string;
  tensors: string[];
  /** Present ⇒ also ‖θ − θ_base‖₂ for tensors of equal shape in the base. */
  base?: string;
  chunkElements?: number;
  memoryBudgetBytes?: number;
}

export interface TensorStatsOptions {
  signal?: AbortSignal;
  onProgress?: (progress: JobProgress) => void;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Computes the statistics of `request.tensors` (in the order given). Unknown tensor names are an AwdError. */
export async function computeTensorStats(request: TensorStatsJobRequest, options: TensorStatsOptions = {}): Promise<TensorStatsEntry[]> {
  const checkpoint = await openCheckpoint(request.checkpoint);
  let base: Checkpoint | undefined;
  try {
    base = request.base !== undefined ? await openCheckpoint(request.base) : undefined;
    const infos = request.tensors.map((name) => {
      const info = checkpoint.tensor(name);
      if (!info) throw new AwdError('no such tensor', { file: checkpoint.path, tensor: name, fix: 'Reopen the inspector: the file may have changed' });
      return info;
    });
    const chunkElements = request.chunkElements ?? chunkElementsFor(2, request.memoryBudgetBytes ?? DEFAULT_MEMORY_BUDGET_BYTES);
    const withBase = new TensorChunkReader(base, [checkpoint], chunkElements);
    const alone = new TensorChunkReader(undefined, [checkpoint], chunkElements);
    const difference = new Float32Array(chunkElements);
    const bytesTotal = infos.reduce((s, t) => s + t.bytes, 0);
    let bytesDone = 0;
    const out: TensorStatsEntry[] = [];
    for (const info of infos) {
      const baseInfo = base?.tensor(info.name);
      const diffProblem =
        base === undefined ? undefined
        : !baseInfo ? 'not in the base model'
        : !sameShape(baseInfo.shape, info.shape) ? `shape [${baseInfo.shape.join(', ')}] in the base model`
        : undefined;
      const compare = base !== undefined && diffProblem === undefined;
      const values = new TensorStatisticsAccumulator();
      const differences = compare ? new TensorStatisticsAccumulator() : undefined;
      for (const [start, end] of chunkRanges(info.elements, chunkElements)) {
        if (options.signal?.aborted) throw new CancelledError();
        const chunk = await (compare ? withBase : alone).read(info.name, start, end);
        const row = chunk.models[0]!;
        values.add(row);
        if (differences) {
          const d = difference.subarray(0, end - start);
          subtractInto(d, row, chunk.base);
          differences.add(d);
        }
        options.onProgress?.({ phase: 'statistics', tensor: info.name, bytesDone: bytesDone + ((end - start) / info.elements) * info.bytes, bytesTotal });
      }
      bytesDone += info.bytes;
      const s = values.result();
      out.push({
        name: info.name,
        mean: s.mean,
        std: s.std,
        min: s.min,
        max: s.max,
        l2_norm: s.l2_norm,
        nan_count: s.nan_count,
        inf_count: s.inf_count,
        ...(differences ? { diff_norm: differences.result().l2_norm } : {}),
        ...(diffProblem !== undefined ? { diff_problem: diffProblem } : {}),
      });
    }
    return out;
  } finally {
    await Promise.all([checkpoint.close(), base?.close()]);
  }
}
