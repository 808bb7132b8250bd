/**
 * Turns a similarity report (the JSON of `awd-merge similarity --json`) into what the panel renders: flat
 * Float64Arrays, the drill-down rows at every useful name-prefix depth, and the source needed to rebuild it all
 * from the kept Gram matrices. Every number comes from the core (cosineFromGram, disentangledGram,
 * meanAbsOffDiagonal: the functions the CLI's report is made with), so the panel shows and exports the CLI's
 * values. Pure: no vscode, unit-tested.
 */
import { reportFromGrams, type SimilarityReport } from '../../core/analysis/analyze';
import { cosineFromGram, disentangledGram, meanAbsOffDiagonal } from '../../core/analysis/similarity';
import type { SimilarityFromGramsJobRequest } from '../../jobs/protocol';
import { modelLabels, type PanelAwdSettings, type SimilarityAwdView, type SimilarityRowLevel, type SimilaritySource, type SimilarityViewData } from '../../protocol/similarityMessages';

export { modelLabels };

/** Most grouping depths offered besides "one row per tensor". */
const MAX_PREFIX_LEVELS = 6;

/** The first `depth` dot-separated parts of a tensor name (the whole name when it has fewer). */
export function namePrefix(name: string, depth: number): string {
  const parts = name.split('.');
  return parts.length <= depth ? name : parts.slice(0, depth).join('.');
}

/** Row groups at one prefix depth: each distinct prefix with the indices of its tensors, in order of first appearance. */
export function groupByPrefix(names: readonly string[], depth: number): { name: string; members: number[] }[] {
  const groups = new Map<string, number[]>();
  names.forEach((n, i) => {
    const key = depth === 0 ? n : namePrefix(n, depth);
    const members = groups.get(key);
    if (members) members.push(i);
    else groups.set(key, [i]);
  });
  return [...groups].map(([name, members]) => ({ name, members }));
}

/** Prefix depths worth offering: those that give more than one row and fewer rows than tensors (distinct groupings only). */
export function usefulPrefixDepths(names: readonly string[]): number[] {
  const maxParts = names.reduce((m, n) => Math.max(m, n.split('.').length), 0);
  const depths: number[] = [];
  let lastCount = -1;
  for (let d = 1; d < maxParts && depths.length < MAX_PREFIX_LEVELS; d++) {
    const count = new Set(names.map((n) => namePrefix(n, d))).size;
    if (count > 1 && count < names.length && count !== lastCount) depths.push(d);
    lastCount = count;
  }
  return depths;
}

/** The K×K Gram of tensor t from the flat T×K×K array. */
function gramOf(grams: Float64Array, t: number, K: number): Float64Array {
  return grams.subarray(t * K * K, (t + 1) * K * K);
}

/** ‖τ_i‖ = sqrt(G_ii). */
function normsFromGram(gram: ArrayLike<number>, K: number): Float64Array {
  const out = new Float64Array(K);
  for (let i = 0; i < K; i++) out[i] = Math.sqrt(Math.max(0, gram[i * K + i] ?? 0));
  return out;
}

/** AWD's coefficients a_t per tensor (the model's for granularity `model`), from the report. */
function coefficientsPerTensor(report: SimilarityReport): Float64Array[] | undefined {
  const awd = report.awd;
  if (!awd) return undefined;
  return report.tensor_grams.map((g) => {
    const own = awd.per_tensor[g.name]?.coefficients;
    const a = awd.settings.granularity === 'tensor' ? own : awd.coefficients;
    return Float64Array.from(a ?? new Array<number>(report.models.length).fill(0));
  });
}

function buildLevel(depth: number, names: readonly string[], grams: Float64Array, after: Float64Array | undefined, K: number): SimilarityRowLevel {
  const groups = groupByPrefix(names, depth);
  const R = groups.length;
  const cos = new Float64Array(R * K * K);
  const norms = new Float64Array(R * K);
  const meanAbs = new Float64Array(R);
  const cosAfter = after ? new Float64Array(R * K * K) : undefined;
  const normsAfter = after ? new Float64Array(R * K) : undefined;
  const meanAbsAfter = after ? new Float64Array(R) : undefined;
  const sum = new Float64Array(K * K);
  const sumAfter = new Float64Array(K * K);
  groups.forEach((g, r) => {
    sum.fill(0);
    sumAfter.fill(0);
    for (const t of g.members) {
      const gt = gramOf(grams, t, K);
      for (let i = 0; i < K * K; i++) sum[i]! += gt[i]!;
      if (after) {
        const at = gramOf(after, t, K);
        for (let i = 0; i < K * K; i++) sumAfter[i]! += at[i]!;
      }
    }
    const c = cosineFromGram(sum, K);
    cos.set(c, r * K * K);
    norms.set(normsFromGram(sum, K), r * K);
    meanAbs[r] = meanAbsOffDiagonal(c, K);
    if (cosAfter && normsAfter && meanAbsAfter) {
      const ca = cosineFromGram(sumAfter, K);
      cosAfter.set(ca, r * K * K);
      normsAfter.set(normsFromGram(sumAfter, K), r * K);
      meanAbsAfter[r] = meanAbsOffDiagonal(ca, K);
    }
  });
  return {
    depth,
    names: groups.map((g) => g.name),
    tensorCounts: groups.map((g) => g.members.length),
    cos,
    norms,
    meanAbs,
    ...(cosAfter && normsAfter && meanAbsAfter ? { cosAfter, normsAfter, meanAbsAfter } : {}),
  };
}

