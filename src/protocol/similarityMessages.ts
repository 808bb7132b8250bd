/**
 * Messages between the "Task Vector Similarity" webview and the extension host. Both sides import this module;
 * every message is one of the discriminated unions below and is checked on receipt (`parseSimilarityRequest` on
 * the host, `parseSimilarityUpdate` in the page): a malformed message is dropped and logged, never acted on.
 * Matrices travel as flat row-major Float64Arrays (VS Code passes typed arrays through postMessage without
 * turning them into JSON arrays), so a 1,000-tensor, K = 8 analysis is a few compact buffers.
 */

/** AWD settings as in merge-config.md (the same names as the report's `awd.settings`). */
export interface PanelAwdSettings {
  alpha: number;
  learning_rate: number;
  iterations: number;
  granularity: 'model' | 'tensor';
  norm: 'l2' | 'l2_squared';
}

/** One way of grouping the selected tensors into rows: every tensor, or tensors sharing the first `depth` name parts. */
export interface SimilarityRowLevel {
  /** 0 = one row per tensor; d > 0 = one row per distinct first-d-parts name prefix. */
  depth: number;
  names: string[];
  /** Tensors in each row. */
  tensorCounts: number[];
  /** R×K×K cosines of the task vectors restricted to the row's tensors (row-major per row). */
  cos: Float64Array;
  /** R×K ‖τ_i‖ over the row's tensors. */
  norms: Float64Array;
  /** R mean |cos| over pairs (what rows are sorted by). */
  meanAbs: Float64Array;
  /** The same after AWD, when AWD ran. */
  cosAfter?: Float64Array;
  normsAfter?: Float64Array;
  meanAbsAfter?: Float64Array;
}

/** AWD's diagnostics as the panel shows them (awd.md). */
export interface SimilarityAwdView {
  settings: PanelAwdSettings;
  /** K×K after disentangling. */
  cosAfter: Float64Array;
  normsAfter: Float64Array;
  meanAbsBefore: number;
  meanAbsAfter: number;
  deltaNorm: number;
  deltaNormRelative: number;
  /** ‖τ̂_i‖/‖τ_i‖ (NaN where τ_i = 0). */
  normRatio: Float64Array;
  /** Only with granularity `model`. */
  coefficients?: Float64Array;
  effectiveTaCoefficients?: Float64Array;
  /** Per iterate: L, L_O and ‖δ‖. */
  loss: Float64Array;
  lossOrthogonality: Float64Array;
  lossDeltaNorm: Float64Array;
}

/**
 * What the page renders and keeps in its state. `source` is all the host needs to rebuild the whole view without
 * reading a model again (the per-tensor Gram matrices), e.g. after VS Code restarts with the panel open.
 */
export interface SimilarityViewData {
  /** The models' short display names (file names, or m1..mK when those collide) and their paths. */
  labels: string[];
  modelPaths: string[];
  basePath: string;
  baseLabel: string;
  tensorCount: number;
  elements: number;
  seconds: number;
  /** K×K cosines of the task vectors over all selected tensors, and ‖τ_i‖. */
  cos: Float64Array;
  norms: Float64Array;
  meanAbs: number;
  awd?: SimilarityAwdView;
  levels: SimilarityRowLevel[];
  source: SimilaritySource;
}

/** The analysis inputs and its per-tensor Gram matrices: enough to recompute everything in `SimilarityViewData`. */
export interface SimilaritySource {
  base: string;
  models: string[];
  awd?: PanelAwdSettings;
  tensorNames: string[];
  tensorElements: number[];
  /** T×K×K Gram matrices ⟨τ_i, τ_j⟩ per tensor. */
  grams: Float64Array;
  seconds: number;
}

/** Which matrix the main heatmap shows. */
export type MatrixMode = 'before' | 'after' | 'side';

/** How drill-down rows are ordered: by interference (mean |cos|, largest first), by name, or as in the file. */
export type RowSort = 'interference' | 'name' | 'file';

/** What a test or a script may ask the page to do, exactly as if the user clicked the control. */
export type PanelAction =
  | { kind: 'setMode'; mode: MatrixMode }
  | { kind: 'setLevel'; depth: number }
  | { kind: 'setSort'; sort: RowSort }
  | { kind: 'selectRow'; name: string }
  | { kind: 'exportPng' }
  | { kind: 'exportCsv' }
  | { kind: 'rerunAwd'; settings: PanelAwdSettings | null }
  | { kind: 'merge' };

