import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import {
  BUILT_IN_DEFAULTS,
  defaultConfigPath,
  defaultOutPath,
  modelStem,
  parseNumberInput,
  requestProblems,
  requestToConfig,
  slug,
  suggestMergeName,
  uniqueName,
  type MergeRequest,
} from '../../../src/extension/merge/mergeRequest';
import { parseMergeConfig } from '../../../src/core/config/load';
import { MERGE_METHODS } from '../../../src/core/config/schema';
import { mergeConfigText } from '../../../src/extension/merge/configSnippet';

const ws = path.resolve('/ws');

void test('names: stems, slugs, suggestions, uniqueness', () => {
  assert.equal(modelStem('/m/rot90.safetensors'), 'rot90');
  assert.equal(modelStem('/m/big/model.safetensors.index.json'), 'model');
  assert.equal(modelStem('/m/hf-folder/'), 'hf-folder');
  assert.equal(modelStem('/m/x.pt'), 'x');
  assert.equal(slug('  Hello, World!! '), 'hello-world');
  assert.equal(slug('***'), 'merge');
  assert.equal(slug('a'.repeat(80)).length, 60);
  assert.equal(suggestMergeName('task_arithmetic', ['/m/rot90.safetensors', '/m/Invert.safetensors'], false), 'ta-rot90-invert');
  assert.equal(suggestMergeName('dare_ties', ['/m/a.pt'], true), 'dare-ties-awd-a');
  const taken = new Set(['m', 'm-2']);
  assert.equal(uniqueName('m', (n) => taken.has(n)), 'm-3');
  assert.equal(uniqueName('q', (n) => taken.has(n)), 'q');
});

void test('default paths', () => {
  assert.equal(defaultConfigPath(ws, BUILT_IN_DEFAULTS, 'ta-a'), path.join(ws, 'merges', 'ta-a.merge.yaml'));
  assert.equal(defaultOutPath(ws, BUILT_IN_DEFAULTS, 'ta-a'), path.join(ws, 'merged', 'ta-a', 'model.safetensors'));
});

void test('number input', () => {
  assert.equal(parseNumberInput(' 0.3 '), 0.3);
  assert.equal(parseNumberInput('1e-2'), 0.01);
  assert.equal(parseNumberInput('.5'), 0.5);
  assert.equal(parseNumberInput('-2'), -2);
  assert.equal(parseNumberInput(''), undefined);
  assert.equal(parseNumberInput('0.3x'), undefined);
  assert.equal(parseNumberInput('Infinity'), undefined);
});

const request = (over: Partial<MergeRequest> = {}): MergeRequest => ({
  base: path.join(ws, 'base.safetensors'),
  models: [path.join(ws, 'a.safetensors'), path.join(ws, 'b.safetensors')],
  method: 'ties',
  lambda: 0.5,
  density: 0.2,
  outPath: path.join(ws, 'merged', 'x', 'model.safetensors'),
  configPath: path.join(ws, 'merges', 'x.merge.yaml'),
  ...over,
});

void test('problems name what is wrong and what to do', () => {
  assert.deepEqual(requestProblems(request()), []);
  assert.match(requestProblems(request({ models: [] })).join('\n'), /Add to Merge/);
  assert.match(requestProblems(request({ base: undefined })).join('\n'), /needs a base model/);
  assert.deepEqual(requestProblems(request({ base: undefined, method: 'linear' })), []);
  assert.match(requestProblems(request({ density: 0 })).join('\n'), /density must be in \(0, 1\]/);
  assert.deepEqual(requestProblems(request({ density: 0, method: 'task_arithmetic' })), []);
  const awd = { alpha: 0.1, learning_rate: 0.01, iterations: 10, granularity: 'model' as const, norm: 'l2' as const };
  assert.match(requestProblems(request({ awd, models: [path.join(ws, 'a.safetensors')] })).join('\n'), /at least two/);
  assert.match(requestProblems(request({ awd, method: 'linear' })).join('\n'), /linear does not use/);
  assert.match(requestProblems(request({ outPath: '/x/y.bin' })).join('\n'), /\.safetensors file/);
  assert.match(requestProblems(request({ models: [path.join(ws, 'base.safetensors')] })).join('\n'), /also listed/);
});

void test('the config the wizard writes parses back to the same config, with no warning, for every method', () => {
  const awd = { alpha: 0.2, learning_rate: 0.05, iterations: 7, granularity: 'tensor' as const, norm: 'l2_squared' as const };
  const cases = [...MERGE_METHODS.map((method) => request({ method })), request({ method: 'task_arithmetic', awd }), request({ method: 'linear', base: undefined })];
  for (const r of cases) {
    const config = requestToConfig(r);
    for (const format of ['yaml', 'json'] as const) {
      const text = mergeConfigText(r, format, path.dirname(r.configPath));
      assert.match(text, /\.\.\/a\.safetensors/, 'paths are written relative to the config folder');
      const loaded = parseMergeConfig(text, r.configPath);
      assert.deepEqual(loaded.config, config, `${r.method} (${format})`);
      assert.deepEqual(loaded.warnings.map((w) => w.message), [], `${r.method} (${format})`);
    }
  }
  assert.equal(requestToConfig(request({ method: 'task_arithmetic' })).parameters.density, undefined);
});
