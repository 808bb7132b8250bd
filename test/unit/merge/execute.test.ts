// The merge executor against a naive whole-in-memory reference implementation of every method (executeFixtures.ts),
// with and without AWD, both TIES trim scopes, density edge cases, zero task vectors, bf16 inputs, K = 2 and 8,
// and tiny chunks that force every tensor through several chunks.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadMergeConfig } from '../../../src/core/config/load';
import { planMerge } from '../../../src/core/merge/plan';
import { runMerge, type MergeResult, type RunMergeOptions } from '../../../src/core/merge/execute';
import { GRAM_BLOCK_ELEMENTS } from '../../../src/core/merge/chunkReader';
import { solveAwd } from '../../../src/core/merge/awd';
import { CancelledError } from '../../../src/core/errors';
import {
  floatTensors,
  maxRelativeError,
  readSafetensorsFile,
  referenceMerge,
  roundBf16,
  tempFolder,
  writeModelSet,
  type FixtureTensor,
  type Method,
  type ModelSet,
} from './executeFixtures';

const folder = tempFolder();
after(folder.cleanup);
let caseNumber = 0;

const TENSORS: FixtureTensor[] = [
  { name: 'layer.0.weight', shape: [7, 13], dtype: 'F32' },
  { name: 'layer.0.bias', shape: [13], dtype: 'F32' },
  { name: 'position_ids', shape: [10], dtype: 'I64' },
  { name: 'layer.1.weight', shape: [5, 3, 4], dtype: 'F32' },
  { name: 'skip.weight', shape: [6], dtype: 'F32' },
  { name: 'layer.2.scale', shape: [1], dtype: 'F32' },
];
const MERGED = ['layer.0.weight', 'layer.0.bias', 'layer.1.weight', 'layer.2.scale'];

interface CaseConfig {
  method: Method;
  weights?: number[];
  densities?: number[];
  lambda?: number;
  normalize?: boolean;
  trimScope?: 'tensor' | 'model';
  awd?: { granularity: 'model' | 'tensor'; norm?: 'l2' | 'l2_squared'; iterations?: number; learning_rate?: number };
  dtype?: 'float32' | 'bfloat16';
  seed?: number;
}

function modelSetIn(dir: string, K: number, seed: number, extra: { tensors?: FixtureTensor[]; zeroTaskModels?: number[] } = {}): ModelSet {
  return writeModelSet(dir, { K, tensors: extra.tensors ?? TENSORS, seed, zeroTaskModels: extra.zeroTaskModels ?? [], shared: 0.08 });
}

/** Writes a config for `set` into its folder; returns the config path. */
function writeConfig(set: ModelSet, c: CaseConfig, outName = 'out/merged.safetensors'): string {
  const K = set.models.length;
  const config = {
    merge_method: c.method,
    ...(c.method === 'linear' ? {} : { base_model: set.base }),
    models: set.models.map((m, i) => ({
      model: m,
      parameters: { weight: c.weights?.[i] ?? 1, ...(c.densities && c.method !== 'linear' && c.method !== 'task_arithmetic' ? { density: c.densities[i] } : {}) },
    })),
    parameters: {
      ...(c.method === 'linear' ? {} : { lambda: c.lambda ?? 1 }),
      ...(c.method === 'ties' || c.method === 'dare_ties' ? { normalize: c.normalize ?? true } : {}),
      ...(c.method === 'ties' ? { trim_scope: c.trimScope ?? 'tensor' } : {}),
    },
    ...(c.awd ? { awd: { alpha: 0.1, learning_rate: c.awd.learning_rate ?? 0.05, iterations: c.awd.iterations ?? 60, granularity: c.awd.granularity, norm: c.awd.norm ?? 'l2' } } : {}),
    include: ['*'],
    exclude: ['skip.*'],
    ...(c.dtype ? { dtype: c.dtype } : {}),
    random_seed: c.seed ?? 11,
    out_path: outName,
  };
  assert.equal(config.models.length, K);
  const file = join(set.base, '..', `config-${caseNumber++}.json`);
  writeFileSync(file, JSON.stringify(config, null, 2));
  return file;
}

