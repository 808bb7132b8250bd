/**
 * Plotly figures for the similarity views, shared by the panel and the notebook renderer: the K×K heatmap (one
 * matrix, or before/after side by side on one colour axis), the drill-down heatmap (rows × model pairs) and the
 * AWD loss curve. Pure data → figure objects; no DOM, so the choices (diverging scale centred at 0, symmetric
 * range, values in cells when K ≤ 12, hover text) are unit-tested.
 */

/** A plotly trace or layout: plain JSON-like objects. */
export type PlotObject = Record<string, unknown>;

export interface Figure {
  data: PlotObject[];
  layout: PlotObject;
}

/** Colours the figures take from the VS Code theme (CSS variables read by the page). */
export interface FigureTheme {
  foreground: string;
  /** Lines between cells and grid lines. */
  grid: string;
  fontFamily: string;
  fontSize: number;
}

/** Largest K whose cells get their value printed (beyond, the numbers no longer fit). */
export const MAX_K_WITH_CELL_TEXT = 12;

/** Blue (−1) through a neutral middle (0) to red (+1): opposed task vectors blue, interfering ones red. */
export const DIVERGING_SCALE: [number, string][] = [
  [0, '#2166ac'],
  [0.25, '#67a9cf'],
  [0.45, '#d1e5f0'],
  [0.5, '#f7f7f7'],
  [0.55, '#fddbc7'],
  [0.75, '#ef8a62'],
  [1, '#b2182b'],
];

/** Half-width m of the symmetric colour range [−m, m]: the largest |off-diagonal value| (the diagonal is 1 by definition and would wash every other cell out), at least 1e-6; 1 when there is none. */
export function symmetricRange(matrices: readonly ArrayLike<number>[], K: number): number {
  let m = 0;
  let any = false;
  for (const a of matrices) {
    for (let i = 0; i < K; i++) {
      for (let j = 0; j < K; j++) {
        if (i === j) continue;
        const v = Math.abs(a[i * K + j] ?? 0);
        if (Number.isFinite(v)) {
          m = Math.max(m, v);
          any = true;
        }
      }
    }
  }
  return any ? Math.max(m, 1e-6) : 1;
}

/** Half-width for a rows × columns block of values (the drill-down): the largest |value|, at least 1e-6. */
export function symmetricRangeOfValues(values: ArrayLike<number>): number {
  let m = 0;
  for (let k = 0; k < values.length; k++) {
    const v = Math.abs(values[k] ?? 0);
    if (Number.isFinite(v)) m = Math.max(m, v);
  }
  return m > 0 ? m : 1;
}

/** A cosine as printed in a cell: `decimals` places, a real minus sign, never a negative zero. */
export function cellText(v: number, decimals = 3): string {
  if (!Number.isFinite(v)) return '–';
  const s = v.toFixed(decimals);
  return /^-0\.0*$/.test(s) ? s.slice(1) : s.replace('-', '−');
}

/** Decimals printed in cells: 3 while the cells are wide (K ≤ 6), 2 beyond so the text still fits. */
export function cellDecimals(K: number): number {
  return K <= 6 ? 3 : 2;
}

/** Cell font size: the theme's size for small K, smaller as the cells shrink (never below 8 px). */
function cellFontSize(K: number, base: number): number {
  return Math.max(8, base - (K <= 4 ? 0 : K <= 6 ? 1 : K <= 9 ? 2 : 4));
}

/** A norm or other magnitude for hover text: 6 significant digits. */
export function formatMagnitude(v: number): string {
  if (!Number.isFinite(v)) return '–';
  return v === 0 ? '0' : Math.abs(v) >= 1e-3 && Math.abs(v) < 1e6 ? String(Number(v.toPrecision(6))) : v.toExponential(5);
}

/** Row-major K×K → rows. */
export function matrixRows(m: ArrayLike<number>, K: number): number[][] {
  return Array.from({ length: K }, (_, i) => Array.from({ length: K }, (_, j) => m[i * K + j] ?? NaN));
}

/** One heatmap's input: values (row-major K×K), the norms for the hover, and a title. */
export interface MatrixInput {
  title: string;
  values: ArrayLike<number>;
  norms: ArrayLike<number>;
}

