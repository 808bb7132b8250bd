// The two-thread program passes (merge/helperThread.ts) against the one-thread passes: every method, with and
// without AWD, on tensors of several chunks (and one of the fast Gram kernel's size), gives the same bytes with the
// helper thread as without it; also against the whole-in-memory reference; with a helper that dies mid-pass; and
// the sampled TIES thresholds (merge/tiesThresholds.ts) when the sample misleads them. Plus the new kernels.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync, mkdirSync, openSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { loadMergeConfig } from '../../../src/core/config/load';
import { planMerge, planSimilarity } from '../../../src/core/merge/plan';
import { runMerge, type MergeResult, type RunMergeOptions } from '../../../src/core/merge/execute';
import { analyzeSimilarity } from '../../../src/core/analysis/analyze';
import { helperThreadFor, helperThreads, programStats } from '../../../src/core/merge/helperThread';
import { bracketFromSampleResult, sampleBracketJs, sampleMargins, sampleRanges, selectInRange, selectInRangeWasm, selectRank } from '../../../src/core/merge/tiesThresholds';
import { BlockedGram } from '../../../src/core/kernels/gram';
import { openArena, wasmKernels } from '../../../src/core/kernels/wasm';
import { HIGH_BUCKETS } from '../../../src/core/merge/magnitude';
import { addScaledInto } from '../../../src/core/merge/methodChunk';
import { decodeToFloat32, float32ToBf16Bits } from '../../../src/core/formats/dtypes';

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
import { createSafetensorsWriter, type SafetensorsWriter } from '../../../src/core/formats/safetensorsWriter';
import {
  floatTensors,
  gaussian,
  maxRelativeError,
  readSafetensorsFile,
  referenceMerge,
  seededRandom,
  tempFolder,
  writeModelSet,
  writeSafetensorsFile,
  type FixtureTensor,
  type ModelSet,
} from './executeFixtures';

const folder = tempFolder('awd-programs-');
after(folder.cleanup);
let configNumber = 0;

const TENSORS: FixtureTensor[] = [
  { name: 'a.weight', shape: [400, 700], dtype: 'F32' }, // 280000: two whole chunks and a ragged one
  { name: 'ids', shape: [10], dtype: 'I64' }, // copied
  { name: 'b.weight', shape: [131072], dtype: 'F32' }, // exactly one chunk
  { name: 'big.weight', shape: [600, 1000], dtype: 'F32' }, // ≥ 2^19: the fast Gram kernel
  { name: 'c.bias', shape: [70001], dtype: 'F32' },
  { name: 'd.scale', shape: [3], dtype: 'F32' },
];
const MERGED = TENSORS.filter((t) => t.dtype !== 'I64').map((t) => t.name);

const setDir = join(folder.dir, 'set');
mkdirSync(setDir, { recursive: true });
const SET: ModelSet = writeModelSet(setDir, { K: 3, tensors: TENSORS, seed: 41, shared: 0.1 });

function writeConfig(set: ModelSet, body: Record<string, unknown>): string {
  const file = join(set.base, '..', `config-${configNumber++}.json`);
  writeFileSync(file, JSON.stringify({ base_model: set.base, models: set.models.map((m, i) => ({ model: m, parameters: { weight: [1, 0.7, 1.3][i] ?? 1 } })), out_path: `out/m${configNumber}.safetensors`, random_seed: 5, ...body }));
  return file;
}

async function run(configFile: string, threads: boolean, opts: RunMergeOptions = {}): Promise<{ result: MergeResult; sha: string; items: number }> {
  helperThreads.enabled = threads;
  const before = programStats.items;
  try {
    const plan = await planMerge(await loadMergeConfig(configFile));
    try {
      const result = await runMerge(plan, opts);
      return { result, sha: createHash('sha256').update(readFileSync(result.files[0]!)).digest('hex'), items: programStats.items - before };
    } finally {
      await plan.close();
    }
  } finally {
    helperThreads.enabled = true;
  }
}

