// The WASM SIMD kernels against the JS references: Gram precision, bit-identical weighted sums, bounded scratch,
// and the committed generated module being the compilation of the current AssemblyScript source.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { openArena, wasmKernels } from '../../../src/core/kernels/wasm';
import { accumulateGramJs, accumulateGramOfDifferencesJs } from '../../../src/core/kernels/gramJs';
import { weightedSumOfDifferencesJs } from '../../../src/core/kernels/combineJs';
import { float32AtLeast, tiesMergeChunkJs, trimBelow, trimBelowJs } from '../../../src/core/merge/ties';
import { dareRoundKeys, dareRescaleInPlaceJs } from '../../../src/core/merge/dare';

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}
function fill(n: number, f: (e: number) => number): Float32Array {
  const out = new Float32Array(n);
  for (let e = 0; e < n; e++) out[e] = f(e);
  return out;
}

/** Largest |G_ij − R_ij| / sqrt(R_ii R_jj): the error in cosine units. */
function cosineError(g: Float64Array, ref: Float64Array, K: number): number {
  let worst = 0;
  for (let i = 0; i < K; i++) {
    for (let j = 0; j < K; j++) {
      worst = Math.max(worst, Math.abs(g[i * K + j]! - ref[i * K + j]!) / Math.sqrt(ref[i * K + i]! * ref[j * K + j]!));
    }
  }
  return worst;
}

const kernels = wasmKernels();

void test('WebAssembly SIMD is available in this Node', () => {
  assert.ok(kernels, 'the WASM kernels failed to load');
});

void test('WASM Gram (float32 partials, and exact) against the float64 reference, K = 1, 5, 9, 20, odd lengths', () => {
  const w = kernels!;
  for (const [K, n] of [[1, 5], [5, 8193], [9, 20011], [20, 3001]] as const) {
    const r = rng(K);
    const rows = Array.from({ length: K }, () => fill(n, () => r() - 0.5 + (r() < 0.01 ? 40 : 0)));
    const base = fill(n, () => 2 + r());
    const ref = new Float64Array(K * K);
    accumulateGramJs(rows, ref);
    const fast = new Float64Array(K * K);
    w.gram(rows, undefined, fast);
    // Outliers (1% of entries +40) make the float32 partial sums large next to the result: the hard case.
    assert.ok(cosineError(fast, ref, K) < 1e-7, `K=${K} float32 partials: ${cosineError(fast, ref, K)}`);
    const exact = new Float64Array(K * K);
    w.gram(rows, undefined, exact, true);
    assert.ok(cosineError(exact, ref, K) < 1e-13, `K=${K} exact: ${cosineError(exact, ref, K)}`);
    const refDiff = new Float64Array(K * K);
    accumulateGramOfDifferencesJs(rows, base, refDiff);
    const diff = new Float64Array(K * K);
    w.gram(rows, base, diff);
    assert.ok(cosineError(diff, refDiff, K) < 1e-7, `K=${K} differences: ${cosineError(diff, refDiff, K)}`);
    const exactDiff = new Float64Array(K * K);
    w.gram(rows, base, exactDiff, true);
    assert.ok(cosineError(exactDiff, refDiff, K) < 1e-13, `K=${K} exact differences: ${cosineError(exactDiff, refDiff, K)}`);
    for (let i = 0; i < K; i++) for (let j = 0; j < K; j++) assert.equal(fast[i * K + j], fast[j * K + i]);
  }
});

void test('WASM Gram of differences gives the bits of the Gram of the float32 differences (its own tiling), K = 1..12', () => {
  const w = kernels!;
  for (let K = 1; K <= 12; K++) {
    const r = rng(100 + K);
    const n = 1000 + 37 * K;
    const rows = Array.from({ length: K }, () => fill(n, () => r() - 0.5 + (r() < 0.02 ? 30 : 0)));
    const base = fill(n, () => 1 + r());
    const differences = rows.map((row) => row.map((x, e) => Math.fround(x - base[e]!)));
    const fromRows = new Float64Array(K * K);
    w.gram(differences, undefined, fromRows);
    const fromModels = new Float64Array(K * K);
    w.gram(rows, base, fromModels);
    assert.deepEqual([...fromModels], [...fromRows], `K=${K}`);
  }
});

void test('WASM weighted sum of differences is bit-identical to the JS reference (tails, blocks, K = 1..12)', () => {
  const w = kernels!;
  for (const [K, n] of [[1, 3], [2, 8191], [7, 8197], [12, 20003]] as const) {
    const r = rng(100 + K);
    const base = fill(n, () => (r() - 0.5) * 8);
    const models = Array.from({ length: K }, () => fill(n, (e) => base[e]! + (r() - 0.5) * 1e-3));
    const coeffs = Array.from({ length: K }, () => (r() - 0.3) * 3);
    const ref = new Float32Array(n);
    weightedSumOfDifferencesJs(base, models, coeffs, ref);
    const out = new Float32Array(n);
    w.weightedSum(base, models, coeffs, out);
    assert.deepEqual(out, ref);
  }
});

