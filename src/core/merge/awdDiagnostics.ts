/**
 * Runs the AWD solver on the Gram matrices of the statistics pass (one δ over the model, or one per tensor) and
 * assembles every diagnostic awd.md asks for, in JSON-ready form (plain arrays, snake_case keys as in the config).
 */
import { solveAwd, effectiveTaskArithmeticCoefficients, type AwdSolution } from './awd';
import { cosineFromGram, disentangledGram, meanAbsOffDiagonal } from '../analysis/similarity';
import { sumGrams, type TensorGram } from './gramPass';

/** The `awd` block of a resolved merge config. */
export interface AwdSettings {
  alpha: number;
  learning_rate: number;
  iterations: number;
  granularity: 'model' | 'tensor';
  norm: 'l2' | 'l2_squared';
}

/** Diagnostics of one tensor. With granularity `model` the coefficients are the model's; with `tensor` its own. */
export interface AwdTensorReport {
  cos_before: number[][];
  cos_after: number[][];
  mean_abs_cos_before: number;
  mean_abs_cos_after: number;
  /** ‖δ_t‖ (the part of δ on this tensor). */
  delta_norm: number;
  /** Only with granularity `tensor`: this tensor's own solution. */
  coefficients?: number[];
  effective_ta_coefficients?: number[];
  loss?: number[];
}

/** Every AWD diagnostic of awd.md, for the whole model (global) and per tensor. */
export interface AwdReport {
  settings: AwdSettings;
  mean_abs_cos_before: number;
  mean_abs_cos_after: number;
  cos_before: number[][];
  cos_after: number[][];
  /** ‖δ‖ over all selected tensors, and ‖δ‖ / mean_i ‖τ_i‖. */
  delta_norm: number;
  delta_norm_relative: number;
  /** ‖τ̂_i‖ / ‖τ_i‖ per model (null where τ_i = 0). */
  norm_ratio: (number | null)[];
  /** δ = Σ_k a_k τ_k (granularity `model`; with `tensor` see per_tensor). */
  coefficients?: number[];
  /** λ(w_k − (Σ_i w_i) a_k): task arithmetic with these per-model coefficients equals TA + AWD (granularity `model`). */
  effective_ta_coefficients?: number[];
  /** L per iterate (iterations + 1 entries, a⁰ = 0 first); with granularity `tensor`, summed over tensors. */
  loss: number[];
  loss_orthogonality: number[];
  /** ‖δ‖ per iterate (with `tensor`: sqrt of the summed squares). */
  loss_delta_norm: number[];
  per_tensor: Record<string, AwdTensorReport>;
}

/** The coefficients a_t to disentangle each tensor with (same order as `grams`), and the report. */
export interface AwdOutcome {
  coefficientsPerTensor: Float64Array[];
  report: AwdReport;
}

/** K×K row-major → nested arrays. */
export function matrixRows(m: ArrayLike<number>, K: number): number[][] {
  const rows: number[][] = [];
  for (let i = 0; i < K; i++) rows.push(Array.from({ length: K }, (_, j) => m[i * K + j]!));
  return rows;
}

/** aᵀ G a. */
function quadraticForm(gram: ArrayLike<number>, a: ArrayLike<number>, K: number): number {
  let s = 0;
  for (let i = 0; i < K; i++) for (let j = 0; j < K; j++) s += a[i]! * gram[i * K + j]! * a[j]!;
  return s;
}