/** Runs `run` with the WASM kernels and an arena of `bytes` for `maxRows` rows, released afterwards. */
function withArena(bytes: number, maxRows: number, run: (k: NonNullable<ReturnType<typeof wasmKernels>>, arena: NonNullable<ReturnType<typeof openArena>>) => void): void {
  const k = wasmKernels();
  assert.ok(k);
  const arena = openArena(bytes, maxRows);
  assert.ok(arena);
  try {
    run(k, arena);
  } finally {
    arena.release();
  }
}

const AWD = { alpha: 0.1, learning_rate: 0.05, iterations: 40 };
const CASES: [string, Record<string, unknown>][] = [
  ['task arithmetic', { merge_method: 'task_arithmetic', parameters: { lambda: 0.6 } }],
  ['task arithmetic + AWD (model)', { merge_method: 'task_arithmetic', parameters: { lambda: 0.6 }, awd: { ...AWD, granularity: 'model' } }],
  ['TIES, tensor scope, densities 0.2 / 0.5 / 1', { merge_method: 'ties', parameters: { lambda: 0.9, density: 0.2 }, models: undefined }],
  ['TIES + AWD (tensor)', { merge_method: 'ties', parameters: { lambda: 1, density: 0.3 }, awd: { ...AWD, granularity: 'tensor' } }],
  ['TIES, model scope', { merge_method: 'ties', parameters: { lambda: 1, density: 0.25, trim_scope: 'model' } }],
  ['TIES + AWD, model scope', { merge_method: 'ties', parameters: { lambda: 1, density: 0.25, trim_scope: 'model' }, awd: { ...AWD, granularity: 'tensor' } }],
  ['dare_ties', { merge_method: 'dare_ties', parameters: { lambda: 1, density: 0.3 } }],
  ['dare_linear + AWD', { merge_method: 'dare_linear', parameters: { lambda: 0.8, density: 0.6 }, awd: { ...AWD, granularity: 'model' } }],
  ['linear', { merge_method: 'linear', base_model: undefined }],
];

for (const [name, body] of CASES) {
  void test(`${name}: the two-thread passes give the same bytes as one thread`, async () => {
    const cfg = { ...body };
    if (name.startsWith('TIES, tensor scope')) {
      cfg['models'] = SET.models.map((m, i) => ({ model: m, parameters: { weight: [1, 0.7, 1.3][i], density: [0.2, 0.5, 1][i] } }));
    } else {
      delete cfg['models'];
    }
    if (body['merge_method'] === 'linear') delete cfg['base_model'];
    const file = writeConfig(SET, cfg);
    const two = await run(file, true);
    const one = await run(file, false);
    assert.equal(two.sha, one.sha, 'output bytes (tensors and __metadata__ with the statistics)');
    assert.equal(one.items, 0, 'one thread: no program pass');
    if (body['merge_method'] !== 'linear') assert.ok(two.items > 0, 'two threads: program passes ran');
    assert.deepEqual(two.result.statistics, one.result.statistics);
  });
}

