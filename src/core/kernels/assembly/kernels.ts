// WASM SIMD kernels (AssemblyScript, compiled by scripts/build-wasm.mjs). Every function works on raw pointers
// into this module's linear memory; src/core/kernels/wasm.ts copies chunks in and results out.
// Readable references and the results contract: gramJs.ts, combineJs.ts, merge/ties.ts (trimBelowJs,
// tiesMergeChunkJs), merge/dare.ts (dareRescaleInPlaceJs), finite.ts (nonFiniteTotalJs), merge/tensorStats.ts
// (blockSumsJs) and merge/magnitude.ts (the JS histogram loops); all but the Gram kernels are bit-identical to them.

// f32x4 partial sums run over at most FLUSH elements (FLUSH/4 terms per lane) before they are added to the
// float64 accumulators: the float32 rounding error stays ~1e-9 of sqrt(G_ii·G_jj).
const FLUSH: i32 = 128;

// The Gram accumulators: two float64 lanes per entry (16 bytes, entry i*K+j), summed by the caller at the end,
// so a flush is two promotions and one f64x2 add instead of a horizontal sum.
@inline
function flushTo(gram: usize, K: i32, i: i32, j: i32, v: v128): void {
  const p = gram + ((<usize>(i * K + j)) << 4);
  const w = f64x2.add(f64x2.promote_low_f32x4(v), f64x2.promote_low_f32x4(v128.shuffle<f32>(v, v, 2, 3, 0, 1)));
  v128.store(p, f64x2.add(v128.load(p), w));
}

@inline
function addTo(gram: usize, K: i32, i: i32, j: i32, v: f64): void {
  const p = gram + ((<usize>(i * K + j)) << 4);
  store<f64>(p, load<f64>(p) + v);
}

@inline
function flush64To(gram: usize, K: i32, i: i32, j: i32, v: v128): void {
  const p = gram + ((<usize>(i * K + j)) << 4);
  v128.store(p, f64x2.add(v128.load(p), v));
}

// gram[i*K+j] += Σ_{e in [from, to)} rows_i[e]·rows_j[e] for i ≤ j (upper triangle only); from, to multiples of 4.
// Register tiles of 2 rows i × 4 rows j: 6 loads feed 8 multiply-adds. On the diagonal tile the one pair below
// the diagonal, (i+1, i), is computed and dropped.
function gramBlock(rows: usize, K: i32, stride: usize, from: i32, to: i32, gram: usize): void {
  const a: usize = <usize>from << 2;
  const b: usize = <usize>to << 2;
  let i = 0;
  for (; i + 2 <= K; i += 2) {
    const ri = rows + <usize>i * stride;
    const rk = ri + stride;
    let j = i;
    for (; j + 4 <= K; j += 4) {
      const r0 = rows + <usize>j * stride;
      const r1 = r0 + stride;
      const r2 = r1 + stride;
      const r3 = r2 + stride;
      let s0 = f32x4.splat(0);
      let s1 = f32x4.splat(0);
      let s2 = f32x4.splat(0);
      let s3 = f32x4.splat(0);
      let t0 = f32x4.splat(0);
      let t1 = f32x4.splat(0);
      let t2 = f32x4.splat(0);
      let t3 = f32x4.splat(0);
      for (let o = a; o < b; o += 16) {
        const x = v128.load(ri + o);
        const y = v128.load(rk + o);
        const v0 = v128.load(r0 + o);
        s0 = f32x4.add(s0, f32x4.mul(x, v0));
        t0 = f32x4.add(t0, f32x4.mul(y, v0));
        const v1 = v128.load(r1 + o);
        s1 = f32x4.add(s1, f32x4.mul(x, v1));
        t1 = f32x4.add(t1, f32x4.mul(y, v1));
        const v2 = v128.load(r2 + o);
        s2 = f32x4.add(s2, f32x4.mul(x, v2));
        t2 = f32x4.add(t2, f32x4.mul(y, v2));
        const v3 = v128.load(r3 + o);
        s3 = f32x4.add(s3, f32x4.mul(x, v3));
        t3 = f32x4.add(t3, f32x4.mul(y, v3));
      }
      flushTo(gram, K, i, j, s0);
      flushTo(gram, K, i, j + 1, s1);
      flushTo(gram, K, i, j + 2, s2);
      flushTo(gram, K, i, j + 3, s3);
      if (j > i) flushTo(gram, K, i + 1, j, t0);
      flushTo(gram, K, i + 1, j + 1, t1);
      flushTo(gram, K, i + 1, j + 2, t2);
      flushTo(gram, K, i + 1, j + 3, t3);
    }
    for (; j < K; j++) {
      const rj = rows + <usize>j * stride;
      let s0 = f32x4.splat(0);
      let t0 = f32x4.splat(0);
      for (let o = a; o < b; o += 16) {
        const v = v128.load(rj + o);
        s0 = f32x4.add(s0, f32x4.mul(v128.load(ri + o), v));
        t0 = f32x4.add(t0, f32x4.mul(v128.load(rk + o), v));
      }
      flushTo(gram, K, i, j, s0);
      if (j > i) flushTo(gram, K, i + 1, j, t0);
    }
  }
  if (i < K) {
    const ri = rows + <usize>i * stride;
    let s0 = f32x4.splat(0);
    for (let o = a; o < b; o += 16) {
      const x = v128.load(ri + o);
      s0 = f32x4.add(s0, f32x4.mul(x, x));
    }
    flushTo(gram, K, i, i, s0);
  }
}

// The last n % 4 elements, in float64.
function gramTail(rows: usize, K: i32, stride: usize, from: i32, n: i32, gram: usize): void {
  for (let i = 0; i < K; i++) {
    for (let j = i; j < K; j++) {
      let s: f64 = 0;
      for (let e = from; e < n; e++) {
        const o = <usize>e << 2;
        s += <f64>load<f32>(rows + <usize>i * stride + o) * <f64>load<f32>(rows + <usize>j * stride + o);
      }
      addTo(gram, K, i, j, s);
    }
  }
}

/**
 * gram[i*K+j] += Σ_e rows_i[e]·rows_j[e] (i ≤ j), rows_i at rows + i·stride bytes, n elements each; gram holds
 * two float64 lanes per entry (see flushTo).
 */
export function gramUpper(rows: usize, K: i32, n: i32, stride: usize, gram: usize): void {
  const nv = n & ~3;
  for (let from = 0; from < nv; from += FLUSH) gramBlock(rows, K, stride, from, min(from + FLUSH, nv), gram);
  gramTail(rows, K, stride, nv, n, gram);
}

// The Gram of the scratch rows of gramOfDifferencesUpper (stride TAU_STRIDE bytes, a constant, so that every load
// of a tile is one base pointer plus an immediate offset). Tiles of 2 rows i × 4 rows j as gramBlock, then 2 × 2 and
// 2 × 1 for the columns left: for K = 8, 30 loads and 6 loops per 4 elements instead of gramBlock's 36 and 8. Every
// entry is summed exactly as gramBlock sums it (the same products, lanes and order), so the bits are the same.
// (gramBlock with these tiles and its runtime stride instead — one function for both — measured 7 % slower here:
// 3.26 against 3.03 ns per element at K = 8, 4.84 against 4.53 at K = 9, both builds alternating in one process.)
const TAU_STRIDE: usize = 512;

// A tile of rows i, i + 1 against `cols` (2 or 4, a constant at every call: inlined, the unused half goes away)
// rows from j.
@inline
function tauTile(pi: usize, pj: usize, bytes: usize, gram: usize, K: i32, i: i32, j: i32, cols: i32): void {
  let s0 = f32x4.splat(0);
  let s1 = f32x4.splat(0);
  let s2 = f32x4.splat(0);
  let s3 = f32x4.splat(0);
  let t0 = f32x4.splat(0);
  let t1 = f32x4.splat(0);
  let t2 = f32x4.splat(0);
  let t3 = f32x4.splat(0);
  for (let o: usize = 0; o < bytes; o += 16) {
    const a = pi + o;
    const b = pj + o;
    const x = v128.load(a);
    const y = v128.load(a, TAU_STRIDE);
    const v0 = v128.load(b);
    s0 = f32x4.add(s0, f32x4.mul(x, v0));
    t0 = f32x4.add(t0, f32x4.mul(y, v0));
    const v1 = v128.load(b, TAU_STRIDE);
    s1 = f32x4.add(s1, f32x4.mul(x, v1));
    t1 = f32x4.add(t1, f32x4.mul(y, v1));
    if (cols == 4) {
      const v2 = v128.load(b, 2 * TAU_STRIDE);
      s2 = f32x4.add(s2, f32x4.mul(x, v2));
      t2 = f32x4.add(t2, f32x4.mul(y, v2));
      const v3 = v128.load(b, 3 * TAU_STRIDE);
      s3 = f32x4.add(s3, f32x4.mul(x, v3));
      t3 = f32x4.add(t3, f32x4.mul(y, v3));
    }
  }
  flushTo(gram, K, i, j, s0);
  flushTo(gram, K, i, j + 1, s1);
  if (j > i) flushTo(gram, K, i + 1, j, t0);
  flushTo(gram, K, i + 1, j + 1, t1);
  if (cols == 4) {
    flushTo(gram, K, i, j + 2, s2);
    flushTo(gram, K, i, j + 3, s3);
    flushTo(gram, K, i + 1, j + 2, t2);
    flushTo(gram, K, i + 1, j + 3, t3);
  }
}