async function runConfig(configFile: string, opts: RunMergeOptions = {}): Promise<MergeResult> {
  const plan = await planMerge(await loadMergeConfig(configFile));
  try {
    return await runMerge(plan, opts);
  } finally {
    await plan.close();
  }
}

/** The coefficients a per merged tensor as the run reports them. */
function coefficientsOf(result: MergeResult): Map<string, number[]> | undefined {
  const awd = result.awd;
  if (!awd) return undefined;
  return new Map(MERGED.map((n) => [n, awd.coefficients ?? awd.per_tensor[n]!.coefficients!]));
}

/** Runs a case and compares every merged tensor with the reference; copies must be byte-identical to their source. */
async function checkCase(set: ModelSet, c: CaseConfig, chunkElements: number, tolerance = 2e-6): Promise<MergeResult> {
  const configFile = writeConfig(set, c);
  const result = await runConfig(configFile, { chunkElements });
  const K = set.models.length;
  const out = readSafetensorsFile(result.files[0]!);
  const base = floatTensors(set.base);
  const models = set.models.map(floatTensors);
  const want = referenceMerge(
    {
      method: c.method,
      weights: c.weights ?? new Array<number>(K).fill(1),
      densities: c.densities ?? new Array<number>(K).fill(1),
      lambda: c.lambda ?? 1,
      normalize: c.normalize ?? true,
      trimScope: c.trimScope ?? 'tensor',
      seed: c.seed ?? 11,
      ...(result.awd ? { awdCoefficients: coefficientsOf(result)! } : {}),
    },
    base,
    models,
    MERGED,
  );
  const label = `${c.method}${c.awd ? `+awd(${c.awd.granularity})` : ''} K=${K} chunk=${chunkElements}`;
  for (const name of MERGED) {
    const got = out.tensors.get(name)!.values;
    let expected = Array.from(want.get(name)!);
    if (out.tensors.get(name)!.dtype === 'BF16') expected = expected.map(roundBf16);
    const err = maxRelativeError(got, expected);
    assert.ok(err <= tolerance, `${label}: ${name} differs from the reference by ${err}`);
  }
  const source = readSafetensorsFile(c.method === 'linear' ? set.models[0]! : set.base);
  for (const name of ['position_ids', 'skip.weight']) {
    assert.deepEqual(out.tensors.get(name)!.raw, source.tensors.get(name)!.raw, `${label}: ${name} is copied byte for byte`);
  }
  assert.deepEqual(out.order, source.order, 'output keeps the reference tensor order');
  return result;
}

void test('every method matches the reference, K = 2, in one chunk and in tiny chunks', async () => {
  const dir = join(folder.dir, 'k2');
  mkdirSync(dir);
  const set = modelSetIn(dir, 2, 1);
  for (const chunk of [7, 1 << 16]) {
    await checkCase(set, { method: 'task_arithmetic', lambda: 0.7, weights: [1, 0.5] }, chunk);
    await checkCase(set, { method: 'ties', lambda: 0.9, weights: [0.8, 1.3], densities: [0.5, 0.3] }, chunk);
    await checkCase(set, { method: 'ties', densities: [0.4, 0.6], trimScope: 'model', normalize: false }, chunk);
    await checkCase(set, { method: 'dare_linear', lambda: 0.5, densities: [0.5, 0.9] }, chunk);
    await checkCase(set, { method: 'dare_ties', weights: [2, 1], densities: [0.7, 0.2] }, chunk);
    await checkCase(set, { method: 'linear', weights: [3, 1] }, chunk);
  }
});