void test('bfloat16 inputs: the threads decode them as the readers do, and the bytes are those of one thread', async () => {
  const dir = join(folder.dir, 'bf16');
  mkdirSync(dir, { recursive: true });
  const tensors: FixtureTensor[] = [
    { name: 'w', shape: [300, 700], dtype: 'BF16' },
    { name: 'v', shape: [1001], dtype: 'BF16' },
    { name: 'f', shape: [5000], dtype: 'F32' },
  ];
  const set = writeModelSet(dir, { K: 2, tensors, seed: 77, shared: 0.1 });
  for (const body of [
    { merge_method: 'task_arithmetic', parameters: { lambda: 0.5 }, awd: { ...AWD, granularity: 'model' } },
    { merge_method: 'ties', parameters: { lambda: 1, density: 0.3 } },
    { merge_method: 'dare_ties', parameters: { lambda: 1, density: 0.5 } },
  ]) {
    const file = writeConfig(set, body);
    const two = await run(file, true);
    const one = await run(file, false);
    assert.ok(two.items > 0, `${body.merge_method}: program passes ran on bfloat16 inputs`);
    assert.equal(two.sha, one.sha, body.merge_method);
  }
  // The kernel against the readers' decoder, NaN payloads and signed zeros included.
  const k = wasmKernels()!;
  const arena = openArena(1 << 20, 2)!;
  try {
    const n = 1003;
    const row = arena.floats(n);
    const halves = new Uint16Array(row.buffer, row.byteOffset + n * 2, n);
    const random = seededRandom(5);
    for (let e = 0; e < n; e++) halves[e] = Math.floor(random() * 65536);
    halves[0] = 0x8000;
    halves[1] = 0x7fc1;
    const want = decodeToFloat32('BF16', new Uint8Array(halves.slice().buffer));
    (k.exports as unknown as { decodeBf16(s: number, d: number, n: number): void }).decodeBf16(row.byteOffset + n * 2, row.byteOffset, n);
    assert.deepEqual(new Uint32Array(row.buffer, row.byteOffset, n).slice(), new Uint32Array(want.buffer));
    // And back, in place: encodeBf16 against the writer's encoder (NaN payloads, ties to even, overflow to Inf).
    const bits = new Uint32Array(row.buffer, row.byteOffset, n);
    for (let e = 0; e < n; e++) bits[e] = Math.floor(random() * 2 ** 32);
    bits.set([0x7f800001, 0xffc00000, 0x3f808000, 0x3f818000, 0x7f7fffff, 0xff7fffff, 0x80000000, 0x00008000], 0);
    const expected = Uint16Array.from(bits, (b) => {
      u32[0] = b;
      return float32ToBf16Bits(f32[0]!);
    });
    (k.exports as unknown as { encodeBf16(s: number, d: number, n: number): void }).encodeBf16(row.byteOffset, row.byteOffset, n);
    assert.deepEqual(new Uint16Array(row.buffer, row.byteOffset, n).slice(), expected);
  } finally {
    arena.release();
  }
});

void test('two-thread TIES and task arithmetic agree with the whole-in-memory reference', async () => {
  const base = floatTensors(SET.base);
  const models = SET.models.map(floatTensors);
  for (const [method, params] of [['ties', { lambda: 0.9, density: 0.2 }], ['task_arithmetic', { lambda: 0.6 }], ['dare_ties', { lambda: 1, density: 0.3 }]] as const) {
    const { result } = await run(writeConfig(SET, { merge_method: method, parameters: params }), true);
    const out = readSafetensorsFile(result.files[0]!);
    const want = referenceMerge(
      { method, weights: [1, 0.7, 1.3], densities: [params.density ?? 1, params.density ?? 1, params.density ?? 1].map((d) => (method === 'task_arithmetic' ? 1 : d)), lambda: params.lambda, normalize: true, trimScope: 'tensor', seed: 5 },
      base,
      models,
      MERGED,
    );
    for (const n of MERGED) assert.ok(maxRelativeError(out.tensors.get(n)!.values, want.get(n)!) < 2e-6, `${method} ${n}`);
  }
});

