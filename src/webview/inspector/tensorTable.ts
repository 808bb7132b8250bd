/**
 * The inspector table's view of the tensor list: search, sort and paging. Kept free of the DOM so the rules are
 * unit-tested in Node; the page script only renders what `tableView` returns.
 */
import type { InspectorTensorRow, InspectorTensorStats } from '../../protocol/inspectorMessages';

export type SortKey = 'index' | 'name' | 'dtype' | 'shape' | 'elements' | 'bytes' | 'mean' | 'std' | 'min' | 'max' | 'nonFinite' | 'diffNorm';
export type SortDirection = 'asc' | 'desc';

export interface TableQuery {
  /** Space-separated words; a row matches when its name (or dtype) contains every word, case-insensitively. */
  search: string;
  sortKey: SortKey;
  direction: SortDirection;
  /** 0-based page. */
  page: number;
  pageSize: number;
}

export interface TableRow extends InspectorTensorRow {
  /** Position in the file, 0-based (the natural order). */
  index: number;
}

export interface TableView {
  rows: TableRow[];
  /** Rows matching the search, over all pages. */
  matching: number;
  /** The page actually shown (clamped into range). */
  page: number;
  pageCount: number;
}

/** True when every word of the search occurs in the tensor's name or dtype (case-insensitive). */
export function matchesSearch(row: InspectorTensorRow, search: string): boolean {
  const words = search.toLowerCase().split(/\s+/).filter((w) => w !== '');
  const haystack = `${row.name} ${row.dtype}`.toLowerCase();
  return words.every((w) => haystack.includes(w));
}

/** The value a row sorts by; undefined (no statistics yet) sorts last in both directions. */
function sortValue(row: TableRow, key: SortKey, stats: ReadonlyMap<string, InspectorTensorStats>): string | number | undefined {
  switch (key) {
    case 'index':
      return row.index;
    case 'name':
      return row.name;
    case 'dtype':
      return row.dtype;
    case 'shape':
    case 'elements':
      return row.elements;
    case 'bytes':
      return row.bytes;
    default: {
      const s = stats.get(row.name);
      if (!s) return undefined;
      if (key === 'nonFinite') return s.nanCount + s.infCount;
      if (key === 'diffNorm') return s.diffNorm;
      return s[key];
    }
  }
}

/** Filters, sorts (stable: ties keep file order) and cuts out one page. */
export function tableView(
  tensors: readonly InspectorTensorRow[],
  query: TableQuery,
  stats: ReadonlyMap<string, InspectorTensorStats> = new Map(),
): TableView {
  const rows: TableRow[] = [];
  tensors.forEach((t, index) => {
    if (matchesSearch(t, query.search)) rows.push({ ...t, index });
  });
  const sign = query.direction === 'asc' ? 1 : -1;
  rows.sort((a, b) => {
    const va = sortValue(a, query.sortKey, stats);
    const vb = sortValue(b, query.sortKey, stats);
    if (va === undefined || vb === undefined) {
      if (va === vb) return a.index - b.index;
      return va === undefined ? 1 : -1;
    }
    const c = typeof va === 'string' && typeof vb === 'string' ? va.localeCompare(vb) : Number(va) - Number(vb);
    return c !== 0 ? sign * c : a.index - b.index;
  });
  const pageSize = Math.max(1, Math.floor(query.pageSize));
  const pageCount = Math.max(1, Math.ceil(rows.length / pageSize));
  const page = Math.min(Math.max(0, Math.floor(query.page)), pageCount - 1);
  return { rows: rows.slice(page * pageSize, (page + 1) * pageSize), matching: rows.length, page, pageCount };
}

/** Shape as PyTorch prints it: [768, 3072]; a scalar is []. */
export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

/** A statistic in at most 5 significant digits, exponent form outside [1e-3, 1e5). */
export function formatStatistic(x: number | undefined): string {
  if (x === undefined) return '';
  if (x === 0 || !Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  return a >= 1e-3 && a < 1e5 ? String(Number(x.toPrecision(5))) : x.toExponential(3);
}
