/**
 * The similarity analysis: one streaming pass over the base and K models builds the Gram matrix of the task
 * vectors per tensor (the merge's statistics pass), from which come the pairwise cosines, globally and per
 * tensor, and, when asked, AWD's solution and diagnostics. The report is plain JSON (the CLI prints it as is, the
 * extension and notebooks render it) and keeps every per-tensor Gram matrix, so a UI can re-run AWD with other
 * settings without reading the models again (see `reanalyzeAwd`).
 */
import type { Checkpoint } from '../formats/types';
import { cosineFromGram, meanAbsOffDiagonal } from './similarity';
import { accumulateTensorGrams, sumGrams, type TensorGram } from '../merge/gramPass';
import { runAwd, matrixRows, type AwdReport, type AwdSettings } from '../merge/awdDiagnostics';
import { CACHE_CHUNK_ELEMENTS, chunkElementsFor, DEFAULT_MEMORY_BUDGET_BYTES } from '../merge/chunkReader';
import type { ProgressListener } from '../merge/progress';

/** What the analysis reads: the opened inputs and the selected tensors (as `planSimilarity` gives them). */
export interface SimilarityInputs {
  base: Checkpoint;
  models: readonly Checkpoint[];
  tensors: readonly { name: string; elements: number; action: 'merge' | 'copy' }[];
}

export interface SimilarityOptions {
  /** Present ⇒ solve AWD and report its diagnostics. */
  awd?: AwdSettings;
  /** Put the per-tensor cosine matrices (and AWD's per-tensor diagnostics) in the report. */
  perTensor?: boolean;
  chunkElements?: number;
  memoryBudgetBytes?: number;
  signal?: AbortSignal;
  onProgress?: ProgressListener;
}

/** One tensor's Gram matrix G_ij = ⟨τ_i, τ_j⟩ (K×K, row-major). */
export interface TensorGramReport {
  name: string;
  elements: number;
  gram: number[];
}

/** The analysis result, shaped as `awd-merge similarity --json` prints it. */
export interface SimilarityReport {
  /** Model paths in the order of the matrices' rows. */
  models: string[];
  base: string;
  /** Selected tensors and their total element count. */
  tensor_count: number;
  elements: number;
  /** K×K cosines of the task vectors over all selected tensors. */
  cosine: number[][];
  mean_abs_cos: number;
  /** ‖τ_i‖ per model. */
  task_vector_norms: number[];
  /** Per tensor K×K cosines (only when asked). */
  per_tensor?: Record<string, number[][]>;
  /** The model-level Gram matrix and the per-tensor ones (always kept, for re-analysis without a re-read). */
  gram: number[];
  tensor_grams: TensorGramReport[];
  /** With AWD: cos_after, delta_norm, coefficients, effective_ta_coefficients (w = 1, λ = 1), loss, … (awd.md). */
  awd?: AwdReport;
  seconds: number;
}

/** Runs the statistics pass over the selected tensors and reports. */
export async function analyzeSimilarity(inputs: SimilarityInputs, opts: SimilarityOptions = {}): Promise<SimilarityReport> {
  const t0 = performance.now();
  const K = inputs.models.length;
  const selected = inputs.tensors.filter((t) => t.action === 'merge');
  // Cache-sized chunks: the Gram sums run in blocks aligned to the element index, the same bits whatever the chunks.
  const chunkElements = opts.chunkElements ?? Math.min(CACHE_CHUNK_ELEMENTS, chunkElementsFor(K, opts.memoryBudgetBytes ?? DEFAULT_MEMORY_BUDGET_BYTES));
  const grams = await accumulateTensorGrams(inputs.base, inputs.models, selected, {
    chunkElements,
    signal: opts.signal,
    onProgress: opts.onProgress,
  });
  const report = reportFromGrams(
    inputs.models.map((m) => m.path),
    inputs.base.path,
    grams,
    opts,
  );
  report.seconds = (performance.now() - t0) / 1000;
  return report;
}

/** The report from Gram matrices alone: also what a UI calls to re-run AWD with other settings on a kept report. */
export function reportFromGrams(
  models: string[],
  base: string,
  grams: readonly TensorGram[],
  opts: Pick<SimilarityOptions, 'awd' | 'perTensor'>,
): SimilarityReport {
  const K = models.length;
  const total = sumGrams(grams, K);
  const cos = cosineFromGram(total, K);
  const report: SimilarityReport = {
    models,
    base,
    tensor_count: grams.length,
    elements: grams.reduce((s, g) => s + g.elements, 0),
    cosine: matrixRows(cos, K),
    mean_abs_cos: meanAbsOffDiagonal(cos, K),
    task_vector_norms: Array.from({ length: K }, (_, i) => Math.sqrt(Math.max(0, total[i * K + i]!))),
    gram: Array.from(total),
    tensor_grams: grams.map((g) => ({ name: g.name, elements: g.elements, gram: Array.from(g.gram) })),
    seconds: 0,
  };
  if (opts.perTensor) {
    report.per_tensor = {};
    for (const g of grams) report.per_tensor[g.name] = matrixRows(cosineFromGram(g.gram, K), K);
  }
  if (opts.awd) {
    const { report: awd } = runAwd(grams, K, opts.awd, new Array<number>(K).fill(1), 1);
    if (!opts.perTensor) awd.per_tensor = {};
    report.awd = awd;
  }
  return report;
}

/** Re-runs AWD (or drops it) on a report's kept Gram matrices: no model is read again. */
export function reanalyzeAwd(report: SimilarityReport, awd: AwdSettings | undefined, perTensor = report.per_tensor !== undefined): SimilarityReport {
  const grams = report.tensor_grams.map((g) => ({ name: g.name, elements: g.elements, gram: Float64Array.from(g.gram) }));
  return { ...reportFromGrams(report.models, report.base, grams, { awd, perTensor }), seconds: report.seconds };
}