void test('the threads write float32 and bfloat16 output chunks themselves; a chunk whose write fails goes through the writer: the same bytes', async () => {
  const probe = await createSafetensorsWriter(join(folder.dir, 'probe.safetensors'), []);
  await probe.abort();
  const proto = Object.getPrototypeOf(probe) as SafetensorsWriter;
  const { directTarget, wroteDirectly } = proto;
  let direct = 0;
  let failing: number | undefined;
  proto.wroteDirectly = function (this: SafetensorsWriter, name: string, bytes: number) {
    direct++;
    return wroteDirectly.call(this, name, bytes);
  };
  // While `failing` is set the threads get a descriptor open only for reading: every write of theirs fails.
  proto.directTarget = function (this: SafetensorsWriter, name: string, byteStart: number) {
    const t = directTarget.call(this, name, byteStart);
    return t && failing !== undefined ? { fd: failing, position: t.position } : t;
  };
  // bfloat16 models: the output is bfloat16 too, encoded by the threads, written raw by the writer after a failure.
  const bf16Dir = join(folder.dir, 'bf16-out');
  mkdirSync(bf16Dir, { recursive: true });
  const bf16Set = writeModelSet(bf16Dir, { K: 2, tensors: [{ name: 'w', shape: [300, 700], dtype: 'BF16' }, { name: 'v', shape: [1001], dtype: 'BF16' }], seed: 78, shared: 0.1 });
  try {
    for (const [set, body] of [
      [SET, { merge_method: 'task_arithmetic', parameters: { lambda: 0.6 } }],
      [SET, { merge_method: 'ties', parameters: { lambda: 1, density: 0.3 } }],
      [bf16Set, { merge_method: 'task_arithmetic', parameters: { lambda: 0.6 } }],
      [bf16Set, { merge_method: 'dare_ties', parameters: { lambda: 1, density: 0.5 } }],
    ] as const) {
      const file = writeConfig(set, body);
      const one = await run(file, false);
      direct = 0;
      const two = await run(file, true);
      assert.ok(direct > 0, `${body.merge_method}: chunks written by the threads`);
      assert.equal(two.sha, one.sha, body.merge_method);
      failing = openSync(set.base, 'r');
      try {
        direct = 0;
        const fallback = await run(file, true);
        assert.equal(direct, 0, 'no chunk counted as written by a thread');
        assert.equal(fallback.sha, one.sha, `${body.merge_method}: failed writes redone by the writer`);
      } finally {
        closeSync(failing);
        failing = undefined;
      }
    }
  } finally {
    proto.directTarget = directTarget;
    proto.wroteDirectly = wroteDirectly;
  }
});

void test('a helper thread that dies in the middle of a pass changes nothing: this thread finishes the items', async () => {
  for (const body of [
    { merge_method: 'ties', parameters: { lambda: 1, density: 0.2 } },
    { merge_method: 'ties', parameters: { lambda: 1, density: 0.3, trim_scope: 'model' } },
    { merge_method: 'task_arithmetic', parameters: { lambda: 0.5 }, awd: { ...AWD, granularity: 'model' } },
  ]) {
    const file = writeConfig(SET, body);
    const one = await run(file, false);
    let stopped = false;
    const two = await run(file, true, {
      onProgress: (p) => {
        if (!stopped && p.bytesDone > 0 && (p.phase === 'output' || p.phase === 'threshold' || p.phase === 'statistics')) {
          stopped = true;
          void helperThreadFor(wasmKernels()!)!.stop();
        }
      },
    });
    assert.ok(stopped);
    assert.equal(two.sha, one.sha, `${body.merge_method}: same bytes after the helper died`);
  }
});

void test('TIES thresholds stay exact when the sample misleads them (the tensor falls back to the histogram passes)', async () => {
  // Small task vectors exactly where the sample's slices lie, large ones everywhere else.
  const dir = join(folder.dir, 'adversarial');
  mkdirSync(dir, { recursive: true });
  const n = 200_000;
  const inSample = new Uint8Array(n);
  for (const [start, end] of sampleRanges(n)) inSample.fill(1, start, end);
  const normal = gaussian(seededRandom(7));
  const tensor: FixtureTensor = { name: 'adv.weight', shape: [n], dtype: 'F32' };
  const baseValues = Float32Array.from({ length: n }, () => normal());
  writeSafetensorsFile(join(dir, 'base.safetensors'), [{ tensor, values: baseValues }]);
  const models = [0, 1].map((k) => {
    const file = join(dir, `model${k}.safetensors`);
    writeSafetensorsFile(file, [{ tensor, values: Float32Array.from(baseValues, (b, e) => b + (inSample[e] ? 1e-3 : 1) * normal()) }]);
    return file;
  });
  const set = { base: join(dir, 'base.safetensors'), models };
  const file = writeConfig(set, { merge_method: 'ties', parameters: { lambda: 1, density: 0.2 } });
  const logs: string[] = [];
  const two = await run(file, true, { log: (m) => logs.push(m) });
  const one = await run(file, false);
  assert.ok(logs.some((l) => /need the exact histogram passes/.test(l)), logs.join('\n'));
  assert.equal(two.sha, one.sha);
});

