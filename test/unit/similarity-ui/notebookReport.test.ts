import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { notebookSimilarity, SIMILARITY_MIME } from '../../../src/webview/notebook/reportMatrices';

const fixtures = join(__dirname, '..', '..', 'fixtures', 'notebooks');

void test('the notebook fixture carries the CLI report under the renderer MIME, and the renderer reads both matrices from it', () => {
  const nb = JSON.parse(readFileSync(join(fixtures, 'similarity.ipynb'), 'utf8')) as { cells: { outputs?: { data: Record<string, unknown> }[] }[] };
  const output = nb.cells.flatMap((c) => c.outputs ?? []).find((o) => SIMILARITY_MIME in o.data);
  assert.ok(output, 'no output with the similarity MIME');
  const report = output.data[SIMILARITY_MIME] as { cosine: number[][]; awd: { cos_after: number[][] }; mean_abs_cos: number };
  const parsed = notebookSimilarity(report);
  assert.ok(typeof parsed !== 'string', String(parsed));
  assert.equal(parsed.labels.length, 8);
  assert.equal(parsed.labels[0], 'flip_lr/model');
  assert.deepEqual(Array.from(parsed.matrices[0]!.values), report.cosine.flat());
  assert.deepEqual(Array.from(parsed.matrices[1]!.values), report.awd.cos_after.flat());
  assert.equal(parsed.meanAbsBefore, report.mean_abs_cos);
  assert.ok(parsed.topTensors.length > 0);
  assert.ok(parsed.topTensors.every((t, k) => k === 0 || parsed.topTensors[k - 1]!.meanAbs >= t.meanAbs));
});

void test('outputs that are not a similarity report say what is wrong instead of drawing', () => {
  assert.match(String(notebookSimilarity(null)), /not a similarity report/);
  assert.match(String(notebookSimilarity({ models: ['a'] })), /two or more/);
  assert.match(String(notebookSimilarity({ models: ['a', 'b'], cosine: [[1, 0]] })), /2×2/);
  assert.match(String(notebookSimilarity({ models: ['a', 'b'], cosine: [[1, 0], [0, 1]], awd: { cos_after: 3 } })), /awd\.cos_after/);
});
