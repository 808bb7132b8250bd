/**
 * How a job's progress reads in a notification: the phase in words with its percentage, and one overall fraction
 * for the bar (phases get fixed shares of the bar; it never moves backwards). Pure, for unit tests.
 */
import type { JobPhase, JobProgress } from '../../jobs/protocol';

const PHASE_WORDS: Readonly<Record<JobPhase, string>> = {
  plan: 'checking inputs',
  statistics: 'reading task vectors',
  threshold: 'finding trim thresholds',
  output: 'writing the result',
  finish: 'finishing',
};

/** [start, end) share of the bar each phase fills. */
const PHASE_SHARE: Readonly<Record<JobPhase, [number, number]>> = {
  plan: [0, 0.02],
  statistics: [0.02, 0.45],
  threshold: [0.45, 0.55],
  output: [0.55, 0.99],
  finish: [0.99, 1],
};

/** Fraction of the phase done, in [0, 1] (an empty phase counts as done). */
export function phaseFraction(p: JobProgress): number {
  return p.bytesTotal > 0 ? Math.min(1, Math.max(0, p.bytesDone / p.bytesTotal)) : 1;
}

/** Where the bar stands overall, in [0, 1]. */
export function overallFraction(p: JobProgress): number {
  const [start, end] = PHASE_SHARE[p.phase];
  return start + (end - start) * (p.phase === 'plan' ? 0 : phaseFraction(p));
}

/** "writing the result 42% · layer.3.weight". */
export function describeProgress(p: JobProgress): string {
  const percent = p.phase === 'plan' || p.phase === 'finish' ? '' : ` ${Math.floor(phaseFraction(p) * 100)}%`;
  return `${PHASE_WORDS[p.phase]}${percent}${p.tensor ? ` · ${p.tensor}` : ''}`;
}

/** Turns successive fractions into the increments `withProgress` wants, never negative. */
export class ProgressIncrements {
  private reported = 0;
  /** Percent points to add so the bar shows `fraction`; 0 when it would move back. */
  next(fraction: number): number {
    const target = Math.min(100, Math.max(0, fraction * 100));
    const increment = Math.max(0, target - this.reported);
    this.reported += increment;
    return increment;
  }
}