/** The page's report of what is on screen, read back from its DOM after every render. */
export interface RenderSnapshot {
  mode: MatrixMode;
  /** The main heatmap(s): title and the values printed in the accessible table (K×K each). */
  matrices: { title: string; values: string[][] }[];
  /** Cell texts printed on the plotly heatmap itself (empty when K > 12). */
  cellTexts: string[];
  levelDepth: number;
  sort: RowSort;
  /** Row names of the drill-down page shown, in order. */
  rows: string[];
  rowCount: number;
  /** The row whose K×K is shown, and its values as printed. */
  selectedRow?: string;
  selectedValues?: string[][];
  awdSettings?: PanelAwdSettings;
}

/** Host → webview. */
export type SimilarityUpdate =
  | { type: 'progress'; message: string; fraction?: number }
  | { type: 'data'; view: SimilarityViewData }
  | { type: 'failed'; message: string }
  | { type: 'busy'; message?: string }
  | { type: 'action'; action: PanelAction }
  | { type: 'notice'; message: string };

/** Webview → host. */
export type SimilarityRequest =
  | { type: 'ready' }
  | { type: 'rendered'; snapshot: RenderSnapshot }
  | { type: 'rerunAwd'; settings: PanelAwdSettings | null }
  | { type: 'exportPng'; dataUrl: string; name: string }
  | { type: 'exportCsv' }
  | { type: 'merge' }
  | { type: 'cancel' }
  | { type: 'problem'; message: string };

/** The last path part without a checkpoint extension ("…/ft-a.safetensors" → "ft-a"). */
function shortName(p: string): string {
  const parts = p.split(/[\\/]/).filter((s) => s !== '');
  const last = parts[parts.length - 1] ?? p;
  return last.replace(/\.safetensors\.index\.json$/i, '').replace(/\.(safetensors|bin|pt|pth|npz|npy)$/i, '');
}

/** Distinct display names: file names; with the parent folder where two collide; m1..mK as the last resort. */
export function modelLabels(paths: readonly string[]): string[] {
  const names = paths.map(shortName);
  if (new Set(names).size === names.length) return names;
  const withParent = paths.map((p) => {
    const parts = p.split(/[\\/]/).filter((s) => s !== '');
    return parts.length >= 2 ? `${parts[parts.length - 2]}/${shortName(p)}` : shortName(p);
  });
  if (new Set(withParent).size === withParent.length) return withParent;
  return paths.map((_, i) => `m${i + 1}`);
}

/** Largest PNG data URL the host accepts (a 4k-wide heatmap is far below). */
export const MAX_PNG_DATA_URL = 64 * 2 ** 20;

const MODES: readonly MatrixMode[] = ['before', 'after', 'side'];
const SORTS: readonly RowSort[] = ['interference', 'name', 'file'];

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function isString(x: unknown): x is string {
  return typeof x === 'string';
}

function isStringArray(x: unknown): x is string[] {
  return Array.isArray(x) && x.every(isString);
}

function isFiniteNumber(x: unknown): x is number {
  return typeof x === 'number' && Number.isFinite(x);
}

/** AWD settings within the CLI's bounds (α ≥ 0, β > 0, whole iterations ≤ 100,000), or undefined. */
export function parseAwdSettings(x: unknown): PanelAwdSettings | undefined {
  if (!isRecord(x)) return undefined;
  const { alpha, learning_rate, iterations, granularity, norm } = x;
  if (!isFiniteNumber(alpha) || alpha < 0) return undefined;
  if (!isFiniteNumber(learning_rate) || learning_rate <= 0) return undefined;
  if (!isFiniteNumber(iterations) || !Number.isInteger(iterations) || iterations < 0 || iterations > 100_000) return undefined;
  if (granularity !== 'model' && granularity !== 'tensor') return undefined;
  if (norm !== 'l2' && norm !== 'l2_squared') return undefined;
  return { alpha, learning_rate, iterations, granularity, norm };
}

function parseMatrixTexts(x: unknown): string[][] | undefined {
  return Array.isArray(x) && x.every(isStringArray) ? x.map((r) => [...r]) : undefined;
}