void test('every method matches the reference, K = 8, weights ≠ 1, density edge cases (1.0 and tiny)', async () => {
  const dir = join(folder.dir, 'k8');
  mkdirSync(dir);
  const set = modelSetIn(dir, 8, 2);
  const weights = [1, 0.5, 2, 0.25, 1.5, 0.75, 1, 3];
  const densities = [1, 0.01, 0.5, 0.2, 1, 0.9, 0.05, 0.33];
  for (const chunk of [5, 1 << 16]) {
    await checkCase(set, { method: 'task_arithmetic', weights, lambda: 0.3 }, chunk);
    // With the large chunk every tensor fits in memory: thresholds come from kthLargestMagnitude on the rows.
    await checkCase(set, { method: 'ties', weights, densities, lambda: 0.6 }, chunk);
  }
  await checkCase(set, { method: 'ties', weights, densities, trimScope: 'model' }, 5);
  await checkCase(set, { method: 'ties', weights, densities: new Array<number>(8).fill(1e-4), trimScope: 'model' }, 5);
  await checkCase(set, { method: 'dare_linear', weights, densities }, 5);
  await checkCase(set, { method: 'dare_ties', weights, densities, normalize: false }, 5);
  await checkCase(set, { method: 'linear', weights }, 5);
});

void test('with AWD (granularity model and tensor, l2 and l2_squared): every host method matches the reference on τ̂', async () => {
  const dir = join(folder.dir, 'awd');
  mkdirSync(dir);
  const set = modelSetIn(dir, 3, 3);
  for (const [chunk, awd] of [
    [6, { granularity: 'model' as const }],
    [1 << 16, { granularity: 'tensor' as const, norm: 'l2_squared' as const }],
  ] as const) {
    {
      const r = await checkCase(set, { method: 'task_arithmetic', weights: [1, 0.6, 1.4], lambda: 0.8, awd }, chunk);
      assert.equal(r.passes, 2, 'TA + AWD reads the inputs twice');
      await checkCase(set, { method: 'ties', densities: [0.5, 0.3, 0.8], awd }, chunk);
      const m = await checkCase(set, { method: 'ties', densities: [0.5, 0.3, 0.8], trimScope: 'model', awd }, chunk);
      assert.equal(m.passes, 4, 'TIES at model scope with AWD: statistics, two threshold passes, output');
      await checkCase(set, { method: 'dare_linear', densities: [0.5, 0.3, 0.8], awd }, chunk);
      await checkCase(set, { method: 'dare_ties', densities: [0.5, 0.3, 0.8], awd }, chunk);
    }
  }
});

void test('AWD coefficients equal the solver run on a float64 reference Gram matrix; diagnostics are complete', async () => {
  const dir = join(folder.dir, 'awd-gram');
  mkdirSync(dir);
  const set = modelSetIn(dir, 4, 4);
  const result = await runConfig(writeConfig(set, { method: 'task_arithmetic', awd: { granularity: 'model' } }), { chunkElements: 9 });
  const K = 4;
  const base = floatTensors(set.base);
  const models = set.models.map(floatTensors);
  const gram = new Float64Array(K * K);
  for (const n of MERGED) {
    const tau = models.map((m) => Float32Array.from(m.get(n)!, (v, e) => v - base.get(n)![e]!));
    for (let i = 0; i < K; i++) for (let j = 0; j < K; j++) for (let e = 0; e < tau[0]!.length; e++) gram[i * K + j]! += tau[i]![e]! * tau[j]![e]!;
  }
  const want = solveAwd(gram, K, { alpha: 0.1, learningRate: 0.05, iterations: 60, norm: 'l2' });
  const awd = result.awd!;
  assert.equal(maxRelativeError(awd.coefficients!, want.coefficients) < 1e-9, true, 'coefficients');
  assert.ok(Math.abs(awd.delta_norm - want.deltaNorm) <= 1e-9 * want.deltaNorm);
  assert.ok(Math.abs(awd.mean_abs_cos_after - want.meanAbsCosAfter) < 1e-9);
  assert.equal(awd.loss.length, 61);
  assert.equal(awd.effective_ta_coefficients!.length, K);
  assert.deepEqual(Object.keys(awd.per_tensor).sort(), [...MERGED].sort());
  assert.ok(awd.mean_abs_cos_after < awd.mean_abs_cos_before, 'AWD reduces the mean |cos| of correlated task vectors');
});

