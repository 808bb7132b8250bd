// The worker-thread job runner end to end (the worker runs from the TypeScript sources through tsx): results,
// progress, user-facing errors, cancellation within a second leaving nothing behind, and crashed workers.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startJob } from '../../../src/jobs/runner';
import type { JobPhase } from '../../../src/jobs/protocol';
import { AwdError, CancelledError } from '../../../src/core/errors';
import { tempFolder, writeModelSet, type FixtureTensor } from '../merge/executeFixtures';

const folder = tempFolder('awd-jobs-');
after(folder.cleanup);
// The job worker keeps its digest cache here, not in the home folder (worker threads and child processes inherit it).
process.env['AWD_MERGE_CACHE_DIR'] = join(folder.dir, 'cache');

const TENSORS: FixtureTensor[] = [
  { name: 'w1', shape: [40, 50], dtype: 'F32' },
  { name: 'w2', shape: [2000], dtype: 'F32' },
];

function configFor(dir: string, models: string[], base: string, extra: object = {}): string {
  const file = join(dir, 'merge.yaml');
  writeFileSync(
    file,
    JSON.stringify({
      merge_method: 'ties',
      base_model: base,
      models: models.map((m) => ({ model: m, parameters: { weight: 1, density: 0.5 } })),
      parameters: { lambda: 1, trim_scope: 'model' },
      awd: { granularity: 'model', iterations: 20 },
      out_path: 'out/merged.safetensors',
      ...extra,
    }),
  );
  return file;
}

void test('a merge job reports progress through every phase and returns the summary', async () => {
  const dir = join(folder.dir, 'merge');
  mkdirSync(dir);
  const set = writeModelSet(dir, { K: 3, tensors: TENSORS, seed: 31 });
  const phases = new Set<JobPhase>();
  const job = startJob({ kind: 'merge', configFile: configFor(dir, set.models, set.base), chunkElements: 500 }, { onProgress: (p) => phases.add(p.phase) });
  const result = await job.done;
  assert.equal(result.kind, 'merge');
  if (result.kind !== 'merge') return;
  assert.ok(existsSync(result.merge.files[0]!));
  assert.ok(existsSync(result.merge.recordFile));
  assert.equal(result.merge.passes, 4);
  assert.ok(result.merge.awd && result.merge.awd.coefficients?.length === 3);
  for (const p of ['plan', 'statistics', 'threshold', 'output'] as const) assert.ok(phases.has(p), `phase ${p} reported`);
});

void test('a similarity job returns the report', async () => {
  const dir = join(folder.dir, 'similarity');
  mkdirSync(dir);
  const set = writeModelSet(dir, { K: 2, tensors: TENSORS, seed: 32 });
  const result = await startJob({ kind: 'similarity', base: set.base, models: set.models, perTensor: true, awd: { alpha: 0.1, learning_rate: 0.01, iterations: 10, granularity: 'tensor', norm: 'l2' } }).done;
  assert.equal(result.kind, 'similarity');
  if (result.kind !== 'similarity') return;
  assert.equal(result.similarity.cosine.length, 2);
  assert.deepEqual(Object.keys(result.similarity.per_tensor!), ['w1', 'w2']);
  assert.equal(result.similarity.awd!.loss.length, 11);
});

void test('a user-facing failure rejects with an AwdError naming the file', async () => {
  const missing = join(folder.dir, 'nope.yaml');
  await assert.rejects(startJob({ kind: 'merge', configFile: missing }).done, (e: unknown) => e instanceof AwdError && e.message.includes(missing));
  const dir = join(folder.dir, 'bad');
  mkdirSync(dir);
  const set = writeModelSet(dir, { K: 2, tensors: TENSORS, seed: 33 });
  const configFile = configFor(dir, [...set.models, join(dir, 'missing.safetensors')], set.base);
  await assert.rejects(startJob({ kind: 'merge', configFile }).done, (e: unknown) => e instanceof AwdError && e.message.includes('missing.safetensors'));
});

void test('cancel stops a running merge within a second and leaves nothing behind', async () => {
  const dir = join(folder.dir, 'cancel');
  mkdirSync(dir);
  const set = writeModelSet(dir, { K: 4, tensors: [{ name: 'big', shape: [400, 1000], dtype: 'F32' }], seed: 34 });
  let cancelledAt = 0;
  const job = startJob(
    { kind: 'merge', configFile: configFor(dir, set.models, set.base, { merge_method: 'task_arithmetic', parameters: { lambda: 1 } }), chunkElements: 256 },
    {
      onProgress: (p) => {
        if (p.phase === 'output' && p.bytesDone > 0 && !cancelledAt) {
          cancelledAt = performance.now();
          job.cancel();
        }
      },
    },
  );
  await assert.rejects(job.done, CancelledError);
  assert.ok(cancelledAt > 0, 'the merge reached its output pass before the cancel');
  const took = performance.now() - cancelledAt;
  assert.ok(took < 1000, `stopped ${took.toFixed(0)} ms after the cancel`);
  const outDir = join(dir, 'out');
  assert.deepEqual(existsSync(outDir) ? readdirSync(outDir) : [], []);
});

void test('a crashed or vanished worker becomes an error, never a hang', async () => {
  const thrower = join(folder.dir, 'throws.js');
  writeFileSync(thrower, "throw new Error('boom');\n");
  await assert.rejects(startJob({ kind: 'merge', configFile: 'x' }, {}, { workerPath: thrower }).done, /crashed: boom/);
  const exiter = join(folder.dir, 'exits.js');
  writeFileSync(exiter, 'process.exit(3);\n');
  await assert.rejects(startJob({ kind: 'merge', configFile: 'x' }, {}, { workerPath: exiter }).done, /exit code 3/);
});