function flat(rows: readonly (readonly number[])[]): Float64Array {
  return Float64Array.from(rows.flat());
}

/** The panel's view of a report. */
export function viewFromReport(report: SimilarityReport): SimilarityViewData {
  const K = report.models.length;
  const names = report.tensor_grams.map((g) => g.name);
  const grams = new Float64Array(names.length * K * K);
  report.tensor_grams.forEach((g, t) => grams.set(g.gram, t * K * K));
  const coefficients = coefficientsPerTensor(report);
  let after: Float64Array | undefined;
  if (coefficients) {
    after = new Float64Array(grams.length);
    coefficients.forEach((a, t) => after!.set(disentangledGram(gramOf(grams, t, K), a, K), t * K * K));
  }
  const levels = [0, ...usefulPrefixDepths(names)].map((d) => buildLevel(d, names, grams, after, K));

  let awd: SimilarityAwdView | undefined;
  if (report.awd && after) {
    const a = report.awd;
    const totalAfter = new Float64Array(K * K);
    for (let t = 0; t < names.length; t++) {
      const at = gramOf(after, t, K);
      for (let i = 0; i < K * K; i++) totalAfter[i]! += at[i]!;
    }
    awd = {
      settings: { ...a.settings },
      cosAfter: flat(a.cos_after),
      normsAfter: normsFromGram(totalAfter, K),
      meanAbsBefore: a.mean_abs_cos_before,
      meanAbsAfter: a.mean_abs_cos_after,
      deltaNorm: a.delta_norm,
      deltaNormRelative: a.delta_norm_relative,
      normRatio: Float64Array.from(a.norm_ratio.map((r) => (r === null ? NaN : r))),
      ...(a.coefficients ? { coefficients: Float64Array.from(a.coefficients) } : {}),
      ...(a.effective_ta_coefficients ? { effectiveTaCoefficients: Float64Array.from(a.effective_ta_coefficients) } : {}),
      loss: Float64Array.from(a.loss),
      lossOrthogonality: Float64Array.from(a.loss_orthogonality),
      lossDeltaNorm: Float64Array.from(a.loss_delta_norm),
    };
  }

  const labels = modelLabels(report.models);
  return {
    labels,
    modelPaths: [...report.models],
    basePath: report.base,
    baseLabel: modelLabels([report.base])[0] ?? report.base,
    tensorCount: report.tensor_count,
    elements: report.elements,
    seconds: report.seconds,
    cos: flat(report.cosine),
    norms: Float64Array.from(report.task_vector_norms),
    meanAbs: report.mean_abs_cos,
    ...(awd ? { awd } : {}),
    levels,
    source: {
      base: report.base,
      models: [...report.models],
      ...(report.awd ? { awd: { ...report.awd.settings } } : {}),
      tensorNames: names,
      tensorElements: report.tensor_grams.map((g) => g.elements),
      grams,
      seconds: report.seconds,
    },
  };
}

/** The worker job that rebuilds the report from a kept source (no model is read). `awd`: other settings, null = without AWD, omitted = the source's. */
export function fromGramsRequest(source: SimilaritySource, awdSettings?: PanelAwdSettings | null): SimilarityFromGramsJobRequest {
  const awd = awdSettings === undefined ? source.awd : (awdSettings ?? undefined);
  return {
    kind: 'similarityFromGrams',
    base: source.base,
    models: [...source.models],
    tensors: source.tensorNames.map((name, t) => ({ name, elements: source.tensorElements[t] ?? 0 })),
    grams: source.grams,
    ...(awd ? { awd } : {}),
    perTensor: true,
    seconds: source.seconds,
  };
}

/** The same report in this thread (what the worker computes for `fromGramsRequest`): for tests and small inputs. */
export function reportFromSource(source: SimilaritySource, awdSettings?: PanelAwdSettings | null): SimilarityReport {
  const request = fromGramsRequest(source, awdSettings);
  const K = request.models.length;
  const grams = request.tensors.map((t, i) => ({ name: t.name, elements: t.elements, gram: request.grams.slice(i * K * K, (i + 1) * K * K) }));
  return { ...reportFromGrams(request.models, request.base, grams, { ...(request.awd ? { awd: request.awd } : {}), perTensor: true }), seconds: source.seconds };
}