void test('WASM scratch memory stays bounded for long chunks', () => {
  const w = kernels!;
  const K = 9;
  const rows = Array.from({ length: K }, () => new Float32Array(1 << 20).fill(0.5));
  w.gram(rows, rows[0], new Float64Array(K * K));
  assert.ok(w.memoryBytes() <= 2 << 20, `${w.memoryBytes()} bytes`);
});

void test('the committed kernelsWasm.ts is the compilation of assembly/kernels.ts', () => {
  const r = spawnSync(process.execPath, ['scripts/build-wasm.mjs', '--check'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr + r.stdout);
});

void test('WASM TIES elect/merge is bit-identical to the JS reference (ties, zeros, NaN/Inf, negative weights, tails)', () => {
  for (const [K, n, normalize] of [[1, 1027, true], [2, 8193, false], [8, 20001, true], [9, 4099, false]] as const) {
    const r = rng(7 * K + n);
    const rows = Array.from({ length: K }, () => fill(n, () => (r() < 0.5 ? 0 : r() < 0.5 ? 0.25 : r() - 0.5)));
    const w = Array.from({ length: K }, (_, i) => (i === 1 ? -0.5 : 0.2 + r()));
    // Non-finite entries and signed zeros (sums that are NaN or ±Inf, entries that are): the elect's comparisons.
    const special = [NaN, Infinity, -Infinity, -0, 0];
    for (let e = 0; e < n; e += 97) rows[e % K]![e] = special[(e / 97) % special.length]!;
    const ref = new Float32Array(n);
    tiesMergeChunkJs(rows, w, normalize, ref);
    const out = new Float32Array(n);
    kernels!.tiesMerge(rows, w, normalize, out);
    assert.deepEqual(out, ref);
  }
});

void test('WASM DARE is bit-identical to the JS reference (densities, starts across 2^32, tails)', () => {
  for (const [n, density, start, seed] of [
    [1031, 0.3, 0, 0],
    [20003, 0.9, 4294967296 - 10001, 5],
    [8195, 1, 123, 2 ** 40],
    [4097, 1e-6, 2 ** 45, 3],
  ] as const) {
    const r = rng(n);
    const key = { seed, model: 3, tensor: 'blocks.0.mlp.fc1.weight' };
    const x = fill(n, () => r() - 0.5);
    const ref = Float32Array.from(x);
    dareRescaleInPlaceJs(ref, density, key, start);
    kernels!.dareRescale(x, start, dareRoundKeys(key), Math.ceil(density * 4294967296), density);
    assert.deepEqual(x, ref, `n=${n} density=${density} start=${start}`);
  }
});

void test('WASM trimBelow equals the JS reference, thresholds not representable in float32 included', () => {
  const r = rng(77);
  const n = 10007;
  const x = fill(n, () => (r() - 0.5) * 2);
  x[5] = 0.1; // exactly fround(0.1), which is > 0.1 in float64: 0.1 must keep it
  x[6] = -0;
  x[7] = Infinity;
  for (const t of [0, 0.1, Math.fround(0.3), 0.3, 0.999999999, 1e-40, Infinity]) {
    const ref = Float32Array.from(x);
    trimBelowJs(ref, t);
    const fast = Float32Array.from(x);
    trimBelow(fast, t);
    assert.deepEqual(fast, ref, `threshold ${t}`);
  }
  assert.equal(float32AtLeast(0.1), Math.fround(0.1));
  assert.ok(float32AtLeast(0.3) >= 0.3 && Math.fround(float32AtLeast(0.3)) === float32AtLeast(0.3));
});

void test('an arena\'s lazy area is counted as used only as far as its user wrote: a later arena gets zeros there', () => {
  const first = openArena(1 << 20, 4);
  assert.ok(first);
  const lazy = first.lazyFloats(200_000);
  lazy.floats.fill(7, 0, 10);
  lazy.used(10 * 4);
  const at = lazy.floats.byteOffset;
  first.release();
  const second = openArena(1 << 20, 4);
  assert.ok(second);
  try {
    const again = second.floats(200_000);
    assert.equal(again.byteOffset, at, 'the same place');
    assert.ok(again.every((x) => x === 0), 'what the lazy area wrote is zeroed for the next user, the rest was never written');
  } finally {
    second.release();
  }
});
