/**
 * The "Task Vector Similarity" page (bundled to dist/similarity.js, runs in the webview): the K×K heatmap before
 * and after AWD (toggle or side by side), AWD's diagnostics with the loss curve, the per-tensor / per-layer
 * drill-down, re-running AWD on the kept Gram matrices, PNG and CSV export, and "Merge these models…". It only
 * displays: every number arrives from the host (computed by the core). Data from files reaches the DOM as text
 * nodes only; every control is a native button, select or input, so the page works from the keyboard.
 */
import './similarity.css';
import {
  parseSimilarityUpdate,
  parseSource,
  type MatrixMode,
  type PanelAction,
  type PanelAwdSettings,
  type RenderSnapshot,
  type RowSort,
  type SimilarityRequest,
  type SimilarityRowLevel,
  type SimilaritySource,
  type SimilarityViewData,
} from '../../protocol/similarityMessages';
import { drillDownFigure, formatMagnitude, lossFigure, matrixFigure, symmetricRangeOfValues, type Figure, type FigureTheme, type MatrixInput } from './heatmapFigure';
import { orderedRows, pageCount, pageOf, ROWS_PER_PAGE } from './drillRows';
import { drawFigure, figurePng, onRowClick } from './plotlyCharts';

interface VsCodeApi {
  postMessage(message: SimilarityRequest): void;
  getState(): unknown;
  setState(state: unknown): void;
}
declare function acquireVsCodeApi(): VsCodeApi;
const vscode = acquireVsCodeApi();

/** What the page keeps across hide/show and reloads (the webview state API). Typed arrays are stored as plain arrays. */
interface SavedState {
  ui: UiState;
  source?: unknown;
}

interface UiState {
  mode: MatrixMode;
  depth: number;
  sort: RowSort;
  search: string;
  page: number;
  selectedRow?: string;
}

const DEFAULT_UI: UiState = { mode: 'before', depth: 0, sort: 'interference', search: '', page: 0 };

function restoredUi(): UiState {
  const saved = vscode.getState() as Partial<SavedState> | undefined;
  const ui = saved?.ui;
  if (!ui || typeof ui !== 'object') return { ...DEFAULT_UI };
  return {
    mode: ui.mode === 'after' || ui.mode === 'side' ? ui.mode : 'before',
    depth: typeof ui.depth === 'number' ? ui.depth : 0,
    sort: ui.sort === 'name' || ui.sort === 'file' ? ui.sort : 'interference',
    search: typeof ui.search === 'string' ? ui.search : '',
    page: typeof ui.page === 'number' ? ui.page : 0,
    ...(typeof ui.selectedRow === 'string' ? { selectedRow: ui.selectedRow } : {}),
  };
}

let ui = restoredUi();
let view: SimilarityViewData | undefined;
let busy = false;

function plainSource(s: SimilaritySource): unknown {
  return { ...s, grams: Array.from(s.grams) };
}

function saveState(): void {
  const previous = vscode.getState() as Partial<SavedState> | undefined;
  const source = view ? plainSource(view.source) : parseSource(previous?.source) ? previous?.source : undefined;
  vscode.setState({ ui, ...(source ? { source } : {}) } satisfies SavedState);
}

// ---------------------------------------------------------------------------------------------------------------
// DOM helpers

function el<K extends keyof HTMLElementTagNameMap>(tag: K, text?: string, className?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (className) e.className = className;
  return e;
}

function button(text: string, onClick: () => void, className?: string): HTMLButtonElement {
  const b = el('button', text, className);
  b.type = 'button';
  b.addEventListener('click', onClick);
  return b;
}

function cssVar(name: string, fallback: string): string {
  const v = getComputedStyle(document.body).getPropertyValue(name).trim();
  return v === '' ? fallback : v;
}