function parseSnapshot(x: unknown): RenderSnapshot | undefined {
  if (!isRecord(x)) return undefined;
  const mode = x['mode'];
  const sort = x['sort'];
  if (!MODES.includes(mode as MatrixMode) || !SORTS.includes(sort as RowSort)) return undefined;
  const matrices = x['matrices'];
  if (!Array.isArray(matrices)) return undefined;
  const parsedMatrices: RenderSnapshot['matrices'] = [];
  for (const m of matrices) {
    const values = isRecord(m) ? parseMatrixTexts(m['values']) : undefined;
    if (!isRecord(m) || !isString(m['title']) || !values) return undefined;
    parsedMatrices.push({ title: m['title'], values });
  }
  const { cellTexts, levelDepth, rows, rowCount, selectedRow, selectedValues, awdSettings } = x;
  if (!isStringArray(cellTexts) || !isStringArray(rows)) return undefined;
  if (!isFiniteNumber(levelDepth) || !isFiniteNumber(rowCount)) return undefined;
  if (selectedRow !== undefined && !isString(selectedRow)) return undefined;
  const values = selectedValues === undefined ? undefined : parseMatrixTexts(selectedValues);
  if (selectedValues !== undefined && !values) return undefined;
  const settings = awdSettings === undefined ? undefined : parseAwdSettings(awdSettings);
  if (awdSettings !== undefined && !settings) return undefined;
  return {
    mode: mode as MatrixMode,
    matrices: parsedMatrices,
    cellTexts: [...cellTexts],
    levelDepth,
    sort: sort as RowSort,
    rows: [...rows],
    rowCount,
    ...(selectedRow !== undefined ? { selectedRow } : {}),
    ...(values ? { selectedValues: values } : {}),
    ...(settings ? { awdSettings: settings } : {}),
  };
}

/** The request a webview message stands for, or undefined when it is not a well-formed one. */
export function parseSimilarityRequest(data: unknown): SimilarityRequest | undefined {
  if (!isRecord(data)) return undefined;
  switch (data['type']) {
    case 'ready':
    case 'exportCsv':
    case 'merge':
    case 'cancel':
      return { type: data['type'] };
    case 'rendered': {
      const snapshot = parseSnapshot(data['snapshot']);
      return snapshot ? { type: 'rendered', snapshot } : undefined;
    }
    case 'rerunAwd': {
      if (data['settings'] === null) return { type: 'rerunAwd', settings: null };
      const settings = parseAwdSettings(data['settings']);
      return settings ? { type: 'rerunAwd', settings } : undefined;
    }
    case 'exportPng': {
      const { dataUrl, name } = data;
      if (!isString(dataUrl) || !dataUrl.startsWith('data:image/png;base64,') || dataUrl.length > MAX_PNG_DATA_URL) return undefined;
      // A bare file name: the page proposes the save dialog's default name, never a folder to put it in.
      if (!isString(name) || name.length === 0 || name.length > 200 || /[\\/\0]/.test(name) || name === '.' || name === '..') return undefined;
      return { type: 'exportPng', dataUrl, name };
    }
    case 'problem':
      return isString(data['message']) ? { type: 'problem', message: data['message'].slice(0, 2000) } : undefined;
    default:
      return undefined;
  }
}

function isFloat64(x: unknown, length?: number): x is Float64Array {
  return x instanceof Float64Array && (length === undefined || x.length === length);
}

function checkAwdView(x: unknown, K: number): boolean {
  if (!isRecord(x) || !parseAwdSettings(x['settings'])) return false;
  if (!isFloat64(x['cosAfter'], K * K) || !isFloat64(x['normsAfter'], K) || !isFloat64(x['normRatio'], K)) return false;
  if (!['meanAbsBefore', 'meanAbsAfter', 'deltaNorm', 'deltaNormRelative'].every((k) => typeof x[k] === 'number')) return false;
  if (x['coefficients'] !== undefined && !isFloat64(x['coefficients'], K)) return false;
  if (x['effectiveTaCoefficients'] !== undefined && !isFloat64(x['effectiveTaCoefficients'], K)) return false;
  const n = x['loss'] instanceof Float64Array ? x['loss'].length : -1;
  return n >= 0 && isFloat64(x['lossOrthogonality'], n) && isFloat64(x['lossDeltaNorm'], n);
}

function checkLevel(x: unknown, K: number, withAwd: boolean): boolean {
  if (!isRecord(x) || !isFiniteNumber(x['depth']) || !isStringArray(x['names'])) return false;
  const R = x['names'].length;
  const counts = x['tensorCounts'];
  if (!Array.isArray(counts) || counts.length !== R || !counts.every(isFiniteNumber)) return false;
  if (!isFloat64(x['cos'], R * K * K) || !isFloat64(x['norms'], R * K) || !isFloat64(x['meanAbs'], R)) return false;
  if (!withAwd) return true;
  return isFloat64(x['cosAfter'], R * K * K) && isFloat64(x['normsAfter'], R * K) && isFloat64(x['meanAbsAfter'], R);
}

