/**
 * `awd-merge merge CONFIG [--json]`: runs a merge config (YAML or JSON, or a reproducibility record) through the
 * job runner — the same worker-thread path the extension uses — with a progress bar on a terminal, and prints a
 * summary (or, with --json, one JSON object: output files, seconds, peak bytes, AWD diagnostics).
 */
import { AwdError, CancelledError, isAwdError } from '../core/errors';
import { startJob, type JobHandle } from '../jobs/runner';
import type { JobProgress, JobResult } from '../jobs/protocol';

export const MERGE_USAGE = `usage: awd-merge merge CONFIG [--json] [--memory-budget BYTES]

Runs the merge described by CONFIG (a merge config in YAML or JSON, or a .awd-record.json written by an
earlier merge) and writes the output with its reproducibility record beside it.

  --json                 print one JSON object: output files, seconds, peak bytes, AWD diagnostics
  --memory-budget BYTES  bytes for the chunk buffers (default 256 MiB; suffixes K, M, G allowed)`;

/** Where a command writes; the CLI's entry passes the process streams, tests may pass their own. */
export interface CommandIo {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
}

const PROCESS_IO: CommandIo = { stdout: process.stdout, stderr: process.stderr };

/** Parses "268435456", "256M", "1.5G" into bytes. */
export function parseBytesOption(text: string, option: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([KMG]i?B?|B)?$/i.exec(text.trim());
  if (!m) throw new AwdError(`${option}: "${text}" is not a size`, { fix: 'Give bytes, e.g. 268435456 or 256M' });
  const unit = (m[2] ?? '').toUpperCase()[0];
  const scale = unit === 'K' ? 1024 : unit === 'M' ? 1024 ** 2 : unit === 'G' ? 1024 ** 3 : 1;
  return Math.floor(Number(m[1]) * scale);
}

/** A one-line progress bar on stderr, redrawn at most 10 times a second; nothing when stderr is not a terminal. */
export class ProgressBar {
  private last = 0;
  private drawn = false;
  constructor(private readonly stream: CommandIo['stderr']) {}

  update(p: JobProgress): void {
    if (!this.stream.isTTY) return;
    const now = Date.now();
    if (now - this.last < 100 && p.bytesDone < p.bytesTotal) return;
    this.last = now;
    const width = Math.max(10, Math.min(40, (this.stream.columns ?? 80) - 60));
    const fraction = p.bytesTotal > 0 ? Math.min(1, p.bytesDone / p.bytesTotal) : 0;
    const filled = Math.round(fraction * width);
    const tensor = p.tensor ? ` ${p.tensor.length > 30 ? `…${p.tensor.slice(-29)}` : p.tensor}` : '';
    this.stream.write(`\r\x1b[K${p.phase.padEnd(10)} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(fraction * 100).toFixed(0).padStart(3)}%${tensor}`);
    this.drawn = true;
  }

  /** Clears the bar so the next line starts clean. */
  clear(): void {
    if (this.drawn) this.stream.write('\r\x1b[K');
    this.drawn = false;
  }
}

/** Runs a job to its end: progress bar, logs on stderr, Ctrl-C cancels it (and the job removes what it wrote). */
export async function runJobWithProgress(start: (onProgress: (p: JobProgress) => void, onLog: (m: string) => void) => JobHandle, io: CommandIo): Promise<JobResult> {
  const bar = new ProgressBar(io.stderr);
  const job = start(
    (p) => bar.update(p),
    (message) => {
      bar.clear();
      io.stderr.write(`${message}\n`);
    },
  );
  const onSigint = (): void => {
    bar.clear();
    io.stderr.write('cancelling…\n');
    job.cancel();
  };
  process.on('SIGINT', onSigint);
  try {
    return await job.done;
  } finally {
    process.off('SIGINT', onSigint);
    bar.clear();
  }
}

/** Exit code for an error, with its one `error:` line (1 for user-facing errors, 2 for bugs, 130 when cancelled). */
export function reportError(e: unknown, io: CommandIo): number {
  if (e instanceof CancelledError) {
    io.stderr.write('cancelled: nothing was written\n');
    return 130;
  }
  if (isAwdError(e)) {
    // One line, as main.ts prints them: a list of problems is joined.
    io.stderr.write(`error: ${e.message.replace(/\n\s*/g, ' ')}\n`);
    return 1;
  }
  const err = e instanceof Error ? e : new Error(String(e));
  io.stderr.write(`error: internal error (a bug in awd-merge, please report it): ${err.message}\n${err.stack ?? ''}\n`);
  return 2;
}

function formatBytes(n: number): string {
  return n >= 1024 ** 3 ? `${(n / 1024 ** 3).toFixed(2)} GiB` : n >= 1024 ** 2 ? `${(n / 1024 ** 2).toFixed(1)} MiB` : `${(n / 1024).toFixed(1)} KiB`;
}

/** `merge` command; returns the exit code. */
export async function mergeCommand(args: readonly string[], io: CommandIo = PROCESS_IO): Promise<number> {
  try {
    let json = false;
    let memoryBudgetBytes: number | undefined;
    const positional: string[] = [];
    for (let i = 0; i < args.length; i++) {
      const a = args[i]!;
      if (a === '--json') json = true;
      else if (a === '--memory-budget') memoryBudgetBytes = parseBytesOption(args[++i] ?? '', a);
      else if (a === '--help' || a === '-h') {
        io.stdout.write(`${MERGE_USAGE}\n`);
        return 0;
      } else if (a.startsWith('-')) throw new AwdError(`merge: unknown option ${a}`, { fix: 'See awd-merge merge --help' });
      else positional.push(a);
    }
    if (positional.length !== 1) throw new AwdError('merge: give exactly one config file', { fix: 'Usage: awd-merge merge CONFIG [--json]' });

    const result = await runJobWithProgress(
      (onProgress, onLog) =>
        startJob({ kind: 'merge', configFile: positional[0]!, ...(memoryBudgetBytes !== undefined ? { memoryBudgetBytes } : {}) }, { onProgress, onLog }),
      io,
    );
    if (result.kind !== 'merge') throw new Error('merge job returned a similarity result');
    const m = result.merge;
    if (json) {
      io.stdout.write(
        `${JSON.stringify(
          { files: m.files, record_file: m.recordFile, seconds: m.seconds, peak_bytes: m.peakBytes, passes: m.passes, ...(m.awd ? { awd: m.awd } : {}) },
          null,
          2,
        )}\n`,
      );
    } else {
      io.stdout.write(`wrote ${m.files.join(', ')}\nrecord ${m.recordFile}\n`);
      io.stdout.write(`${m.seconds.toFixed(2)} s, ${m.passes} pass(es) over the inputs, peak memory ${formatBytes(m.peakBytes)}\n`);
      if (m.awd) {
        const a = m.awd;
        io.stdout.write(
          `AWD (${a.settings.granularity}): mean |cos| ${a.mean_abs_cos_before.toFixed(4)} → ${a.mean_abs_cos_after.toFixed(4)}, ` +
            `‖δ‖ = ${a.delta_norm.toPrecision(4)} (${(a.delta_norm_relative * 100).toFixed(1)}% of mean ‖τ‖)\n`,
        );
        if (a.effective_ta_coefficients) io.stdout.write(`effective task-arithmetic coefficients: ${a.effective_ta_coefficients.map((c) => c.toFixed(4)).join(' ')}\n`);
      }
    }
    return 0;
  } catch (e) {
    return reportError(e, io);
  }
}