function hoverTexts(m: MatrixInput, labels: readonly string[]): string[][] {
  const K = labels.length;
  return Array.from({ length: K }, (_, i) =>
    Array.from({ length: K }, (_, j) =>
      [
        `<b>${escapeText(labels[i]!)}</b> × <b>${escapeText(labels[j]!)}</b>`,
        `cos = ${m.values[i * K + j]}`,
        `‖τ<sub>${escapeText(labels[i]!)}</sub>‖ = ${formatMagnitude(m.norms[i] ?? NaN)}`,
        `‖τ<sub>${escapeText(labels[j]!)}</sub>‖ = ${formatMagnitude(m.norms[j] ?? NaN)}`,
      ].join('<br>'),
    ),
  );
}

/** Plotly renders a subset of HTML in labels and hover text: escape what a file name could smuggle in. */
export function escapeText(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Dark text on light cells, light text on saturated ones (|v| above half the range). */
function annotationColour(v: number, range: number): string {
  return Math.abs(v) / range > 0.55 ? '#ffffff' : '#1e1e1e';
}

/** Category axes of a heatmap: no grid lines (the cell gaps already separate the cells). */
function axisStyle(theme: FigureTheme): PlotObject {
  return { color: theme.foreground, showgrid: false, zeroline: false, automargin: true, type: 'category', ticks: '', ticklabelstandoff: 6 };
}

function baseLayout(theme: FigureTheme): PlotObject {
  return {
    paper_bgcolor: 'rgba(0,0,0,0)',
    plot_bgcolor: 'rgba(0,0,0,0)',
    font: { family: theme.fontFamily, size: theme.fontSize, color: theme.foreground },
    margin: { l: 10, r: 10, t: 36, b: 10 },
    hoverlabel: { font: { family: theme.fontFamily } },
  };
}

/** The K×K heatmap: one matrix, or two (before / after) side by side on one colour axis so their colours compare. */
export function matrixFigure(matrices: readonly MatrixInput[], labels: readonly string[], theme: FigureTheme): Figure {
  const K = labels.length;
  const range = symmetricRange(matrices.map((m) => m.values), K);
  const showText = K <= MAX_K_WITH_CELL_TEXT;
  const n = matrices.length;
  const gap = 0.08;
  const width = (1 - gap * (n - 1)) / n;
  const data: PlotObject[] = [];
  const annotations: PlotObject[] = [];
  const layout: PlotObject = {
    ...baseLayout(theme),
    coloraxis: {
      colorscale: DIVERGING_SCALE,
      cmin: -range,
      cmax: range,
      cmid: 0,
      colorbar: { title: { text: 'cos', side: 'right' }, tickfont: { color: theme.foreground }, thickness: 12, outlinewidth: 0 },
    },
  };
  matrices.forEach((m, k) => {
    const suffix = k === 0 ? '' : String(k + 1);
    const domain = [k * (width + gap), k * (width + gap) + width];
    layout[`xaxis${suffix}`] = { ...axisStyle(theme), domain, side: 'bottom', tickangle: K > 6 ? -45 : 0, title: { text: m.title } };
    layout[`yaxis${suffix}`] = { ...axisStyle(theme), autorange: 'reversed', anchor: `x${suffix}`, scaleanchor: `x${suffix}`, ...(k > 0 ? { showticklabels: false } : {}) };
    data.push({
      type: 'heatmap',
      name: m.title,
      x: [...labels],
      y: [...labels],
      z: matrixRows(m.values, K),
      coloraxis: 'coloraxis',
      xaxis: `x${suffix}`,
      yaxis: `y${suffix}`,
      text: hoverTexts(m, labels),
      hovertemplate: '%{text}<extra></extra>',
      xgap: 1,
      ygap: 1,
    });
    if (showText) {
      for (let i = 0; i < K; i++) {
        for (let j = 0; j < K; j++) {
          const v = m.values[i * K + j] ?? NaN;
          annotations.push({
            xref: `x${suffix}`,
            yref: `y${suffix}`,
            x: labels[j],
            y: labels[i],
            text: cellText(v, cellDecimals(K)),
            showarrow: false,
            font: { color: annotationColour(v, range), size: cellFontSize(K, theme.fontSize) },
          });
        }
      }
    }
  });
  layout['annotations'] = annotations;
  return { data, layout };
}

/** A model pair's column label ("a × b") and its indices, in the order i < j. */
export function modelPairs(labels: readonly string[]): { i: number; j: number; label: string }[] {
  const pairs: { i: number; j: number; label: string }[] = [];
  for (let i = 0; i < labels.length; i++) for (let j = i + 1; j < labels.length; j++) pairs.push({ i, j, label: `${labels[i]} × ${labels[j]}` });
  return pairs;
}

/** One drill-down row: its name, its K×K cosines (row-major) and K norms. */
export interface DrillRow {
  name: string;
  cos: ArrayLike<number>;
  norms: ArrayLike<number>;
  tensorCount: number;
}

/** Rows × model pairs of the signed cosine; `range` is fixed by the caller so that paging never changes the colours. */
export function drillDownFigure(rows: readonly DrillRow[], labels: readonly string[], range: number, theme: FigureTheme, title: string): Figure {
  const K = labels.length;
  const pairs = modelPairs(labels);
  const z = rows.map((r) => pairs.map((p) => r.cos[p.i * K + p.j] ?? NaN));
  const text = rows.map((r) =>
    pairs.map((p) =>
      [
        `<b>${escapeText(r.name)}</b>${r.tensorCount > 1 ? ` (${r.tensorCount} tensors)` : ''}`,
        `${escapeText(p.label)}: cos = ${r.cos[p.i * K + p.j]}`,
        `‖τ<sub>${escapeText(labels[p.i]!)}</sub>‖ = ${formatMagnitude(r.norms[p.i] ?? NaN)}, ‖τ<sub>${escapeText(labels[p.j]!)}</sub>‖ = ${formatMagnitude(r.norms[p.j] ?? NaN)}`,
      ].join('<br>'),
    ),
  );
  // Row names become y categories: make duplicates impossible (they are distinct names, but keep plotly from merging look-alikes).
  const y = rows.map((r) => r.name);
  return {
    data: [
      {
        type: 'heatmap',
        x: pairs.map((p) => p.label),
        y,
        z,
        zmin: -range,
        zmax: range,
        zmid: 0,
        colorscale: DIVERGING_SCALE,
        colorbar: { title: { text: 'cos', side: 'right' }, tickfont: { color: theme.foreground }, thickness: 12, outlinewidth: 0 },
        text,
        hovertemplate: '%{text}<extra></extra>',
        xgap: 1,
        ygap: 1,
      },
    ],
    layout: {
      ...baseLayout(theme),
      title: { text: escapeText(title), font: { size: theme.fontSize + 1 }, x: 0, xanchor: 'left' },
      xaxis: { ...axisStyle(theme), side: 'top', tickangle: pairs.length > 6 ? -45 : 0 },
      yaxis: { ...axisStyle(theme), autorange: 'reversed', tickfont: { family: theme.fontFamily, size: Math.max(9, theme.fontSize - 2) } },
      margin: { l: 10, r: 10, t: 60, b: 10 },
    },
  };
}

/** The AWD loss curve: L and L_O on the left axis, ‖δ‖ on the right. */
export function lossFigure(loss: ArrayLike<number>, orthogonality: ArrayLike<number>, deltaNorm: ArrayLike<number>, theme: FigureTheme): Figure {
  const x = Array.from({ length: loss.length }, (_, i) => i);
  return {
    data: [
      { type: 'scatter', mode: 'lines', name: 'L', x, y: Array.from(loss), line: { width: 2, color: '#d6604d' } },
      { type: 'scatter', mode: 'lines', name: 'L_O (mean |cos|)', x, y: Array.from(orthogonality), line: { width: 1.5, dash: 'dot', color: '#4393c3' } },
      { type: 'scatter', mode: 'lines', name: '‖δ‖', x, y: Array.from(deltaNorm), yaxis: 'y2', line: { width: 1.5, color: '#8c8c8c' } },
    ],
    layout: {
      ...baseLayout(theme),
      margin: { l: 10, r: 10, t: 48, b: 10 },
      title: { text: 'AWD loss', font: { size: theme.fontSize }, x: 0, xanchor: 'left', y: 0.98, yanchor: 'top' },
      showlegend: true,
      legend: { orientation: 'h', x: 0, y: 1.02, yanchor: 'bottom', font: { color: theme.foreground } },
      xaxis: { color: theme.foreground, gridcolor: theme.grid, zeroline: false, automargin: true, title: { text: 'iteration', standoff: 4 } },
      yaxis: { color: theme.foreground, gridcolor: theme.grid, zeroline: false, automargin: true },
      yaxis2: { color: theme.foreground, overlaying: 'y', side: 'right', showgrid: false, zeroline: false, automargin: true, title: { text: '‖δ‖' } },
    },
  };
}