function theme(): FigureTheme {
  const size = Number.parseFloat(cssVar('--vscode-font-size', '13'));
  return {
    foreground: cssVar('--vscode-foreground', '#cccccc'),
    grid: cssVar('--vscode-editorWidget-border', 'rgba(128,128,128,0.3)'),
    fontFamily: cssVar('--vscode-font-family', 'sans-serif'),
    fontSize: Number.isFinite(size) ? size : 13,
  };
}

function fixed(v: number, digits = 4): string {
  return Number.isFinite(v) ? v.toFixed(digits) : '–';
}

// ---------------------------------------------------------------------------------------------------------------
// Static skeleton

const app = document.getElementById('app') ?? document.body;
app.textContent = '';
const header = el('header');
const title = el('h1', 'Task vector similarity');
const subtitle = el('p', '', 'path');
header.append(title, subtitle);

const progressBox = el('div', undefined, 'progress');
progressBox.setAttribute('role', 'status');
const progressBar = el('progress');
progressBar.max = 1;
const progressText = el('span', 'Waiting for the analysis…', 'status');
const cancelButton = button('Cancel', () => vscode.postMessage({ type: 'cancel' }), 'secondary');
progressBox.append(progressBar, progressText, cancelButton);
const errorBox = el('p', '', 'error');
errorBox.setAttribute('role', 'alert');
errorBox.hidden = true;
const noticeBox = el('p', '', 'status');
noticeBox.setAttribute('aria-live', 'polite');

const toolbar = el('div', undefined, 'toolbar');
toolbar.setAttribute('role', 'toolbar');
toolbar.setAttribute('aria-label', 'Similarity view');
const modeGroup = el('div', undefined, 'segmented');
modeGroup.setAttribute('role', 'group');
modeGroup.setAttribute('aria-label', 'Matrix shown');
const modeButtons: Record<MatrixMode, HTMLButtonElement> = {
  before: button('Before AWD', () => setMode('before')),
  after: button('After AWD', () => setMode('after')),
  side: button('Side by side', () => setMode('side')),
};
for (const [mode, b] of Object.entries(modeButtons)) {
  b.dataset['mode'] = mode;
  modeGroup.append(b);
}
const exportPngButton = button('Export PNG…', () => void exportPng(), 'secondary');
exportPngButton.id = 'export-png';
const exportCsvButton = button('Export CSV…', () => vscode.postMessage({ type: 'exportCsv' }), 'secondary');
exportCsvButton.id = 'export-csv';
const mergeButton = button('Merge these models…', () => vscode.postMessage({ type: 'merge' }));
mergeButton.id = 'merge';
toolbar.append(modeGroup, exportPngButton, exportCsvButton, mergeButton);

const layout = el('div', undefined, 'layout');
const matrixBox = el('section');
matrixBox.setAttribute('aria-label', 'Cosine similarity heatmap');
const matrixChart = el('div', undefined, 'chart matrix');
matrixChart.id = 'matrix-chart';
matrixChart.setAttribute('role', 'img');
const matrixTables = el('details');
const matrixTablesSummary = el('summary', 'Values as a table');
matrixTablesSummary.id = 'matrix-tables-summary';
const matrixTablesBody = el('div', undefined, 'tables');
matrixTablesBody.id = 'matrix-tables';
matrixTables.append(matrixTablesSummary, matrixTablesBody);
matrixBox.append(matrixChart, matrixTables);

const diagnostics = el('aside', undefined, 'diagnostics');
diagnostics.id = 'diagnostics';
diagnostics.setAttribute('aria-label', 'AWD diagnostics');
const diagnosticsBody = el('div');
const lossChart = el('div', undefined, 'chart loss');
lossChart.id = 'loss-chart';
diagnostics.append(el('h2', 'AWD diagnostics'), diagnosticsBody, lossChart);
layout.append(matrixBox, diagnostics);

