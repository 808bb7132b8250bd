import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { parseAwdSettings, parsePanelAction, parseSimilarityRequest, parseSimilarityUpdate, parseSource, parseViewData } from '../../../src/protocol/similarityMessages';
import { viewFromReport } from '../../../src/extension/similarityPanel/similarityView';
import { AWD, randomTaskVectors, reportOf } from './randomReport';

void test('webview requests: well-formed ones pass, anything else is dropped', () => {
  assert.deepEqual(parseSimilarityRequest({ type: 'ready', extra: 1 }), { type: 'ready' });
  assert.deepEqual(parseSimilarityRequest({ type: 'rerunAwd', settings: null }), { type: 'rerunAwd', settings: null });
  assert.deepEqual(parseSimilarityRequest({ type: 'rerunAwd', settings: { ...AWD, extra: true } }), { type: 'rerunAwd', settings: AWD });
  assert.equal(parseSimilarityRequest({ type: 'rerunAwd', settings: { ...AWD, alpha: -1 } }), undefined);
  assert.equal(parseSimilarityRequest({ type: 'rerunAwd', settings: { ...AWD, iterations: 2.5 } }), undefined);
  assert.equal(parseSimilarityRequest({ type: 'rerunAwd', settings: { ...AWD, granularity: 'layer' } }), undefined);
  assert.equal(parseSimilarityRequest({ type: 'exportPng', dataUrl: 'data:text/html;base64,AAAA', name: 'x.png' }), undefined);
  assert.deepEqual(parseSimilarityRequest({ type: 'exportPng', dataUrl: 'data:image/png;base64,AAAA', name: 'x.png' }), { type: 'exportPng', dataUrl: 'data:image/png;base64,AAAA', name: 'x.png' });
  for (const bad of [null, 'ready', 42, [], { type: 'rm -rf' }, { type: 'rendered', snapshot: {} }, { type: 'problem' }]) {
    assert.equal(parseSimilarityRequest(bad), undefined, JSON.stringify(bad));
  }
  const snapshot = { mode: 'after', matrices: [{ title: 'cos', values: [['1.0000']] }], cellTexts: [], levelDepth: 0, sort: 'name', rows: ['w'], rowCount: 1 };
  assert.deepEqual(parseSimilarityRequest({ type: 'rendered', snapshot }), { type: 'rendered', snapshot });
  assert.equal(parseSimilarityRequest({ type: 'rendered', snapshot: { ...snapshot, mode: 'sideways' } }), undefined);
  assert.equal(parseSimilarityRequest({ type: 'rendered', snapshot: { ...snapshot, matrices: [{ title: 'cos', values: [[1]] }] } }), undefined);
});

void test('AWD settings bounds follow the CLI', () => {
  assert.deepEqual(parseAwdSettings(AWD), AWD);
  assert.equal(parseAwdSettings({ ...AWD, learning_rate: 0 }), undefined);
  assert.equal(parseAwdSettings({ ...AWD, alpha: Number.NaN }), undefined);
  assert.equal(parseAwdSettings({ ...AWD, norm: 'l1' }), undefined);
  assert.deepEqual(parseAwdSettings({ ...AWD, alpha: 0, iterations: 0 }), { ...AWD, alpha: 0, iterations: 0 });
});

void test('a view made by the host passes the page check; wrong lengths or plain arrays where typed ones belong do not', () => {
  const view = viewFromReport(reportOf(randomTaskVectors(3, ['a.w', 'a.b', 'b.w'], 4), AWD));
  assert.equal(parseViewData(view), view);
  assert.deepEqual(parseSimilarityUpdate({ type: 'data', view }), { type: 'data', view });
  assert.equal(parseViewData({ ...view, cos: Array.from(view.cos) }), undefined);
  assert.equal(parseViewData({ ...view, norms: new Float64Array(2) }), undefined);
  assert.equal(parseViewData({ ...view, levels: [{ ...view.levels[0]!, meanAbs: new Float64Array(1) }] }), undefined);
  assert.equal(parseViewData({ ...view, awd: { ...view.awd!, lossDeltaNorm: new Float64Array(1) } }), undefined);
  assert.equal(parseSimilarityUpdate({ type: 'data', view: { ...view, labels: ['only one'] } }), undefined);
});

void test('a saved source (plain arrays, as the webview state stores it) reads back; inconsistent sizes do not', () => {
  const view = viewFromReport(reportOf(randomTaskVectors(3, ['a', 'b'], 8), AWD));
  const saved = JSON.parse(JSON.stringify({ ...view.source, grams: Array.from(view.source.grams) })) as unknown;
  const parsed = parseSource(saved)!;
  assert.deepEqual(Array.from(parsed.grams), Array.from(view.source.grams));
  assert.deepEqual(parsed.awd, AWD);
  assert.equal(parseSource({ ...(saved as object), grams: [1, 2, 3] }), undefined);
  assert.equal(parseSource({ ...(saved as object), models: ['one'] }), undefined);
});

void test('panel actions parse like the messages they stand for', () => {
  assert.deepEqual(parsePanelAction({ kind: 'setMode', mode: 'side' }), { kind: 'setMode', mode: 'side' });
  assert.deepEqual(parsePanelAction({ kind: 'selectRow', name: 'layer.0.weight' }), { kind: 'selectRow', name: 'layer.0.weight' });
  assert.equal(parsePanelAction({ kind: 'setMode', mode: 'upside-down' }), undefined);
  assert.equal(parsePanelAction({ kind: 'eval', code: '1' }), undefined);
});