/** Solves AWD at the configured granularity and reports; `weights` and `lambda` only feed the effective TA coefficients. */
export function runAwd(grams: readonly TensorGram[], K: number, settings: AwdSettings, weights: readonly number[], lambda: number): AwdOutcome {
  const opts = { alpha: settings.alpha, learningRate: settings.learning_rate, iterations: settings.iterations, norm: settings.norm };
  const globalBefore = sumGrams(grams, K);
  const perTensor: Record<string, AwdTensorReport> = {};
  const coefficientsPerTensor: Float64Array[] = [];
  const globalAfter = new Float64Array(K * K);
  let deltaNormSquared = 0;

  let global: AwdSolution | undefined;
  const tensorSolutions: AwdSolution[] = [];
  if (settings.granularity === 'model') global = solveAwd(globalBefore, K, opts);

  for (const g of grams) {
    const solution = global ?? solveAwd(g.gram, K, opts);
    if (!global) tensorSolutions.push(solution);
    const a = solution.coefficients;
    coefficientsPerTensor.push(a);
    const after = disentangledGram(g.gram, a, K);
    for (let i = 0; i < K * K; i++) globalAfter[i]! += after[i]!;
    const tensorDeltaSquared = Math.max(0, quadraticForm(g.gram, a, K));
    deltaNormSquared += tensorDeltaSquared;
    const cosBefore = cosineFromGram(g.gram, K);
    const cosAfter = cosineFromGram(after, K);
    perTensor[g.name] = {
      cos_before: matrixRows(cosBefore, K),
      cos_after: matrixRows(cosAfter, K),
      mean_abs_cos_before: meanAbsOffDiagonal(cosBefore, K),
      mean_abs_cos_after: meanAbsOffDiagonal(cosAfter, K),
      delta_norm: Math.sqrt(tensorDeltaSquared),
      ...(global
        ? {}
        : {
            coefficients: Array.from(a),
            effective_ta_coefficients: Array.from(effectiveTaskArithmeticCoefficients(a, weights, lambda)),
            loss: solution.loss.map((l) => l.total),
          }),
    };
  }

  const cosBefore = cosineFromGram(globalBefore, K);
  const cosAfter = cosineFromGram(globalAfter, K);
  let meanTaskNorm = 0;
  const normRatio: (number | null)[] = [];
  for (let i = 0; i < K; i++) {
    const before = Math.sqrt(Math.max(0, globalBefore[i * K + i]!));
    const after = Math.sqrt(Math.max(0, globalAfter[i * K + i]!));
    meanTaskNorm += before / K;
    normRatio.push(before > 0 ? after / before : null);
  }
  const deltaNorm = Math.sqrt(deltaNormSquared);

  let loss: number[], lossOrthogonality: number[], lossDeltaNorm: number[];
  if (global) {
    loss = global.loss.map((l) => l.total);
    lossOrthogonality = global.loss.map((l) => l.orthogonality);
    lossDeltaNorm = global.loss.map((l) => l.deltaNorm);
  } else {
    const steps = settings.iterations + 1;
    loss = new Array<number>(steps).fill(0);
    lossOrthogonality = new Array<number>(steps).fill(0);
    const squares = new Array<number>(steps).fill(0);
    for (const s of tensorSolutions) {
      s.loss.forEach((l, n) => {
        loss[n]! += l.total;
        lossOrthogonality[n]! += l.orthogonality;
        squares[n]! += l.deltaNorm * l.deltaNorm;
      });
    }
    lossDeltaNorm = squares.map(Math.sqrt);
  }

  return {
    coefficientsPerTensor,
    report: {
      settings: { ...settings },
      mean_abs_cos_before: meanAbsOffDiagonal(cosBefore, K),
      mean_abs_cos_after: meanAbsOffDiagonal(cosAfter, K),
      cos_before: matrixRows(cosBefore, K),
      cos_after: matrixRows(cosAfter, K),
      delta_norm: deltaNorm,
      delta_norm_relative: meanTaskNorm > 0 ? deltaNorm / meanTaskNorm : 0,
      norm_ratio: normRatio,
      ...(global
        ? {
            coefficients: Array.from(global.coefficients),
            effective_ta_coefficients: Array.from(effectiveTaskArithmeticCoefficients(global.coefficients, weights, lambda)),
          }
        : {}),
      loss,
      loss_orthogonality: lossOrthogonality,
      loss_delta_norm: lossDeltaNorm,
      per_tensor: perTensor,
    },
  };
}