const awdSection = el('section');
awdSection.append(el('h2', 'Re-run AWD (from the kept Gram matrices, no model is read again)'));
const awdForm = el('form', undefined, 'awd');
awdForm.id = 'awd-form';
function numberField(label: string, name: string, step: string, min: string): HTMLInputElement {
  const l = el('label', label);
  const input = el('input');
  input.type = 'number';
  input.name = name;
  input.step = step;
  input.min = min;
  input.required = true;
  l.append(input);
  awdForm.append(l);
  return input;
}
function selectField(label: string, name: string, options: string[]): HTMLSelectElement {
  const l = el('label', label);
  const select = el('select');
  select.name = name;
  for (const o of options) select.append(new Option(o, o));
  l.append(select);
  awdForm.append(l);
  return select;
}
const alphaInput = numberField('α (weight of ‖δ‖)', 'alpha', 'any', '0');
const lrInput = numberField('learning rate β', 'learning_rate', 'any', '0');
const iterationsInput = numberField('iterations', 'iterations', '1', '0');
const granularitySelect = selectField('granularity', 'granularity', ['model', 'tensor']);
const normSelect = selectField('norm', 'norm', ['l2', 'l2_squared']);
const runAwdButton = el('button', 'Run AWD');
runAwdButton.type = 'submit';
runAwdButton.id = 'run-awd';
const noAwdButton = button('Without AWD', () => requestRerun(null), 'secondary');
awdForm.append(runAwdButton, noAwdButton);
awdForm.addEventListener('submit', (e) => {
  e.preventDefault();
  const settings = formSettings();
  if (settings) requestRerun(settings);
});
awdSection.append(awdForm);

const drill = el('section');
drill.id = 'drill-down';
drill.append(el('h2', 'Where do the models interfere? (per tensor / per layer)'));
const drillControls = el('div', undefined, 'toolbar');
const levelSelect = el('select');
levelSelect.id = 'level';
levelSelect.setAttribute('aria-label', 'Rows');
const sortSelect = el('select');
sortSelect.id = 'sort';
sortSelect.setAttribute('aria-label', 'Order of the rows');
sortSelect.append(new Option('most interference first', 'interference'), new Option('by name', 'name'), new Option('file order', 'file'));
const searchInput = el('input');
searchInput.type = 'search';
searchInput.placeholder = 'Filter by name';
searchInput.setAttribute('aria-label', 'Filter rows by name');
const pager = el('span', undefined, 'pager');
const prevButton = button('‹ Previous', () => setPage(ui.page - 1), 'secondary');
const nextButton = button('Next ›', () => setPage(ui.page + 1), 'secondary');
const pageLabel = el('span', '', 'muted');
pager.append(prevButton, pageLabel, nextButton);
drillControls.append(el('span', 'Rows:'), levelSelect, el('span', 'Order:'), sortSelect, searchInput, pager);
const drillChart = el('div', undefined, 'chart');
drillChart.id = 'drill-chart';
const rowsTableBox = el('div', undefined, 'rows-table');
const detailBox = el('section');
detailBox.id = 'detail';
const detailTitle = el('h2', '');
const detailChart = el('div', undefined, 'chart detail');
detailChart.id = 'detail-chart';
const detailTable = el('div', undefined, 'tables');
detailTable.id = 'detail-table';
detailBox.append(detailTitle, detailChart, detailTable);
drill.append(drillControls, drillChart, rowsTableBox, detailBox);

const content = el('div');
content.append(toolbar, layout, awdSection, drill);
content.hidden = true;
app.append(header, progressBox, errorBox, noticeBox, content);

levelSelect.addEventListener('change', () => setLevel(Number(levelSelect.value)));
sortSelect.addEventListener('change', () => setSort(sortSelect.value as RowSort));
let searchTimer: number | undefined;
searchInput.addEventListener('input', () => {
  window.clearTimeout(searchTimer);
  searchTimer = window.setTimeout(() => {
    ui = { ...ui, search: searchInput.value, page: 0 };
    void renderDrill();
  }, 150);
});
onRowClick(drillChart, (row) => selectRow(row));

