// AWD solver (awd.md): the K-dimensional Gram-space GD against a full-dimensional plain-GD implementation of the
// same objective, hand-checkable small cases, the effective task-arithmetic coefficient identity, and the WASM
// solver against the JS descent, bit for bit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { solveAwd, awdDescentJs, effectiveTaskArithmeticCoefficients, type AwdOptions } from '../../../src/core/merge/awd';
import { wasmKernels } from '../../../src/core/kernels/wasm';
import { accumulateGramJs } from '../../../src/core/kernels/gramJs';
import { disentangledGram } from '../../../src/core/analysis/similarity';

/** Deterministic uniform [0,1) generator for test data (mulberry32). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
function gaussian(r: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
}

/** K task vectors of D dims (float32 values), a shared component of strength `shared` so cosines are not ~0. */
function makeTaus(K: number, D: number, seed: number, shared: number): Float32Array[] {
  const r = rng(seed);
  const common = Array.from({ length: D }, () => gaussian(r));
  return Array.from({ length: K }, (_, i) => {
    const t = new Float32Array(D);
    const strength = shared * (0.5 + (i % 3) / 2);
    for (let e = 0; e < D; e++) t[e] = (strength * (common[e] as number) + gaussian(r)) / Math.sqrt(D);
    return t;
  });
}

function gramOf(rows: readonly Float32Array[]): Float64Array {
  const g = new Float64Array(rows.length * rows.length);
  accumulateGramJs(rows, g);
  return g;
}

function dot(x: Float64Array, y: Float64Array): number {
  let s = 0;
  for (let e = 0; e < x.length; e++) s += (x[e] as number) * (y[e] as number);
  return s;
}

/** The objective of awd.md optimised directly over δ ∈ R^D by plain GD (the reference). */
function fullDimensionalAwd(taus: readonly Float32Array[], opts: AwdOptions) {
  const K = taus.length;
  const D = taus[0]!.length;
  const P = (K * (K - 1)) / 2;
  const delta = new Float64Array(D);
  const u = taus.map(() => new Float64Array(D));
  const add = (x: Float64Array, e: number, v: number) => {
    x[e] = x[e]! + v;
  };
  const losses: { total: number; orthogonality: number; deltaNorm: number }[] = [];
  for (let it = 0; it <= opts.iterations; it++) {
    for (let i = 0; i < K; i++) for (let e = 0; e < D; e++) u[i]![e] = taus[i]![e]! - delta[e]!;
    const n = u.map((ui) => Math.sqrt(dot(ui, ui)));
    const grad = new Float64Array(D);
    let lo = 0;
    for (let i = 0; i < K; i++) {
      for (let j = i + 1; j < K; j++) {
        const ni = n[i]!, nj = n[j]!;
        if (ni === 0 || nj === 0) continue;
        const c = dot(u[i]!, u[j]!) / (ni * nj);
        lo += Math.abs(c) / P;
        const s = Math.sign(c) / P;
        for (let e = 0; e < D; e++) {
          const ui = u[i]![e]!, uj = u[j]![e]!;
          add(grad, e, s * (-(ui + uj) / (ni * nj) + c * (ui / (ni * ni) + uj / (nj * nj))));
        }
      }
    }
    const dn = Math.sqrt(dot(delta, delta));
    const penalty = opts.norm === 'l2' ? dn : dn * dn;
    losses.push({ total: lo + opts.alpha * penalty, orthogonality: lo, deltaNorm: dn });
    if (it === opts.iterations) break;
    for (let e = 0; e < D; e++) {
      if (opts.norm === 'l2') add(grad, e, dn > 0 ? (opts.alpha * delta[e]!) / dn : 0);
      else add(grad, e, 2 * opts.alpha * delta[e]!);
      add(delta, e, -opts.learningRate * grad[e]!);
    }
  }
  return { delta, losses };
}

function deltaFromCoefficients(taus: readonly Float32Array[], a: ArrayLike<number>): Float64Array {
  const d = new Float64Array(taus[0]!.length);
  taus.forEach((t, k) => {
    for (let e = 0; e < d.length; e++) d[e] = d[e]! + a[k]! * t[e]!;
  });
  return d;
}

function relDiff(x: Float64Array, y: Float64Array): number {
  let num = 0, den = 0;
  for (let e = 0; e < x.length; e++) {
    num += (x[e]! - y[e]!) ** 2;
    den += y[e]! ** 2;
  }
  return Math.sqrt(num) / Math.sqrt(den);
}

