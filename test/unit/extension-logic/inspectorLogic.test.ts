import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseInspectorRequest, MAX_STATS_TENSORS, type InspectorTensorRow, type InspectorTensorStats } from '../../../src/protocol/inspectorMessages';
import { formatShape, formatStatistic, matchesSearch, tableView, type TableQuery } from '../../../src/webview/inspector/tensorTable';

const rows: InspectorTensorRow[] = [
  { name: 'layer.0.weight', dtype: 'F32', shape: [4, 4], elements: 16, bytes: 64 },
  { name: 'layer.0.bias', dtype: 'F32', shape: [4], elements: 4, bytes: 16 },
  { name: 'layer.1.weight', dtype: 'BF16', shape: [4, 8], elements: 32, bytes: 64 },
  { name: 'steps', dtype: 'I64', shape: [], elements: 1, bytes: 8 },
];
const q = (over: Partial<TableQuery> = {}): TableQuery => ({ search: '', sortKey: 'index', direction: 'asc', page: 0, pageSize: 100, ...over });

void test('search: every word, name or dtype, case-insensitive', () => {
  assert.equal(matchesSearch(rows[0]!, 'LAYER weight'), true);
  assert.equal(matchesSearch(rows[0]!, 'layer bias'), false);
  assert.equal(matchesSearch(rows[2]!, 'bf16'), true);
  assert.deepEqual(tableView(rows, q({ search: 'weight' })).rows.map((r) => r.index), [0, 2]);
});

void test('sorting is stable and puts rows without statistics last', () => {
  assert.deepEqual(tableView(rows, q({ sortKey: 'elements', direction: 'desc' })).rows.map((r) => r.name), ['layer.1.weight', 'layer.0.weight', 'layer.0.bias', 'steps']);
  assert.deepEqual(tableView(rows, q({ sortKey: 'bytes' })).rows.map((r) => r.index), [3, 1, 0, 2], 'equal bytes keep file order');
  assert.deepEqual(tableView(rows, q({ sortKey: 'name' })).rows.map((r) => r.index), [1, 0, 2, 3]);
  const stat = (name: string, mean: number): InspectorTensorStats => ({ name, mean, std: 0, min: 0, max: 0, l2Norm: 0, nanCount: 0, infCount: 0 });
  const stats = new Map([['layer.1.weight', stat('layer.1.weight', -1)], ['steps', stat('steps', 5)]]);
  for (const direction of ['asc', 'desc'] as const) {
    const order = tableView(rows, q({ sortKey: 'mean', direction }), stats).rows.map((r) => r.index);
    assert.deepEqual(order.slice(2), [0, 1], `unknown stats last (${direction})`);
    assert.deepEqual(order.slice(0, 2), direction === 'asc' ? [2, 3] : [3, 2]);
  }
});

void test('paging clamps and counts', () => {
  const many: InspectorTensorRow[] = Array.from({ length: 10_050 }, (_, i) => ({ name: `t${i}`, dtype: 'F32', shape: [1], elements: 1, bytes: 4 }));
  const v = tableView(many, q({ page: 100, pageSize: 100 }));
  assert.equal(v.pageCount, 101);
  assert.equal(v.page, 100);
  assert.equal(v.rows.length, 50);
  assert.equal(v.rows[0]!.name, 't10000');
  assert.equal(tableView(many, q({ page: -3 })).page, 0);
  assert.equal(tableView([], q()).pageCount, 1);
});

void test('formatting', () => {
  assert.equal(formatShape([768, 3072]), '[768, 3072]');
  assert.equal(formatShape([]), '[]');
  assert.equal(formatStatistic(undefined), '');
  assert.equal(formatStatistic(0), '0');
  assert.equal(formatStatistic(0.123456789), '0.12346');
  assert.equal(formatStatistic(1.5e-7), '1.500e-7');
  assert.equal(formatStatistic(NaN), 'NaN');
});

void test('webview requests are validated', () => {
  assert.deepEqual(parseInspectorRequest({ type: 'ready' }), { type: 'ready' });
  assert.deepEqual(parseInspectorRequest({ type: 'computeStats', requestId: 3, tensors: ['a'] }), { type: 'computeStats', requestId: 3, tensors: ['a'] });
  assert.equal(parseInspectorRequest({ type: 'computeStats', requestId: 1.5, tensors: ['a'] }), undefined);
  assert.equal(parseInspectorRequest({ type: 'computeStats', requestId: 1, tensors: [] }), undefined);
  assert.equal(parseInspectorRequest({ type: 'computeStats', requestId: 1, tensors: [3] }), undefined);
  assert.equal(parseInspectorRequest({ type: 'computeStats', requestId: 1, tensors: Array(MAX_STATS_TENSORS + 1).fill('a') }), undefined);
  assert.equal(parseInspectorRequest({ type: 'rm -rf' }), undefined);
  assert.equal(parseInspectorRequest(null), undefined);
  assert.equal(parseInspectorRequest('ready'), undefined);
});