// ---------------------------------------------------------------------------------------------------------------
// Rendering

function currentLevel(): SimilarityRowLevel | undefined {
  return view?.levels.find((l) => l.depth === ui.depth) ?? view?.levels[0];
}

function hasAwd(): boolean {
  return view?.awd !== undefined;
}

function effectiveMode(): MatrixMode {
  return hasAwd() ? ui.mode : 'before';
}

/** The matrices the main heatmap shows in the current mode. */
function mainMatrices(v: SimilarityViewData): MatrixInput[] {
  const before: MatrixInput = { title: 'before AWD', values: v.cos, norms: v.norms };
  if (!v.awd) return [{ ...before, title: 'task vectors' }];
  const after: MatrixInput = { title: 'after AWD', values: v.awd.cosAfter, norms: v.awd.normsAfter };
  const mode = effectiveMode();
  return mode === 'before' ? [before] : mode === 'after' ? [after] : [before, after];
}

function valueTable(caption: string, labels: readonly string[], values: ArrayLike<number>): HTMLTableElement {
  const K = labels.length;
  const table = el('table', undefined, 'matrix-values');
  table.append(el('caption', caption));
  const head = el('tr');
  head.append(el('th', ''));
  for (const l of labels) head.append(el('th', l, 'num'));
  table.append(el('thead'));
  table.tHead!.append(head);
  const body = el('tbody');
  for (let i = 0; i < K; i++) {
    const tr = el('tr');
    const th = el('th', labels[i]);
    th.scope = 'row';
    tr.append(th);
    for (let j = 0; j < K; j++) tr.append(el('td', fixed(values[i * K + j] ?? NaN), 'num'));
    body.append(tr);
  }
  table.append(body);
  return table;
}

function tableTexts(table: HTMLTableElement): string[][] {
  return Array.from(table.tBodies[0]?.rows ?? [], (tr) => Array.from(tr.cells).slice(1).map((c) => c.textContent ?? ''));
}

async function renderMatrix(v: SimilarityViewData): Promise<void> {
  const matrices = mainMatrices(v);
  const figure = matrixFigure(matrices, v.labels, theme());
  matrixChart.style.height = `${Math.max(380, Math.min(760, 130 + v.labels.length * 52))}px`;
  matrixChart.setAttribute('aria-label', `Cosine similarity of the task vectors, ${matrices.map((m) => m.title).join(' and ')}`);
  await drawFigure(matrixChart, figure);
  matrixTablesBody.replaceChildren(...matrices.map((m) => valueTable(`cos ${m.title}`, v.labels, m.values)));
}

function diagnosticsList(items: [string, string][]): HTMLDListElement {
  const dl = el('dl');
  for (const [k, value] of items) dl.append(el('dt', k), el('dd', value));
  return dl;
}

