// Kernel benchmark: GB/s of every merge kernel in plain JS and in WASM SIMD (K = 9 rows of ~10M float32 each),
// and the AWD solver on the Gram matrix against full-dimensional plain GD (1M parameters, K = 8, 300 iterations).
// GB/s counts the float32 input bytes each kernel reads (K rows, + the base where it reads one) per second.
// Single thread; best of --repeat runs. Times are the process's CPU time (user + system), not wall time, so that
// a machine shared with other work still gives the kernels' own speed (on an idle machine the two agree).
//
//   npm run bench:kernels
//   npm run bench:kernels -- --elements 2e6 --awd-params 2e5 --repeat 2    # a quick run
//   npm run bench:kernels -- --awd-params 0                               # kernels only
import { accumulateGramJs, accumulateGramOfDifferencesJs } from '../src/core/kernels/gramJs';
import { accumulateGram } from '../src/core/kernels/gram';
import { weightedSumOfDifferencesJs } from '../src/core/kernels/combineJs';
import { wasmKernels } from '../src/core/kernels/wasm';
import { float32AtLeast, tiesMergeChunkJs, trimBelowJs } from '../src/core/merge/ties';
import { MagnitudeThreshold } from '../src/core/merge/magnitude';
import { dareRescaleInPlaceJs, dareRoundKeys } from '../src/core/merge/dare';
import { solveAwd, type AwdLoss, type AwdOptions } from '../src/core/merge/awd';

