/**
 * AWD (Adaptive Weight Disentanglement, awd.md): find the redundant vector δ that makes the task vectors
 * τ_i − δ as orthogonal as possible, by plain gradient descent from δ = 0 run exactly in the K-dimensional
 * coordinates δ = Σ_k a_k τ_k, so that everything comes from the K×K Gram matrix G = T Tᵀ.
 */
import { cosineFromGram, disentangledGram, meanAbsOffDiagonal } from '../analysis/similarity';
import { wasmKernels } from '../kernels/wasm';

/** The AWD hyper-parameters (awd.md defaults: alpha 0.1, learningRate 0.01, iterations 300, norm 'l2'). */
export interface AwdOptions {
  /** Weight α of the norm penalty L_R. */
  alpha: number;
  /** Step size β of plain gradient descent. */
  learningRate: number;
  /** Number of gradient steps. */
  iterations: number;
  /** L_R(δ) = ‖δ‖₂ ('l2') or ‖δ‖₂² ('l2_squared'). */
  norm: 'l2' | 'l2_squared';
}

/** The objective at one iterate: total = L_O + α·L_R, orthogonality = L_O, deltaNorm = ‖δ‖₂. */
export interface AwdLoss {
  total: number;
  orthogonality: number;
  deltaNorm: number;
}

/** The solution and every diagnostic awd.md asks for. */
export interface AwdSolution {
  /** a, with δ = Σ_k a_k τ_k. */
  coefficients: Float64Array;
  /** One entry per iterate: iterations + 1 entries, the first at a⁰ = 0. */
  loss: AwdLoss[];
  /** K×K cosines of τ_i (row-major). */
  cosBefore: Float64Array;
  /** K×K cosines of τ̂_i = τ_i − δ (row-major). */
  cosAfter: Float64Array;
  meanAbsCosBefore: number;
  meanAbsCosAfter: number;
  /** ‖δ‖₂. */
  deltaNorm: number;
  /** ‖δ‖₂ / mean_i ‖τ_i‖₂ (0 when every τ_i is 0). */
  deltaNormRelative: number;
  /** ‖τ̂_i‖ / ‖τ_i‖ per model; where ‖τ_i‖ = 0: 1 when ‖τ̂_i‖ = 0 too, else Infinity (never NaN). */
  normRatio: Float64Array;
}

/** The awd.md defaults. */
export const DEFAULT_AWD_OPTIONS: Readonly<AwdOptions> = Object.freeze({
  alpha: 0.1,
  learningRate: 0.01,
  iterations: 300,
  norm: 'l2',
});

/**
 * A squared norm below ZERO_NORM_REL² · max_k ‖τ_k‖² · (1 + ‖a‖₁)² is rounding noise of the Gram arithmetic
 * (each entry of M G Mᵀ is a sum of terms of that size), so such a vector counts as zero: a pair with it
 * contributes nothing, and at δ ≈ 0 the subgradient 0 of ‖δ‖ is used.
 */
const ZERO_NORM_REL = 1e-7;

/** Loss and δ-space gradient (coefficients g over the τ basis, ∇L = Σ_k g_k τ_k) at a. */
export function awdLossAndGradient(
  gram: ArrayLike<number>,
  K: number,
  a: ArrayLike<number>,
  opts: Pick<AwdOptions, 'alpha' | 'norm'>,
): { loss: AwdLoss; gradient: Float64Array } {
  const gu = disentangledGram(gram, a, K);
  let scale = 0;
  let aL1 = 0;
  for (let k = 0; k < K; k++) {
    scale = Math.max(scale, gram[k * K + k] ?? 0);
    aL1 += Math.abs(a[k] ?? 0);
  }
  const zero2 = ZERO_NORM_REL * ZERO_NORM_REL * scale * (1 + aL1) * (1 + aL1);

  const n = new Float64Array(K);
  for (let i = 0; i < K; i++) {
    const n2 = gu[i * K + i] ?? 0;
    n[i] = n2 > zero2 ? Math.sqrt(n2) : 0;
  }

  // b: gradient of L_O as coefficients over the rows u_i = τ_i − δ.
  const P = (K * (K - 1)) / 2;
  const b = new Float64Array(K);
  let lo = 0;
  for (let i = 0; i < K; i++) {
    const ni = n[i] ?? 0;
    if (ni === 0) continue;
    for (let j = i + 1; j < K; j++) {
      const nj = n[j] ?? 0;
      if (nj === 0) continue;
      const c = (gu[i * K + j] ?? 0) / (ni * nj);
      lo += Math.abs(c);
      // ∂|cos(u_i,u_j)|/∂δ = s·[−(u_i + u_j)/(n_i n_j) + c (u_i/n_i² + u_j/n_j²)]
      const s = Math.sign(c) / P;
      const cross = -1 / (ni * nj);
      b[i] = (b[i] ?? 0) + s * (cross + c / (ni * ni));
      b[j] = (b[j] ?? 0) + s * (cross + c / (nj * nj));
    }
  }
  if (P > 0) lo /= P;

  // g = Mᵀ b with M = I − 1aᵀ: g_k = b_k − a_k Σ_i b_i.
  let sumB = 0;
  for (let i = 0; i < K; i++) sumB += b[i] ?? 0;
  const g = new Float64Array(K);
  for (let k = 0; k < K; k++) g[k] = (b[k] ?? 0) - (a[k] ?? 0) * sumB;

  let aGa = 0;
  for (let i = 0; i < K; i++) {
    let s = 0;
    for (let k = 0; k < K; k++) s += (gram[i * K + k] ?? 0) * (a[k] ?? 0);
    aGa += (a[i] ?? 0) * s;
  }
  const deltaNorm2 = aGa > zero2 ? aGa : 0;
  const deltaNorm = Math.sqrt(deltaNorm2);

  let penalty: number;
  if (opts.norm === 'l2') {
    penalty = deltaNorm;
    // ∇‖δ‖ = δ/‖δ‖ ⇒ coefficients a/‖δ‖; subgradient 0 at δ = 0.
    if (deltaNorm > 0) for (let k = 0; k < K; k++) g[k] = (g[k] ?? 0) + (opts.alpha * (a[k] ?? 0)) / deltaNorm;
  } else {
    penalty = deltaNorm2;
    // ∇‖δ‖² = 2δ ⇒ coefficients 2a.
    for (let k = 0; k < K; k++) g[k] = (g[k] ?? 0) + 2 * opts.alpha * (a[k] ?? 0);
  }
  return { loss: { total: lo + opts.alpha * penalty, orthogonality: lo, deltaNorm }, gradient: g };
}