async function renderDiagnostics(v: SimilarityViewData): Promise<void> {
  const a = v.awd;
  if (!a) {
    diagnosticsBody.replaceChildren(
      diagnosticsList([['mean |cos| over pairs', fixed(v.meanAbs)]]),
      el('p', 'AWD has not run on this analysis: choose its parameters below and press "Run AWD".', 'muted'),
    );
    lossChart.hidden = true;
    return;
  }
  const s = a.settings;
  const list = diagnosticsList([
    ['mean |cos| before', fixed(a.meanAbsBefore)],
    ['mean |cos| after', fixed(a.meanAbsAfter)],
    ['‖δ‖', formatMagnitude(a.deltaNorm)],
    ['‖δ‖ / mean ‖τ‖', `${(a.deltaNormRelative * 100).toFixed(2)} %`],
    ['settings', `α ${s.alpha}, β ${s.learning_rate}, ${s.iterations} iterations, ${s.granularity}, ${s.norm}`],
  ]);
  const table = el('table');
  table.id = 'coefficients';
  table.append(el('caption', 'Per model'));
  const head = el('tr');
  for (const h of ['model', '‖τ‖', '‖τ̂‖/‖τ‖', 'a', 'effective TA coef.']) head.append(el('th', h, h === 'model' ? undefined : 'num'));
  table.append(el('thead'));
  table.tHead!.append(head);
  const body = el('tbody');
  v.labels.forEach((label, k) => {
    const tr = el('tr');
    tr.append(el('th', label));
    tr.append(el('td', formatMagnitude(v.norms[k] ?? NaN), 'num'));
    tr.append(el('td', fixed(a.normRatio[k] ?? NaN), 'num'));
    tr.append(el('td', a.coefficients ? fixed(a.coefficients[k] ?? NaN) : '–', 'num'));
    const eff = a.effectiveTaCoefficients?.[k];
    tr.append(el('td', eff === undefined ? '–' : fixed(eff), eff !== undefined && eff < 0 ? 'num negative' : 'num'));
    body.append(tr);
  });
  table.append(body);
  const note = el('p', a.effectiveTaCoefficients ? 'Effective coefficients: task arithmetic with these per-model weights (w = 1, λ = 1) equals TA + AWD.' : 'Granularity "tensor": one δ per tensor, so coefficients are per tensor.', 'muted');
  diagnosticsBody.replaceChildren(list, table, note);
  lossChart.hidden = a.loss.length === 0;
  if (a.loss.length > 0) await drawFigure(lossChart, lossFigure(a.loss, a.lossOrthogonality, a.lossDeltaNorm, theme()));
}

function renderLevelOptions(v: SimilarityViewData): void {
  levelSelect.replaceChildren(
    ...v.levels.map((l) => new Option(l.depth === 0 ? `one per tensor (${l.names.length})` : `name prefix, ${l.depth} part${l.depth > 1 ? 's' : ''} (${l.names.length})`, String(l.depth))),
  );
  levelSelect.value = String(currentLevel()?.depth ?? 0);
  sortSelect.value = ui.sort;
  searchInput.value = ui.search;
}

interface RowView {
  index: number;
  cos: Float64Array;
  norms: Float64Array;
  meanAbs: number;
}

/** A row's numbers in the current mode (after AWD when that is what the main heatmap shows). */
function rowView(level: SimilarityRowLevel, r: number, K: number): RowView {
  const after = effectiveMode() === 'after' && level.cosAfter && level.normsAfter && level.meanAbsAfter;
  const cos = after ? level.cosAfter! : level.cos;
  const norms = after ? level.normsAfter! : level.norms;
  const mean = after ? level.meanAbsAfter! : level.meanAbs;
  return { index: r, cos: cos.subarray(r * K * K, (r + 1) * K * K), norms: norms.subarray(r * K, (r + 1) * K), meanAbs: mean[r] ?? NaN };
}

let shownRows: string[] = [];
let rowCount = 0;