function gramBlockTau(tau: usize, K: i32, len: i32, gram: usize): void {
  const bytes: usize = <usize>len << 2;
  let i = 0;
  for (; i + 2 <= K; i += 2) {
    const pi = tau + <usize>i * TAU_STRIDE;
    let j = i;
    for (; j + 4 <= K; j += 4) tauTile(pi, tau + <usize>j * TAU_STRIDE, bytes, gram, K, i, j, 4);
    if (j + 2 <= K) {
      tauTile(pi, tau + <usize>j * TAU_STRIDE, bytes, gram, K, i, j, 2);
      j += 2;
    }
    if (j < K) {
      // One column left (K odd): rows i and i + 1 against row j.
      const pj = tau + <usize>j * TAU_STRIDE;
      let s0 = f32x4.splat(0);
      let t0 = f32x4.splat(0);
      for (let o: usize = 0; o < bytes; o += 16) {
        const v = v128.load(pj + o);
        s0 = f32x4.add(s0, f32x4.mul(v128.load(pi + o), v));
        t0 = f32x4.add(t0, f32x4.mul(v128.load(pi + o, TAU_STRIDE), v));
      }
      flushTo(gram, K, i, j, s0);
      if (j > i) flushTo(gram, K, i + 1, j, t0);
    }
  }
  if (i < K) {
    const pi = tau + <usize>i * TAU_STRIDE;
    let s0 = f32x4.splat(0);
    for (let o: usize = 0; o < bytes; o += 16) {
      const x = v128.load(pi + o);
      s0 = f32x4.add(s0, f32x4.mul(x, x));
    }
    flushTo(gram, K, i, i, s0);
  }
}

/**
 * gram[i*K+j] += Σ_e τ_i[e]·τ_j[e] (i ≤ j) with τ_i = models_i − base in float32, built FLUSH elements at a time
 * in the scratch tau (K·FLUSH floats).
 */
export function gramOfDifferencesUpper(models: usize, K: i32, n: i32, stride: usize, base: usize, gram: usize, tau: usize): void {
  const tauStride: usize = TAU_STRIDE;
  for (let from = 0; from < n; from += FLUSH) {
    const len = min(FLUSH, n - from);
    const lenv = len & ~3;
    const off: usize = <usize>from << 2;
    for (let i = 0; i < K; i++) {
      const m = models + <usize>i * stride + off;
      const t = tau + <usize>i * tauStride;
      for (let o: usize = 0; o < (<usize>lenv << 2); o += 16) {
        v128.store(t + o, f32x4.sub(v128.load(m + o), v128.load(base + off + o)));
      }
      for (let e = lenv; e < len; e++) {
        const o = <usize>e << 2;
        store<f32>(t + o, load<f32>(m + o) - load<f32>(base + off + o));
      }
    }
    gramBlockTau(tau, K, lenv, gram);
    gramTail(tau, K, tauStride, lenv, len, gram);
  }
}

/**
 * out[e] = f32(Σ_i coeffs_i·f64(f32(models_i[e] − base[e]))), sums in float64 in the order i = 0..K−1, exactly as
 * combineJs.ts (no fused multiply-add, so the results are bit-identical); with plusBase, base[e] + that in
 * float32 (task arithmetic's output θ_0 + m in one pass).
 */
export function weightedSumOfDifferences(base: usize, models: usize, K: i32, n: i32, stride: usize, coeffs: usize, out: usize, plusBase: i32): void {
  // Eight elements a step: four independent float64 chains hide the add latency (each element's sum still runs
  // in the order i = 0..K−1).
  const n8 = n & ~7;
  for (let e = 0; e < n8; e += 8) {
    const o = <usize>e << 2;
    const b0 = v128.load(base + o);
    const b1 = v128.load(base + o, 16);
    let a0 = f64x2.splat(0);
    let a1 = f64x2.splat(0);
    let a2 = f64x2.splat(0);
    let a3 = f64x2.splat(0);
    for (let i = 0; i < K; i++) {
      const c = f64x2.splat(load<f64>(coeffs + (<usize>i << 3)));
      const m = models + <usize>i * stride + o;
      const t0 = f32x4.sub(v128.load(m), b0);
      const t1 = f32x4.sub(v128.load(m, 16), b1);
      a0 = f64x2.add(a0, f64x2.mul(c, f64x2.promote_low_f32x4(t0)));
      a1 = f64x2.add(a1, f64x2.mul(c, f64x2.promote_low_f32x4(v128.shuffle<f32>(t0, t0, 2, 3, 0, 1))));
      a2 = f64x2.add(a2, f64x2.mul(c, f64x2.promote_low_f32x4(t1)));
      a3 = f64x2.add(a3, f64x2.mul(c, f64x2.promote_low_f32x4(v128.shuffle<f32>(t1, t1, 2, 3, 0, 1))));
    }
    const m0 = v128.shuffle<f32>(f32x4.demote_f64x2_zero(a0), f32x4.demote_f64x2_zero(a1), 0, 1, 4, 5);
    const m1 = v128.shuffle<f32>(f32x4.demote_f64x2_zero(a2), f32x4.demote_f64x2_zero(a3), 0, 1, 4, 5);
    v128.store(out + o, plusBase ? f32x4.add(b0, m0) : m0);
    v128.store(out + o, plusBase ? f32x4.add(b1, m1) : m1, 16);
  }
  const nv = n & ~3;
  for (let e = n8; e < nv; e += 4) {
    const o = <usize>e << 2;
    const b = v128.load(base + o);
    let lo = f64x2.splat(0);
    let hi = f64x2.splat(0);
    for (let i = 0; i < K; i++) {
      const c = f64x2.splat(load<f64>(coeffs + (<usize>i << 3)));
      const t = f32x4.sub(v128.load(models + <usize>i * stride + o), b);
      lo = f64x2.add(lo, f64x2.mul(c, f64x2.promote_low_f32x4(t)));
      hi = f64x2.add(hi, f64x2.mul(c, f64x2.promote_low_f32x4(v128.shuffle<f32>(t, t, 2, 3, 0, 1))));
    }
    const m = v128.shuffle<f32>(f32x4.demote_f64x2_zero(lo), f32x4.demote_f64x2_zero(hi), 0, 1, 4, 5);
    v128.store(out + o, plusBase ? f32x4.add(b, m) : m);
  }
  for (let e = nv; e < n; e++) {
    const o = <usize>e << 2;
    let s: f64 = 0;
    for (let i = 0; i < K; i++) {
      s += load<f64>(coeffs + (<usize>i << 3)) * <f64>(load<f32>(models + <usize>i * stride + o) - load<f32>(base + o));
    }
    store<f32>(out + o, plusBase ? load<f32>(base + o) + <f32>s : <f32>s);
  }
}

// Widens rows (K rows at stride bytes, elements [from, from+len), len a multiple of 4) to float64 in wide
// (K rows of FLUSH doubles).
function widen(rows: usize, K: i32, stride: usize, from: i32, len: i32, wide: usize): void {
  const off: usize = <usize>from << 2;
  const b: usize = <usize>len << 2;
  for (let i = 0; i < K; i++) {
    const r = rows + <usize>i * stride + off;
    const w = wide + <usize>i * (<usize>FLUSH << 3);
    for (let o: usize = 0; o < b; o += 16) {
      const x = v128.load(r + o);
      v128.store(w + (o << 1), f64x2.promote_low_f32x4(x));
      v128.store(w + (o << 1) + 16, f64x2.promote_low_f32x4(v128.shuffle<f32>(x, x, 2, 3, 0, 1)));
    }
  }
}