void test('the similarity analysis gives the same Gram matrices on two threads as on one', async () => {
  const plan = await planSimilarity(SET.base, SET.models);
  try {
    const grams: number[][] = [];
    for (const threads of [true, false]) {
      helperThreads.enabled = threads;
      const r = await analyzeSimilarity(plan, {});
      grams.push(r.tensor_grams.flatMap((g) => g.gram));
    }
    helperThreads.enabled = true;
    assert.equal(grams[0]!.length, grams[1]!.length);
    grams[0]!.forEach((v, i) => assert.ok(Object.is(v, grams[1]![i]), `entry ${i}`));
  } finally {
    helperThreads.enabled = true;
    await plan.close();
  }
});

void test('BlockedGram gives the same bits for any split of a tensor into pieces', () => {
  const random = seededRandom(3);
  for (const [K, n] of [[3, 300_001], [8, 700_000]] as const) {
    const base = Float32Array.from({ length: n }, () => random() - 0.5);
    const models = Array.from({ length: K }, () => Float32Array.from(base, (b) => b + 0.1 * (random() - 0.5)));
    const whole = new BlockedGram(K, n, 131072);
    whole.add(models, base);
    for (const pieces of [[n], [1000, 127, 131072, 5]]) {
      const g = new BlockedGram(K, n, 131072);
      let at = 0;
      for (let p = 0; at < n; p++) {
        const len = Math.min(n - at, pieces[p % pieces.length]!);
        g.add(models.map((m) => m.subarray(at, at + len)), base.subarray(at, at + len));
        at += len;
      }
      g.gram.forEach((v, i) => assert.ok(Object.is(v, whole.gram[i]), `K=${K} entry ${i}`));
    }
  }
});

/** A float32 whose |x| pattern is in bucket b (high 16 bits), positive. */
function inBucket(b: number, low = 1234): number {
  return new Float32Array(new Uint32Array([b * 65536 + low]).buffer)[0]!;
}

void test('a sample gives the bracket of whole buckets around the wanted rank (slices alike: the independent margin)', () => {
  // 10000 sample values in 4 slices of 2500, each slice 625 values in each of buckets 100, 200, 300, 400 (so the
  // slices agree and the margin is independent sampling's). density 0.5 of n = 1e6: rank 5000 of the sample ± d,
  // d = ceil(4·sqrt(0.25·10000) + 0.001·10000 + 16) = 226: ranks 4774 and 5226, buckets 200 and 300.
  const sample = Float32Array.from({ length: 10000 }, (_, e) => inBucket([100, 200, 300, 400][e % 4]!));
  // (4.5 % of the sample between those ranks: bracketCount is told to expect many inside.)
  assert.deepEqual(sampleBracketJs(sample, 2500, 1e6, 0.5), { lo: 200 * 65536, hi: 300 * 65536 + 65535, k: 500000, dense: true });
  // Near the ends the bracket opens to everything below / above: density 0.999 (rank 10, d = 39) and 0.001.
  assert.deepEqual(sampleBracketJs(sample, 2500, 1e6, 0.999), { lo: 0, hi: 100 * 65536 + 65535, k: 999000 });
  assert.deepEqual(sampleBracketJs(sample, 2500, 1e6, 0.001), { lo: 400 * 65536, hi: 0x7fffffff, k: 1000 });
  // Nothing to search: no entry kept, or every entry kept.
  assert.equal(sampleBracketJs(sample, 2500, 1e6, 0).fixed, Infinity);
  assert.equal(sampleBracketJs(sample, 2500, 1e6, 1).fixed, 0);
  // Slices that disagree widen it: the same values, sorted so that each slice holds one bucket only.
  const clustered = Float32Array.from(sample).sort();
  const wide = sampleBracketJs(clustered, 2500, 1e6, 0.5);
  assert.ok(wide.lo <= 200 * 65536 && wide.hi >= 300 * 65536 + 65535);
});