async function renderDrill(): Promise<void> {
  const v = view;
  const level = currentLevel();
  if (!v || !level) return;
  const K = v.labels.length;
  const useAfter = effectiveMode() === 'after' && level.meanAbsAfter !== undefined;
  const ordered = orderedRows(level.names, useAfter ? level.meanAbsAfter! : level.meanAbs, ui);
  const { rows, page } = pageOf(ordered, ui.page);
  ui = { ...ui, page };
  rowCount = ordered.length;
  shownRows = rows.map((r) => level.names[r]!);
  const pages = pageCount(ordered.length);
  pageLabel.textContent = `page ${page + 1} of ${pages} (${ordered.length} rows, ${ROWS_PER_PAGE} per page)`;
  prevButton.disabled = page === 0;
  nextButton.disabled = page >= pages - 1;

  const views = rows.map((r) => rowView(level, r, K));
  const whole = useAfter ? level.cosAfter! : level.cos;
  const range = symmetricRangeOfValues(offDiagonal(whole, K));
  const figure = drillDownFigure(
    views.map((rv) => ({ name: level.names[rv.index]!, cos: rv.cos, norms: rv.norms, tensorCount: level.tensorCounts[rv.index] ?? 1 })),
    v.labels,
    range,
    theme(),
    `${useAfter ? 'after AWD' : 'before AWD'} — signed cosine per model pair; click a row for its K×K`,
  );
  drillChart.style.height = `${Math.max(240, 110 + rows.length * 18)}px`;
  drillChart.hidden = rows.length === 0;
  if (rows.length > 0) await drawFigure(drillChart, figure);

  const table = el('table');
  table.id = 'rows';
  table.append(el('caption', 'Rows on this page (press a name to see its K×K matrix)'));
  const head = el('tr');
  for (const h of ['#', 'name', 'tensors', 'mean |cos| before', ...(level.meanAbsAfter ? ['mean |cos| after'] : [])]) head.append(el('th', h, h === 'name' ? undefined : 'num'));
  table.append(el('thead'));
  table.tHead!.append(head);
  const body = el('tbody');
  rows.forEach((r, k) => {
    const tr = el('tr');
    tr.append(el('td', String(page * ROWS_PER_PAGE + k + 1), 'num'));
    const nameCell = el('td');
    const b = button(level.names[r]!, () => selectRow(level.names[r]!), 'link row-button');
    b.dataset['row'] = level.names[r]!;
    if (level.names[r] === ui.selectedRow) b.setAttribute('aria-current', 'true');
    nameCell.append(b);
    tr.append(nameCell, el('td', String(level.tensorCounts[r] ?? 1), 'num'), el('td', fixed(level.meanAbs[r] ?? NaN), 'num'));
    if (level.meanAbsAfter) tr.append(el('td', fixed(level.meanAbsAfter[r] ?? NaN), 'num'));
    body.append(tr);
  });
  table.append(body);
  rowsTableBox.replaceChildren(table);
  await renderDetail();
}

function offDiagonal(values: Float64Array, K: number): Float64Array {
  const out = new Float64Array((values.length / (K * K)) * (K * (K - 1)));
  let o = 0;
  for (let base = 0; base < values.length; base += K * K) {
    for (let i = 0; i < K; i++) for (let j = 0; j < K; j++) if (i !== j) out[o++] = values[base + i * K + j]!;
  }
  return out;
}

let detailValues: string[][] | undefined;

async function renderDetail(): Promise<void> {
  const v = view;
  const level = currentLevel();
  detailValues = undefined;
  const r = v && level && ui.selectedRow !== undefined ? level.names.indexOf(ui.selectedRow) : -1;
  if (!v || !level || r < 0) {
    detailBox.hidden = true;
    return;
  }
  detailBox.hidden = false;
  const K = v.labels.length;
  const before: MatrixInput = { title: 'before AWD', values: level.cos.subarray(r * K * K, (r + 1) * K * K), norms: level.norms.subarray(r * K, (r + 1) * K) };
  const matrices: MatrixInput[] = [before];
  if (level.cosAfter && level.normsAfter) {
    matrices.push({ title: 'after AWD', values: level.cosAfter.subarray(r * K * K, (r + 1) * K * K), norms: level.normsAfter.subarray(r * K, (r + 1) * K) });
  }
  const count = level.tensorCounts[r] ?? 1;
  detailTitle.textContent = `${level.names[r]}${count > 1 ? ` (${count} tensors)` : ''}`;
  await drawFigure(detailChart, matrixFigure(matrices, v.labels, theme()));
  const tables = matrices.map((m) => valueTable(`${level.names[r]} — cos ${m.title}`, v.labels, m.values));
  detailTable.replaceChildren(...tables);
  detailValues = tables[0] ? tableTexts(tables[0]) : undefined;
}