// gram[i*K+j] += Σ_e wide_i[e]·wide_j[e] over len (even) doubles per row: exact products, float64 sums.
// Register tiles of 2 rows i × 4 rows j, as gramBlock.
function gramBlock64(wide: usize, K: i32, len: i32, gram: usize): void {
  const ws: usize = <usize>FLUSH << 3;
  const b: usize = <usize>len << 3;
  let i = 0;
  for (; i + 2 <= K; i += 2) {
    const ri = wide + <usize>i * ws;
    const rk = ri + ws;
    let j = i;
    for (; j + 4 <= K; j += 4) {
      const r0 = wide + <usize>j * ws;
      const r1 = r0 + ws;
      const r2 = r1 + ws;
      const r3 = r2 + ws;
      let s0 = f64x2.splat(0);
      let s1 = f64x2.splat(0);
      let s2 = f64x2.splat(0);
      let s3 = f64x2.splat(0);
      let t0 = f64x2.splat(0);
      let t1 = f64x2.splat(0);
      let t2 = f64x2.splat(0);
      let t3 = f64x2.splat(0);
      for (let o: usize = 0; o < b; o += 16) {
        const x = v128.load(ri + o);
        const y = v128.load(rk + o);
        const v0 = v128.load(r0 + o);
        s0 = f64x2.add(s0, f64x2.mul(x, v0));
        t0 = f64x2.add(t0, f64x2.mul(y, v0));
        const v1 = v128.load(r1 + o);
        s1 = f64x2.add(s1, f64x2.mul(x, v1));
        t1 = f64x2.add(t1, f64x2.mul(y, v1));
        const v2 = v128.load(r2 + o);
        s2 = f64x2.add(s2, f64x2.mul(x, v2));
        t2 = f64x2.add(t2, f64x2.mul(y, v2));
        const v3 = v128.load(r3 + o);
        s3 = f64x2.add(s3, f64x2.mul(x, v3));
        t3 = f64x2.add(t3, f64x2.mul(y, v3));
      }
      flush64To(gram, K, i, j, s0);
      flush64To(gram, K, i, j + 1, s1);
      flush64To(gram, K, i, j + 2, s2);
      flush64To(gram, K, i, j + 3, s3);
      if (j > i) flush64To(gram, K, i + 1, j, t0);
      flush64To(gram, K, i + 1, j + 1, t1);
      flush64To(gram, K, i + 1, j + 2, t2);
      flush64To(gram, K, i + 1, j + 3, t3);
    }
    for (; j < K; j++) {
      const rj = wide + <usize>j * ws;
      let s0 = f64x2.splat(0);
      let t0 = f64x2.splat(0);
      for (let o: usize = 0; o < b; o += 16) {
        const v = v128.load(rj + o);
        s0 = f64x2.add(s0, f64x2.mul(v128.load(ri + o), v));
        t0 = f64x2.add(t0, f64x2.mul(v128.load(rk + o), v));
      }
      flush64To(gram, K, i, j, s0);
      if (j > i) flush64To(gram, K, i + 1, j, t0);
    }
  }
  if (i < K) {
    const ri = wide + <usize>i * ws;
    let s0 = f64x2.splat(0);
    for (let o: usize = 0; o < b; o += 16) {
      const x = v128.load(ri + o);
      s0 = f64x2.add(s0, f64x2.mul(x, x));
    }
    flush64To(gram, K, i, i, s0);
  }
}

/** As gramUpper with exact float64 products and sums; wide: scratch of K·FLUSH doubles. */
export function gramUpperF64(rows: usize, K: i32, n: i32, stride: usize, gram: usize, wide: usize): void {
  const ne = n & ~3;
  for (let from = 0; from < ne; from += FLUSH) {
    const len = min(FLUSH, ne - from);
    widen(rows, K, stride, from, len, wide);
    gramBlock64(wide, K, len, gram);
  }
  gramTail(rows, K, stride, ne, n, gram);
}

// TIES's disjoint merge of four elements at byte offset o, given their weighted sums ta (elements 0, 1) and tb
// (2, 3): entries agreeing with the sign of the sum, Σ w_i τ'_i over them in float64 (÷ Σ w_i when normalize, 0 if
// that is 0), stored as float32 at out + o.
@inline
function disjointMerge4(rows: usize, K: i32, stride: usize, o: usize, weights: usize, normalize: i32, out: usize, ta: v128, tb: v128): void {
  const zero = f64x2.splat(0);
  const posA = f64x2.gt(ta, zero);
  const negA = f64x2.lt(ta, zero);
  const posB = f64x2.gt(tb, zero);
  const negB = f64x2.lt(tb, zero);
  let sa = zero;
  let sb = zero;
  let wa = zero;
  let wb = zero;
  for (let i = 0; i < K; i++) {
    const w = f64x2.splat(load<f64>(weights + (<usize>i << 3)));
    const x = v128.load(rows + <usize>i * stride + o);
    const va = f64x2.promote_low_f32x4(x);
    const vb = f64x2.promote_low_f32x4(v128.shuffle<f32>(x, x, 2, 3, 0, 1));
    const agreeA = v128.or(v128.and(posA, f64x2.gt(va, zero)), v128.and(negA, f64x2.lt(va, zero)));
    const agreeB = v128.or(v128.and(posB, f64x2.gt(vb, zero)), v128.and(negB, f64x2.lt(vb, zero)));
    sa = f64x2.add(sa, v128.and(f64x2.mul(w, va), agreeA));
    sb = f64x2.add(sb, v128.and(f64x2.mul(w, vb), agreeB));
    wa = f64x2.add(wa, v128.and(w, agreeA));
    wb = f64x2.add(wb, v128.and(w, agreeB));
  }
  let ra = sa;
  let rb = sb;
  if (normalize) {
    ra = v128.andnot(f64x2.div(sa, wa), f64x2.eq(wa, zero));
    rb = v128.andnot(f64x2.div(sb, wb), f64x2.eq(wb, zero));
  }
  v128.store(out + o, v128.shuffle<f32>(f32x4.demote_f64x2_zero(ra), f32x4.demote_f64x2_zero(rb), 0, 1, 4, 5));
}

// disjointMerge4 on eight elements (two quads): twice the independent chains, the same sums per element; with
// `unit` (every weight 1, a constant at each call) w·x is x.
@inline
function agreeMask(total: v128, v: v128): v128 {
  const zero = f64x2.splat(0);
  return v128.or(v128.and(f64x2.gt(total, zero), f64x2.gt(v, zero)), v128.and(f64x2.lt(total, zero), f64x2.lt(v, zero)));
}

@inline
function disjointMerge8(rows: usize, K: i32, stride: usize, o: usize, weights: usize, normalize: i32, out: usize, ta: v128, tb: v128, tc: v128, td: v128, unit: bool): void {
  const zero = f64x2.splat(0);
  let sa = zero;
  let sb = zero;
  let sc = zero;
  let sd = zero;
  let wa = zero;
  let wb = zero;
  let wc = zero;
  let wd = zero;
  for (let i = 0; i < K; i++) {
    const w = unit ? f64x2.splat(1) : f64x2.splat(load<f64>(weights + (<usize>i << 3)));
    const p = rows + <usize>i * stride + o;
    const x = v128.load(p);
    const y = v128.load(p, 16);
    const va = f64x2.promote_low_f32x4(x);
    const vb = f64x2.promote_low_f32x4(v128.shuffle<f32>(x, x, 2, 3, 0, 1));
    const vc = f64x2.promote_low_f32x4(y);
    const vd = f64x2.promote_low_f32x4(v128.shuffle<f32>(y, y, 2, 3, 0, 1));
    const agreeA = agreeMask(ta, va);
    const agreeB = agreeMask(tb, vb);
    const agreeC = agreeMask(tc, vc);
    const agreeD = agreeMask(td, vd);
    sa = f64x2.add(sa, v128.and(unit ? va : f64x2.mul(w, va), agreeA));
    sb = f64x2.add(sb, v128.and(unit ? vb : f64x2.mul(w, vb), agreeB));
    sc = f64x2.add(sc, v128.and(unit ? vc : f64x2.mul(w, vc), agreeC));
    sd = f64x2.add(sd, v128.and(unit ? vd : f64x2.mul(w, vd), agreeD));
    wa = f64x2.add(wa, v128.and(w, agreeA));
    wb = f64x2.add(wb, v128.and(w, agreeB));
    wc = f64x2.add(wc, v128.and(w, agreeC));
    wd = f64x2.add(wd, v128.and(w, agreeD));
  }
  if (normalize) {
    sa = v128.andnot(f64x2.div(sa, wa), f64x2.eq(wa, zero));
    sb = v128.andnot(f64x2.div(sb, wb), f64x2.eq(wb, zero));
    sc = v128.andnot(f64x2.div(sc, wc), f64x2.eq(wc, zero));
    sd = v128.andnot(f64x2.div(sd, wd), f64x2.eq(wd, zero));
  }
  v128.store(out + o, v128.shuffle<f32>(f32x4.demote_f64x2_zero(sa), f32x4.demote_f64x2_zero(sb), 0, 1, 4, 5));
  v128.store(out + o, v128.shuffle<f32>(f32x4.demote_f64x2_zero(sc), f32x4.demote_f64x2_zero(sd), 0, 1, 4, 5), 16);
}