void test('the sample bracket holds the k-th largest where rows differ in scale, and stays narrow where they do not', () => {
  const rows = 2048;
  const cols = 1024;
  const n = rows * cols;
  const values = new Float32Array(n);
  const bits = new Uint32Array(values.buffer);
  for (const sigma of [0, 0.6]) {
    let width = 0;
    let cases = 0;
    for (let seed = 0; seed < 3; seed++) {
      const normal = gaussian(seededRandom(40 + seed));
      for (let r = 0; r < rows; r++) {
        const scale = Math.exp(sigma * normal());
        for (let c = 0; c < cols; c++) values[r * cols + c] = 0.01 * scale * normal();
      }
      const sorted = Uint32Array.from(bits, (x) => x & 0x7fffffff).sort();
      const ranges = sampleRanges(n);
      const sample = Float32Array.from(ranges.flatMap(([a, b]) => [...values.subarray(a, b)]));
      for (const density of [0.05, 0.1, 0.2, 0.5, 0.8]) {
        const k = Math.floor(density * n);
        const kth = sorted[n - k]!;
        const b = sampleBracketJs(sample, 2048, n, density);
        assert.ok(kth >= b.lo && kth <= b.hi, `σ ${sigma}, seed ${seed}, density ${density}: the k-th largest outside the bracket`);
        let inside = 0;
        for (const x of sorted) if (x >= b.lo && x <= b.hi) inside++;
        width += inside / n;
        cases++;
      }
    }
    if (sigma === 0) assert.ok(width / cases < 0.02, `independent entries: the bracket holds ${(100 * width / cases).toFixed(1)} % of them`);
    else assert.ok(width / cases < 0.12, `row scales differing: the bracket holds ${(100 * width / cases).toFixed(1)} % of the entries`);
  }
});

void test('the WASM selection over candidates in the kernels\' memory gives selectInRange\'s value, every rank kind', () =>
  withArena(8 << 20, 2, (_k, arena) => {
    const random = seededRandom(19);
    const scratchFloats = arena.floats(65538);
    const scratch = new Int32Array(scratchFloats.buffer, scratchFloats.byteOffset, 65538);
    const listFloats = arena.floats(400_000);
    for (const [n, spread] of [[100, 50], [5000, 1 << 30], [300_000, 1000], [300_000, 1 << 24], [70_000, 3]] as const) {
      const lo = 1 + Math.floor(random() * 1000);
      const values = Int32Array.from({ length: n }, () => lo + Math.floor(random() * spread));
      const sorted = Int32Array.from(values).sort();
      const hi = lo + spread - 1;
      for (const r of [0, n - 1, Math.floor(n / 2), Math.floor(n / 9)]) {
        const list = new Int32Array(listFloats.buffer, listFloats.byteOffset, n);
        list.set(values);
        assert.equal(selectInRangeWasm(list, r, lo, hi, scratch), sorted[r], `n=${n} spread=${spread} r=${r}`);
        assert.equal(selectInRange(Int32Array.from(values), r, lo, hi), sorted[r]);
      }
    }
  }),
);

void test('selectRank finds the value of each rank, duplicates included', () => {
  const random = seededRandom(9);
  for (const n of [1, 2, 7, 1000, 4096]) {
    const values = Int32Array.from({ length: n }, () => Math.floor(random() * (n / 3 + 1)));
    const sorted = Int32Array.from(values).sort();
    for (const r of [0, n - 1, Math.floor(n / 2), Math.floor(n / 7)]) {
      assert.equal(selectRank(Int32Array.from(values), r), sorted[r], `n=${n} r=${r}`);
      assert.equal(selectInRange(Int32Array.from(values), r, sorted[0]!, sorted[n - 1]!), sorted[r], `in range, n=${n} r=${r}`);
    }
  }
  // A wide range of bit patterns (the bucket width grows), and a range wider than the values.
  const wide = Int32Array.from({ length: 5000 }, () => Math.floor(random() * 0x7fffffff));
  const wideSorted = Int32Array.from(wide).sort();
  for (const r of [0, 1, 2500, 4999]) {
    assert.equal(selectInRange(Int32Array.from(wide), r, 0, 0x7fffffff), wideSorted[r]);
    assert.equal(selectInRange(Int32Array.from(wide), r, wideSorted[0]!, wideSorted[4999]!), wideSorted[r]);
  }
});