function renderModeButtons(): void {
  const awd = hasAwd();
  for (const [mode, b] of Object.entries(modeButtons) as [MatrixMode, HTMLButtonElement][]) {
    b.setAttribute('aria-pressed', String(effectiveMode() === mode));
    b.disabled = busy || (mode !== 'before' && !awd);
    if (mode !== 'before' && !awd) b.title = 'Run AWD first (below)';
    else b.removeAttribute('title');
  }
  exportPngButton.disabled = busy;
  exportCsvButton.disabled = busy;
  runAwdButton.disabled = busy;
  noAwdButton.disabled = busy || !awd;
}

function fillAwdForm(settings: PanelAwdSettings | undefined): void {
  const s = settings ?? { alpha: 0.1, learning_rate: 0.01, iterations: 300, granularity: 'model', norm: 'l2' };
  alphaInput.value = String(s.alpha);
  lrInput.value = String(s.learning_rate);
  iterationsInput.value = String(s.iterations);
  granularitySelect.value = s.granularity;
  normSelect.value = s.norm;
}

function formSettings(): PanelAwdSettings | undefined {
  const alpha = Number(alphaInput.value);
  const learningRate = Number(lrInput.value);
  const iterations = Number(iterationsInput.value);
  if (!(alpha >= 0) || !(learningRate > 0) || !Number.isInteger(iterations) || iterations < 0) {
    showNotice('AWD needs α ≥ 0, a learning rate > 0 and a whole number of iterations ≥ 0.');
    return undefined;
  }
  const granularity = granularitySelect.value === 'tensor' ? 'tensor' : 'model';
  const norm = normSelect.value === 'l2_squared' ? 'l2_squared' : 'l2';
  return { alpha, learning_rate: learningRate, iterations, granularity, norm };
}

async function renderAll(): Promise<void> {
  const v = view;
  if (!v) return;
  content.hidden = false;
  progressBox.hidden = true;
  errorBox.hidden = true;
  const K = v.labels.length;
  title.textContent = `Task vector similarity — ${K} models`;
  subtitle.textContent = `base model ${v.basePath} · ${v.tensorCount} tensors · ${v.elements.toLocaleString('en-US')} parameters compared · ${v.seconds.toFixed(2)} s`;
  renderModeButtons();
  renderLevelOptions(v);
  await renderMatrix(v);
  await renderDiagnostics(v);
  await renderDrill();
  saveState();
  reportRendered();
}

function reportRendered(): void {
  if (!view) return;
  const matrices = Array.from(matrixTablesBody.querySelectorAll('table'), (t) => ({ title: t.caption?.textContent ?? '', values: tableTexts(t) }));
  const cellTexts = Array.from(matrixChart.querySelectorAll('.annotation-text'), (t) => t.textContent ?? '');
  const snapshot: RenderSnapshot = {
    mode: effectiveMode(),
    matrices,
    cellTexts,
    levelDepth: currentLevel()?.depth ?? 0,
    sort: ui.sort,
    rows: shownRows,
    rowCount,
    ...(ui.selectedRow !== undefined && detailValues ? { selectedRow: ui.selectedRow, selectedValues: detailValues } : {}),
    ...(view.awd ? { awdSettings: view.awd.settings } : {}),
  };
  vscode.postMessage({ type: 'rendered', snapshot });
}

// ---------------------------------------------------------------------------------------------------------------
// User actions (buttons, and the same actions sent by the host for automation)

function setMode(mode: MatrixMode): void {
  ui = { ...ui, mode };
  void renderAll();
}

function setLevel(depth: number): void {
  ui = { ...ui, depth, page: 0, selectedRow: undefined };
  void rerenderDrill();
}

function setSort(sort: RowSort): void {
  ui = { ...ui, sort, page: 0 };
  void rerenderDrill();
}

function setPage(page: number): void {
  ui = { ...ui, page };
  void rerenderDrill();
}

function selectRow(name: string): void {
  ui = { ...ui, selectedRow: name };
  void rerenderDrill();
}

async function rerenderDrill(): Promise<void> {
  levelSelect.value = String(currentLevel()?.depth ?? 0);
  sortSelect.value = ui.sort;
  await renderDrill();
  detailBox.scrollIntoView?.({ block: 'nearest' });
  saveState();
  reportRendered();
}

