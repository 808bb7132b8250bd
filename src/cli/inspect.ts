/**
 * `awd-merge inspect PATH [--json] [--head N]`: what a checkpoint holds — format, tensors (dtype, shape, bytes),
 * total parameters, metadata — as a table or, with --json, one JSON object
 * `{"path","format","parameters","metadata","tensors":[{"name","dtype","shape","bytes","head"?}]}`.
 */
import { AwdError, isAwdError } from '../core/errors';
import { decodeToFloat32, DTYPE_SIZE } from '../core/formats/dtypes';
import { openCheckpoint } from '../core/formats/open';
import type { Checkpoint, DType } from '../core/formats/types';
import type { CommandIo } from './merge';

export const INSPECT_USAGE = `usage: awd-merge inspect PATH [--json] [--head N]

Lists the tensors of a checkpoint: a safetensors file, a sharded index (*.safetensors.index.json), a PyTorch
torch.save file (.bin/.pt/.pth), a NumPy .npy/.npz file, or a Hugging Face model folder.

  --json     print one JSON object: {"path", "format", "parameters", "metadata", "tensors": [...]}
  --head N   also show the first N values of every tensor (row-major)`;

export interface InspectOptions {
  readonly json: boolean;
  /** Values per tensor to show; undefined: none. */
  readonly head?: number;
}

export interface InspectTensor {
  name: string;
  dtype: DType;
  shape: number[];
  bytes: number;
  head?: (number | null)[];
}

export interface InspectReport {
  path: string;
  format: string;
  parameters: number;
  metadata: Record<string, string>;
  tensors: InspectTensor[];
}

/** Exact values of little-endian elements: integers and F64 as themselves, other floats through float32. */
export function exactValues(dtype: DType, bytes: Uint8Array): number[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = bytes.byteLength / DTYPE_SIZE[dtype];
  const at = (i: number): number => {
    const p = i * DTYPE_SIZE[dtype];
    switch (dtype) {
      case 'F64': return view.getFloat64(p, true);
      case 'I64': return Number(view.getBigInt64(p, true));
      case 'U64': return Number(view.getBigUint64(p, true));
      case 'I32': return view.getInt32(p, true);
      case 'U32': return view.getUint32(p, true);
      case 'I16': return view.getInt16(p, true);
      case 'U16': return view.getUint16(p, true);
      case 'I8': return view.getInt8(p);
      case 'U8': return view.getUint8(p);
      case 'BOOL': return view.getUint8(p) !== 0 ? 1 : 0;
      default: return NaN;
    }
  };
  if (dtype === 'F32' || dtype === 'F16' || dtype === 'BF16' || dtype === 'F8_E4M3' || dtype === 'F8_E5M2') {
    return [...decodeToFloat32(dtype, bytes)];
  }
  return Array.from({ length: n }, (_, i) => at(i));
}

/** Builds the report; with `head`, reads the first `head` elements of each tensor (never more). */
export async function inspectCheckpoint(c: Checkpoint, head?: number): Promise<InspectReport> {
  const tensors: InspectTensor[] = [];
  let parameters = 0;
  for (const t of c.tensors) {
    parameters += t.elements;
    const entry: InspectTensor = { name: t.name, dtype: t.dtype, shape: [...t.shape], bytes: t.bytes };
    if (head !== undefined) {
      const values = exactValues(t.dtype, await c.readBytes(t.name, 0, Math.min(head, t.elements)));
      // JSON has no NaN or Infinity: those become null.
      entry.head = values.map((v) => (Number.isFinite(v) ? v : null));
    }
    tensors.push(entry);
  }
  return { path: c.path, format: c.format, parameters, metadata: { ...c.metadata }, tensors };
}

