/**
 * The similarity report as CSV: one line per model pair (i < j), first over all selected tensors ("model"), then
 * per tensor, with the cosine before and, when AWD ran, after disentangling. Numbers are written with
 * `String(x)`, the shortest text that reads back as the same float64, so the CSV holds exactly the values of
 * `awd-merge similarity --json`. Pure, unit-tested.
 */
import type { SimilarityReport } from '../../core/analysis/analyze';

export const CSV_HEADER = ['scope', 'tensor', 'i', 'j', 'model_i', 'model_j', 'cos_before', 'cos_after'] as const;

/** A field quoted per RFC 4180 when it holds a comma, quote or line break. */
export function csvField(value: string | number | undefined): string {
  if (value === undefined) return '';
  const text = typeof value === 'number' ? String(value) : value;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

function line(fields: readonly (string | number | undefined)[]): string {
  return fields.map(csvField).join(',');
}

/** Every pair (i < j) of a K×K matrix pair as CSV lines. */
function pairLines(scope: string, tensor: string, before: readonly (readonly number[])[], after: readonly (readonly number[])[] | undefined, models: readonly string[]): string[] {
  const lines: string[] = [];
  const K = models.length;
  for (let i = 0; i < K; i++) {
    for (let j = i + 1; j < K; j++) {
      lines.push(line([scope, tensor, i + 1, j + 1, models[i], models[j], before[i]?.[j], after?.[i]?.[j]]));
    }
  }
  return lines;
}

/** The report as CSV text (header + lines, CRLF-free, ending with a newline). `models` are the names written per pair. */
export function similarityCsv(report: SimilarityReport, models: readonly string[] = report.models): string {
  const lines = [CSV_HEADER.join(',')];
  lines.push(...pairLines('model', '', report.cosine, report.awd?.cos_after, models));
  if (report.per_tensor) {
    for (const [name, matrix] of Object.entries(report.per_tensor)) {
      lines.push(...pairLines('tensor', name, matrix, report.awd?.per_tensor[name]?.cos_after, models));
    }
  }
  return `${lines.join('\n')}\n`;
}

/** Splits CSV text into rows of fields (RFC 4180 quoting); the inverse of `similarityCsv`'s writing, for tests and imports. */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let field = '';
  let row: string[] = [];
  let quoted = false;
  for (let k = 0; k < text.length; k++) {
    const c = text[k]!;
    if (quoted) {
      if (c === '"' && text[k + 1] === '"') {
        field += '"';
        k++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
    } else if (c !== '\r') field += c;
  }
  if (field !== '' || row.length > 0) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}
