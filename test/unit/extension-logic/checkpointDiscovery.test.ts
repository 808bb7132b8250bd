import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import {
  checkpointKindOfFile,
  discoverCheckpoints,
  groupByFolder,
  isInSkippedFolder,
  weightFileOfFolder,
} from '../../../src/extension/checkpoints/checkpointDiscovery';
import { describeSummary, formatBytes, formatParameterCount, summarizeTensors } from '../../../src/extension/checkpoints/checkpointSummary';

const root = path.resolve('/ws');
const p = (...s: string[]): string => path.join(root, ...s);

void test('file kinds by name', () => {
  assert.equal(checkpointKindOfFile('a/b.safetensors'), 'safetensors');
  assert.equal(checkpointKindOfFile('model.safetensors.index.json'), 'safetensors-sharded');
  assert.equal(checkpointKindOfFile('pytorch_model.bin.index.json'), 'safetensors-sharded');
  assert.equal(checkpointKindOfFile('x.BIN'), 'pytorch');
  assert.equal(checkpointKindOfFile('x.pt'), 'pytorch');
  assert.equal(checkpointKindOfFile('x.pth'), 'pytorch');
  assert.equal(checkpointKindOfFile('x.npz'), 'npz');
  assert.equal(checkpointKindOfFile('config.json'), undefined);
  assert.equal(checkpointKindOfFile('x.npy'), undefined);
});

void test('plain files are one checkpoint each, sorted by folder then name', () => {
  const found = discoverCheckpoints([p('zoo', 'b.safetensors'), p('zoo', 'a.pt'), p('base.npz'), p('zoo', 'notes.txt')]);
  assert.deepEqual(
    found.map((c) => [c.label, c.kind, c.folder]),
    [
      ['base.npz', 'npz', root],
      ['a.pt', 'pytorch', p('zoo')],
      ['b.safetensors', 'safetensors', p('zoo')],
    ],
  );
  assert.equal(found[1]!.path, p('zoo', 'a.pt'));
});

void test('shards collapse into their index; shard-named files without an index stay visible', () => {
  const found = discoverCheckpoints([
    p('big', 'model-00001-of-00002.safetensors'),
    p('big', 'model-00002-of-00002.safetensors'),
    p('big', 'model.safetensors.index.json'),
    p('orphans', 'model-00001-of-00002.safetensors'),
  ]);
  assert.deepEqual(
    found.map((c) => [c.label, c.kind]),
    [
      ['model.safetensors.index.json', 'safetensors-sharded'],
      ['model-00001-of-00002.safetensors', 'safetensors'],
    ],
  );
});

void test('a folder with config.json and known weights is one HF-folder checkpoint listed under its parent', () => {
  const found = discoverCheckpoints([p('hf', 'gpt', 'config.json'), p('hf', 'gpt', 'model.safetensors'), p('hf', 'other', 'config.json')]);
  assert.deepEqual(found, [{ path: p('hf', 'gpt'), kind: 'hf-folder', label: 'gpt', folder: p('hf') }]);
  // Its sharded weights collapse into it too; another checkpoint file in it (a head) stays an entry of its own.
  const sharded = discoverCheckpoints([
    p('zoo', 'rot90', 'config.json'),
    p('zoo', 'rot90', 'model.safetensors.index.json'),
    p('zoo', 'rot90', 'model-00001-of-00002.safetensors'),
    p('zoo', 'rot90', 'model-00002-of-00002.safetensors'),
    p('zoo', 'rot90', 'head.safetensors'),
  ]);
  assert.deepEqual(sharded.map((c) => [c.label, c.kind, c.folder]), [
    ['rot90', 'hf-folder', p('zoo')],
    ['head.safetensors', 'safetensors', p('zoo', 'rot90')],
  ]);
});

void test('groupByFolder keeps folder order and entries by name', () => {
  const groups = groupByFolder(discoverCheckpoints([p('z', 'b.safetensors'), p('a', 'x.safetensors'), p('z', 'a.safetensors')]));
  assert.deepEqual(
    groups.map((g) => [g.folder, g.checkpoints.map((c) => c.label)]),
    [
      [p('a'), ['x.safetensors']],
      [p('z'), ['a.safetensors', 'b.safetensors']],
    ],
  );
});

void test('skipped folders', () => {
  assert.equal(isInSkippedFolder('/ws/node_modules/x/a.safetensors'), true);
  assert.equal(isInSkippedFolder('/ws/.git/a.bin'), true);
  assert.equal(isInSkippedFolder('/ws/models/node_modules_backup/a.bin'), false);
});

void test('summaries: counts, dtype order by elements, formatting', () => {
  const s = summarizeTensors([
    { dtype: 'F32', elements: 1000, bytes: 4000 },
    { dtype: 'I64', elements: 10, bytes: 80 },
    { dtype: 'F32', elements: 24, bytes: 96 },
  ]);
  assert.deepEqual(s, { tensors: 3, parameters: 1034, bytes: 4176, dtypes: ['F32', 'I64'] });
  assert.equal(describeSummary(s), '1.03K params · 4.08 KiB · F32 + I64');
  assert.equal(formatParameterCount(999), '999');
  assert.equal(formatParameterCount(7_000_000), '7M');
  assert.equal(formatParameterCount(1_500_000_000), '1.5B');
  assert.equal(formatParameterCount(123_456_789), '123M');
  assert.equal(formatBytes(512), '512 B');
  assert.equal(formatBytes(1536), '1.5 KiB');
  assert.equal(formatBytes(3 * 2 ** 30), '3 GiB');
  assert.equal(describeSummary(summarizeTensors([])), '0 params · 0 B · empty');
});

void test('the weight file of a model folder', () => {
  assert.equal(weightFileOfFolder(['config.json', 'pytorch_model.bin', 'model.safetensors']), 'model.safetensors');
  assert.equal(weightFileOfFolder(['a.safetensors', 'notes.md']), 'a.safetensors');
  assert.equal(weightFileOfFolder(['a.safetensors', 'b.safetensors']), undefined);
  assert.equal(weightFileOfFolder(['model-00001-of-00002.safetensors', 'x.safetensors.index.json']), 'x.safetensors.index.json');
  assert.equal(weightFileOfFolder([]), undefined);
});