void test('all-zero task vectors (a model equal to the base) merge cleanly with and without AWD', async () => {
  const dir = join(folder.dir, 'zero');
  mkdirSync(dir);
  const set = modelSetIn(dir, 3, 5, { zeroTaskModels: [1] });
  for (const awd of [undefined, { granularity: 'model' as const }, { granularity: 'tensor' as const }]) {
    await checkCase(set, { method: 'task_arithmetic', ...(awd ? { awd } : {}) }, 8);
    await checkCase(set, { method: 'ties', densities: [0.5, 0.5, 0.5], ...(awd ? { awd } : {}) }, 8);
    await checkCase(set, { method: 'dare_ties', densities: [0.5, 0.5, 0.5], ...(awd ? { awd } : {}) }, 8);
  }
  const allZero = join(folder.dir, 'allzero');
  mkdirSync(allZero);
  const same = modelSetIn(allZero, 2, 6, { zeroTaskModels: [0, 1] });
  const r = await checkCase(same, { method: 'ties', densities: [0.3, 0.3], trimScope: 'model', awd: { granularity: 'model' } }, 8);
  assert.deepEqual(r.awd!.coefficients, [0, 0], 'no task vectors, no δ');
});

void test('bf16 inputs: τ computed in float32, one cast at the end to the base dtype (bf16) or to float32', async () => {
  const dir = join(folder.dir, 'bf16');
  mkdirSync(dir);
  const tensors = TENSORS.map((t) => (t.dtype === 'F32' && t.name !== 'layer.0.bias' ? { ...t, dtype: 'BF16' as const } : t));
  const set = modelSetIn(dir, 3, 7, { tensors });
  // bf16 output: within half a bf16 ulp of the reference rounded to bf16, plus float32 noise.
  await checkCase(set, { method: 'task_arithmetic', lambda: 0.5, awd: { granularity: 'model' } }, 10, 8e-3);
  await checkCase(set, { method: 'ties', densities: [0.5, 0.4, 0.6] }, 10, 8e-3);
  const r = await checkCase(set, { method: 'dare_linear', densities: [0.5, 0.4, 0.6], dtype: 'float32' }, 10);
  assert.equal(readSafetensorsFile(r.files[0]!).tensors.get('layer.0.weight')!.dtype, 'F32');
});

void test('DARE masks and every output byte are independent of the chunk size', async () => {
  const dir = join(folder.dir, 'chunks');
  mkdirSync(dir);
  const set = modelSetIn(dir, 3, 8);
  for (const method of ['dare_linear', 'dare_ties', 'ties'] as const) {
    const configFile = writeConfig(set, { method, densities: [0.5, 0.3, 0.7] });
    const outputs: Buffer[] = [];
    for (const chunk of [3, 17, 1 << 16]) {
      const r = await runConfig(configFile, { chunkElements: chunk });
      outputs.push(readFileSync(r.files[0]!));
    }
    assert.ok(outputs[0]!.equals(outputs[1]!) && outputs[1]!.equals(outputs[2]!), `${method}: same bytes for chunk sizes 3, 17, 65536`);
  }
});

