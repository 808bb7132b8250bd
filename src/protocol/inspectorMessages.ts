/**
 * Messages between the checkpoint inspector's webview and the extension host. Both sides import this module;
 * every message is one of the discriminated unions below, and what arrives from the webview is checked by
 * `parseInspectorRequest` before the host acts on it (a webview is untrusted input like any other).
 */

/** One row of the tensor table: what the header says, nothing read from the data section. */
export interface InspectorTensorRow {
  name: string;
  dtype: string;
  shape: number[];
  elements: number;
  bytes: number;
}

export interface InspectorCheckpoint {
  path: string;
  /** File or folder name for the title. */
  label: string;
  format: string;
  metadata: Record<string, string>;
  tensors: InspectorTensorRow[];
  parameters: number;
  bytes: number;
}

/** The base the "‖Δ base‖" column compares with. */
export interface InspectorBase {
  path: string;
  label: string;
}

/** Statistics of one tensor, computed in the worker over its finite entries (NaN/±Inf are counted, not summed). */
export interface InspectorTensorStats {
  name: string;
  mean: number;
  std: number;
  min: number;
  max: number;
  l2Norm: number;
  nanCount: number;
  infCount: number;
  /** ‖θ − θ_base‖₂ when a base is chosen and holds a tensor of the same shape. */
  diffNorm?: number;
  /** Why there is no diffNorm although a base is chosen (missing tensor, other shape). */
  diffProblem?: string;
}

/** Host → webview. */
export type InspectorUpdate =
  | { type: 'checkpoint'; checkpoint: InspectorCheckpoint; base?: InspectorBase }
  | { type: 'loadError'; message: string }
  | { type: 'base'; base?: InspectorBase }
  | { type: 'stats'; requestId: number; stats: InspectorTensorStats[] }
  | { type: 'statsError'; requestId: number; message: string };

/** Webview → host. */
export type InspectorRequest =
  | { type: 'ready' }
  | { type: 'computeStats'; requestId: number; tensors: string[] }
  | { type: 'chooseBase' };

/** Most tensors one statistics request may name (the webview asks per page, far below this). */
export const MAX_STATS_TENSORS = 1000;

/** The request a webview message stands for, or undefined when it is not a well-formed one. */
export function parseInspectorRequest(data: unknown): InspectorRequest | undefined {
  if (typeof data !== 'object' || data === null) return undefined;
  const m = data as Record<string, unknown>;
  switch (m['type']) {
    case 'ready':
      return { type: 'ready' };
    case 'chooseBase':
      return { type: 'chooseBase' };
    case 'computeStats': {
      const requestId = m['requestId'];
      const tensors = m['tensors'];
      if (typeof requestId !== 'number' || !Number.isSafeInteger(requestId)) return undefined;
      if (!Array.isArray(tensors) || tensors.length === 0 || tensors.length > MAX_STATS_TENSORS) return undefined;
      if (!tensors.every((t): t is string => typeof t === 'string' && t.length > 0)) return undefined;
      return { type: 'computeStats', requestId, tensors: [...tensors] };
    }
    default:
      return undefined;
  }
}
