/**
 * `awd-merge similarity --base BASE MODEL... [--awd [...]] [--per-tensor] [--json]`: pairwise cosine of the
 * models' task vectors (globally and per tensor), optionally with AWD's diagnostics, through the job runner.
 * --json prints the analysis report as is; otherwise readable tables.
 */
import * as path from 'node:path';
import { AwdError } from '../core/errors';
import { startJob } from '../jobs/runner';
import type { SimilarityAwdRequest } from '../jobs/protocol';
import type { SimilarityReport } from '../core/analysis/analyze';
import { parseBytesOption, reportError, runJobWithProgress, type CommandIo } from './merge';

export const SIMILARITY_USAGE = `usage: awd-merge similarity --base BASE MODEL... [options]

Pairwise cosine similarity of the task vectors τ_i = θ_i − θ_0 of the fine-tuned MODELs against BASE.

  --awd                   also disentangle with AWD and report its diagnostics (cos after, δ, coefficients, loss)
  --alpha A               AWD norm weight α (default 0.1)
  --lr B                  AWD learning rate β (default 0.01)
  --iterations N          AWD gradient steps (default 300)
  --granularity G         model | tensor (default model)
  --norm N                l2 | l2_squared (default l2)
  --per-tensor            also the K×K cosines of every tensor
  --include GLOB          tensors to analyse (repeatable; default *)
  --exclude GLOB          tensors to leave out (repeatable)
  --memory-budget BYTES   bytes for the chunk buffers (default 256 MiB)
  --json                  print the report as one JSON object`;

const PROCESS_IO: CommandIo = { stdout: process.stdout, stderr: process.stderr };

function numberOption(value: string | undefined, option: string, check: (n: number) => boolean, expect: string): number {
  const n = Number(value);
  if (value === undefined || value.trim() === '' || !Number.isFinite(n) || !check(n)) {
    throw new AwdError(`similarity: ${option} needs ${expect}, got ${value === undefined ? 'nothing' : `"${value}"`}`, { fix: 'See awd-merge similarity --help' });
  }
  return n;
}

/** Parsed command line. */
interface SimilarityArgs {
  base: string;
  models: string[];
  awd?: SimilarityAwdRequest;
  perTensor: boolean;
  include: string[];
  exclude: string[];
  json: boolean;
  memoryBudgetBytes?: number;
}

function parseArgs(args: readonly string[]): SimilarityArgs | 'help' {
  let base: string | undefined;
  const models: string[] = [];
  const include: string[] = [];
  const exclude: string[] = [];
  let json = false;
  let perTensor = false;
  let useAwd = false;
  let memoryBudgetBytes: number | undefined;
  const awd: SimilarityAwdRequest = { alpha: 0.1, learning_rate: 0.01, iterations: 300, granularity: 'model', norm: 'l2' };
  const awdOptionsGiven: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const value = (): string | undefined => args[++i];
    switch (a) {
      case '--help':
      case '-h':
        return 'help';
      case '--base':
        base = value();
        if (base === undefined) throw new AwdError('similarity: --base needs a path', { fix: 'Give the pre-trained checkpoint after --base' });
        break;
      case '--json':
        json = true;
        break;
      case '--per-tensor':
        perTensor = true;
        break;
      case '--awd':
        useAwd = true;
        break;
      case '--alpha':
        awd.alpha = numberOption(value(), a, (n) => n >= 0, 'a number ≥ 0');
        awdOptionsGiven.push(a);
        break;
      case '--lr':
        awd.learning_rate = numberOption(value(), a, (n) => n > 0, 'a number > 0');
        awdOptionsGiven.push(a);
        break;
      case '--iterations':
        awd.iterations = numberOption(value(), a, (n) => Number.isInteger(n) && n >= 0, 'a whole number ≥ 0');
        awdOptionsGiven.push(a);
        break;
      case '--granularity': {
        const g = value();
        if (g !== 'model' && g !== 'tensor') throw new AwdError(`similarity: --granularity must be model or tensor, got "${g ?? ''}"`);
        awd.granularity = g;
        awdOptionsGiven.push(a);
        break;
      }
      case '--norm': {
        const n = value();
        if (n !== 'l2' && n !== 'l2_squared') throw new AwdError(`similarity: --norm must be l2 or l2_squared, got "${n ?? ''}"`);
        awd.norm = n;
        awdOptionsGiven.push(a);
        break;
      }
      case '--include':
      case '--exclude': {
        const g = value();
        if (g === undefined) throw new AwdError(`similarity: ${a} needs a glob`);
        (a === '--include' ? include : exclude).push(g);
        break;
      }
      case '--memory-budget':
        memoryBudgetBytes = parseBytesOption(value() ?? '', a);
        break;
      default:
        if (a.startsWith('-')) throw new AwdError(`similarity: unknown option ${a}`, { fix: 'See awd-merge similarity --help' });
        models.push(a);
    }
  }
  if (base === undefined) throw new AwdError('similarity: no base model', { fix: 'Usage: awd-merge similarity --base BASE MODEL...' });
  if (models.length < 2) throw new AwdError(`similarity: give at least two fine-tuned models (got ${models.length})`, { fix: 'Usage: awd-merge similarity --base BASE MODEL MODEL...' });
  if (!useAwd && awdOptionsGiven.length > 0) {
    throw new AwdError(`similarity: ${awdOptionsGiven.join(', ')} only apply with --awd`, { fix: 'Add --awd' });
  }
  return {
    base,
    models,
    ...(useAwd ? { awd } : {}),
    perTensor,
    include: include.length ? include : ['*'],
    exclude,
    json,
    ...(memoryBudgetBytes !== undefined ? { memoryBudgetBytes } : {}),
  };
}

