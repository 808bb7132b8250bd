/**
 * The inspector page (bundled to dist/inspector.js, runs in the webview): renders the header the host sends, a
 * searchable, sortable, paged tensor table, and statistics the host computes in the worker on request. Only DOM
 * text nodes carry data from the file (never innerHTML), and every control is a native button or input, so the
 * page works from the keyboard and with a screen reader.
 */
import type {
  InspectorBase,
  InspectorCheckpoint,
  InspectorRequest,
  InspectorTensorStats,
  InspectorUpdate,
} from '../../protocol/inspectorMessages';
import { formatShape, formatStatistic, tableView, type SortDirection, type SortKey, type TableQuery } from './tensorTable';

interface VsCodeApi {
  postMessage(message: InspectorRequest): void;
  getState(): unknown;
  setState(state: unknown): void;
}
declare function acquireVsCodeApi(): VsCodeApi;

const vscode = acquireVsCodeApi();
const PAGE_SIZE = 100;

interface Column {
  key: SortKey;
  label: string;
  numeric: boolean;
  /** Statistic columns are empty until computed. */
  cell: (row: { index: number; name: string; dtype: string; shape: number[]; elements: number; bytes: number }, s: InspectorTensorStats | undefined) => string;
  title?: string;
}

const COLUMNS: Column[] = [
  { key: 'index', label: '#', numeric: true, cell: (r) => String(r.index + 1), title: 'Position in the file' },
  { key: 'name', label: 'Name', numeric: false, cell: (r) => r.name },
  { key: 'dtype', label: 'DType', numeric: false, cell: (r) => r.dtype },
  { key: 'shape', label: 'Shape', numeric: false, cell: (r) => formatShape(r.shape) },
  { key: 'elements', label: 'Elements', numeric: true, cell: (r) => r.elements.toLocaleString('en-US') },
  { key: 'bytes', label: 'Size', numeric: true, cell: (r) => formatBytes(r.bytes) },
  { key: 'mean', label: 'Mean', numeric: true, cell: (_r, s) => formatStatistic(s?.mean) },
  { key: 'std', label: 'Std', numeric: true, cell: (_r, s) => formatStatistic(s?.std) },
  { key: 'min', label: 'Min', numeric: true, cell: (_r, s) => formatStatistic(s?.min) },
  { key: 'max', label: 'Max', numeric: true, cell: (_r, s) => formatStatistic(s?.max) },
  { key: 'nonFinite', label: 'NaN / Inf', numeric: true, cell: (_r, s) => (s ? `${s.nanCount} / ${s.infCount}` : ''), title: 'Count of NaN and ±Inf entries' },
  {
    key: 'diffNorm',
    label: '‖Δ base‖',
    numeric: true,
    cell: (_r, s) => (s ? (s.diffNorm !== undefined ? formatStatistic(s.diffNorm) : (s.diffProblem ?? '')) : ''),
    title: 'L2 norm of the difference to the base model, ‖θ − θ_base‖₂',
  },
];