/**
 * TIES elect and disjoint merge (ties.ts tiesMergeChunk, bit-identical): total = Σ_i w_i τ'_i in float64;
 * agreeing entries have the sign of total; out = Σ_agree w_i τ'_i (/ Σ_agree w_i when normalize, 0 if that is 0).
 */
export function tiesMerge(rows: usize, K: i32, n: i32, stride: usize, weights: usize, normalize: i32, out: usize): void {
  const zero = f64x2.splat(0);
  // Four elements a step (two independent float64 chains each for total, sum and wsum, to hide the add latency);
  // every element's sums still run in the order i = 0..K−1.
  const n4 = n & ~3;
  for (let e = 0; e < n4; e += 4) {
    const o = <usize>e << 2;
    let ta = zero;
    let tb = zero;
    for (let i = 0; i < K; i++) {
      const w = f64x2.splat(load<f64>(weights + (<usize>i << 3)));
      const x = v128.load(rows + <usize>i * stride + o);
      ta = f64x2.add(ta, f64x2.mul(w, f64x2.promote_low_f32x4(x)));
      tb = f64x2.add(tb, f64x2.mul(w, f64x2.promote_low_f32x4(v128.shuffle<f32>(x, x, 2, 3, 0, 1))));
    }
    disjointMerge4(rows, K, stride, o, weights, normalize, out, ta, tb);
  }
  const nv = n & ~1;
  for (let e = n4; e < nv; e += 2) {
    const o = <usize>e << 2;
    let total = zero;
    for (let i = 0; i < K; i++) {
      const w = f64x2.splat(load<f64>(weights + (<usize>i << 3)));
      const v = f64x2.promote_low_f32x4(v128.load64_zero(rows + <usize>i * stride + o));
      total = f64x2.add(total, f64x2.mul(w, v));
    }
    const pos = f64x2.gt(total, zero);
    const neg = f64x2.lt(total, zero);
    let sum = zero;
    let wsum = zero;
    for (let i = 0; i < K; i++) {
      const w = f64x2.splat(load<f64>(weights + (<usize>i << 3)));
      const v = f64x2.promote_low_f32x4(v128.load64_zero(rows + <usize>i * stride + o));
      const agree = v128.or(v128.and(pos, f64x2.gt(v, zero)), v128.and(neg, f64x2.lt(v, zero)));
      sum = f64x2.add(sum, v128.and(f64x2.mul(w, v), agree));
      wsum = f64x2.add(wsum, v128.and(w, agree));
    }
    let r = sum;
    if (normalize) r = v128.andnot(f64x2.div(sum, wsum), f64x2.eq(wsum, zero));
    v128.store64_lane(out + o, f32x4.demote_f64x2_zero(r), 0);
  }
  for (let e = nv; e < n; e++) {
    const o = <usize>e << 2;
    let total: f64 = 0;
    for (let i = 0; i < K; i++) total += load<f64>(weights + (<usize>i << 3)) * <f64>load<f32>(rows + <usize>i * stride + o);
    let sum: f64 = 0;
    let wsum: f64 = 0;
    for (let i = 0; i < K; i++) {
      const w = load<f64>(weights + (<usize>i << 3));
      const v = <f64>load<f32>(rows + <usize>i * stride + o);
      if ((total > 0 && v > 0) || (total < 0 && v < 0)) {
        sum += w * v;
        wsum += w;
      }
    }
    store<f32>(out + o, <f32>(normalize ? (wsum != 0 ? sum / wsum : 0) : sum));
  }
}

/** row[e] = 0 where |row[e]| < t (t: the smallest float32 ≥ the caller's threshold), branch-free. */
export function trimBelow(row: usize, n: i32, t: f32): void {
  const nv = n & ~3;
  const tv = f32x4.splat(t);
  for (let e = 0; e < nv; e += 4) {
    const p = row + (<usize>e << 2);
    const x = v128.load(p);
    v128.store(p, v128.andnot(x, f32x4.lt(f32x4.abs(x), tv)));
  }
  for (let e = nv; e < n; e++) {
    const p = row + (<usize>e << 2);
    if (abs<f32>(load<f32>(p)) < t) store<f32>(p, 0);
  }
}

// dare.ts mix32 on four lanes.
@inline
function mix32x4(x: v128): v128 {
  x = v128.xor(x, i32x4.shr_u(x, 16));
  x = i32x4.mul(x, i32x4.splat(0x7feb352d));
  x = v128.xor(x, i32x4.shr_u(x, 15));
  x = i32x4.mul(x, i32x4.splat(0x846ca68b));
  return v128.xor(x, i32x4.shr_u(x, 16));
}

@inline
function mix32(x: u32): u32 {
  x ^= x >>> 16;
  x *= 0x7feb352d;
  x ^= x >>> 15;
  x *= 0x846ca68b;
  return x ^ (x >>> 16);
}

/**
 * DARE drop and rescale in place (dare.ts dareRescaleInPlace, bit-identical): element e of row has index
 * start + e; hash h = mix(mix(mix(lo ^ k0) ^ hi ^ k1) + k2); kept when h < keepBelow (keepAll: every h),
 * then x/density in float64 rounded to float32.
 */
export function dareRescale(row: usize, n: i32, start: u64, k0: u32, k1: u32, k2: u32, keepBelow: u32, keepAll: i32, density: f64): void {
  const nv = n & ~3;
  const d = f64x2.splat(density);
  const bias = i32x4.splat(0x80000000);
  const limit = v128.xor(i32x4.splat(<i32>keepBelow), bias);
  for (let e = 0; e < nv; e += 4) {
    const idx = start + <u64>e;
    const lo0 = <u32>idx;
    const hi0 = <u32>(idx >> 32);
    const lo = i32x4.add(i32x4.splat(<i32>lo0), i32x4(0, 1, 2, 3));
    // A lane whose low word wrapped past 2^32 carries into the high word.
    const carry = i32x4.lt_u(lo, i32x4.splat(<i32>lo0));
    const hi = i32x4.sub(i32x4.splat(<i32>hi0), carry);
    let h = mix32x4(v128.xor(lo, i32x4.splat(<i32>k0)));
    h = mix32x4(v128.xor(v128.xor(h, hi), i32x4.splat(<i32>k1)));
    h = mix32x4(i32x4.add(h, i32x4.splat(<i32>k2)));
    // Unsigned h < keepBelow through a signed compare of both sides with the top bit flipped.
    const keep = keepAll ? i32x4.splat(-1) : i32x4.lt_s(v128.xor(h, bias), limit);
    const p = row + (<usize>e << 2);
    const x = v128.load(p);
    const a = f32x4.demote_f64x2_zero(f64x2.div(f64x2.promote_low_f32x4(x), d));
    const b = f32x4.demote_f64x2_zero(f64x2.div(f64x2.promote_low_f32x4(v128.shuffle<f32>(x, x, 2, 3, 0, 1)), d));
    v128.store(p, v128.and(v128.shuffle<f32>(a, b, 0, 1, 4, 5), keep));
  }
  for (let e = nv; e < n; e++) {
    const idx = start + <u64>e;
    let h = mix32(<u32>idx ^ k0);
    h = mix32(h ^ <u32>(idx >> 32) ^ k1);
    h = mix32(h + k2);
    const p = row + (<usize>e << 2);
    store<f32>(p, keepAll || h < keepBelow ? <f32>(<f64>load<f32>(p) / density) : 0);
  }
}