function requestRerun(settings: PanelAwdSettings | null): void {
  busy = true;
  renderModeButtons();
  showNotice(settings ? `Running AWD (α ${settings.alpha}, ${settings.iterations} iterations, ${settings.granularity})…` : 'Removing AWD…');
  vscode.postMessage({ type: 'rerunAwd', settings });
}

async function exportPng(): Promise<void> {
  if (!view) return;
  const figure: Figure = matrixFigure(mainMatrices(view), view.labels, theme());
  const width = Math.max(480, Math.round(matrixChart.clientWidth || 800));
  const height = Math.max(360, Math.round(matrixChart.clientHeight || 480));
  try {
    const dataUrl = await figurePng(figure, width, height, cssVar('--vscode-editor-background', '#ffffff'));
    vscode.postMessage({ type: 'exportPng', dataUrl, name: `similarity-${effectiveMode()}.png` });
  } catch (e) {
    vscode.postMessage({ type: 'problem', message: `PNG export failed: ${e instanceof Error ? e.message : String(e)}` });
  }
}

function showNotice(message: string): void {
  noticeBox.textContent = message;
}

function runAction(action: PanelAction): void {
  switch (action.kind) {
    case 'setMode':
      modeButtons[action.mode].click();
      break;
    case 'setLevel':
      levelSelect.value = String(action.depth);
      setLevel(action.depth);
      break;
    case 'setSort':
      sortSelect.value = action.sort;
      setSort(action.sort);
      break;
    case 'selectRow':
      selectRow(action.name);
      break;
    case 'exportPng':
      exportPngButton.click();
      break;
    case 'exportCsv':
      exportCsvButton.click();
      break;
    case 'merge':
      mergeButton.click();
      break;
    case 'rerunAwd':
      if (action.settings) fillAwdForm(action.settings);
      requestRerun(action.settings);
      break;
  }
}

window.addEventListener('message', (event: MessageEvent<unknown>) => {
  const update = parseSimilarityUpdate(event.data);
  if (!update) {
    const type = typeof event.data === 'object' && event.data !== null ? String((event.data as { type?: unknown }).type) : typeof event.data;
    vscode.postMessage({ type: 'problem', message: `similarity page: dropped a malformed "${type}" message from the extension` });
    return;
  }
  switch (update.type) {
    case 'progress':
      progressBox.hidden = false;
      progressText.textContent = update.message;
      if (update.fraction === undefined) progressBar.removeAttribute('value');
      else progressBar.value = update.fraction;
      break;
    case 'busy':
      busy = true;
      renderModeButtons();
      if (update.message) showNotice(update.message);
      break;
    case 'data':
      view = update.view;
      busy = false;
      showNotice('');
      fillAwdForm(update.view.awd?.settings ?? update.view.source.awd);
      void renderAll();
      break;
    case 'failed':
      busy = false;
      progressBox.hidden = true;
      errorBox.hidden = false;
      errorBox.textContent = update.message;
      renderModeButtons();
      break;
    case 'notice':
      busy = false;
      renderModeButtons();
      showNotice(update.message);
      break;
    case 'action':
      runAction(update.action);
      break;
  }
});

// Re-draw the charts in the new colours when the user switches themes (the body's class names change).
new MutationObserver(() => {
  if (view) void renderAll();
}).observe(document.body, { attributes: true, attributeFilter: ['class'] });

// A failure inside the page is reported to the host's log rather than lost in the webview's console.
window.addEventListener('error', (e) => vscode.postMessage({ type: 'problem', message: `page error: ${e.message}` }));
window.addEventListener('unhandledrejection', (e) => vscode.postMessage({ type: 'problem', message: `page error: ${String(e.reason)}` }));

fillAwdForm(undefined);
vscode.postMessage({ type: 'ready' });
