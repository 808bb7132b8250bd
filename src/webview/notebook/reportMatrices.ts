/**
 * Reads what the notebook renderer draws from a similarity report as `awd-merge similarity --json` prints it
 * (dropped into a cell output under `application/vnd.awd.similarity+json`): model names, the K×K cosines before
 * and, when AWD ran, after, with the norms for the hover, and the most interfering tensors when the report has
 * per-tensor matrices. Checks the shape before anything is drawn; pure, unit-tested.
 */
import { modelLabels } from '../../protocol/similarityMessages';
import type { MatrixInput } from '../similarity/heatmapFigure';

export const SIMILARITY_MIME = 'application/vnd.awd.similarity+json';

/** Tensors listed under the heatmap (the most interfering ones). */
export const TOP_TENSORS = 10;

export interface NotebookSimilarity {
  labels: string[];
  base: string;
  tensorCount: number;
  elements: number;
  meanAbsBefore: number;
  meanAbsAfter?: number;
  matrices: MatrixInput[];
  /** Tensors by mean |cos| over pairs, largest first (at most TOP_TENSORS). */
  topTensors: { name: string; meanAbs: number; meanAbsAfter?: number }[];
}

function isMatrix(x: unknown, K: number): x is number[][] {
  return Array.isArray(x) && x.length === K && x.every((r) => Array.isArray(r) && r.length === K && r.every((v) => typeof v === 'number'));
}

function isNumbers(x: unknown, K: number): x is number[] {
  return Array.isArray(x) && x.length === K && x.every((v) => typeof v === 'number');
}

/** Mean |cos_ij| over pairs i < j of a nested K×K matrix. */
function meanAbsOverPairs(m: readonly (readonly number[])[]): number {
  const K = m.length;
  let s = 0;
  for (let i = 0; i < K; i++) for (let j = i + 1; j < K; j++) s += Math.abs(m[i]![j]!);
  return K > 1 ? s / ((K * (K - 1)) / 2) : 0;
}

/** What to draw, or a sentence saying what is wrong with the output. */
export function notebookSimilarity(json: unknown): NotebookSimilarity | string {
  if (typeof json !== 'object' || json === null) return 'The output is not a similarity report (expected the JSON object of `awd-merge similarity --json`).';
  const r = json as Record<string, unknown>;
  const models = r['models'];
  if (!Array.isArray(models) || models.length < 2 || !models.every((m) => typeof m === 'string')) return 'The report has no "models" list of two or more paths.';
  const K = models.length;
  if (!isMatrix(r['cosine'], K)) return `The report's "cosine" is not a ${K}×${K} matrix.`;
  const norms = isNumbers(r['task_vector_norms'], K) ? r['task_vector_norms'] : new Array<number>(K).fill(NaN);
  const cosine = r['cosine'];
  const matrices: MatrixInput[] = [{ title: 'before AWD', values: cosine.flat(), norms }];
  const awd = r['awd'] as Record<string, unknown> | undefined;
  let meanAbsAfter: number | undefined;
  let perTensorAfter: Record<string, { mean_abs_cos_after?: unknown }> | undefined;
  if (awd && typeof awd === 'object') {
    if (!isMatrix(awd['cos_after'], K)) return `The report's "awd.cos_after" is not a ${K}×${K} matrix.`;
    const ratio = Array.isArray(awd['norm_ratio']) ? (awd['norm_ratio'] as unknown[]) : [];
    const normsAfter = norms.map((n, k) => (typeof ratio[k] === 'number' ? n * (ratio[k] as number) : NaN));
    matrices.push({ title: 'after AWD', values: awd['cos_after'].flat(), norms: normsAfter });
    meanAbsAfter = typeof awd['mean_abs_cos_after'] === 'number' ? awd['mean_abs_cos_after'] : meanAbsOverPairs(awd['cos_after']);
    if (typeof awd['per_tensor'] === 'object' && awd['per_tensor'] !== null) perTensorAfter = awd['per_tensor'] as typeof perTensorAfter;
  }
  const topTensors: NotebookSimilarity['topTensors'] = [];
  const perTensor = r['per_tensor'];
  if (typeof perTensor === 'object' && perTensor !== null) {
    for (const [name, m] of Object.entries(perTensor as Record<string, unknown>)) {
      if (!isMatrix(m, K)) continue;
      const after = perTensorAfter?.[name]?.mean_abs_cos_after;
      topTensors.push({ name, meanAbs: meanAbsOverPairs(m), ...(typeof after === 'number' ? { meanAbsAfter: after } : {}) });
    }
    topTensors.sort((a, b) => b.meanAbs - a.meanAbs);
    topTensors.splice(TOP_TENSORS);
  }
  return {
    labels: modelLabels(models as string[]),
    base: typeof r['base'] === 'string' ? r['base'] : '',
    tensorCount: typeof r['tensor_count'] === 'number' ? r['tensor_count'] : 0,
    elements: typeof r['elements'] === 'number' ? r['elements'] : 0,
    meanAbsBefore: typeof r['mean_abs_cos'] === 'number' ? r['mean_abs_cos'] : meanAbsOverPairs(cosine),
    ...(meanAbsAfter !== undefined ? { meanAbsAfter } : {}),
    matrices,
    topTensors,
  };
}