const cases: { K: number; norm: AwdOptions['norm']; alpha: number; learningRate: number; shared: number }[] = [
  { K: 2, norm: 'l2', alpha: 0.1, learningRate: 0.01, shared: 1 },
  { K: 3, norm: 'l2', alpha: 0.1, learningRate: 0.05, shared: 1.5 },
  { K: 8, norm: 'l2', alpha: 0.1, learningRate: 0.01, shared: 1 },
  { K: 2, norm: 'l2_squared', alpha: 0.1, learningRate: 0.05, shared: 1 },
  { K: 3, norm: 'l2_squared', alpha: 0.5, learningRate: 0.02, shared: 2 },
  { K: 8, norm: 'l2_squared', alpha: 0.1, learningRate: 0.05, shared: 1 },
];

for (const c of cases) {
  void test(`Gram-space solver equals full-dimensional GD (K=${c.K}, ${c.norm}, lr=${c.learningRate})`, () => {
    const taus = makeTaus(c.K, c.K === 8 ? 2000 : 3000, 11 * c.K + (c.norm === 'l2' ? 0 : 1), c.shared);
    const opts: AwdOptions = { alpha: c.alpha, learningRate: c.learningRate, iterations: 300, norm: c.norm };
    const sol = solveAwd(gramOf(taus), c.K, opts);
    const ref = fullDimensionalAwd(taus, opts);
    const delta = deltaFromCoefficients(taus, sol.coefficients);
    assert.ok(Math.sqrt(dot(ref.delta, ref.delta)) > 1e-3, 'the test must move δ');
    assert.ok(relDiff(delta, ref.delta) < 1e-6, `δ differs by ${relDiff(delta, ref.delta)}`);
    assert.equal(sol.loss.length, 301);
    assert.ok(sol.loss[300]!.total < sol.loss[0]!.total, 'the loss decreases');
    sol.loss.forEach((l, it) => {
      const r = ref.losses[it]!;
      assert.ok(Math.abs(l.total - r.total) <= 1e-6 * Math.max(1e-12, r.total), `total at ${it}: ${l.total} vs ${r.total}`);
      assert.ok(Math.abs(l.orthogonality - r.orthogonality) <= 1e-6 * r.orthogonality + 1e-15);
      assert.ok(Math.abs(l.deltaNorm - r.deltaNorm) <= 1e-6 * r.deltaNorm + 1e-15);
    });
    assert.ok(Math.abs(sol.deltaNorm - Math.sqrt(dot(ref.delta, ref.delta))) < 1e-6 * sol.deltaNorm);
    assert.ok(sol.meanAbsCosAfter < sol.meanAbsCosBefore, 'AWD makes the task vectors more orthogonal');
  });
}

void test('K = 2 first step by hand: a¹ = β(1 − c)(1, 1) for unit vectors with cosine c > 0', () => {
  const c = 0.6;
  const gram = Float64Array.from([1, c, c, 1]);
  const sol = solveAwd(gram, 2, { alpha: 0.1, learningRate: 0.01, iterations: 1, norm: 'l2' });
  assert.ok(Math.abs(sol.coefficients[0]! - 0.01 * (1 - c)) < 1e-15);
  assert.ok(Math.abs(sol.coefficients[1]! - 0.01 * (1 - c)) < 1e-15);
  assert.deepEqual(sol.loss[0], { total: c, orthogonality: c, deltaNorm: 0 });
  // ‖δ¹‖ = β(1−c)‖τ1+τ2‖ = β(1−c)·sqrt(2 + 2c)
  assert.ok(Math.abs(sol.loss[1]!.deltaNorm - 0.01 * (1 - c) * Math.sqrt(2 + 2 * c)) < 1e-15);
  assert.ok(Math.abs(sol.deltaNormRelative - sol.deltaNorm) < 1e-15);
});

void test('orthogonal task vectors: no gradient, a stays 0, every loss 0', () => {
  const K = 4;
  const gram = new Float64Array(K * K);
  for (let i = 0; i < K; i++) gram[i * K + i] = (i + 1) * 2.5;
  const sol = solveAwd(gram, K, { alpha: 0.1, learningRate: 0.01, iterations: 300, norm: 'l2' });
  assert.deepEqual([...sol.coefficients], [0, 0, 0, 0]);
  assert.ok(sol.loss.every((l) => l.total === 0 && l.deltaNorm === 0));
  assert.deepEqual([...sol.normRatio], [1, 1, 1, 1]);
  assert.equal(sol.meanAbsCosBefore, 0);
  assert.equal(sol.meanAbsCosAfter, 0);
});