/** A well-formed view (every array the length K and the row count say), or undefined. */
export function parseViewData(x: unknown): SimilarityViewData | undefined {
  if (!isRecord(x) || !isStringArray(x['labels']) || !isStringArray(x['modelPaths'])) return undefined;
  const K = x['labels'].length;
  if (K < 2 || x['modelPaths'].length !== K || !isString(x['basePath']) || !isString(x['baseLabel'])) return undefined;
  if (!isFiniteNumber(x['tensorCount']) || !isFiniteNumber(x['elements']) || !isFiniteNumber(x['seconds']) || typeof x['meanAbs'] !== 'number') return undefined;
  if (!isFloat64(x['cos'], K * K) || !isFloat64(x['norms'], K)) return undefined;
  const withAwd = x['awd'] !== undefined;
  if (withAwd && !checkAwdView(x['awd'], K)) return undefined;
  const levels = x['levels'];
  if (!Array.isArray(levels) || levels.length === 0 || !levels.every((l) => checkLevel(l, K, withAwd))) return undefined;
  if (!parseSource(x['source'])) return undefined;
  return x as unknown as SimilarityViewData;
}

/** Analysis inputs with T×K×K Gram matrices whose sizes agree, or undefined. Also reads plain arrays (saved state). */
export function parseSource(x: unknown): SimilaritySource | undefined {
  if (!isRecord(x) || !isString(x['base']) || !isStringArray(x['models'])) return undefined;
  const K = x['models'].length;
  const names = x['tensorNames'];
  const elements = x['tensorElements'];
  if (K < 2 || !isStringArray(names) || !Array.isArray(elements) || elements.length !== names.length || !elements.every(isFiniteNumber)) return undefined;
  const raw = x['grams'];
  const grams = raw instanceof Float64Array ? raw : Array.isArray(raw) && raw.every((v) => typeof v === 'number') ? Float64Array.from(raw as number[]) : undefined;
  if (!grams || grams.length !== names.length * K * K) return undefined;
  let awd: PanelAwdSettings | undefined;
  if (x['awd'] !== undefined) {
    awd = parseAwdSettings(x['awd']);
    if (!awd) return undefined;
  }
  const seconds = isFiniteNumber(x['seconds']) ? x['seconds'] : 0;
  return { base: x['base'], models: [...x['models']], ...(awd ? { awd } : {}), tensorNames: [...names], tensorElements: [...(elements as number[])], grams, seconds };
}

function parseAction(x: unknown): PanelAction | undefined {
  if (!isRecord(x)) return undefined;
  switch (x['kind']) {
    case 'setMode':
      return MODES.includes(x['mode'] as MatrixMode) ? { kind: 'setMode', mode: x['mode'] as MatrixMode } : undefined;
    case 'setLevel':
      return isFiniteNumber(x['depth']) ? { kind: 'setLevel', depth: x['depth'] } : undefined;
    case 'setSort':
      return SORTS.includes(x['sort'] as RowSort) ? { kind: 'setSort', sort: x['sort'] as RowSort } : undefined;
    case 'selectRow':
      return isString(x['name']) ? { kind: 'selectRow', name: x['name'] } : undefined;
    case 'exportPng':
    case 'exportCsv':
    case 'merge':
      return { kind: x['kind'] };
    case 'rerunAwd': {
      if (x['settings'] === null) return { kind: 'rerunAwd', settings: null };
      const settings = parseAwdSettings(x['settings']);
      return settings ? { kind: 'rerunAwd', settings } : undefined;
    }
    default:
      return undefined;
  }
}

/** Parses a UI action (from the automation command or a host message). */
export function parsePanelAction(x: unknown): PanelAction | undefined {
  return parseAction(x);
}

/** The update a host message stands for, or undefined when it is not a well-formed one. */
export function parseSimilarityUpdate(data: unknown): SimilarityUpdate | undefined {
  if (!isRecord(data)) return undefined;
  switch (data['type']) {
    case 'progress': {
      const f = data['fraction'];
      if (!isString(data['message']) || (f !== undefined && !isFiniteNumber(f))) return undefined;
      return { type: 'progress', message: data['message'], ...(f !== undefined ? { fraction: f } : {}) };
    }
    case 'data': {
      const view = parseViewData(data['view']);
      return view ? { type: 'data', view } : undefined;
    }
    case 'failed':
    case 'notice':
      return isString(data['message']) ? { type: data['type'], message: data['message'] } : undefined;
    case 'busy':
      return data['message'] === undefined || isString(data['message']) ? { type: 'busy', ...(isString(data['message']) ? { message: data['message'] } : {}) } : undefined;
    case 'action': {
      const action = parseAction(data['action']);
      return action ? { type: 'action', action } : undefined;
    }
    default:
      return undefined;
  }
}
