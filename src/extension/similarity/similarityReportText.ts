/**
 * The similarity report as text for the "AWD Merge" output channel: the K×K cosine matrix of the task vectors,
 * the norms, and AWD's diagnostics when it ran. Pure, so the layout is unit-tested.
 */
import type { SimilarityReport } from '../../core/analysis/analyze';

/** A number in a fixed width: 3 decimals for cosines, 4 significant digits otherwise. */
function cell(x: number | null | undefined, width: number, decimals?: number): string {
  const text = x === null || x === undefined ? '—' : decimals !== undefined ? x.toFixed(decimals) : formatValue(x);
  return text.padStart(width);
}

/** 4 significant digits, exponent form for very large or small magnitudes. */
export function formatValue(x: number): string {
  if (x === 0 || !Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  return a >= 1e-3 && a < 1e6 ? String(Number(x.toPrecision(4))) : x.toExponential(3);
}

/** A K×K matrix with numbered rows and columns ([1]…[K]); the legend maps numbers to models. */
export function matrixLines(matrix: readonly (readonly number[])[], indent = '  '): string[] {
  const K = matrix.length;
  const width = 7;
  const header = indent + ' '.repeat(5) + Array.from({ length: K }, (_, j) => `[${j + 1}]`.padStart(width)).join('');
  const rows = matrix.map((row, i) => indent + `[${i + 1}]`.padEnd(5) + row.map((v) => cell(v, width, 3)).join(''));
  return [header, ...rows];
}

/** Every line of the report, ready for the log. `label` turns a path into what the user calls it. */
export function similarityReportLines(report: SimilarityReport, label: (path: string) => string): string[] {
  const K = report.models.length;
  const lines: string[] = [
    `Task vector similarity: ${K} models against base ${label(report.base)} — ${report.tensor_count} tensors, ` +
      `${report.elements} elements, ${report.seconds.toFixed(2)} s`,
    ...report.models.map((m, i) => `  [${i + 1}] ${label(m)}   ‖τ‖ = ${formatValue(report.task_vector_norms[i] ?? NaN)}`),
    'Cosine similarity of the task vectors τ_i = θ_i − θ_base:',
    ...matrixLines(report.cosine),
    `Mean |cos| over pairs: ${report.mean_abs_cos.toFixed(4)}`,
  ];
  const awd = report.awd;
  if (awd) {
    const s = awd.settings;
    lines.push(
      `AWD (α = ${s.alpha}, learning rate ${s.learning_rate}, ${s.iterations} iterations, granularity ${s.granularity}, norm ${s.norm}):`,
      `  mean |cos| ${awd.mean_abs_cos_before.toFixed(4)} → ${awd.mean_abs_cos_after.toFixed(4)}`,
      '  cosine after disentangling:',
      ...matrixLines(awd.cos_after, '    '),
      `  ‖δ‖ = ${formatValue(awd.delta_norm)} (${formatValue(awd.delta_norm_relative)} of the mean ‖τ_i‖)`,
      `  ‖τ̂_i‖ / ‖τ_i‖: ${awd.norm_ratio.map((r) => (r === null ? '—' : r.toFixed(4))).join(', ')}`,
    );
    if (awd.coefficients) lines.push(`  coefficients a (δ = Σ a_k τ_k): ${awd.coefficients.map(formatValue).join(', ')}`);
    if (awd.effective_ta_coefficients) {
      lines.push(`  equivalent task-arithmetic coefficients (w = 1, λ = 1): ${awd.effective_ta_coefficients.map(formatValue).join(', ')}`);
    }
    const first = awd.loss[0];
    const last = awd.loss[awd.loss.length - 1];
    if (first !== undefined && last !== undefined) lines.push(`  loss ${formatValue(first)} → ${formatValue(last)} over ${awd.loss.length - 1} steps`);
  }
  return lines;
}