void test('two identical task vectors: the degenerate pair has zero gradient, nothing explodes', () => {
  const t = makeTaus(2, 500, 3, 1);
  const taus = [t[0]!, Float32Array.from(t[0]!), t[1]!];
  for (const norm of ['l2', 'l2_squared'] as const) {
    const sol = solveAwd(gramOf(taus), 3, { alpha: 0.1, learningRate: 0.01, iterations: 300, norm });
    const ref = fullDimensionalAwd(taus, { alpha: 0.1, learningRate: 0.01, iterations: 300, norm });
    assert.ok(sol.coefficients.every(Number.isFinite));
    assert.ok(relDiff(deltaFromCoefficients(taus, sol.coefficients), ref.delta) < 1e-6);
    assert.ok(Math.abs(sol.cosAfter[1]! - 1) < 1e-12, 'τ̂_1 and τ̂_2 stay identical');
  }
  const pair = solveAwd(gramOf([t[0]!, Float32Array.from(t[0]!)]), 2, { alpha: 0.1, learningRate: 0.01, iterations: 300, norm: 'l2' });
  assert.ok(pair.coefficients.every((x) => Math.abs(x) < 1e-12));
  assert.ok(pair.loss.every((l) => Math.abs(l.orthogonality - 1) < 1e-12));
});

void test('all-zero task vectors: no NaN anywhere', () => {
  const sol = solveAwd(new Float64Array(9), 3, { alpha: 0.1, learningRate: 0.01, iterations: 10, norm: 'l2' });
  assert.deepEqual([...sol.coefficients], [0, 0, 0]);
  assert.ok(sol.loss.every((l) => l.total === 0 && l.orthogonality === 0 && l.deltaNorm === 0));
  assert.deepEqual([...sol.cosBefore], new Array(9).fill(0));
  assert.deepEqual([...sol.normRatio], [1, 1, 1]);
  assert.equal(sol.deltaNormRelative, 0);
  assert.equal(sol.meanAbsCosAfter, 0);
});

void test('one zero task vector among others: no pair with it at δ = 0, then u = −δ joins the objective', () => {
  const t = makeTaus(3, 800, 5, 1);
  const taus = [t[0]!, new Float32Array(800), t[1]!, t[2]!];
  // With τ_1 = 0, u_1 = −δ is tiny and its cosine gradients scale like 1/‖δ‖: the GD path is chaotic after
  // some 80 steps (both implementations agree until then), so compare the first 40 and check 300 stay finite.
  const opts: AwdOptions = { alpha: 0.1, learningRate: 0.01, iterations: 40, norm: 'l2' };
  const sol = solveAwd(gramOf(taus), 4, opts);
  const ref = fullDimensionalAwd(taus, opts);
  const d = relDiff(deltaFromCoefficients(taus, sol.coefficients), ref.delta);
  assert.ok(d < 1e-6, `δ differs by ${d}`);
  assert.equal(sol.normRatio[1], Infinity);
  const long = solveAwd(gramOf(taus), 4, { ...opts, iterations: 300 });
  assert.ok(long.coefficients.every(Number.isFinite) && long.loss.every((l) => Number.isFinite(l.total)));
});

void test('effective task-arithmetic coefficients: θ0 + λΣ w_i(τ_i − δ) = θ0 + Σ_k eff_k τ_k', () => {
  const r = rng(7);
  const K = 5, D = 1000;
  const taus = makeTaus(K, D, 9, 1);
  const theta0 = Float64Array.from({ length: D }, () => gaussian(r));
  const a = Float64Array.from({ length: K }, () => r() - 0.5);
  const w = Float64Array.from({ length: K }, () => 0.2 + r());
  const lambda = 0.7;
  const delta = deltaFromCoefficients(taus, a);
  const lhs = Float64Array.from(theta0);
  const rhs = Float64Array.from(theta0);
  const eff = effectiveTaskArithmeticCoefficients(a, w, lambda);
  for (let i = 0; i < K; i++) {
    for (let e = 0; e < D; e++) {
      lhs[e] = lhs[e]! + lambda * w[i]! * (taus[i]![e]! - delta[e]!);
      rhs[e] = rhs[e]! + eff[i]! * taus[i]![e]!;
    }
  }
  assert.ok(relDiff(rhs, lhs) < 1e-13);
  const w1 = [1, 1];
  assert.deepEqual([...effectiveTaskArithmeticCoefficients([0.25, -0.5], w1, 2)], [2 * (1 - 2 * 0.25), 2 * (1 + 2 * 0.5)]);
});

