// The temp-file rule of the safetensors writer: `<final>.tmp-<pid>-<thread>-<random>`; a new writer of an output
// removes that output's leftovers of dead processes and of other (finished or crashed) threads of this process,
// and leaves alone a live process's files, this thread's own, and everything not belonging to the output.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { threadId } from 'node:worker_threads';
import { createSafetensorsWriter, staleTempFileOwner } from '../../../src/core/formats/safetensorsWriter';
import { tempFolder } from '../merge/executeFixtures';

const folder = tempFolder('awd-temp-');
after(folder.cleanup);
const DEAD_PID = 99_999_999; // above any Linux pid_max (at most 2^22)

void test('temp names are parsed for the output they belong to, and nothing else', () => {
  assert.deepEqual(staleTempFileOwner('model.safetensors.tmp-12-3-abcdef012345', 'model'), { pid: 12, thread: 3 });
  assert.deepEqual(staleTempFileOwner('model-00002-of-00003.safetensors.tmp-5-0-aa', 'model'), { pid: 5, thread: 0 });
  assert.deepEqual(staleTempFileOwner('model.safetensors.index.json.tmp-9-1-ff', 'model'), { pid: 9, thread: 1 });
  assert.deepEqual(staleTempFileOwner('model.safetensors.tmp-9-1-ff.old', 'model'), { pid: 9, thread: 1 });
  for (const other of ['model.safetensors', 'modelx.safetensors.tmp-1-1-aa', 'other.safetensors.tmp-1-1-aa', 'model.safetensors.tmp-abc', 'model.awd-record.json']) {
    assert.equal(staleTempFileOwner(other, 'model'), undefined, other);
  }
});

void test('a new writer removes dead writers\' temp files of its output and keeps the rest', async () => {
  const files = {
    dead: `model.safetensors.tmp-${DEAD_PID}-0-0123456789ab`,
    deadShard: `model-00001-of-00002.safetensors.tmp-${DEAD_PID}-4-0123456789ab`,
    deadIndex: `model.safetensors.index.json.tmp-${DEAD_PID}-4-0123456789ab`,
    otherThread: `model.safetensors.tmp-${process.pid}-${threadId + 1000}-0123456789ab`,
    live: 'model.safetensors.tmp-1-0-0123456789ab',
    ownThread: `model.safetensors.tmp-${process.pid}-${threadId}-0123456789ab`,
    otherOutput: `other.safetensors.tmp-${DEAD_PID}-0-0123456789ab`,
    input: 'model0.safetensors',
  };
  for (const name of Object.values(files)) writeFileSync(join(folder.dir, name), 'x');
  const writer = await createSafetensorsWriter(join(folder.dir, 'model.safetensors'), [{ name: 'w', dtype: 'F32', shape: [2] }]);
  await writer.writeFloat32('w', new Float32Array([1, 2]));
  await writer.finish();
  assert.deepEqual(readdirSync(folder.dir).sort(), [files.input, files.live, 'model.safetensors', files.ownThread, files.otherOutput].sort());
});