function argNumber(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const N = Math.round(argNumber('--elements', 10e6));
const AWD_PARAMS = Math.round(argNumber('--awd-params', 1e6));
const REPEAT = Math.max(1, Math.round(argNumber('--repeat', 3)));
const K = 9;

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

function randomRows(count: number, n: number, seed: number, offset: Float32Array | undefined): Float32Array[] {
  const r = rng(seed);
  return Array.from({ length: count }, () => {
    const row = new Float32Array(n);
    for (let e = 0; e < n; e++) row[e] = (offset?.[e] ?? 0) + (r() - 0.5) * 0.02;
    return row;
  });
}

/** CPU seconds (user + system) fn takes. */
function cpuSeconds(fn: () => void): number {
  const start = process.cpuUsage();
  fn();
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1e6;
}

/** Best CPU time of REPEAT runs of fn, in seconds. */
function best(fn: () => void): number {
  let t = Infinity;
  for (let r = 0; r < REPEAT; r++) t = Math.min(t, cpuSeconds(fn));
  return t;
}

const base = randomRows(1, N, 1, undefined)[0]!.map((x) => 50 * x);
const models = randomRows(K, N, 2, base);
const taus = models.map((m) => m.map((x, e) => x - base[e]!));
const wasm = wasmKernels();
const rowBytes = K * N * 4;
const rows: { kernel: string; js?: number; wasm?: number; note?: string }[] = [];

{
  const g = new Float64Array(K * K);
  rows.push({
    kernel: 'Gram (K×K of rows)',
    js: rowBytes / best(() => accumulateGramJs(taus, g)),
    wasm: wasm ? rowBytes / best(() => wasm.gram(taus, undefined, g)) : undefined,
    note: 'WASM: f32x4 partial sums flushed to f64 every 128 elements (chunks ≥ 524288 elements)',
  });
  if (wasm) {
    rows.push({
      kernel: 'Gram, exact f64 products',
      wasm: rowBytes / best(() => wasm.gram(taus, undefined, g, true)),
      note: 'f64x2 products and sums (chunks < 524288 elements)',
    });
  }
  rows.push({
    kernel: 'Gram of differences (models − base)',
    js: (rowBytes + N * 4) / best(() => accumulateGramOfDifferencesJs(models, base, g)),
    wasm: wasm ? (rowBytes + N * 4) / best(() => wasm.gram(models, base, g)) : undefined,
    note: 'τ built in f32 128 elements at a time, never materialised',
  });
  if (wasm) {
    rows.push({
      kernel: 'Gram of differences, exact f64 products',
      wasm: (rowBytes + N * 4) / best(() => wasm.gram(models, base, g, true)),
      note: 'f64x2 products and sums (chunks < 524288 elements)',
    });
  }
}
{
  const out = new Float32Array(N);
  const coeffs = Array.from({ length: K }, (_, i) => 0.1 * (i + 1));
  rows.push({
    kernel: 'Weighted sum of differences (TA)',
    js: (rowBytes + N * 4) / best(() => weightedSumOfDifferencesJs(base, models, coeffs, out)),
    wasm: wasm ? (rowBytes + N * 4) / best(() => wasm.weightedSum(base, models, coeffs, out)) : undefined,
    note: 'bit-identical results JS/WASM',
  });
}
{
  const scratch = new Float32Array(N);
  rows.push({
    kernel: 'Copy into WASM-sized scratch (memcpy)',
    js: rowBytes / best(() => {
      for (const t of taus) scratch.set(t);
    }),
    note: 'the per-call cost of feeding the WASM kernels',
  });
}
{
  const trimmed = taus.map((t) => Float32Array.from(t));
  for (const t of trimmed) trimBelowJs(t, 0.005);
  const out = new Float32Array(N);
  const w = Array.from({ length: K }, () => 1);
  rows.push({
    kernel: 'TIES elect + disjoint merge',
    js: rowBytes / best(() => tiesMergeChunkJs(trimmed, w, true, out)),
    wasm: wasm ? rowBytes / best(() => wasm.tiesMerge(trimmed, w, true, out)) : undefined,
    note: 'bit-identical results JS/WASM',
  });
  const work = new Float32Array(N);
  rows.push({
    kernel: 'TIES trimBelow (1 row)',
    js: (N * 4) / best(() => {
      work.set(taus[0]!);
      trimBelowJs(work, 0.005);
    }),
    wasm: wasm
      ? (N * 4) / best(() => {
        work.set(taus[0]!);
        wasm.trimBelow(work, float32AtLeast(0.005));
      })
      : undefined,
    note: 'includes a copy of the row; branch-free in WASM',
  });
  rows.push({
    kernel: 'Magnitude threshold, pass 1 + pass 2 (1 row)',
    js: (N * 4) / best(() => {
      const t = new MagnitudeThreshold(N, 0.2);
      t.pass1(taus[0]!);
      if (t.needsPass2()) t.pass2(taus[0]!);
      t.threshold();
    }),
    note: 'GB/s of one pass over the data, both passes timed',
  });
  const key = { seed: 1, model: 0, tensor: 'w' };
  rows.push({
    kernel: 'DARE mask + rescale (1 row)',
    js: (N * 4) / best(() => {
      work.set(taus[0]!);
      dareRescaleInPlaceJs(work, 0.3, key, 0);
    }),
    wasm: wasm
      ? (N * 4) / best(() => {
        work.set(taus[0]!);
        wasm.dareRescale(work, 0, dareRoundKeys(key), Math.ceil(0.3 * 2 ** 32), 0.3);
      })
      : undefined,
    note: 'includes a copy of the row; bit-identical results JS/WASM',
  });
}

console.log(`\nKernels: K = ${K}, ${N.toExponential(2)} float32 elements per row, best of ${REPEAT}, single thread, ` +
  `GB/s per CPU-second\n`);
console.log('| kernel | JS GB/s | WASM GB/s | note |');
console.log('|---|---:|---:|---|');
for (const r of rows) {
  const f = (x: number | undefined) => (x === undefined ? '—' : (x / 1e9).toFixed(2));
  console.log(`| ${r.kernel} | ${f(r.js)} | ${f(r.wasm)} | ${r.note ?? ''} |`);
}

// ---- AWD: full-dimensional plain GD vs the Gram-space solver ----

/** Plain GD on δ ∈ R^D for the objective of awd.md (the reference the Gram solver reduces exactly). */
function awdFullDimensional(t: readonly Float32Array[], opts: AwdOptions): { delta: Float64Array; loss: AwdLoss[] } {
  const k = t.length;
  const D = t[0]!.length;
  const P = (k * (k - 1)) / 2;
  const delta = new Float64Array(D);
  const u = t.map(() => new Float64Array(D));
  const grad = new Float64Array(D);
  const loss: AwdLoss[] = [];
  for (let it = 0; it <= opts.iterations; it++) {
    for (let i = 0; i < k; i++) {
      const ui = u[i]!, ti = t[i]!;
      for (let e = 0; e < D; e++) ui[e] = ti[e]! - delta[e]!;
    }
    const dots = new Float64Array(k * k);
    for (let i = 0; i < k; i++) {
      for (let j = i; j < k; j++) {
        const ui = u[i]!, uj = u[j]!;
        let s = 0;
        for (let e = 0; e < D; e++) s += ui[e]! * uj[e]!;
        dots[i * k + j] = s;
      }
    }
    const n = Array.from({ length: k }, (_, i) => Math.sqrt(dots[i * k + i]!));
    // ∇ of each |cos| term is a combination of u_i and u_j: collect its coefficients, then one pass over D.
    const b = new Float64Array(k);
    let lo = 0;
    for (let i = 0; i < k; i++) {
      for (let j = i + 1; j < k; j++) {
        if (n[i] === 0 || n[j] === 0) continue;
        const c = dots[i * k + j]! / (n[i]! * n[j]!);
        lo += Math.abs(c) / P;
        const s = Math.sign(c) / P;
        b[i] = b[i]! + s * (-1 / (n[i]! * n[j]!) + c / (n[i]! * n[i]!));
        b[j] = b[j]! + s * (-1 / (n[i]! * n[j]!) + c / (n[j]! * n[j]!));
      }
    }
    let dd = 0;
    for (let e = 0; e < D; e++) dd += delta[e]! * delta[e]!;
    const dn = Math.sqrt(dd);
    loss.push({ total: lo + opts.alpha * (opts.norm === 'l2' ? dn : dd), orthogonality: lo, deltaNorm: dn });
    if (it === opts.iterations) break;
    const r = opts.norm === 'l2' ? (dn > 0 ? opts.alpha / dn : 0) : 2 * opts.alpha;
    for (let e = 0; e < D; e++) grad[e] = r * delta[e]!;
    for (let i = 0; i < k; i++) {
      const ui = u[i]!, bi = b[i]!;
      for (let e = 0; e < D; e++) grad[e] = grad[e]! + bi * ui[e]!;
    }
    for (let e = 0; e < D; e++) delta[e] = delta[e]! - opts.learningRate * grad[e]!;
  }
  return { delta, loss };
}

if (AWD_PARAMS > 0) {
  const k = 8;
  const r = rng(5);
  const shared = Float32Array.from({ length: AWD_PARAMS }, () => r() - 0.5);
  const t = Array.from({ length: k }, (_, i) =>
    Float32Array.from(shared, (s) => ((0.3 + 0.1 * i) * s + (r() - 0.5)) / Math.sqrt(AWD_PARAMS / 12)),
  );
  const opts: AwdOptions = { alpha: 0.1, learningRate: 0.01, iterations: 300, norm: 'l2' };

  let full: ReturnType<typeof awdFullDimensional> | undefined;
  const fullSeconds = cpuSeconds(() => (full = awdFullDimensional(t, opts)));
  const gram = new Float64Array(k * k);
  const gramSeconds = cpuSeconds(() => accumulateGram(t, gram));
  let sol: ReturnType<typeof solveAwd> | undefined;
  const firstSolveSeconds = cpuSeconds(() => (sol = solveAwd(gram, k, opts)));
  const solveSeconds = best(() => solveAwd(gram, k, opts));

  const delta = new Float64Array(AWD_PARAMS);
  t.forEach((ti, i) => {
    const a = sol!.coefficients[i]!;
    for (let e = 0; e < AWD_PARAMS; e++) delta[e] = delta[e]! + a * ti[e]!;
  });
  let maxDiff = 0, maxAbs = 0;
  for (let e = 0; e < AWD_PARAMS; e++) {
    maxDiff = Math.max(maxDiff, Math.abs(delta[e]! - full!.delta[e]!));
    maxAbs = Math.max(maxAbs, Math.abs(full!.delta[e]!));
  }
  const lossDiff = Math.max(...sol!.loss.map((l, i) => Math.abs(l.total - full!.loss[i]!.total) / full!.loss[i]!.total));
  console.log(`\nAWD: ${AWD_PARAMS.toExponential(2)} parameters, K = ${k}, 300 iterations, mean |cos| ` +
    `${sol!.meanAbsCosBefore.toFixed(4)} → ${sol!.meanAbsCosAfter.toFixed(4)} (CPU seconds)\n`);
  console.log('| solver | seconds | note |');
  console.log('|---|---:|---|');
  console.log(`| full-dimensional plain GD (JS, float64) | ${fullSeconds.toFixed(2)} | |`);
  const total = gramSeconds + firstSolveSeconds;
  console.log(`| Gram pass (accumulateGram, ${wasm ? 'WASM' : 'JS'}) + K-dim solver | ${total.toFixed(4)} | ` +
    `Gram ${(gramSeconds * 1e3).toFixed(1)} ms, solver ${(firstSolveSeconds * 1e3).toFixed(1)} ms on first call ` +
    `(${(solveSeconds * 1e3).toFixed(2)} ms once JIT-compiled); speed-up ${(fullSeconds / total).toFixed(0)}× |`);
  console.log(`\nmax |δ_gram − δ_full| / max |δ_full| = ${(maxDiff / maxAbs).toExponential(2)}; ` +
    `max relative difference of the loss curve = ${lossDiff.toExponential(2)}`);
}
