/**
 * A problem in a merge config, located precisely enough for the extension to put a Diagnostic on the offending
 * line: JSON pointer into the document plus 1-based line and column when the text is known.
 */
import { AwdError } from '../errors';

export type ProblemSeverity = 'error' | 'warning';

export interface SourcePosition {
  /** 1-based. */
  line: number;
  /** 1-based. */
  column: number;
  /** 1-based, exclusive: where the offending node ends (same line as `line` when it is on one line). */
  endLine: number;
  endColumn: number;
}

/** JSON pointer → where the node (for keys: the key itself, under `pointer + '#key'`) sits in the source text. */
export type PositionMap = Readonly<Record<string, SourcePosition>>;

export class ConfigProblem extends AwdError {
  /** JSON pointer of the offending key or value ('' for the whole document). */
  readonly pointer: string;
  readonly line?: number;
  readonly column?: number;
  readonly endLine?: number;
  readonly endColumn?: number;
  readonly severity: ProblemSeverity;
  /** The message without file prefix and fix, for an editor Diagnostic. */
  readonly detail: string;

  constructor(
    detail: string,
    where: { file: string; pointer: string; fix?: string; tensor?: string; position?: SourcePosition; severity?: ProblemSeverity },
  ) {
    const at = where.pointer === '' ? '' : ` at ${pointerToPath(where.pointer)}`;
    const line = where.position ? ` (line ${where.position.line}, column ${where.position.column})` : '';
    super(`${detail}${at}${line}`, { file: where.file, tensor: where.tensor, fix: where.fix });
    this.pointer = where.pointer;
    this.detail = detail;
    this.severity = where.severity ?? 'error';
    if (where.position) {
      this.line = where.position.line;
      this.column = where.position.column;
      this.endLine = where.position.endLine;
      this.endColumn = where.position.endColumn;
    }
  }
}

/** '/models/1/parameters/density' → 'models[1].parameters.density'. */
export function pointerToPath(pointer: string): string {
  let out = '';
  for (const raw of pointer.split('/').slice(1)) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    out += /^\d+$/.test(seg) ? `[${seg}]` : out === '' ? seg : `.${seg}`;
  }
  return out;
}

/** ['models', 1, 'model'] → '/models/1/model'. */
export function segmentsToPointer(segments: readonly (string | number)[]): string {
  return segments.map((s) => `/${String(s).replace(/~/g, '~0').replace(/\//g, '~1')}`).join('');
}

/** The position of a pointer's value, else of its nearest located ancestor. */
export function locate(positions: PositionMap | undefined, pointer: string, key = false): SourcePosition | undefined {
  if (!positions) return undefined;
  if (key && positions[`${pointer}#key`]) return positions[`${pointer}#key`];
  let p = pointer;
  for (;;) {
    const hit = positions[p];
    if (hit) return hit;
    if (p === '') return undefined;
    p = p.slice(0, p.lastIndexOf('/'));
  }
}