void test('the addScaled and bracketCount kernels match their JS definitions', () =>
  withArena(4 << 20, 4, (k, arena) => {
    const random = seededRandom(12);
    const n = 10_003;
    const base = arena.floats(n);
    const m = arena.floats(n);
    const out = arena.floats(n);
    for (let e = 0; e < n; e++) {
      base[e] = random() - 0.5;
      m[e] = (random() - 0.5) * 1e-2;
    }
    m[3] = -0;
    base[5] = NaN;
    const exports = k.exports as unknown as {
      addScaled(o: number, b: number, m: number, n: number, s: number): void;
      bracketCount(row: number, n: number, lo: number, hi: number, cand: number, cap: number, result: number, dense: number): void;
    };
    for (const lambda of [1, 0.3, -2.5]) {
      exports.addScaled(out.byteOffset, base.byteOffset, m.byteOffset, n, Math.fround(lambda));
      const want = new Float32Array(n);
      addScaledInto(want, base, m, lambda);
      assert.deepEqual(new Uint32Array(out.buffer, out.byteOffset, n).slice(), new Uint32Array(want.buffer), `λ=${lambda}`);
    }
    // bracketCount over the bit patterns of |x|: above hi, inside [lo, hi] (NaN sorts above +Inf).
    const row = m;
    row[7] = NaN;
    row[8] = -Infinity;
    const bits = new Int32Array(row.buffer, row.byteOffset, n).map((b) => b & 0x7fffffff);
    const sorted = Int32Array.from(bits).sort();
    const lo = sorted[Math.floor(n * 0.7)]!;
    const hi = sorted[Math.floor(n * 0.75)]!;
    const cand = arena.floats(n);
    const result = arena.floats(2);
    for (const cap of [n, 10]) {
      for (const dense of [0, 1]) {
        exports.bracketCount(row.byteOffset, n, lo, hi, cand.byteOffset, cap, result.byteOffset, dense);
        const r = new Int32Array(result.buffer, result.byteOffset, 2);
        const inside = [...bits].filter((b) => b >= lo && b <= hi);
        assert.equal(r[0], [...bits].filter((b) => b > hi).length, 'above');
        assert.equal(r[1], inside.length, 'inside');
        assert.deepEqual([...new Int32Array(cand.buffer, cand.byteOffset, Math.min(cap, inside.length))], inside.slice(0, cap), `candidates, cap ${cap}, dense ${dense}`);
      }
    }
  }),
);

void test('the sample programs find the bracket on their thread exactly as sampleBracketJs does', () =>
  withArena(4 << 20, 2, (k, arena) => {
    const x = k.exports as unknown as Record<string, (...a: number[]) => void>;
    const random = seededRandom(5);
    const normal = gaussian(random);
    const histFloats = arena.floats(HIGH_BUCKETS);
    const rowFloats = arena.floats(131072);
    const outFloats = arena.floats(4);
    const out = new Int32Array(outFloats.buffer, outFloats.byteOffset, 4);
    for (let round = 0; round < 40; round++) {
      // Samples of m values in slices of 2048 (or one slice), slices scaled alike or not, some all zero or equal.
      const sliced = round % 4 !== 3;
      const m = sliced ? 2048 * (1 + Math.floor(random() * 64)) : 1 + Math.floor(random() * 131072);
      const sliceLength = sliced ? 2048 : m;
      const sigma = [0, 0.5, 2][round % 3]!;
      const sample = rowFloats.subarray(0, m);
      for (let s = 0; s * sliceLength < m; s++) {
        const scale = Math.exp(sigma * normal());
        for (let e = s * sliceLength; e < Math.min(m, (s + 1) * sliceLength); e++) sample[e] = round === 7 ? 0 : round === 11 ? 0.5 : scale * normal();
      }
      const n = m + Math.floor(random() * 1e7);
      for (const density of [random(), 0.2, 1e-6, 0.999999, 0, 1]) {
        const want = sampleBracketJs(sample, sliceLength, n, density);
        const margins = sampleMargins(m, n, density);
        if (margins) {
          new Uint32Array(histFloats.buffer, histFloats.byteOffset, HIGH_BUCKETS).fill(0);
          x['magnitudeHistogram']!(sample.byteOffset, m, -1, histFloats.byteOffset);
          x['sampleBracket']!(sample.byteOffset, m, sliceLength, histFloats.byteOffset, margins.idx, margins.binomial, margins.floorTerm, margins.cap, outFloats.byteOffset);
        }
        assert.deepEqual(bracketFromSampleResult(m, n, density, out), want, `round ${round}, m ${m}, density ${density}`);
      }
    }
  }),
);

