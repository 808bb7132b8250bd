/**
 * The one error type for user-facing failures: what happened, in which file and tensor, and what to do.
 * Anything else that escapes the core is a bug. The CLI prints `error: <message>`; the extension shows the
 * message once (notification + output channel), never a stack trace.
 */
export class AwdError extends Error {
  override readonly name = 'AwdError';
  /** The file the problem is in, when there is one. */
  readonly file?: string;
  /** The tensor the problem is in, when there is one. */
  readonly tensor?: string;
  /** What the user can do about it. */
  readonly fix?: string;

  constructor(message: string, where: { file?: string; tensor?: string; fix?: string } = {}) {
    super(AwdError.compose(message, where));
    this.file = where.file;
    this.tensor = where.tensor;
    this.fix = where.fix;
  }

  /**
   * Rebuilds an error that crossed a thread boundary: `message` is already composed, the parts are kept so that
   * callers (e.g. editor Diagnostics) can still place the problem by file and tensor.
   */
  static restore(parts: { message: string; file?: string; tensor?: string; fix?: string }): AwdError {
    const e = new AwdError(parts.message);
    return Object.assign(e, { file: parts.file, tensor: parts.tensor, fix: parts.fix });
  }

  private static compose(message: string, where: { file?: string; tensor?: string; fix?: string }): string {
    const parts: string[] = [];
    if (where.file !== undefined) parts.push(where.file);
    if (where.tensor !== undefined) parts.push(`tensor "${where.tensor}"`);
    const head = parts.length ? `${parts.join(', ')}: ` : '';
    return `${head}${message}${where.fix ? `. ${where.fix}` : ''}`;
  }
}

/** Several user-facing problems found at once (e.g. config validation): each names file, tensor and fix. */
export class AwdErrorList extends AwdError {
  readonly problems: readonly AwdError[];
  constructor(problems: readonly AwdError[], summary = `${problems.length} problem(s) found`) {
    super(`${summary}:\n${problems.map((p) => `  - ${p.message}`).join('\n')}`);
    this.problems = problems;
  }
}

/** Thrown when a job is cancelled; never shown as an error. */
export class CancelledError extends Error {
  override readonly name = 'CancelledError';
  constructor() {
    super('cancelled');
  }
}

export function isAwdError(e: unknown): e is AwdError {
  return e instanceof AwdError;
}
