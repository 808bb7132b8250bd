// A short seeded run of the fuzzing harness (test/fuzz/run.ts) as part of the unit tests: every reader family gets
// cases, and none may crash, hang, overrun its CPU budget, accept a hostile file or let a pickle run code.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import type { FuzzSummary } from '../../fuzz/run';
import { FAMILIES } from '../../fuzz/cases';

void test('8 seconds of seeded fuzzing over every reader: 0 crashes, 0 hangs, 0 violations', (t) => {
  const run = spawnSync(process.execPath, ['--import', 'tsx', join(__dirname, '../../fuzz/run.ts'), '--seed', '20261125', '--seconds', '8', '--json'], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.equal(run.status, 0, `fuzz run failed:\n${run.stdout.slice(-4000)}\n${run.stderr.slice(-2000)}`);
  const summary = JSON.parse(run.stdout) as FuzzSummary;
  t.diagnostic(`${summary.cases} cases in ${summary.seconds.toFixed(1)} s; peak RSS ${(summary.peakRssBytes / 2 ** 20).toFixed(0)} MiB; slowest case ${summary.maxCpuMs.toFixed(0)} ms CPU`);
  assert.equal(summary.crashes, 0, JSON.stringify(summary.failures));
  assert.equal(summary.hangs, 0, JSON.stringify(summary.failures));
  assert.equal(summary.overCpu, 0, JSON.stringify(summary.failures));
  assert.equal(summary.violations, 0, JSON.stringify(summary.failures));
  for (const family of Object.keys(FAMILIES)) assert.ok(summary.families[family]!.tried >= 1, `${family} got no case`);
  assert.ok(summary.cases >= 24, `only ${summary.cases} cases ran`);
  // The case runner reads a few-KB file per case (bombs: ≤ 32 MiB by their own honest size): no lying size turned into a big buffer.
  assert.ok(summary.peakArrayBuffers < 256 * 2 ** 20, `array buffers peaked at ${summary.peakArrayBuffers} bytes`);
});
