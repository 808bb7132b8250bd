import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { AwdError, AwdErrorList } from '../../src/core/errors';

void test('an AwdError names file, tensor and fix in its message', () => {
  const e = new AwdError('shape [2, 3] differs from the base model\'s [3, 2]', { file: 'a.safetensors', tensor: 'w', fix: 'Merge models of one architecture' });
  assert.equal(e.message, 'a.safetensors, tensor "w": shape [2, 3] differs from the base model\'s [3, 2]. Merge models of one architecture');
  assert.equal(e.file, 'a.safetensors');
  assert.equal(e.tensor, 'w');
});

void test('restore keeps the composed message and the parts of an error that crossed a thread', () => {
  const original = new AwdError('missing', { file: 'b.safetensors', tensor: 'x', fix: 'Check the path' });
  const copy = AwdError.restore({ message: original.message, file: original.file, tensor: original.tensor, fix: original.fix });
  assert.ok(copy instanceof AwdError);
  assert.equal(copy.message, original.message);
  assert.deepEqual([copy.file, copy.tensor, copy.fix], ['b.safetensors', 'x', 'Check the path']);
  const list = new AwdErrorList([copy, original]);
  assert.equal(list.problems.length, 2);
  assert.match(list.message, /2 problem\(s\) found:\n {2}- b\.safetensors/);
});
