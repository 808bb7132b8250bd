import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { cellText, drillDownFigure, MAX_K_WITH_CELL_TEXT, matrixFigure, modelPairs, symmetricRange, type FigureTheme } from '../../../src/webview/similarity/heatmapFigure';

const THEME: FigureTheme = { foreground: '#111111', grid: '#cccccc', fontFamily: 'sans-serif', fontSize: 13 };

function identityPlus(K: number, off: (i: number, j: number) => number): Float64Array {
  return Float64Array.from({ length: K * K }, (_, k) => (Math.floor(k / K) === k % K ? 1 : off(Math.floor(k / K), k % K)));
}

void test('the colour range is symmetric around 0 and set by the largest off-diagonal |cos|, not the diagonal', () => {
  const m = identityPlus(3, (i, j) => (i + j === 1 ? -0.4 : 0.1));
  assert.equal(symmetricRange([m], 3), 0.4);
  assert.equal(symmetricRange([m, identityPlus(3, () => 0.05)], 3), 0.4);
  assert.equal(symmetricRange([identityPlus(2, () => 0)], 2), 1e-6);
  const fig = matrixFigure([{ title: 'before', values: m, norms: [1, 2, 3] }], ['a', 'b', 'c'], THEME);
  const axis = fig.layout['coloraxis'] as { cmin: number; cmax: number; cmid: number };
  assert.deepEqual([axis.cmin, axis.cmax, axis.cmid], [-0.4, 0.4, 0]);
});

void test('cells carry their value when K ≤ 12, model names label both axes, the hover has the exact value and both norms', () => {
  const K = 4;
  const labels = ['w', 'x', 'y', 'z'];
  const values = identityPlus(K, (i, j) => 0.123456789 * (i - j));
  const fig = matrixFigure([{ title: 'before', values, norms: [1.5, 2.5, 3.5, 4.5] }], labels, THEME);
  const trace = fig.data[0] as { x: string[]; y: string[]; z: number[][]; text: string[][] };
  assert.deepEqual(trace.x, labels);
  assert.deepEqual(trace.y, labels);
  assert.equal(trace.z[1]![0], values[K]);
  assert.match(trace.text[1]![0]!, /cos = 0\.123456789/);
  assert.match(trace.text[1]![0]!, /‖τ<sub>x<\/sub>‖ = 2\.5/);
  assert.match(trace.text[1]![0]!, /‖τ<sub>w<\/sub>‖ = 1\.5/);
  const annotations = fig.layout['annotations'] as { text: string; x: string; y: string }[];
  assert.equal(annotations.length, K * K);
  assert.deepEqual(annotations.find((a) => a.x === 'w' && a.y === 'x')?.text, '0.123');
  assert.equal(annotations.find((a) => a.x === 'x' && a.y === 'w')?.text, '−0.123');

  const big = MAX_K_WITH_CELL_TEXT + 1;
  const many = Array.from({ length: big }, (_, k) => `m${k}`);
  const bigFig = matrixFigure([{ title: 'b', values: identityPlus(big, () => 0.1), norms: new Array<number>(big).fill(1) }], many, THEME);
  assert.equal((bigFig.layout['annotations'] as unknown[]).length, 0);
});

void test('side by side puts both matrices on one colour axis in two subplots', () => {
  const before = identityPlus(2, () => 0.5);
  const after = identityPlus(2, () => -0.2);
  const fig = matrixFigure([{ title: 'before', values: before, norms: [1, 1] }, { title: 'after', values: after, norms: [1, 1] }], ['a', 'b'], THEME);
  assert.equal(fig.data.length, 2);
  assert.deepEqual(fig.data.map((d) => [d['xaxis'], d['yaxis'], d['coloraxis']]), [['x', 'y', 'coloraxis'], ['x2', 'y2', 'coloraxis']]);
  assert.equal((fig.layout['coloraxis'] as { cmax: number }).cmax, 0.5);
  assert.equal((fig.layout['annotations'] as unknown[]).length, 8);
});

void test('the drill-down has one column per model pair (28 for K = 8) and the signed cosine of that pair per row', () => {
  const labels = Array.from({ length: 8 }, (_, k) => `t${k}`);
  assert.equal(modelPairs(labels).length, 28);
  const cos = identityPlus(8, (i, j) => (i < j ? 0.01 * (10 * i + j) : 0.01 * (10 * j + i)));
  const fig = drillDownFigure([{ name: 'layer.0.weight', cos, norms: new Array<number>(8).fill(2), tensorCount: 1 }], labels, 0.8, THEME, 'title');
  const trace = fig.data[0] as { x: string[]; z: number[][]; zmin: number; zmax: number; zmid: number };
  assert.equal(trace.x.length, 28);
  assert.equal(trace.x[0], 't0 × t1');
  assert.equal(trace.z[0]![27], cos[6 * 8 + 7]);
  assert.deepEqual([trace.zmin, trace.zmax, trace.zmid], [-0.8, 0.8, 0]);
});

void test('cell text: three decimals (two when K > 6) with a real minus sign, never a negative zero', () => {
  assert.equal(cellText(0.12349), '0.123');
  assert.equal(cellText(-0.5), '−0.500');
  assert.equal(cellText(-0.0001), '0.000');
  assert.equal(cellText(Number.NaN), '–');
  assert.equal(cellText(-0.004, 2), '0.00');
  assert.equal(cellText(-0.016, 2), '−0.02');
});