/**
 * As gramOfDifferencesUpper with exact float64 products and sums: τ_i = models_i − base in float32, widened to
 * float64 in the scratch wide (K·FLUSH doubles).
 */
export function gramOfDifferencesUpperF64(models: usize, K: i32, n: i32, stride: usize, base: usize, gram: usize, wide: usize): void {
  const ws: usize = <usize>FLUSH << 3;
  for (let from = 0; from < n; from += FLUSH) {
    const len = min(FLUSH, n - from);
    const lenv = len & ~3;
    const off: usize = <usize>from << 2;
    for (let i = 0; i < K; i++) {
      const m = models + <usize>i * stride + off;
      const w = wide + <usize>i * ws;
      for (let o: usize = 0; o < (<usize>lenv << 2); o += 16) {
        const t = f32x4.sub(v128.load(m + o), v128.load(base + off + o));
        v128.store(w + (o << 1), f64x2.promote_low_f32x4(t));
        v128.store(w + (o << 1) + 16, f64x2.promote_low_f32x4(v128.shuffle<f32>(t, t, 2, 3, 0, 1)));
      }
      for (let e = lenv; e < len; e++) {
        const o = <usize>e << 2;
        store<f64>(w + (<usize>e << 3), <f64>(load<f32>(m + o) - load<f32>(base + off + o)));
      }
    }
    gramBlock64(wide, K, lenv, gram);
    // The last len % 4 elements, already widened.
    for (let i = 0; i < K; i++) {
      for (let j = i; j < K; j++) {
        let s: f64 = 0;
        for (let e = lenv; e < len; e++) {
          s += load<f64>(wide + <usize>i * ws + (<usize>e << 3)) * load<f64>(wide + <usize>j * ws + (<usize>e << 3));
        }
        addTo(gram, K, i, j, s);
      }
    }
  }
}

/** How many of the n float32 at row are NaN or ±Inf: exponent bits all ones (merge/nonFiniteGuard.ts). */
export function countNonFinite(row: usize, n: i32): i32 {
  const nv = n & ~7;
  const exponent = i32x4.splat(0x7f800000);
  // Each lane adds 1 (subtracts the all-ones mask) per non-finite entry; two accumulators for two loads a step.
  let a = i32x4.splat(0);
  let b = i32x4.splat(0);
  for (let e = 0; e < nv; e += 8) {
    const p = row + (<usize>e << 2);
    a = i32x4.sub(a, i32x4.eq(v128.and(v128.load(p), exponent), exponent));
    b = i32x4.sub(b, i32x4.eq(v128.and(v128.load(p, 16), exponent), exponent));
  }
  const s = i32x4.add(a, b);
  let count = i32x4.extract_lane(s, 0) + i32x4.extract_lane(s, 1) + i32x4.extract_lane(s, 2) + i32x4.extract_lane(s, 3);
  for (let e = nv; e < n; e++) {
    if ((load<u32>(row + (<usize>e << 2)) & 0x7f800000) == 0x7f800000) count++;
  }
  return count;
}

/**
 * merge/tensorStats.ts's block statistics, continued in state: element e (counted from the block's start, which
 * every call continues in steps of 4) goes to lane e % 4 of Σx, Σx² (float64; a non-finite x adds +0), min and
 * max (x < min / x > max, the first of equal values staying: f32x4.pmin/pmax) over the finite x; then the counts
 * of finite, NaN and ±Inf entries. state: float64 × 19 = sums[4], squares[4], min[4], max[4], finite, nan, inf.
 * Bit-identical to blockLanesJs.
 */
export function statisticsLanes(x: usize, n: i32, state: usize): void {
  let s01 = v128.load(state);
  let s23 = v128.load(state, 16);
  let q01 = v128.load(state, 32);
  let q23 = v128.load(state, 48);
  let lo = v128.shuffle<f32>(f32x4.demote_f64x2_zero(v128.load(state, 64)), f32x4.demote_f64x2_zero(v128.load(state, 80)), 0, 1, 4, 5);
  let hi = v128.shuffle<f32>(f32x4.demote_f64x2_zero(v128.load(state, 96)), f32x4.demote_f64x2_zero(v128.load(state, 112)), 0, 1, 4, 5);
  const exponent = i32x4.splat(0x7f800000);
  const inf = f32x4.splat(Infinity);
  const ninf = f32x4.splat(-Infinity);
  let finite = i32x4.splat(0);
  let nan = i32x4.splat(0);
  const nv = n & ~3;
  for (let e = 0; e < nv; e += 4) {
    const v = v128.load(x + (<usize>e << 2));
    const ok = i32x4.ne(v128.and(v, exponent), exponent);
    const z = v128.and(v, ok);
    const a = f64x2.promote_low_f32x4(z);
    const b = f64x2.promote_low_f32x4(v128.shuffle<f32>(z, z, 2, 3, 0, 1));
    s01 = f64x2.add(s01, a);
    s23 = f64x2.add(s23, b);
    q01 = f64x2.add(q01, f64x2.mul(a, a));
    q23 = f64x2.add(q23, f64x2.mul(b, b));
    lo = f32x4.pmin(lo, v128.bitselect(v, inf, ok));
    hi = f32x4.pmax(hi, v128.bitselect(v, ninf, ok));
    finite = i32x4.sub(finite, ok);
    nan = i32x4.sub(nan, f32x4.ne(v, v));
  }
  v128.store(state, s01);
  v128.store(state, s23, 16);
  v128.store(state, q01, 32);
  v128.store(state, q23, 48);
  v128.store(state, f64x2.promote_low_f32x4(lo), 64);
  v128.store(state, f64x2.promote_low_f32x4(v128.shuffle<f32>(lo, lo, 2, 3, 0, 1)), 80);
  v128.store(state, f64x2.promote_low_f32x4(hi), 96);
  v128.store(state, f64x2.promote_low_f32x4(v128.shuffle<f32>(hi, hi, 2, 3, 0, 1)), 112);
  let nf = i32x4.extract_lane(finite, 0) + i32x4.extract_lane(finite, 1) + i32x4.extract_lane(finite, 2) + i32x4.extract_lane(finite, 3);
  let nn = i32x4.extract_lane(nan, 0) + i32x4.extract_lane(nan, 1) + i32x4.extract_lane(nan, 2) + i32x4.extract_lane(nan, 3);
  for (let e = nv; e < n; e++) {
    const v = <f64>load<f32>(x + (<usize>e << 2));
    const lane = <usize>(e & 3) << 3;
    if (v - v == 0) {
      nf++;
      store<f64>(state + lane, load<f64>(state + lane) + v);
      store<f64>(state + lane, load<f64>(state + lane, 32) + v * v, 32);
      if (v < load<f64>(state + lane, 64)) store<f64>(state + lane, v, 64);
      if (v > load<f64>(state + lane, 96)) store<f64>(state + lane, v, 96);
    } else {
      store<f64>(state + lane, load<f64>(state + lane) + 0, 0);
      store<f64>(state + lane, load<f64>(state + lane, 32) + 0, 32);
      if (v != v) nn++;
    }
  }
  store<f64>(state, load<f64>(state, 128) + <f64>nf, 128);
  store<f64>(state, load<f64>(state, 136) + <f64>nn, 136);
  store<f64>(state, load<f64>(state, 144) + <f64>(n - nf - nn), 144);
}

/** rows_i[e] = rows_i[e] − sub[e] in float32 for i < K (τ = θ_i − θ_0, and τ̂ = τ − δ), as subtractInto. */
export function subtractFromRows(rows: usize, K: i32, n: i32, stride: usize, sub: usize): void {
  const nv = n & ~3;
  for (let i = 0; i < K; i++) {
    const r = rows + <usize>i * stride;
    for (let e = 0; e < nv; e += 4) {
      const o = <usize>e << 2;
      v128.store(r + o, f32x4.sub(v128.load(r + o), v128.load(sub + o)));
    }
    for (let e = nv; e < n; e++) {
      const o = <usize>e << 2;
      store<f32>(r + o, load<f32>(r + o) - load<f32>(sub + o));
    }
  }
}

/**
 * The magnitude histograms of merge/magnitude.ts over n float32 at row, into the counts of type T at hist (65536
 * entries): with bucket < 0 the high 16 bits of |x|'s bit pattern (below 32768: the sign bit is cleared); else the
 * low 16 bits of the entries whose high 16 bits are bucket (the second pass, which skips four entries at a time
 * when none is in the bucket).
 */