function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${Number(v.toFixed(v >= 100 ? 0 : v >= 10 ? 1 : 2))} ${units[u]}`;
}

/** Element with text content and optional class; never parses HTML. */
function el<K extends keyof HTMLElementTagNameMap>(tag: K, text?: string, className?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (className) e.className = className;
  return e;
}

interface SavedState {
  query: TableQuery;
}

function isSavedState(x: unknown): x is SavedState {
  return typeof x === 'object' && x !== null && typeof (x as SavedState).query?.search === 'string';
}

const saved = vscode.getState();
let query: TableQuery = isSavedState(saved) ? saved.query : { search: '', sortKey: 'index', direction: 'asc', page: 0, pageSize: PAGE_SIZE };
let checkpoint: InspectorCheckpoint | undefined;
let base: InspectorBase | undefined;
const stats = new Map<string, InspectorTensorStats>();
let nextRequestId = 1;
const pending = new Map<number, string[]>();

const app = document.getElementById('app')!;
const statusLine = el('p', '', 'status');
statusLine.setAttribute('role', 'status');
statusLine.setAttribute('aria-live', 'polite');
const searchInput = el('input');
const tableBody = el('tbody');
const headRow = el('tr');
const pageLabel = el('span', '', 'page-label');
const prevButton = el('button', '‹ Previous');
const nextButton = el('button', 'Next ›');
const baseLabel = el('span', '', 'base-label');
const statsButton = el('button', 'Compute statistics for this page');

function saveState(): void {
  vscode.setState({ query } satisfies SavedState);
}

function setStatus(text: string): void {
  statusLine.textContent = text;
}

function renderShell(c: InspectorCheckpoint): void {
  app.replaceChildren();
  app.removeAttribute('aria-busy');
  const header = el('header');
  header.append(el('h1', c.label));
  header.append(el('p', `${c.format} · ${c.tensors.length.toLocaleString('en-US')} tensors · ${c.parameters.toLocaleString('en-US')} parameters · ${formatBytes(c.bytes)}`, 'summary'));
  header.append(el('p', c.path, 'path'));
  app.append(header);

  const metaKeys = Object.keys(c.metadata);
  if (metaKeys.length > 0) {
    const details = el('details');
    details.append(el('summary', `Metadata (${metaKeys.length})`));
    const table = el('table', undefined, 'metadata');
    for (const k of metaKeys.sort()) {
      const tr = el('tr');
      tr.append(el('th', k), el('td', c.metadata[k]));
      table.append(tr);
    }
    details.append(table);
    app.append(details);
  }

  const toolbar = el('div', undefined, 'toolbar');
  searchInput.type = 'search';
  searchInput.placeholder = 'Filter tensors by name or dtype (/)';
  searchInput.setAttribute('aria-label', 'Filter tensors by name or dtype');
  searchInput.value = query.search;
  searchInput.addEventListener('input', () => {
    query = { ...query, search: searchInput.value, page: 0 };
    saveState();
    renderRows();
  });
  const chooseBase = el('button', 'Choose base…');
  chooseBase.title = 'Pick the base model the ‖Δ base‖ column compares with';
  chooseBase.addEventListener('click', () => vscode.postMessage({ type: 'chooseBase' }));
  statsButton.addEventListener('click', () => requestStatsForPage());
  prevButton.addEventListener('click', () => turnPage(-1));
  nextButton.addEventListener('click', () => turnPage(1));
  const nav = el('div', undefined, 'pager');
  nav.setAttribute('role', 'navigation');
  nav.setAttribute('aria-label', 'Pages of tensors');
  nav.append(prevButton, pageLabel, nextButton);
  toolbar.append(searchInput, statsButton, baseLabel, chooseBase, nav);
  app.append(toolbar, statusLine);

  const table = el('table', undefined, 'tensors');
  table.setAttribute('aria-label', 'Tensors');
  const thead = el('thead');
  thead.append(headRow);
  table.append(thead, tableBody);
  const scroller = el('div', undefined, 'table-scroller');
  scroller.append(table);
  app.append(scroller);
  renderBase();
  renderRows();
}

function renderBase(): void {
  baseLabel.textContent = base ? `Base: ${base.label}` : 'No base chosen';
  baseLabel.title = base ? base.path : 'Set a base model (AWD: Set as Base Model, or Choose base…) to see ‖Δ base‖';
}

function renderHead(): void {
  headRow.replaceChildren();
  for (const col of COLUMNS) {
    const th = el('th');
    th.scope = 'col';
    if (col.numeric) th.className = 'num';
    const sorted = query.sortKey === col.key;
    th.setAttribute('aria-sort', sorted ? (query.direction === 'asc' ? 'ascending' : 'descending') : 'none');
    const button = el('button', `${col.label}${sorted ? (query.direction === 'asc' ? ' ▲' : ' ▼') : ''}`, 'sort');
    button.title = `${col.title ?? col.label} — sort`;
    button.addEventListener('click', () => {
      const direction: SortDirection = sorted && query.direction === 'asc' ? 'desc' : 'asc';
      query = { ...query, sortKey: col.key, direction, page: 0 };
      saveState();
      renderRows();
      // Keep the keyboard where it was: the header is rebuilt.
      (headRow.querySelectorAll('button.sort')[COLUMNS.indexOf(col)] as HTMLButtonElement | undefined)?.focus();
    });
    th.append(button);
    headRow.append(th);
  }
}

function renderRows(): void {
  if (!checkpoint) return;
  renderHead();
  const view = tableView(checkpoint.tensors, query, stats);
  query = { ...query, page: view.page };
  const fragment = document.createDocumentFragment();
  for (const row of view.rows) {
    const tr = el('tr');
    tr.dataset['tensor'] = row.name;
    const s = stats.get(row.name);
    for (const col of COLUMNS) {
      const td = el(col.key === 'name' ? 'th' : 'td', col.cell(row, s));
      if (col.key === 'name') td.setAttribute('scope', 'row');
      if (col.numeric) td.className = 'num';
      if (col.key === 'nonFinite' && s && s.nanCount + s.infCount > 0) td.className = 'num bad';
      tr.append(td);
    }
    fragment.append(tr);
  }
  tableBody.replaceChildren(fragment);
  pageLabel.textContent = `Page ${view.page + 1} of ${view.pageCount} · ${view.matching.toLocaleString('en-US')} matching`;
  prevButton.disabled = view.page === 0;
  nextButton.disabled = view.page >= view.pageCount - 1;
  statsButton.disabled = view.rows.length === 0;
}

function turnPage(delta: number): void {
  query = { ...query, page: query.page + delta };
  saveState();
  renderRows();
}

function requestStatsForPage(): void {
  if (!checkpoint) return;
  const names = tableView(checkpoint.tensors, query, stats).rows.map((r) => r.name).filter((n) => !stats.has(n));
  if (names.length === 0) {
    setStatus('Statistics of this page are already computed.');
    return;
  }
  const requestId = nextRequestId++;
  pending.set(requestId, names);
  statsButton.disabled = true;
  setStatus(`Computing statistics of ${names.length} tensor${names.length > 1 ? 's' : ''} in the background…`);
  vscode.postMessage({ type: 'computeStats', requestId, tensors: names });
}

function onMessage(m: InspectorUpdate): void {
  switch (m.type) {
    case 'checkpoint':
      checkpoint = m.checkpoint;
      base = m.base;
      stats.clear();
      renderShell(m.checkpoint);
      break;
    case 'loadError':
      app.replaceChildren(el('h1', 'Cannot read this checkpoint'), el('p', m.message, 'error'));
      app.removeAttribute('aria-busy');
      break;
    case 'base':
      base = m.base;
      // ‖Δ base‖ was computed against the previous base: recompute on request.
      stats.clear();
      renderBase();
      renderRows();
      setStatus(base ? `Comparing with ${base.label}.` : 'No base model chosen.');
      break;
    case 'stats':
      pending.delete(m.requestId);
      for (const s of m.stats) stats.set(s.name, s);
      renderRows();
      setStatus(`Statistics computed for ${m.stats.length} tensor${m.stats.length > 1 ? 's' : ''}.`);
      break;
    case 'statsError':
      pending.delete(m.requestId);
      statsButton.disabled = false;
      setStatus(`Statistics failed: ${m.message}`);
      break;
  }
}

window.addEventListener('message', (event: MessageEvent<InspectorUpdate>) => onMessage(event.data));
window.addEventListener('keydown', (event) => {
  const typing = document.activeElement instanceof HTMLInputElement;
  if (event.key === '/' && !typing) {
    event.preventDefault();
    searchInput.focus();
  } else if (event.key === 'PageDown' && event.altKey) {
    turnPage(1);
  } else if (event.key === 'PageUp' && event.altKey) {
    turnPage(-1);
  }
});
vscode.postMessage({ type: 'ready' });