/** A K×K matrix as a table with short model labels. */
function matrixTable(m: readonly (readonly number[])[], labels: readonly string[]): string {
  const width = Math.max(8, ...labels.map((l) => l.length));
  const head = `${''.padEnd(width)}  ${labels.map((l) => l.padStart(width)).join(' ')}`;
  const rows = m.map((row, i) => `${labels[i]!.padEnd(width)}  ${row.map((v) => v.toFixed(4).padStart(width)).join(' ')}`);
  return [head, ...rows].join('\n');
}

/** Short distinct labels for the models: the file names, or m1..mK when those collide. */
function modelLabels(models: readonly string[]): string[] {
  const names = models.map((m) => path.basename(m).replace(/\.(safetensors|bin|pt|pth|npz|npy)$/, ''));
  return new Set(names).size === names.length && names.every((n) => n.length <= 16) ? names : models.map((_, i) => `m${i + 1}`);
}

/** The readable form of a report. */
export function formatSimilarityReport(r: SimilarityReport): string {
  const labels = modelLabels(r.models);
  const lines: string[] = [];
  lines.push(`base: ${r.base}`);
  r.models.forEach((m, i) => lines.push(`${labels[i]!.padEnd(8)} ${m}  ‖τ‖ = ${r.task_vector_norms[i]!.toPrecision(4)}`));
  lines.push(`${r.tensor_count} tensors, ${r.elements} parameters compared`);
  lines.push('', 'cosine similarity of the task vectors:', matrixTable(r.cosine, labels), `mean |cos| over pairs: ${r.mean_abs_cos.toFixed(4)}`);
  if (r.awd) {
    const a = r.awd;
    lines.push('', `after AWD (${a.settings.granularity}, α=${a.settings.alpha}, β=${a.settings.learning_rate}, ${a.settings.iterations} iterations, ${a.settings.norm}):`);
    lines.push(matrixTable(a.cos_after, labels));
    lines.push(`mean |cos|: ${a.mean_abs_cos_before.toFixed(4)} → ${a.mean_abs_cos_after.toFixed(4)}`);
    lines.push(`‖δ‖ = ${a.delta_norm.toPrecision(4)} (${(a.delta_norm_relative * 100).toFixed(2)}% of mean ‖τ‖)`);
    lines.push(`‖τ̂_i‖/‖τ_i‖: ${a.norm_ratio.map((x) => (x === null ? '–' : x.toFixed(4))).join(' ')}`);
    if (a.coefficients) lines.push(`coefficients a (δ = Σ a_k τ_k): ${a.coefficients.map((c) => c.toFixed(4)).join(' ')}`);
    if (a.effective_ta_coefficients) lines.push(`effective TA coefficients (w = 1, λ = 1): ${a.effective_ta_coefficients.map((c) => c.toFixed(4)).join(' ')}`);
    const loss = a.loss;
    if (loss.length > 0) lines.push(`loss: ${loss[0]!.toFixed(5)} → ${loss[loss.length - 1]!.toFixed(5)} over ${loss.length - 1} iterations`);
  }
  if (r.per_tensor) {
    lines.push('', 'per tensor (mean |cos| over pairs):');
    const nameWidth = Math.min(60, Math.max(...Object.keys(r.per_tensor).map((n) => n.length)));
    for (const [name, m] of Object.entries(r.per_tensor)) {
      const K = m.length;
      let s = 0;
      for (let i = 0; i < K; i++) for (let j = i + 1; j < K; j++) s += Math.abs(m[i]![j]!);
      const mean = K > 1 ? s / ((K * (K - 1)) / 2) : 0;
      const after = r.awd?.per_tensor[name];
      lines.push(`  ${name.padEnd(nameWidth)}  ${mean.toFixed(4)}${after ? ` → ${after.mean_abs_cos_after.toFixed(4)}` : ''}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

/** `similarity` command; returns the exit code. */
export async function similarityCommand(args: readonly string[], io: CommandIo = PROCESS_IO): Promise<number> {
  try {
    const parsed = parseArgs(args);
    if (parsed === 'help') {
      io.stdout.write(`${SIMILARITY_USAGE}\n`);
      return 0;
    }
    const result = await runJobWithProgress(
      (onProgress, onLog) =>
        startJob(
          {
            kind: 'similarity',
            base: parsed.base,
            models: parsed.models,
            include: parsed.include,
            exclude: parsed.exclude,
            perTensor: parsed.perTensor,
            ...(parsed.awd ? { awd: parsed.awd } : {}),
            ...(parsed.memoryBudgetBytes !== undefined ? { memoryBudgetBytes: parsed.memoryBudgetBytes } : {}),
          },
          { onProgress, onLog },
        ),
      io,
    );
    if (result.kind !== 'similarity') throw new Error('similarity job returned a merge result');
    io.stdout.write(parsed.json ? `${JSON.stringify(result.similarity, null, 2)}\n` : formatSimilarityReport(result.similarity));
    return 0;
  } catch (e) {
    return reportError(e, io);
  }
}
