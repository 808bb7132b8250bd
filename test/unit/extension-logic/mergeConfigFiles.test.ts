import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hasMergeConfigName, isMergeConfigDocument, lineMentioning, mergeMethodLine } from '../../../src/extension/config/mergeConfigFiles';

void test('config files by name or by a top-level merge_method', () => {
  assert.equal(hasMergeConfigName('/a/x.merge.yaml'), true);
  assert.equal(hasMergeConfigName('/a/x.merge.YML'), true);
  assert.equal(hasMergeConfigName('/a/x.merge.json'), true);
  assert.equal(hasMergeConfigName('/a/x.yaml'), false);
  assert.equal(isMergeConfigDocument('/a/x.merge.yaml', 'yaml', ''), true);
  assert.equal(isMergeConfigDocument('/a/mk.yml', 'yaml', '# mergekit\nmerge_method: ties\n'), true);
  assert.equal(isMergeConfigDocument('/a/other.yml', 'yaml', 'a:\n  merge_method: ties\n'), false);
  assert.equal(isMergeConfigDocument('/a/c.json', 'json', '{ "merge_method": "ties" }'), true);
  assert.equal(isMergeConfigDocument('/a/c.json', 'json', '[{ "merge_method": "ties" }]'), false);
  assert.equal(isMergeConfigDocument('/a/c.ts', 'typescript', 'merge_method: 1'), false);
});

void test('lines', () => {
  assert.equal(mergeMethodLine('# c\n\nmerge_method: ties\n'), 2);
  assert.equal(mergeMethodLine('{\n  "merge_method": "ties"\n}'), 1);
  assert.equal(mergeMethodLine('models: []'), 0);
  const text = 'merge_method: ties\nbase_model: m/base.safetensors\nmodels:\n  - model: m/a.safetensors\n';
  assert.equal(lineMentioning(text, ['/abs/m/a.safetensors', 'm/a.safetensors']), 3);
  assert.equal(lineMentioning(text, ['nothing']), undefined);
});
