// Faults during a merge, through the job runner (worker thread) or the CLI process: a full disk, a read-only
// output folder, an input truncated or rewritten while read, a crashed worker, a cancel at a random point, a killed
// process (VS Code reloading mid-merge). Every case: no partial output (no final-named file, no record, no temp
// file — or, after a hard kill, only a temp file that the next run of the same output removes), a clear message,
// the inputs byte-identical, and a rerun that succeeds.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync, statSync, truncateSync, writeFileSync, writeSync, closeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { startJob } from '../../../src/jobs/runner';
import type { JobResult } from '../../../src/jobs/protocol';
import { AwdError, CancelledError } from '../../../src/core/errors';
import { tempFolder, seededRandom } from '../merge/executeFixtures';
import { canMount, digests, entriesOf, mergeScenario, mountTmpfs, remount, tempFilesIn, unmount, writeConfig } from '../../support/mergeScenario';

const folder = tempFolder('awd-faults-');
process.env['AWD_MERGE_CACHE_DIR'] = join(folder.dir, 'cache');
const MOUNTABLE = canMount(folder.dir);
const mounts: string[] = [];
after(() => {
  for (const m of mounts) unmount(m);
  folder.cleanup();
});

/** Small chunks so the output pass spans hundreds of chunks (time to interfere with it). */
const CHUNK = 4096;

function runMergeJob(configFile: string, extra: { workerPath?: string; onOutput?: () => void; defaultChunks?: boolean } = {}): Promise<JobResult> {
  let fired = false;
  const job = startJob(
    { kind: 'merge', configFile, ...(extra.defaultChunks ? {} : { chunkElements: CHUNK }) },
    {
      onProgress: (p) => {
        if (!fired && p.phase === 'output' && p.bytesDone > 0) {
          fired = true;
          extra.onOutput?.();
        }
      },
    },
    extra.workerPath ? { workerPath: extra.workerPath } : {},
  );
  return job.done;
}

/** The error `promise` rejects with (failing the test when it resolves); its message is printed as a diagnostic. */
async function rejection(promise: Promise<unknown>, t: { diagnostic(message: string): void }): Promise<Error> {
  const error = await promise.then(
    () => assert.fail('the merge succeeded'),
    (e: unknown) => e,
  );
  assert.ok(error instanceof Error, String(error));
  t.diagnostic(`message: ${error.message.replace(/\n/g, ' ')}`);
  return error;
}

/** The output folder holds nothing of this merge: no output, no record, no temp file. */
function assertNothingWritten(outPath: string): void {
  const names = entriesOf(dirname(outPath));
  assert.deepEqual(names, [], `left in the output folder: ${names.join(', ')}`);
}

async function assertRerunSucceeds(configFile: string, outPath: string): Promise<void> {
  const result = await runMergeJob(configFile);
  assert.equal(result.kind, 'merge');
  assert.ok(existsSync(outPath));
  assert.deepEqual(tempFilesIn(dirname(outPath)), []);
}

