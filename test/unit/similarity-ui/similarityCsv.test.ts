import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { csvField, parseCsv, similarityCsv, CSV_HEADER } from '../../../src/extension/similarityPanel/similarityCsv';
import { AWD, randomTaskVectors, reportOf } from './randomReport';

void test('csvField quotes commas, quotes and line breaks, and writes numbers that read back exactly', () => {
  assert.equal(csvField('plain'), 'plain');
  assert.equal(csvField('a,b'), '"a,b"');
  assert.equal(csvField('say "hi"'), '"say ""hi"""');
  assert.equal(csvField('two\nlines'), '"two\nlines"');
  assert.equal(csvField(undefined), '');
  for (const x of [0.1 + 0.2, -1e-17, 1 / 3, 0.9999999999999999]) assert.equal(Number(csvField(x)), x);
});

void test('the CSV holds every pair (i < j) of the model matrix and of every tensor, with exactly the report numbers', () => {
  const names = ['embed.weight', 'layer.0.weight', 'layer.0.bias', 'odd,name "x"'];
  const report = reportOf(randomTaskVectors(4, names, 11), AWD);
  const rows = parseCsv(similarityCsv(report, ['a', 'b', 'c', 'd']));
  assert.deepEqual(rows[0], [...CSV_HEADER]);
  const body = rows.slice(1);
  assert.equal(body.length, 6 * (1 + names.length));
  for (const [scope, tensor, i, j, mi, mj, before, after] of body as string[][]) {
    const I = Number(i) - 1;
    const J = Number(j) - 1;
    assert.ok(I < J);
    assert.equal(mi, 'abcd'[I]);
    assert.equal(mj, 'abcd'[J]);
    const matrix = scope === 'model' ? report.cosine : report.per_tensor![tensor!]!;
    const afterMatrix = scope === 'model' ? report.awd!.cos_after : report.awd!.per_tensor[tensor!]!.cos_after;
    assert.equal(Number(before), matrix[I]![J]);
    assert.equal(Number(after), afterMatrix[I]![J]);
  }
  assert.ok(body.some((r) => r[1] === 'odd,name "x"'), 'a tensor name with a comma and quotes survives the round trip');
});

void test('without AWD the cos_after column is empty', () => {
  const report = reportOf(randomTaskVectors(3, ['w'], 5));
  const rows = parseCsv(similarityCsv(report)).slice(1);
  assert.equal(rows.length, 3 * 2);
  assert.ok(rows.every((r) => r[7] === '' && r[6] !== ''));
});