void test('disentangledGram equals the Gram of explicitly built τ_i − δ', () => {
  const K = 6, D = 700;
  const taus = makeTaus(K, D, 13, 1);
  const r = rng(1);
  const a = Float64Array.from({ length: K }, () => r() - 0.3);
  const delta = deltaFromCoefficients(taus, a);
  const hat = taus.map((t) => Float64Array.from(t, (x, e) => x - delta[e]!));
  const dg = disentangledGram(gramOf(taus), a, K);
  for (let i = 0; i < K; i++) {
    for (let j = 0; j < K; j++) {
      const ref = dot(hat[i]!, hat[j]!);
      const scale = Math.sqrt(dot(hat[i]!, hat[i]!) * dot(hat[j]!, hat[j]!));
      assert.ok(Math.abs(dg[i * K + j]! - ref) < 1e-12 * scale, `entry ${i},${j}`);
    }
  }
});

void test('rejects a Gram matrix of the wrong size and bad options', () => {
  assert.throws(() => solveAwd(new Float64Array(5), 2, { alpha: 0.1, learningRate: 0.01, iterations: 3, norm: 'l2' }), RangeError);
  assert.throws(() => solveAwd(new Float64Array(4), 2, { alpha: 0.1, learningRate: 0.01, iterations: 1.5, norm: 'l2' }), RangeError);
});

void test('the WASM solver gives the bits of the JS descent: coefficients and every loss, K = 1..12, both norms, edge cases', () => {
  const w = wasmKernels();
  assert.ok(w, 'WASM kernels');
  const cases: { name: string; gram: Float64Array; K: number }[] = [];
  for (let K = 1; K <= 12; K++) cases.push({ name: `random K=${K}`, gram: gramOf(makeTaus(K, 64, 300 + K, 1.5)), K });
  // Identical task vectors (all cosines 1), one all-zero task vector, every one zero, a tiny and a huge scale.
  const same = makeTaus(1, 32, 7, 0)[0]!;
  cases.push({ name: 'identical', gram: gramOf([same, same, same]), K: 3 });
  cases.push({ name: 'one zero', gram: gramOf([...makeTaus(3, 32, 8, 1), new Float32Array(32)]), K: 4 });
  cases.push({ name: 'all zero', gram: new Float64Array(9), K: 3 });
  const base = gramOf(makeTaus(5, 40, 9, 2));
  cases.push({ name: 'scale 1e-30', gram: base.map((x) => x * 1e-30), K: 5 });
  cases.push({ name: 'scale 1e30', gram: base.map((x) => x * 1e30), K: 5 });
  const settings: AwdOptions[] = [
    { alpha: 0.1, learningRate: 0.01, iterations: 300, norm: 'l2' },
    { alpha: 0.1, learningRate: 0.01, iterations: 300, norm: 'l2_squared' },
    { alpha: 0, learningRate: 0.5, iterations: 40, norm: 'l2' },
    { alpha: 3, learningRate: 0.2, iterations: 25, norm: 'l2_squared' },
    { alpha: 0.1, learningRate: 0.01, iterations: 0, norm: 'l2' },
  ];
  for (const c of cases) {
    for (const opts of settings) {
      const js = awdDescentJs(c.gram, c.K, opts);
      const fast = w.awdSolve(c.gram, c.K, opts.alpha, opts.learningRate, opts.iterations, opts.norm === 'l2_squared');
      assert.ok(fast, 'the WASM solver ran');
      const label = `${c.name}, ${JSON.stringify(opts)}`;
      assert.deepEqual([...fast.coefficients].map(String), [...js.coefficients].map(String), `coefficients, ${label}`);
      const jsLoss = js.loss.flatMap((l) => [l.total, l.orthogonality, l.deltaNorm]);
      assert.equal(fast.loss.length, jsLoss.length, label);
      for (let i = 0; i < jsLoss.length; i++) assert.ok(Object.is(fast.loss[i], jsLoss[i]), `loss ${i}: ${fast.loss[i]} vs ${jsLoss[i]}, ${label}`);
      // solveAwd takes the WASM path here: the same coefficients as the JS descent.
      assert.deepEqual([...solveAwd(c.gram, c.K, opts).coefficients].map(String), [...js.coefficients].map(String), `solveAwd, ${label}`);
    }
  }
});