/**
 * Plain GD a ← a − β g from a⁰ = 0 in δ-space coordinates (awd.md), in JS: the readable reference of the WASM
 * solver (kernels/assembly/kernels.ts awdSolve), which gives the same bits.
 */
export function awdDescentJs(gram: ArrayLike<number>, K: number, opts: AwdOptions): { coefficients: Float64Array; loss: AwdLoss[] } {
  const a = new Float64Array(K);
  const loss: AwdLoss[] = [];
  for (let it = 0; it <= opts.iterations; it++) {
    const step = awdLossAndGradient(gram, K, a, opts);
    loss.push(step.loss);
    if (it === opts.iterations) break;
    for (let k = 0; k < K; k++) a[k] = (a[k] ?? 0) - opts.learningRate * (step.gradient[k] ?? 0);
  }
  return { coefficients: a, loss };
}

/** The descent in WASM where it runs (the same bits as awdDescentJs), else in JS. */
export function awdDescent(gram: Float64Array, K: number, opts: AwdOptions): { coefficients: Float64Array; loss: AwdLoss[] } {
  const fast = wasmKernels()?.awdSolve(gram, K, opts.alpha, opts.learningRate, opts.iterations, opts.norm === 'l2_squared');
  if (!fast) return awdDescentJs(gram, K, opts);
  const loss: AwdLoss[] = new Array<AwdLoss>(opts.iterations + 1);
  for (let it = 0; it <= opts.iterations; it++) {
    loss[it] = { total: fast.loss[3 * it]!, orthogonality: fast.loss[3 * it + 1]!, deltaNorm: fast.loss[3 * it + 2]! };
  }
  return { coefficients: fast.coefficients, loss };
}

/** Plain GD a ← a − β g from a⁰ = 0 in δ-space coordinates (awd.md), then the diagnostics of the result. */
export function solveAwd(gram: Float64Array, K: number, opts: AwdOptions): AwdSolution {
  if (!Number.isInteger(K) || K < 1 || gram.length !== K * K) {
    throw new RangeError(`solveAwd: gram has ${gram.length} entries, expected K×K with K = ${K}`);
  }
  if (!Number.isInteger(opts.iterations) || opts.iterations < 0) {
    throw new RangeError(`solveAwd: iterations must be a non-negative integer, got ${opts.iterations}`);
  }
  if (!Number.isFinite(opts.alpha) || !Number.isFinite(opts.learningRate)) {
    throw new RangeError('solveAwd: alpha and learningRate must be finite numbers');
  }
  const { coefficients: a, loss } = awdDescent(gram, K, opts);

  const after = disentangledGram(gram, a, K);
  const cosBefore = cosineFromGram(gram, K);
  const cosAfter = cosineFromGram(after, K);
  const deltaNorm = loss[loss.length - 1]?.deltaNorm ?? 0;
  let meanNorm = 0;
  const normRatio = new Float64Array(K);
  for (let i = 0; i < K; i++) {
    const ni = Math.sqrt(Math.max(0, gram[i * K + i] ?? 0));
    meanNorm += ni / K;
    const hat = Math.sqrt(Math.max(0, after[i * K + i] ?? 0));
    normRatio[i] = ni > 0 ? hat / ni : hat > 0 ? Infinity : 1;
  }
  return {
    coefficients: a,
    loss,
    cosBefore,
    cosAfter,
    meanAbsCosBefore: meanAbsOffDiagonal(cosBefore, K),
    meanAbsCosAfter: meanAbsOffDiagonal(cosAfter, K),
    deltaNorm,
    deltaNormRelative: meanNorm > 0 ? deltaNorm / meanNorm : 0,
    normRatio,
  };
}

/**
 * Task arithmetic on τ̂_i = τ_i − δ as plain task arithmetic on τ: θ_0 + λ Σ_i w_i τ̂_i = θ_0 + Σ_k e_k τ_k with
 * e_k = λ (w_k − (Σ_i w_i) a_k).
 */
export function effectiveTaskArithmeticCoefficients(
  a: ArrayLike<number>,
  weights: ArrayLike<number>,
  lambda: number,
): Float64Array {
  if (a.length !== weights.length) {
    throw new RangeError(`effectiveTaskArithmeticCoefficients: ${a.length} coefficients but ${weights.length} weights`);
  }
  let sumW = 0;
  for (let i = 0; i < weights.length; i++) sumW += weights[i] ?? 0;
  const out = new Float64Array(a.length);
  for (let k = 0; k < a.length; k++) out[k] = lambda * ((weights[k] ?? 0) - sumW * (a[k] ?? 0));
  return out;
}
