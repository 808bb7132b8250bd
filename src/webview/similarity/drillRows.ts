/**
 * Which drill-down rows the page shows: filtered by a name search, ordered (by interference = mean |cos| over
 * pairs, largest first; by name; or in file order) and cut into pages, so the heatmap only ever holds one page of
 * rows however many tensors the model has. Pure index arithmetic over the row arrays; unit-tested.
 */
import type { RowSort } from '../../protocol/similarityMessages';

/** Rows per drill-down page: enough to see the worst offenders, few enough to read every name. */
export const ROWS_PER_PAGE = 40;

export interface RowQuery {
  sort: RowSort;
  /** Case-insensitive substring of the row name; empty = all rows. */
  search: string;
  page: number;
}

/** Row indices matching the search, in the requested order (ties keep file order, so the order is stable). */
export function orderedRows(names: readonly string[], meanAbs: ArrayLike<number>, query: Pick<RowQuery, 'sort' | 'search'>): number[] {
  const needle = query.search.trim().toLowerCase();
  const rows: number[] = [];
  for (let r = 0; r < names.length; r++) if (needle === '' || names[r]!.toLowerCase().includes(needle)) rows.push(r);
  if (query.sort === 'interference') {
    // NaN (a row without a task vector) sorts last.
    const key = (r: number): number => {
      const v = meanAbs[r] ?? NaN;
      return Number.isFinite(v) ? v : -Infinity;
    };
    rows.sort((a, b) => key(b) - key(a) || a - b);
  } else if (query.sort === 'name') {
    rows.sort((a, b) => (names[a]! < names[b]! ? -1 : names[a]! > names[b]! ? 1 : a - b));
  }
  return rows;
}

/** Number of pages for `count` rows (at least 1). */
export function pageCount(count: number, perPage = ROWS_PER_PAGE): number {
  return Math.max(1, Math.ceil(count / perPage));
}

/** The rows of page `page` (clamped into range) and the page actually shown. */
export function pageOf(rows: readonly number[], page: number, perPage = ROWS_PER_PAGE): { rows: number[]; page: number } {
  const last = pageCount(rows.length, perPage) - 1;
  const p = Math.min(Math.max(0, Math.floor(page)), last);
  return { rows: rows.slice(p * perPage, (p + 1) * perPage), page: p };
}