@inline
function histogramOf<T>(row: usize, n: i32, bucket: i32, hist: usize): void {
  const shift: usize = sizeof<T>() == 8 ? 3 : 2;
  if (bucket < 0) {
    for (let e = 0; e < n; e++) {
      const p = hist + (<usize>((load<u32>(row + (<usize>e << 2)) & 0x7fffffff) >>> 16) << shift);
      store<T>(p, load<T>(p) + 1);
    }
    return;
  }
  const nv = n & ~3;
  const high = i32x4.splat(0x7fff0000);
  const wanted = i32x4.splat(bucket << 16);
  for (let e = 0; e < nv; e += 4) {
    const x = v128.load(row + (<usize>e << 2));
    if (!v128.any_true(i32x4.eq(v128.and(x, high), wanted))) continue;
    for (let j = e; j < e + 4; j++) countLow<T>(load<u32>(row + (<usize>j << 2)), bucket, hist, shift);
  }
  for (let e = nv; e < n; e++) countLow<T>(load<u32>(row + (<usize>e << 2)), bucket, hist, shift);
}

@inline
function countLow<T>(bits: u32, bucket: i32, hist: usize, shift: usize): void {
  const v = bits & 0x7fffffff;
  if (<i32>(v >>> 16) == bucket) {
    const p = hist + (<usize>(v & 0xffff) << shift);
    store<T>(p, load<T>(p) + 1);
  }
}

/** merge/magnitude.ts HIGH_BUCKETS: buckets of the sample histograms (bucket b: patterns b·65536 … b·65536 + 65535). */
const HIGH_BUCKETS: i32 = 1 << 15;

/** The bucket holding rank r (0-based, ascending) of a HIGH_BUCKETS-bucket histogram (uint32 counts); the last at most. */
function rankBucket(hist: usize, r: f64): i32 {
  let before: f64 = 0;
  let b = 0;
  for (; b < HIGH_BUCKETS - 1 && before + <f64>load<u32>(hist + ((<usize>b) << 2)) <= r; b++) before += <f64>load<u32>(hist + ((<usize>b) << 2));
  return b;
}

/**
 * A TIES sample's bracket (merge/tiesThresholds.ts sampleBracketJs, the same arithmetic in the same order): the
 * sample is m values of τ̂ at row, in slices of sliceLength back to back, histogrammed in hist. The margin around
 * the sample's rank idx is the larger of `binomial` (4 standard errors of a rank under independent sampling) and 4
 * standard errors of the count above that rank's bucket from the slices' own counts (slices are runs of
 * neighbours: rows of a matrix whose scales differ move together), at most `cap`; plus `floorTerm`. out: int32
 * loIdx, hiIdx and the buckets holding them.
 */
export function sampleBracket(row: usize, m: i32, sliceLength: i32, hist: usize, idx: f64, binomial: f64, floorTerm: f64, cap: f64, out: usize): void {
  const star = rankBucket(hist, Math.floor(idx));
  const slices = (m + sliceLength - 1) / sliceLength;
  // Σc and Σc² over the slices' counts (integers, exact in float64), then their spread.
  let total: f64 = 0;
  let squares: f64 = 0;
  // |x|'s pattern ≥ star·65536 ⇔ its bucket ≥ star (signed compare: the sign bit is cleared first).
  const limit = i32x4.splat(star << 16);
  const magnitude = i32x4.splat(0x7fffffff);
  for (let s = 0; s < slices; s++) {
    const from = s * sliceLength;
    const end = min(m, from + sliceLength);
    let lanes = i32x4.splat(0);
    let e = from;
    for (; e + 4 <= end; e += 4) lanes = i32x4.sub(lanes, i32x4.ge_s(v128.and(v128.load(row + (<usize>e << 2)), magnitude), limit));
    let c = i32x4.extract_lane(lanes, 0) + i32x4.extract_lane(lanes, 1) + i32x4.extract_lane(lanes, 2) + i32x4.extract_lane(lanes, 3);
    for (; e < end; e++) if (<i32>((load<u32>(row + (<usize>e << 2)) & 0x7fffffff) >>> 16) >= star) c++;
    total += <f64>c;
    squares += <f64>c * <f64>c;
  }
  const spread = max<f64>(0, squares - (total * total) / <f64>slices);
  const se: f64 = slices > 1 ? Math.sqrt((<f64>slices / <f64>(slices - 1)) * spread) : 0;
  const d = Math.ceil(max<f64>(binomial, min<f64>(4 * se, cap)) + floorTerm);
  const loIdx = Math.floor(idx - d);
  const hiIdx = Math.ceil(idx + d);
  store<i32>(out, <i32>loIdx);
  store<i32>(out, <i32>hiIdx, 4);
  store<i32>(out, loIdx <= 0 ? 0 : rankBucket(hist, loIdx), 8);
  store<i32>(out, hiIdx >= <f64>(m - 1) ? 0 : rankBucket(hist, hiIdx), 12);
}

/**
 * The first step of merge/tiesThresholds.ts selectInRange (the same buckets and the same walk): the len values at
 * list, all in [lo, lo + 65536·2^shift), counted into 65536 buckets of 2^shift values (hist: scratch), the bucket
 * holding rank r found, and its values moved to the front of the list (in their order). result: int32 [how many,
 * how many values lie in lower buckets]; the caller ranks the few at the front.
 */
export function selectBucket(list: usize, len: i32, r: i32, lo: i32, shift: i32, hist: usize, result: usize): void {
  memory.fill(hist, 0, 65536 << 2);
  for (let e = 0; e < len; e++) {
    const p = hist + (<usize>(<u32>(load<i32>(list + (<usize>e << 2)) - lo) >>> shift) << 2);
    store<u32>(p, load<u32>(p) + 1);
  }
  let bucket = 0;
  let before = 0;
  while (before + <i32>load<u32>(hist + (<usize>bucket << 2)) <= r) before += <i32>load<u32>(hist + (<usize>(bucket++) << 2));
  let n = 0;
  for (let e = 0; e < len; e++) {
    const v = load<i32>(list + (<usize>e << 2));
    if (<i32>(<u32>(v - lo) >>> shift) == bucket) store<i32>(list + (<usize>(n++) << 2), v);
  }
  store<i32>(result, n);
  store<i32>(result, before, 4);
}

/** histogramOf with uint32 counts (one call's counts, added into float64 by the caller). */
export function magnitudeHistogram(row: usize, n: i32, bucket: i32, hist: usize): void {
  histogramOf<u32>(row, n, bucket, hist);
}

/** histogramOf with uint64 counts: a thread's counts over a whole model, which may pass 2^32. */
export function magnitudeHistogram64(row: usize, n: i32, bucket: i32, hist: usize): void {
  histogramOf<u64>(row, n, bucket, hist);
}

/** First free byte of linear memory: the scratch area managed by kernels/wasm.ts starts here. */
export function heapBase(): usize {
  return __heap_base;
}

/** out[e] = base[e] + scale·m[e] in float32 (merge/methodChunk.ts addScaledInto, bit-identical: θ = θ_0 + λ·m). */
export function addScaled(out: usize, base: usize, m: usize, n: i32, scale: f32): void {
  const nv = n & ~3;
  const s = f32x4.splat(scale);
  for (let e = 0; e < nv; e += 4) {
    const o = <usize>e << 2;
    v128.store(out + o, f32x4.add(v128.load(base + o), f32x4.mul(s, v128.load(m + o))));
  }
  for (let e = nv; e < n; e++) {
    const o = <usize>e << 2;
    store<f32>(out + o, load<f32>(base + o) + scale * load<f32>(m + o));
  }
}

/**
 * One row's part of an exact magnitude selection (merge/tiesThresholds.ts): with a = the bit pattern of |x| (sign
 * cleared; ordered as |x|, NaN above +Inf, as merge/magnitude.ts orders them), counts the a > hi into
 * result[0] and the lo ≤ a ≤ hi into result[1], storing the first `cap` of those a at cand. `dense`: the caller
 * expects many inside (only how fast, never what, it computes).
 */
