import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MergeSelection } from '../../../src/extension/selection/mergeSelection';

void test('base and models are exclusive, order kept, duplicates skipped', () => {
  const s = new MergeSelection();
  let changes = 0;
  s.onDidChange(() => changes++);
  assert.equal(s.add(['a', 'b', 'a']), 2);
  s.setBase('b');
  assert.deepEqual(s.state, { base: 'b', models: ['a'] });
  assert.equal(s.add(['b', 'c']), 1);
  assert.deepEqual(s.state.models, ['a', 'c']);
  assert.equal(s.roleOf('b'), 'base');
  assert.equal(s.roleOf('c'), 'model');
  assert.equal(s.roleOf('z'), undefined);
  assert.equal(s.modelNumber('c'), 2);
  assert.equal(s.add(['a']), 0);
  assert.equal(changes, 3, 'a no-op add fires no change');
  s.remove('b');
  assert.equal(s.state.base, undefined);
  s.clear();
  assert.equal(s.isEmpty, true);
  s.clear();
  assert.equal(changes, 5, 'clearing an empty selection fires no change');
});

void test('replace drops the base from models and dedupes', () => {
  const s = new MergeSelection();
  s.replace({ base: 'x', models: ['x', 'y', 'y', 'z'] });
  assert.deepEqual(s.state, { base: 'x', models: ['y', 'z'] });
});

void test('unsubscribing stops notifications', () => {
  const s = new MergeSelection();
  let n = 0;
  const off = s.onDidChange(() => n++);
  s.setBase('a');
  off();
  s.setBase('b');
  assert.equal(n, 1);
});
