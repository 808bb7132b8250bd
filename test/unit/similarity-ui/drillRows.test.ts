import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { orderedRows, pageCount, pageOf, ROWS_PER_PAGE } from '../../../src/webview/similarity/drillRows';
import { random } from './randomReport';

void test('rows sort by interference (largest first, NaN last, ties in file order), by name, or stay in file order', () => {
  const names = ['c.w', 'a.w', 'b.w', 'd.w', 'e.w'];
  const mean = [0.2, 0.5, NaN, 0.5, 0.1];
  assert.deepEqual(orderedRows(names, mean, { sort: 'interference', search: '' }), [1, 3, 0, 4, 2]);
  assert.deepEqual(orderedRows(names, mean, { sort: 'name', search: '' }), [1, 2, 0, 3, 4]);
  assert.deepEqual(orderedRows(names, mean, { sort: 'file', search: '' }), [0, 1, 2, 3, 4]);
  assert.deepEqual(orderedRows(names, mean, { sort: 'interference', search: ' A.W ' }), [1]);
});

void test('interference order matches a reference sort on 1,200 random rows, and paging covers each row once', () => {
  const next = random(3);
  const n = 1200;
  const names = Array.from({ length: n }, (_, i) => `layer.${i % 37}.w${i}`);
  const mean = Float64Array.from({ length: n }, () => Math.abs(next()));
  const rows = orderedRows(names, mean, { sort: 'interference', search: '' });
  const reference = [...names.keys()].sort((a, b) => mean[b]! - mean[a]! || a - b);
  assert.deepEqual(rows, reference);
  const pages = pageCount(rows.length);
  assert.equal(pages, Math.ceil(n / ROWS_PER_PAGE));
  const seen: number[] = [];
  for (let p = 0; p < pages; p++) seen.push(...pageOf(rows, p).rows);
  assert.deepEqual(seen, rows);
  assert.equal(pageOf(rows, 10_000).page, pages - 1, 'a page past the end shows the last page');
  assert.equal(pageOf(rows, -3).page, 0);
  assert.deepEqual(pageOf([], 2), { rows: [], page: 0 });
});
