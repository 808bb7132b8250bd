// Load: 8 merges queued at once through the job runner, one after the other as the extension's BackgroundJobs runs
// them (a chain of promises: each starts when the one before has settled). They must finish in queue order, each
// with its own correct output, with the chunk buffers inside the memory budget, the process's RSS growth bounded,
// and the host's event loop free (the host only relays messages; the work is on the worker thread).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { startJob } from '../../../src/jobs/runner';
import type { JobResult } from '../../../src/jobs/protocol';
import { floatTensors, tempFolder } from '../merge/executeFixtures';
import { mergeScenario } from '../../support/mergeScenario';

const folder = tempFolder('awd-load-');
process.env['AWD_MERGE_CACHE_DIR'] = join(folder.dir, 'cache');
after(folder.cleanup);

const JOBS = 8;
const BUDGET = 32 * 2 ** 20;

void test(`${JOBS} merges queued at once finish in order, within the memory budget, with the host responsive`, async (t) => {
  const s = mergeScenario(join(folder.dir, 'models'), join(folder.dir, 'unused.safetensors'), { rows: 1024 });
  const base = JSON.parse(readFileSync(s.configFile, 'utf8')) as Record<string, unknown>;
  const configs = Array.from({ length: JOBS }, (_, i) => {
    const file = join(folder.dir, `job${i}.merge.json`);
    // Each job a different λ, so that a mixed-up output would show.
    writeFileSync(file, JSON.stringify({ ...base, parameters: { lambda: 0.1 * (i + 1) }, awd: { iterations: 10 }, out_path: join(folder.dir, 'out', `job${i}.safetensors`) }));
    return file;
  });

  const rssBefore = process.memoryUsage.rss();
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  const finished: number[] = [];
  const results: JobResult[] = [];
  let tail: Promise<unknown> = Promise.resolve();
  const t0 = Date.now();
  const all = configs.map((configFile, i) => {
    const turn = tail.then(
      () => undefined,
      () => undefined,
    );
    const done = turn.then(async () => {
      const result = await startJob({ kind: 'merge', configFile, memoryBudgetBytes: BUDGET }).done;
      finished.push(i);
      results[i] = result;
      return result;
    });
    tail = done;
    return done;
  });
  await Promise.all(all);
  const seconds = (Date.now() - t0) / 1000;
  loop.disable();

  assert.deepEqual(finished, [...Array(JOBS).keys()]);
  const summaries = results.map((r) => (r.kind === 'merge' ? r.merge : assert.fail('not a merge result')));
  for (const m of summaries) assert.ok(m.bufferBytes <= BUDGET, `chunk buffers ${m.bufferBytes} B exceed the ${BUDGET} B budget`);
  // Outputs are the jobs' own: job i's task-vector part is (i + 1) times job 0's (same AWD, λ = 0.1 (i + 1)).
  const baseW = floatTensors(s.base).get('layers.0.weight')!;
  const first = floatTensors(summaries[0]!.files[0]!).get('layers.0.weight')!;
  for (let i = 1; i < JOBS; i++) {
    const w = floatTensors(summaries[i]!.files[0]!).get('layers.0.weight')!;
    for (const e of [0, 1000, 200_000]) {
      const want = baseW[e]! + (i + 1) * (first[e]! - baseW[e]!);
      assert.ok(Math.abs(w[e]! - want) <= 1e-4 * (1 + Math.abs(want)), `job ${i} element ${e}: ${w[e]} vs ${want}`);
    }
  }
  const peak = Math.max(...summaries.map((m) => m.peakBytes));
  const growth = peak - rssBefore;
  const maxDelayMs = loop.max / 1e6;
  t.diagnostic(
    `${JOBS} jobs in ${seconds.toFixed(1)} s; chunk buffers ${(summaries[0]!.bufferBytes / 2 ** 20).toFixed(1)} MiB (budget ${BUDGET / 2 ** 20} MiB); ` +
      `RSS before ${(rssBefore / 2 ** 20).toFixed(0)} MiB, peak seen by the workers ${(peak / 2 ** 20).toFixed(0)} MiB (+${(growth / 2 ** 20).toFixed(0)} MiB); ` +
      `host event-loop delay max ${maxDelayMs.toFixed(0)} ms, p99 ${(loop.percentile(99) / 1e6).toFixed(0)} ms`,
  );
  // One worker at a time: its thread (V8 isolate, tsx in tests) and the chunk buffers, never 8 of them.
  assert.ok(growth < BUDGET + 256 * 2 ** 20, `RSS grew by ${growth} bytes`);
  assert.ok(maxDelayMs < 500, `the host's event loop stalled for ${maxDelayMs.toFixed(0)} ms`);
});
