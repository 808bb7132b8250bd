// Messages between the fuzzing harness (run.ts) and its case runner (child.ts).

/** Run case `index` of `family` under the run's `seed`. */
export interface CaseRequest {
  family: string;
  seed: number;
  index: number;
}

/**
 * data / refused: acceptable ends. crash: an exception other than AwdError (or the process died). accepted: a
 * hostile input that must be refused was read. wrong-reason: refused, but not for the reason it must be.
 * code-ran: a pickle made the canary appear.
 */
export type CaseOutcome = 'data' | 'refused' | 'crash' | 'accepted' | 'wrong-reason' | 'code-ran';

export interface CaseReply {
  outcome: CaseOutcome;
  cpuMs: number;
  /** Peak resident set size of the child so far. */
  rssBytes: number;
  arrayBuffers: number;
  message?: string;
}

/** Mixes the run's seed and the case index into the case's own seed. */
export function caseSeed(seed: number, index: number): number {
  return (Math.imul(seed ^ 0x5bd1e995, 0x9e3779b1) ^ Math.imul(index + 1, 0x85ebca77)) >>> 0;
}
