/**
 * What the checkpoints view says about a checkpoint in one line: parameter count, size, dtype. Computed from the
 * header's tensor list only (no tensor data is read), formatted for people.
 */
import type { DType, TensorInfo } from '../../core/formats/types';

export interface CheckpointSummary {
  tensors: number;
  /** Σ elements over every tensor. */
  parameters: number;
  /** Σ bytes of tensor data in their own dtypes. */
  bytes: number;
  /** Dtypes by descending share of elements (the first is "the" dtype of the model). */
  dtypes: DType[];
}

/** Counts and dtypes of a tensor list. */
export function summarizeTensors(tensors: readonly Pick<TensorInfo, 'dtype' | 'elements' | 'bytes'>[]): CheckpointSummary {
  const elementsByDtype = new Map<DType, number>();
  let parameters = 0;
  let bytes = 0;
  for (const t of tensors) {
    parameters += t.elements;
    bytes += t.bytes;
    elementsByDtype.set(t.dtype, (elementsByDtype.get(t.dtype) ?? 0) + t.elements);
  }
  const dtypes = [...elementsByDtype].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).map(([d]) => d);
  return { tensors: tensors.length, parameters, bytes, dtypes };
}

/** 1234 → "1.2K", 7_000_000 → "7M", 1.5e9 → "1.5B": parameter counts as model cards write them. */
export function formatParameterCount(n: number): string {
  const units: [number, string][] = [
    [1e12, 'T'],
    [1e9, 'B'],
    [1e6, 'M'],
    [1e3, 'K'],
  ];
  for (const [size, suffix] of units) {
    if (n >= size) return `${trimNumber(n / size)}${suffix}`;
  }
  return String(n);
}

/** Bytes in binary units: 512 → "512 B", 1536 → "1.5 KiB", 3·2³⁰ → "3 GiB". */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${n} B` : `${trimNumber(value)} ${units[unit]}`;
}

/** Three significant digits at most, no trailing zeros: 1.50 → "1.5", 12.34 → "12.3", 123.4 → "123". */
function trimNumber(x: number): string {
  const digits = x >= 100 ? 0 : x >= 10 ? 1 : 2;
  return String(Number(x.toFixed(digits)));
}

/** The view's description line, e.g. "7M params · 28 MiB · F32" or "… · BF16 + I64". */
export function describeSummary(s: CheckpointSummary): string {
  const dtype = s.dtypes.length === 0 ? 'empty' : s.dtypes.slice(0, 2).join(' + ') + (s.dtypes.length > 2 ? ' …' : '');
  return `${formatParameterCount(s.parameters)} params · ${formatBytes(s.bytes)} · ${dtype}`;
}