export function bracketCount(row: usize, n: i32, lo: i32, hi: i32, cand: usize, cap: i32, result: usize, dense: i32): void {
  const mask = i32x4.splat(0x7fffffff);
  const vhi = i32x4.splat(hi);
  const vlo = i32x4.splat(lo - 1);
  let above = i32x4.splat(0);
  let found = 0;
  const nv = n & ~3;
  for (let e = 0; e < nv; e += 4) {
    const a = v128.and(v128.load(row + (<usize>e << 2)), mask);
    const gt = i32x4.gt_s(a, vhi);
    above = i32x4.sub(above, gt);
    const inside = v128.andnot(i32x4.gt_s(a, vlo), gt);
    // Few entries inside (dense = 0): a quad with none skips the stores, a well-predicted branch. Many (a wide
    // bracket): every quad stores, as the branch would be mispredicted about as often as taken.
    if (dense || v128.any_true(inside)) {
      if (found + 4 <= cap) {
        // Branch-free compaction: every lane is stored, the cursor moves past the ones inside.
        store<i32>(cand + (<usize>found << 2), i32x4.extract_lane(a, 0));
        found -= i32x4.extract_lane(inside, 0);
        store<i32>(cand + (<usize>found << 2), i32x4.extract_lane(a, 1));
        found -= i32x4.extract_lane(inside, 1);
        store<i32>(cand + (<usize>found << 2), i32x4.extract_lane(a, 2));
        found -= i32x4.extract_lane(inside, 2);
        store<i32>(cand + (<usize>found << 2), i32x4.extract_lane(a, 3));
        found -= i32x4.extract_lane(inside, 3);
      } else {
        for (let j = 0; j < 4; j++) {
          const v = load<i32>(row + (<usize>(e + j) << 2)) & 0x7fffffff;
          if (v >= lo && v <= hi) {
            if (found < cap) store<i32>(cand + (<usize>found << 2), v);
            found++;
          }
        }
      }
    }
  }
  let count = i32x4.extract_lane(above, 0) + i32x4.extract_lane(above, 1) + i32x4.extract_lane(above, 2) + i32x4.extract_lane(above, 3);
  for (let e = nv; e < n; e++) {
    const v = load<i32>(row + (<usize>e << 2)) & 0x7fffffff;
    if (v > hi) count++;
    else if (v >= lo) {
      if (found < cap) store<i32>(cand + (<usize>found << 2), v);
      found++;
    }
  }
  store<i32>(result, count);
  store<i32>(result, found, 4);
}

/**
 * bfloat16 → float32 (bits << 16, exact; formats/dtypes.ts decodes the same), from src to dst; dst may lie
 * before src in the same buffer as long as src ≥ dst + 2n (a row read into its upper half decodes in place):
 * each group is loaded before anything is stored over input not yet read.
 */
export function decodeBf16(src: usize, dst: usize, n: i32): void {
  const n8 = n & ~7;
  for (let e = 0; e < n8; e += 8) {
    const x = v128.load(src + (<usize>e << 1));
    const lo = i32x4.extend_low_i16x8_u(x);
    const hi = i32x4.extend_high_i16x8_u(x);
    v128.store(dst + (<usize>e << 2), i32x4.shl(lo, 16));
    v128.store(dst + (<usize>e << 2), i32x4.shl(hi, 16), 16);
  }
  for (let e = n8; e < n; e++) store<u32>(dst + (<usize>e << 2), (<u32>load<u16>(src + (<usize>e << 1))) << 16);
}

/**
 * float32 → bfloat16, round to nearest even, NaN kept quiet with its sign and top payload bits (formats/dtypes.ts
 * float32ToBf16Bits, bit-identical), n values at src to n halves at dst. dst may be src (a row encoded in place):
 * each group of eight is loaded before its four-times-smaller store, which never reaches input not yet read.
 */
