/** Progress and cancellation of a streaming pass: bytes of input done per phase, checked between chunks. */
import { CancelledError } from '../errors';

export type PassPhase = 'plan' | 'statistics' | 'threshold' | 'output' | 'finish';

export interface PassProgress {
  phase: PassPhase;
  tensor?: string;
  bytesDone: number;
  bytesTotal: number;
}

export type ProgressListener = (p: PassProgress) => void;

/** Reports at most every `intervalMs` (and always at a phase's end) so a fast pass does not flood the host. */
export class ProgressMeter {
  private done = 0;
  private lastReport = 0;

  constructor(
    private readonly phase: PassPhase,
    private readonly total: number,
    private readonly listener: ProgressListener | undefined,
    private readonly intervalMs = 100,
  ) {
    this.emit(undefined);
  }

  add(bytes: number, tensor: string | undefined): void {
    this.done += bytes;
    const now = Date.now();
    if (now - this.lastReport >= this.intervalMs) {
      this.lastReport = now;
      this.emit(tensor);
    }
  }

  end(): void {
    this.done = this.total;
    this.emit(undefined);
  }

  private emit(tensor: string | undefined): void {
    this.listener?.({ phase: this.phase, ...(tensor !== undefined ? { tensor } : {}), bytesDone: this.done, bytesTotal: this.total });
  }
}

/** Throws CancelledError when the job was cancelled; called between chunks so a cancel lands within one chunk's time. */
export function throwIfCancelled(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new CancelledError();
}