/** "1.2 GB"-style size. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(v < 10 ? 2 : 1)} ${units[u]}`;
}

/** "7.24B"-style parameter count, with the exact number beside it. */
function formatCount(n: number): string {
  const scaled = n >= 1e9 ? `${(n / 1e9).toFixed(2)}B` : n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}K` : '';
  return scaled ? `${n.toLocaleString('en-US')} (${scaled})` : String(n);
}

function formatValue(v: number | null, dtype: DType): string {
  if (v === null) return 'nan/inf';
  if (dtype.startsWith('I') || dtype.startsWith('U') || dtype === 'BOOL') return String(v);
  return String(Number(v.toPrecision(6)));
}

/** The human-readable table. */
export function formatInspectReport(r: InspectReport): string {
  const lines = [
    `path        ${r.path}`,
    `format      ${r.format}`,
    `tensors     ${r.tensors.length}`,
    `parameters  ${formatCount(r.parameters)}`,
    `size        ${formatBytes(r.tensors.reduce((a, t) => a + t.bytes, 0))}`,
  ];
  const meta = Object.entries(r.metadata);
  if (meta.length) {
    lines.push('metadata');
    for (const [k, v] of meta) {
      const oneLine = v.replace(/\s+/g, ' ');
      lines.push(`  ${k} = ${oneLine.length > 100 ? `${oneLine.slice(0, 97)}…` : oneLine}`);
    }
  }
  lines.push('');
  const rows = r.tensors.map((t) => [t.name, t.dtype, `[${t.shape.join(', ')}]`, formatBytes(t.bytes), t.head ? t.head.map((v) => formatValue(v, t.dtype)).join(' ') : undefined]);
  const headers = ['name', 'dtype', 'shape', 'bytes', ...(r.tensors.some((t) => t.head) ? ['head'] : [])];
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: (string | undefined)[]): string =>
    cells
      .slice(0, headers.length)
      .map((c, i) => (i === headers.length - 1 ? (c ?? '') : (c ?? '').padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  lines.push(line(headers));
  for (const row of rows) lines.push(line(row));
  return `${lines.join('\n')}\n`;
}

function parseArgs(args: readonly string[]): { path: string; options: InspectOptions } | 'help' {
  let json = false;
  let head: number | undefined;
  const positional: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--help' || a === '-h') return 'help';
    if (a === '--json') json = true;
    else if (a === '--head' || a.startsWith('--head=')) {
      const text = a === '--head' ? args[++i] : a.slice('--head='.length);
      if (text === undefined || !/^\d+$/.test(text)) {
        throw new AwdError(`inspect: --head needs a non-negative whole number, got ${text === undefined ? 'nothing' : `"${text}"`}`, {
          fix: 'e.g. awd-merge inspect model.safetensors --head 5',
        });
      }
      head = Number(text);
    } else if (a.startsWith('-') && a !== '-') {
      throw new AwdError(`inspect: unknown option ${a}`, { fix: 'See awd-merge inspect --help' });
    } else positional.push(a);
  }
  if (positional.length !== 1) {
    throw new AwdError(positional.length ? 'inspect: give exactly one path' : 'inspect: no path given', { fix: 'Usage: awd-merge inspect PATH [--json] [--head N]' });
  }
  return { path: positional[0]!, options: { json, ...(head !== undefined ? { head } : {}) } };
}

/** `inspect` command: returns the exit code; user-facing failures print one `error:` line and return 1. */
export async function inspectCommand(args: readonly string[], io: CommandIo): Promise<number> {
  try {
    const parsed = parseArgs(args);
    if (parsed === 'help') {
      io.stdout.write(`${INSPECT_USAGE}\n`);
      return 0;
    }
    const checkpoint = await openCheckpoint(parsed.path);
    try {
      const report = await inspectCheckpoint(checkpoint, parsed.options.head);
      io.stdout.write(parsed.options.json ? `${JSON.stringify(report)}\n` : formatInspectReport(report));
    } finally {
      await checkpoint.close();
    }
    return 0;
  } catch (e) {
    if (!isAwdError(e)) throw e;
    io.stderr.write(`error: ${e.message.replace(/\n/g, ' ')}\n`);
    return 1;
  }
}