void describe('faults during a merge', () => {
  // With small chunks (this thread writes every row through the writer) and with the default ones (the merge
  // threads write the output rows themselves, and the writer redoes a failed one).
  for (const [label, defaultChunks] of [
    ['the output disk fills up: ENOSPC named, nothing left, inputs untouched, a rerun with room succeeds', false],
    ['the output disk fills up while the merge threads write the output rows themselves (default chunks): the same outcome', true],
  ] as const) {
    void it(label, { skip: MOUNTABLE ? false : 'mounting a tmpfs is not permitted here (run as root to test a full disk)' }, async (t) => {
      const mount = join(folder.dir, `small-disk${defaultChunks ? '-threads' : ''}`);
      assert.ok(mountTmpfs(mount, 256 * 1024));
      mounts.push(mount);
      const s = mergeScenario(join(folder.dir, `full${defaultChunks ? '-threads' : ''}`), join(mount, 'out', 'merged.safetensors'));
      const before = digests([s.base, ...s.models]);
      const error = await rejection(runMergeJob(s.configFile, { defaultChunks }), t);
      assert.ok(error instanceof AwdError, String(error));
      assert.match(error.message, /ENOSPC|no space/i);
      assert.match(error.message, /Free disk space/);
      assert.deepEqual(entriesOf(join(mount, 'out')), []);
      assert.deepEqual(digests([s.base, ...s.models]), before);
      remount(mount, 'size=64m');
      await assertRerunSucceeds(s.configFile, s.outPath);
    });
  }

  void it('the output folder is read-only: the message says so, nothing left, a rerun once writable succeeds', { skip: MOUNTABLE ? false : 'mounting a tmpfs is not permitted here' }, async (t) => {
    const mount = join(folder.dir, 'ro-disk');
    assert.ok(mountTmpfs(mount, 64 * 2 ** 20));
    mounts.push(mount);
    mkdirSync(join(mount, 'out'));
    remount(mount, 'ro');
    const s = mergeScenario(join(folder.dir, 'ro'), join(mount, 'out', 'merged.safetensors'));
    const before = digests([s.base, ...s.models]);
    const e = await rejection(runMergeJob(s.configFile), t);
    assert.ok(e instanceof AwdError, String(e));
    assert.match(e.message, /read-only|EROFS/i);
    assert.match(e.message, /Choose a folder you can write to/);
    assert.deepEqual(entriesOf(join(mount, 'out')), []);
    assert.deepEqual(digests([s.base, ...s.models]), before);
    remount(mount, 'rw');
    await assertRerunSucceeds(s.configFile, s.outPath);
  });

  void it('an input truncated while the merge reads it: the file is named, nothing is left, a rerun succeeds', async (t) => {
    const s = mergeScenario(join(folder.dir, 'truncated'), join(folder.dir, 'truncated', 'out', 'merged.safetensors'));
    const victim = s.models[1]!;
    const original = readFileSync(victim);
    const others = [s.base, s.models[0]!, s.models[2]!];
    const before = digests(others);
    const e = await rejection(runMergeJob(s.configFile, { onOutput: () => truncateSync(victim, Math.floor(original.length / 2)) }), t);
    assert.ok(e instanceof AwdError, String(e));
    assert.ok(e.message.includes(victim), e.message);
    assert.match(e.message, /truncated|changed size|file ends/);
    assertNothingWritten(s.outPath);
    assert.deepEqual(digests(others), before);
    writeFileSync(victim, original);
    await assertRerunSucceeds(s.configFile, s.outPath);
  });

  void it('an input rewritten in place (same size) while read: the change is detected before anything is renamed into place', async (t) => {
    const s = mergeScenario(join(folder.dir, 'rewritten'), join(folder.dir, 'rewritten', 'out', 'merged.safetensors'));
    const victim = s.models[0]!;
    const original = readFileSync(victim);
    const e = await rejection(
      runMergeJob(s.configFile, {
        onOutput: () => {
          // Same size, other bytes at the end (data of the last tensor): only the mtime tells.
          const fd = openSync(victim, 'r+');
          writeSync(fd, new Uint8Array(64).fill(0x41), 0, 64, statSync(victim).size - 64);
          closeSync(fd);
        },
      }),
      t,
    );
    assert.ok(e instanceof AwdError, String(e));
    assert.ok(e.message.includes(victim), e.message);
    assert.match(e.message, /was modified/);
    assertNothingWritten(s.outPath);
    writeFileSync(victim, original);
    await assertRerunSucceeds(s.configFile, s.outPath);
  });

  void it('the worker thread crashes mid-output: an error (not a hang), no final-named file, and the next run removes the temp file', async (t) => {
    const out = join(folder.dir, 'crash', 'out');
    const s = mergeScenario(join(folder.dir, 'crash'), join(out, 'merged.safetensors'));
    const before = digests([s.base, ...s.models]);
    process.env['AWD_TEST_CRASH_WHEN_TEMP_IN'] = out;
    try {
      const e = await rejection(runMergeJob(s.configFile, { workerPath: join(__dirname, '../../support/crashingWorker.ts') }), t);
      assert.match(e.message, /worker thread stopped without a result \(exit code 9\)/);
    } finally {
      delete process.env['AWD_TEST_CRASH_WHEN_TEMP_IN'];
    }
    // A dead writer cannot clean up: at worst its temp file stays, never a file under the final name.
    t.diagnostic(`left after the crash: ${entriesOf(out).join(', ')}`);
    assert.ok(entriesOf(out).every((n) => n.includes('.tmp-')), entriesOf(out).join(', '));
    assert.deepEqual(digests([s.base, ...s.models]), before);
    await assertRerunSucceeds(s.configFile, s.outPath);
    assert.deepEqual(entriesOf(out), ['merged.awd-record.json', 'merged.safetensors']);
  });

  void it('cancel at 5 seeded random points: cancelled or finished, never half-written; inputs untouched; a rerun succeeds', async (t) => {
    const s = mergeScenario(join(folder.dir, 'cancel'), join(folder.dir, 'cancel', 'out', 'merged.safetensors'));
    const before = digests([s.base, ...s.models]);
    const random = seededRandom(20261125);
    // How long an uninterrupted run takes, to spread the cancel points over it.
    const t0 = Date.now();
    await runMergeJob(s.configFile);
    const duration = Date.now() - t0;
    const outcomes: string[] = [];
    for (let i = 0; i < 5; i++) {
      const job = startJob({ kind: 'merge', configFile: s.configFile, chunkElements: CHUNK });
      const at = Math.floor(random() * duration);
      setTimeout(() => job.cancel(), at);
      try {
        await job.done;
        outcomes.push(`finished before the cancel at ${at} ms`);
        assert.ok(existsSync(s.outPath));
      } catch (e) {
        assert.ok(e instanceof CancelledError, String(e));
        outcomes.push(`cancelled at ${at} ms`);
        // The previous run's output was replaced only if this one finished; a cancelled run removes only its own files.
      }
      assert.deepEqual(tempFilesIn(dirname(s.outPath)), [], `temp files after cancel at ${at} ms`);
    }
    t.diagnostic(outcomes.join('; '));
    assert.ok(outcomes.some((o) => o.startsWith('cancelled')), outcomes.join('; '));
    assert.deepEqual(digests([s.base, ...s.models]), before);
    await assertRerunSucceeds(s.configFile, s.outPath);
  });

  void it('the process is killed mid-merge (VS Code reload): only a temp file is left, and the next run of that output removes it', async (t) => {
    const out = join(folder.dir, 'killed', 'out');
    const s = mergeScenario(join(folder.dir, 'killed'), join(out, 'merged.safetensors'), { rows: 1024 });
    const before = digests([s.base, ...s.models]);
    const cli = spawn(process.execPath, ['--import', 'tsx', join(__dirname, '../../../src/cli/main.ts'), 'merge', s.configFile, '--memory-budget', '1M'], { stdio: 'ignore' });
    const exited = new Promise<void>((resolve) => cli.once('exit', () => resolve()));
    // Kill it (SIGKILL: no handler runs) the moment its temp output file exists.
    await new Promise<void>((resolve, reject) => {
      const timer = setInterval(() => {
        if (tempFilesIn(out).length > 0) {
          clearInterval(timer);
          cli.kill('SIGKILL');
          resolve();
        } else if (cli.exitCode !== null) {
          clearInterval(timer);
          reject(new Error('the CLI finished before it could be killed'));
        }
      }, 2);
    });
    await exited;
    const left = entriesOf(out);
    t.diagnostic(`left after the kill: ${left.join(', ')}`);
    assert.ok(left.length >= 1 && left.every((n) => n.includes('.tmp-')), `after the kill: ${left.join(', ')}`);
    // A temp file of a live process (pid 1 always exists) belongs to a writer that may still be working: kept.
    const foreign = 'merged.safetensors.tmp-1-0-0123456789ab';
    writeFileSync(join(out, foreign), 'another writer');
    assert.deepEqual(digests([s.base, ...s.models]), before);
    writeConfig(s.configFile, s, s.outPath);
    const result = await runMergeJob(s.configFile);
    assert.equal(result.kind, 'merge');
    assert.deepEqual(entriesOf(out), ['merged.awd-record.json', 'merged.safetensors', foreign]);
  });
});

before(() => {
  if (!MOUNTABLE) console.log('# faults.test.ts: mount not permitted — the full-disk and read-only cases are skipped');
});