export function encodeBf16(src: usize, dst: usize, n: i32): void {
  const n8 = n & ~7;
  const magnitude = i32x4.splat(0x7fffffff);
  const inf = i32x4.splat(0x7f800000);
  const half = i32x4.splat(0x7fff);
  const one = i32x4.splat(1);
  const quiet = i32x4.splat(0x0040);
  for (let e = 0; e < n8; e += 8) {
    const a = v128.load(src + (<usize>e << 2));
    const b = v128.load(src + (<usize>e << 2), 16);
    const ra = v128.bitselect(
      v128.or(i32x4.shr_u(a, 16), quiet),
      i32x4.shr_u(i32x4.add(i32x4.add(a, half), v128.and(i32x4.shr_u(a, 16), one)), 16),
      i32x4.gt_s(v128.and(a, magnitude), inf),
    );
    const rb = v128.bitselect(
      v128.or(i32x4.shr_u(b, 16), quiet),
      i32x4.shr_u(i32x4.add(i32x4.add(b, half), v128.and(i32x4.shr_u(b, 16), one)), 16),
      i32x4.gt_s(v128.and(b, magnitude), inf),
    );
    v128.store(dst + (<usize>e << 1), i16x8.narrow_i32x4_u(ra, rb));
  }
  for (let e = n8; e < n; e++) {
    const bits = load<u32>(src + (<usize>e << 2));
    const r: u32 = (bits & 0x7fffffff) > 0x7f800000 ? (bits >>> 16) | 0x0040 : (bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16;
    store<u16>(dst + (<usize>e << 1), <u16>r);
  }
}

// The eight-element steps of tiesMergeOfDifferences over [0, n8); `unit` (a constant at both calls: two copies) when
// every weight is 1, so that w·x is x and the multiplies go.
@inline
function tiesOfDifferences8(models: usize, K: i32, n8: i32, stride: usize, base: usize, delta: usize, thresholds: usize, weights: usize, normalize: i32, out: usize, unit: bool): void {
  const zero = f64x2.splat(0);
  const hasDelta = delta != 0;
  for (let e = 0; e < n8; e += 8) {
    const o = <usize>e << 2;
    const b = v128.load(base + o);
    const b2 = v128.load(base + o, 16);
    const d = hasDelta ? v128.load(delta + o) : f32x4.splat(0);
    const d2 = hasDelta ? v128.load(delta + o, 16) : f32x4.splat(0);
    let ta = zero;
    let tb = zero;
    let tc = zero;
    let td = zero;
    for (let i = 0; i < K; i++) {
      const p = models + <usize>i * stride + o;
      const t = f32x4.splat(load<f32>(thresholds + (<usize>i << 2)));
      let x = f32x4.sub(v128.load(p), b);
      let y = f32x4.sub(v128.load(p, 16), b2);
      if (hasDelta) {
        x = f32x4.sub(x, d);
        y = f32x4.sub(y, d2);
      }
      x = v128.andnot(x, f32x4.lt(f32x4.abs(x), t));
      y = v128.andnot(y, f32x4.lt(f32x4.abs(y), t));
      v128.store(p, x);
      v128.store(p, y, 16);
      const xa = f64x2.promote_low_f32x4(x);
      const xb = f64x2.promote_low_f32x4(v128.shuffle<f32>(x, x, 2, 3, 0, 1));
      const ya = f64x2.promote_low_f32x4(y);
      const yb = f64x2.promote_low_f32x4(v128.shuffle<f32>(y, y, 2, 3, 0, 1));
      if (unit) {
        ta = f64x2.add(ta, xa);
        tb = f64x2.add(tb, xb);
        tc = f64x2.add(tc, ya);
        td = f64x2.add(td, yb);
      } else {
        const w = f64x2.splat(load<f64>(weights + (<usize>i << 3)));
        ta = f64x2.add(ta, f64x2.mul(w, xa));
        tb = f64x2.add(tb, f64x2.mul(w, xb));
        tc = f64x2.add(tc, f64x2.mul(w, ya));
        td = f64x2.add(td, f64x2.mul(w, yb));
      }
    }
    disjointMerge8(models, K, stride, o, weights, normalize, out, ta, tb, tc, td, unit);
  }
}

/**
 * TIES from the input rows (the output programs, merge/outputProgram.ts): τ'_i = trimBelow(fround(models_i − base)
 * [− delta], thresholds_i) (thresholds: K float32; delta: 0 for none), stored over the rows as the first loop of the
 * elect computes it, then the disjoint merge of tiesMerge: bit-identical to subtractFromRows (twice with δ),
 * trimBelow and tiesMerge called one after the other, with one pass over the rows fewer than those and base and δ
 * loaded once for all K rows.
 */
export function tiesMergeOfDifferences(models: usize, K: i32, n: i32, stride: usize, base: usize, delta: usize, thresholds: usize, weights: usize, normalize: i32, out: usize): void {
  const zero = f64x2.splat(0);
  const hasDelta = delta != 0;
  const n4 = n & ~3;
  // Eight elements a step: four independent float64 chains for the elect and eight for the merge, so that the adds'
  // latency overlaps (each element's sums still run in the order i = 0..K−1: the same bits). With every weight 1
  // (the usual case) w·τ' is τ' exactly, so that copy of the loop leaves out the multiplies.
  const n8 = n & ~7;
  let unit = true;
  for (let i = 0; i < K; i++) if (load<f64>(weights + (<usize>i << 3)) != 1) unit = false;
  if (unit) tiesOfDifferences8(models, K, n8, stride, base, delta, thresholds, weights, normalize, out, true);
  else tiesOfDifferences8(models, K, n8, stride, base, delta, thresholds, weights, normalize, out, false);
  for (let e = n8; e < n4; e += 4) {
    const o = <usize>e << 2;
    const b = v128.load(base + o);
    const d = hasDelta ? v128.load(delta + o) : f32x4.splat(0);
    let ta = zero;
    let tb = zero;
    for (let i = 0; i < K; i++) {
      const p = models + <usize>i * stride + o;
      let x = f32x4.sub(v128.load(p), b);
      if (hasDelta) x = f32x4.sub(x, d);
      x = v128.andnot(x, f32x4.lt(f32x4.abs(x), f32x4.splat(load<f32>(thresholds + (<usize>i << 2)))));
      v128.store(p, x);
      const w = f64x2.splat(load<f64>(weights + (<usize>i << 3)));
      ta = f64x2.add(ta, f64x2.mul(w, f64x2.promote_low_f32x4(x)));
      tb = f64x2.add(tb, f64x2.mul(w, f64x2.promote_low_f32x4(v128.shuffle<f32>(x, x, 2, 3, 0, 1))));
    }
    disjointMerge4(models, K, stride, o, weights, normalize, out, ta, tb);
  }
  // The last n % 4 elements: τ' in place, then tiesMerge's own tails on them (the same bits as tiesMerge gives).
  if (n4 < n) {
    for (let i = 0; i < K; i++) {
      const t = load<f32>(thresholds + (<usize>i << 2));
      for (let e = n4; e < n; e++) {
        const o = <usize>e << 2;
        const p = models + <usize>i * stride + o;
        let x = load<f32>(p) - load<f32>(base + o);
        if (hasDelta) x = x - load<f32>(delta + o);
        store<f32>(p, abs<f32>(x) < t ? 0 : x);
      }
    }
    const o4 = <usize>n4 << 2;
    tiesMerge(models + o4, K, n - n4, stride, weights, normalize, out + o4);
  }
}

// ---- AWD's solver ----

/** merge/awd.ts ZERO_NORM_REL: a norm below this fraction of the largest task-vector norm counts as zero. */
const AWD_ZERO_NORM_REL: f64 = 1e-7;

@inline
function signOf(c: f64): f64 {
  // Math.sign: ±1, and ±0 or NaN as they are.
  return c > 0 ? 1 : c < 0 ? -1 : c;
}

/**
 * AWD's gradient descent in the K-dimensional coefficient space: merge/awd.ts solveAwdJs (awdLossAndGradient and
 * disentangledGram) operation for operation, in float64 and in the same order, so the coefficients and every
 * loss are bit-identical to it. gram: K×K float64 (row-major); a: K float64, the result (δ = Σ_k a_k τ_k, from
 * a = 0); loss: 3 float64 per iterate, iterations + 1 of them (total, orthogonality, ‖δ‖); work: K·K + 4·K float64.
 * squared: the penalty is ‖δ‖² (else ‖δ‖).
 */
export function awdSolve(gram: usize, K: i32, alpha: f64, learningRate: f64, iterations: i32, squared: i32, a: usize, loss: usize, work: usize): void {
  const gu = work;
  const ga = gu + ((<usize>(K * K)) << 3);
  const nrm = ga + ((<usize>K) << 3);
  const b = nrm + ((<usize>K) << 3);
  const g = b + ((<usize>K) << 3);
  const P: f64 = <f64>(K * (K - 1)) / 2;
  for (let k = 0; k < K; k++) store<f64>(a + ((<usize>k) << 3), 0);
  for (let it = 0; it <= iterations; it++) {
    // gu = disentangledGram(gram, a, K)
    for (let i = 0; i < K; i++) {
      let s: f64 = 0;
      for (let k = 0; k < K; k++) s += load<f64>(gram + ((<usize>(i * K + k)) << 3)) * load<f64>(a + ((<usize>k) << 3));
      store<f64>(ga + ((<usize>i) << 3), s);
    }
    let aga: f64 = 0;
    for (let k = 0; k < K; k++) aga += load<f64>(a + ((<usize>k) << 3)) * load<f64>(ga + ((<usize>k) << 3));
    for (let i = 0; i < K; i++) {
      const gai = load<f64>(ga + ((<usize>i) << 3));
      for (let j = 0; j < K; j++) {
        store<f64>(gu + ((<usize>(i * K + j)) << 3), load<f64>(gram + ((<usize>(i * K + j)) << 3)) - gai - load<f64>(ga + ((<usize>j) << 3)) + aga);
      }
    }
    let scale: f64 = 0;
    let aL1: f64 = 0;
    for (let k = 0; k < K; k++) {
      scale = max<f64>(scale, load<f64>(gram + ((<usize>(k * K + k)) << 3)));
      aL1 += abs<f64>(load<f64>(a + ((<usize>k) << 3)));
    }
    const zero2 = AWD_ZERO_NORM_REL * AWD_ZERO_NORM_REL * scale * (1 + aL1) * (1 + aL1);
    for (let i = 0; i < K; i++) {
      const n2 = load<f64>(gu + ((<usize>(i * K + i)) << 3));
      store<f64>(nrm + ((<usize>i) << 3), n2 > zero2 ? Math.sqrt(n2) : 0);
      store<f64>(b + ((<usize>i) << 3), 0);
    }
    let lo: f64 = 0;
    for (let i = 0; i < K; i++) {
      const ni = load<f64>(nrm + ((<usize>i) << 3));
      if (ni == 0) continue;
      for (let j = i + 1; j < K; j++) {
        const nj = load<f64>(nrm + ((<usize>j) << 3));
        if (nj == 0) continue;
        const c = load<f64>(gu + ((<usize>(i * K + j)) << 3)) / (ni * nj);
        lo += abs<f64>(c);
        const s = signOf(c) / P;
        const cross = -1 / (ni * nj);
        store<f64>(b + ((<usize>i) << 3), load<f64>(b + ((<usize>i) << 3)) + s * (cross + c / (ni * ni)));
        store<f64>(b + ((<usize>j) << 3), load<f64>(b + ((<usize>j) << 3)) + s * (cross + c / (nj * nj)));
      }
    }
    if (P > 0) lo /= P;
    let sumB: f64 = 0;
    for (let i = 0; i < K; i++) sumB += load<f64>(b + ((<usize>i) << 3));
    for (let k = 0; k < K; k++) store<f64>(g + ((<usize>k) << 3), load<f64>(b + ((<usize>k) << 3)) - load<f64>(a + ((<usize>k) << 3)) * sumB);
    let aGa: f64 = 0;
    for (let i = 0; i < K; i++) {
      let s: f64 = 0;
      for (let k = 0; k < K; k++) s += load<f64>(gram + ((<usize>(i * K + k)) << 3)) * load<f64>(a + ((<usize>k) << 3));
      aGa += load<f64>(a + ((<usize>i) << 3)) * s;
    }
    const deltaNorm2: f64 = aGa > zero2 ? aGa : 0;
    const deltaNorm = Math.sqrt(deltaNorm2);
    let penalty: f64;
    if (squared) {
      penalty = deltaNorm2;
      for (let k = 0; k < K; k++) store<f64>(g + ((<usize>k) << 3), load<f64>(g + ((<usize>k) << 3)) + 2 * alpha * load<f64>(a + ((<usize>k) << 3)));
    } else {
      penalty = deltaNorm;
      if (deltaNorm > 0) {
        for (let k = 0; k < K; k++) store<f64>(g + ((<usize>k) << 3), load<f64>(g + ((<usize>k) << 3)) + (alpha * load<f64>(a + ((<usize>k) << 3))) / deltaNorm);
      }
    }
    const at = loss + ((<usize>it * 3) << 3);
    store<f64>(at, lo + alpha * penalty);
    store<f64>(at, lo, 8);
    store<f64>(at, deltaNorm, 16);
    if (it == iterations) break;
    for (let k = 0; k < K; k++) store<f64>(a + ((<usize>k) << 3), load<f64>(a + ((<usize>k) << 3)) - learningRate * load<f64>(g + ((<usize>k) << 3)));
  }
}