void test('the fused TIES kernel (eight elements a step, then four, then the tail) gives the bits of the calls it replaces (τ, trim, merge), and leaves τ\' in the rows', () =>
  withArena(16 << 20, 8, (k, arena) => {
    const x = k.exports as unknown as Record<string, (...a: number[]) => void>;
    const random = seededRandom(21);
    for (const [K, n] of [[3, 10_003], [8, 4097], [5, 4101], [2, 12], [1, 6]] as const) {
      const rows = arena.floats(K * n);
      const base = arena.floats(n);
      const delta = arena.floats(n);
      for (let e = 0; e < n; e++) {
        base[e] = random() - 0.5;
        delta[e] = (random() - 0.5) * 1e-3;
      }
      for (let i = 0; i < K * n; i++) rows[i] = base[i % n]! + (random() - 0.5) * 1e-2;
      // Exact zeros, equal values (τ = 0), a NaN and an Inf among the inputs.
      rows[2] = base[2]!;
      rows[Math.min(n - 1, 9)] = NaN;
      rows[K * n - 1] = Infinity;
      const weightFloats = arena.floats(2 * K);
      const weights = new Float64Array(weightFloats.buffer, weightFloats.byteOffset, K);
      const thresholds = arena.floats(K);
      // A real threshold, nothing kept (Infinity), everything kept (0).
      thresholds.set(Array.from({ length: K }, (_, i) => [0.002, Infinity, 0, 0.004][i % 4]!));
      const stride = n * 4;
      // Weights of every kind, and all 1 (the kernel's copy without multiplies).
      for (const unit of [false, true]) for (const withDelta of [false, true]) {
        weights.set(Array.from({ length: K }, (_, i) => (unit ? 1 : [1, 0.7, 1.3, 0.2][i % 4]!)));
        for (const normalize of [0, 1]) {
          const fused = arena.floats(n);
          const work = arena.floats(K * n);
          work.set(rows);
          x['tiesMergeOfDifferences']!(work.byteOffset, K, n, stride, base.byteOffset, withDelta ? delta.byteOffset : 0, thresholds.byteOffset, weights.byteOffset, normalize, fused.byteOffset);
          const copy = arena.floats(K * n);
          copy.set(rows);
          x['subtractFromRows']!(copy.byteOffset, K, n, stride, base.byteOffset);
          if (withDelta) x['subtractFromRows']!(copy.byteOffset, K, n, stride, delta.byteOffset);
          for (let i = 0; i < K; i++) x['trimBelow']!(copy.byteOffset + i * stride, n, thresholds[i]!);
          const separate = arena.floats(n);
          x['tiesMerge']!(copy.byteOffset, K, n, stride, weights.byteOffset, normalize, separate.byteOffset);
          assert.deepEqual(new Uint32Array(fused.buffer, fused.byteOffset, n).slice(), new Uint32Array(separate.buffer, separate.byteOffset, n).slice(), `K=${K} n=${n} δ=${withDelta} normalize=${normalize} unit weights=${unit}`);
          assert.deepEqual(new Uint32Array(work.buffer, work.byteOffset, K * n).slice(), new Uint32Array(copy.buffer, copy.byteOffset, K * n).slice(), 'τ\' rows');
        }
      }
    }
  }),
);
