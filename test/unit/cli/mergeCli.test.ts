// `awd-merge merge` and `awd-merge similarity` end to end: the command functions with captured output (the job
// still runs on a worker thread), and the real CLI entry spawned as a process.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { mergeCommand, type CommandIo } from '../../../src/cli/merge';
import { similarityCommand } from '../../../src/cli/similarity';
import { tempFolder, writeModelSet, type FixtureTensor } from '../merge/executeFixtures';

const folder = tempFolder('awd-cli-');
after(folder.cleanup);
// The job worker keeps its digest cache here, not in the home folder (worker threads and child processes inherit it).
process.env['AWD_MERGE_CACHE_DIR'] = join(folder.dir, 'cache');

const TENSORS: FixtureTensor[] = [
  { name: 'w1', shape: [20, 30], dtype: 'F32' },
  { name: 'b1', shape: [30], dtype: 'BF16' },
];

function captured(): CommandIo & { out: () => string; err: () => string } {
  let out = '';
  let err = '';
  return {
    stdout: { write: (s: string) => ((out += s), true) } as unknown as CommandIo['stdout'],
    stderr: { write: (s: string) => ((err += s), true) } as unknown as CommandIo['stderr'],
    out: () => out,
    err: () => err,
  };
}

const dir = join(folder.dir, 'models');
mkdirSync(dir);
const set = writeModelSet(dir, { K: 3, tensors: TENSORS, seed: 41, shared: 0.1 });
const configFile = join(dir, 'merge.yaml');
writeFileSync(
  configFile,
  [
    'merge_method: task_arithmetic',
    'base_model: base.safetensors',
    'models:',
    ...set.models.map((_, i) => `  - model: model${i}.safetensors\n    parameters: { weight: ${1 + i / 2} }`),
    'parameters: { lambda: 0.5 }',
    'awd: { iterations: 30 }',
    'out_path: out/merged.safetensors',
    '',
  ].join('\n'),
);

void test('merge --json prints the summary with files, seconds, peak bytes and AWD diagnostics', async () => {
  const io = captured();
  assert.equal(await mergeCommand([configFile, '--json'], io), 0, io.err());
  const summary = JSON.parse(io.out()) as { files: string[]; record_file: string; seconds: number; peak_bytes: number; awd: { coefficients: number[]; loss: number[] } };
  assert.ok(existsSync(summary.files[0]!));
  assert.ok(existsSync(summary.record_file));
  assert.ok(summary.seconds > 0 && summary.peak_bytes > 0);
  assert.equal(summary.awd.coefficients.length, 3);
  assert.equal(summary.awd.loss.length, 31);
});

void test('merge of a record file reruns it; a missing config is one error line and exit 1', async () => {
  const io = captured();
  assert.equal(await mergeCommand([join(dir, 'out', 'merged.awd-record.json')], io), 0, io.err());
  assert.match(io.out(), /wrote .*merged\.safetensors/);
  const bad = captured();
  assert.equal(await mergeCommand([join(dir, 'missing.yaml')], bad), 1);
  assert.match(bad.err(), /^error: .*missing\.yaml.*\n$/);
  const usage = captured();
  assert.equal(await mergeCommand([], usage), 1);
  assert.match(usage.err(), /^error: merge: give exactly one config file/);
});

void test('similarity --json prints models, cosine, per_tensor and awd; without --json a table', async () => {
  const io = captured();
  const code = await similarityCommand(['--base', set.base, ...set.models, '--awd', '--iterations', '25', '--granularity', 'model', '--per-tensor', '--json'], io);
  assert.equal(code, 0, io.err());
  const r = JSON.parse(io.out()) as { models: string[]; cosine: number[][]; per_tensor: Record<string, number[][]>; awd: { cos_after: number[][]; delta_norm: number; coefficients: number[]; effective_ta_coefficients: number[]; loss: number[] } };
  assert.deepEqual(r.models, set.models);
  assert.equal(r.cosine.length, 3);
  assert.equal(r.cosine[0]!.length, 3);
  assert.deepEqual(Object.keys(r.per_tensor).sort(), ['b1', 'w1']);
  assert.equal(r.awd.cos_after.length, 3);
  assert.equal(r.awd.coefficients.length, 3);
  assert.equal(r.awd.effective_ta_coefficients.length, 3);
  assert.equal(r.awd.loss.length, 26);
  assert.ok(r.awd.delta_norm > 0);

  const table = captured();
  assert.equal(await similarityCommand(['--base', set.base, ...set.models], table), 0, table.err());
  assert.match(table.out(), /cosine similarity of the task vectors/);
  assert.match(table.out(), /mean \|cos\| over pairs: \d\.\d{4}/);

  const bad = captured();
  assert.equal(await similarityCommand(['--base', set.base, set.models[0]!, '--alpha', '0.2'], bad), 1);
  assert.equal(bad.err().trim().split('\n').length, 1);
  assert.match(bad.err(), /^error: similarity: /);
});

void test('the CLI entry runs merge and similarity as a process', { skip: !existsSync(join(__dirname, '../../../src/cli/main.ts')) && 'src/cli/main.ts has not landed' }, () => {
  const main = join(__dirname, '../../../src/cli/main.ts');
  const run = (args: string[]): ReturnType<typeof spawnSync> =>
    spawnSync(process.execPath, ['--import', 'tsx', main, ...args], { encoding: 'utf8', cwd: join(__dirname, '../../..') });
  const merged = run(['merge', configFile, '--json']);
  assert.equal(merged.status, 0, String(merged.stderr));
  assert.ok(existsSync((JSON.parse(String(merged.stdout)) as { files: string[] }).files[0]!));
  const sim = run(['similarity', '--base', set.base, ...set.models, '--json']);
  assert.equal(sim.status, 0, String(sim.stderr));
  assert.equal((JSON.parse(String(sim.stdout)) as { cosine: number[][] }).cosine.length, 3);
  const bad = run(['merge', join(dir, 'missing.yaml')]);
  assert.equal(bad.status, 1);
  assert.match(String(bad.stderr), /^error: /);
  assert.doesNotMatch(String(bad.stderr), /\n\s+at /, 'no stack trace');
});