void test('with AWD the output is the same bits for any chunk size that is a whole number of Gram blocks', async () => {
  const dir = join(folder.dir, 'blocks');
  mkdirSync(dir);
  const block = GRAM_BLOCK_ELEMENTS;
  const set = writeModelSet(dir, { K: 2, tensors: [{ name: 'w', shape: [2 * block + 1000], dtype: 'F32' }, { name: 'b', shape: [7000], dtype: 'F32' }], seed: 12 });
  const configFile = writeConfig(set, { method: 'dare_ties', densities: [0.5, 0.5], awd: { granularity: 'model' } });
  const a = await runConfig(configFile, { chunkElements: block });
  const bytes = readFileSync(a.files[0]!);
  const b = await runConfig(configFile, { memoryBudgetBytes: 2 * block * 4 * (2 * 3 + 3) });
  assert.equal(b.chunkElements, 2 * block);
  assert.ok(bytes.equals(readFileSync(b.files[0]!)));
});

void test('reruns are bit-identical (whole file), also from the record; the record holds digests, stats and AWD diagnostics', async () => {
  const dir = join(folder.dir, 'rerun');
  mkdirSync(dir);
  const set = modelSetIn(dir, 3, 9);
  const configFile = writeConfig(set, { method: 'dare_ties', densities: [0.5, 0.3, 0.7], awd: { granularity: 'tensor' } });
  const first = await runConfig(configFile, { chunkElements: 11 });
  const bytes1 = readFileSync(first.files[0]!);
  const second = await runConfig(configFile, { chunkElements: 11 });
  assert.ok(bytes1.equals(readFileSync(second.files[0]!)), 'same config ⇒ same bytes');
  const third = await runConfig(first.recordFile, { chunkElements: 11 });
  assert.ok(bytes1.equals(readFileSync(third.files[0]!)), 'the record reruns to the same bytes');

  const record = JSON.parse(readFileSync(first.recordFile, 'utf8')) as {
    inputs: { files: { sha256: string; path: string }[] }[];
    tensors: { name: string; mean: number; max: number; l2_norm: number; nan_count: number }[];
    awd: { per_tensor: object };
    started_at: string;
  };
  const digest = createHash('sha256').update(readFileSync(set.base)).digest('hex');
  assert.equal(record.inputs[0]!.files[0]!.sha256, digest);
  assert.equal(record.inputs.length, 4);
  assert.ok(record.started_at);
  const out = readSafetensorsFile(first.files[0]!);
  const w = out.tensors.get('layer.0.weight')!.values;
  const stats = record.tensors.find((t) => t.name === 'layer.0.weight')!;
  const mean = w.reduce((a, b) => a + b, 0) / w.length;
  assert.ok(Math.abs(stats.mean - mean) < 1e-6);
  assert.equal(stats.max, Math.max(...w));
  assert.ok(Math.abs(stats.l2_norm - Math.hypot(...w)) < 1e-5);
  assert.equal(stats.nan_count, 0);
  assert.deepEqual(Object.keys(record.awd.per_tensor).sort(), [...MERGED].sort());
  const meta = out.metadata['awd_merge.record'];
  assert.ok(meta && !meta.includes('started_at'), '__metadata__ holds the record without clock times');
});

void test('cancellation stops the merge and leaves no output, no record and no temporary file', async () => {
  const dir = join(folder.dir, 'cancel');
  mkdirSync(dir);
  const set = modelSetIn(dir, 3, 10);
  for (const phase of ['statistics', 'threshold', 'output'] as const) {
    const configFile = writeConfig(set, { method: 'ties', densities: [0.5, 0.5, 0.5], trimScope: 'model', awd: { granularity: 'model' } });
    const controller = new AbortController();
    await assert.rejects(
      runConfig(configFile, {
        chunkElements: 4,
        signal: controller.signal,
        onProgress: (p) => {
          if (p.phase === phase && p.bytesDone > 0) controller.abort();
        },
      }),
      CancelledError,
    );
    const outDir = join(dir, 'out');
    const left = existsSync(outDir) ? readdirSync(outDir) : [];
    assert.deepEqual(left, [], `cancelled in ${phase}: nothing left in the output folder`);
  }
});
