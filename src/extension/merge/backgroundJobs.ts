/**
 * Merges and analyses in the background: each job runs in the worker thread (src/jobs), one at a time in the order
 * started (a merge reads every input in full; two at once would only fight for the disk), with a cancellable
 * progress notification from the moment it is queued. Logs go to the "AWD Merge" channel. The extension host only
 * relays messages, so it stays responsive while a job runs.
 */
import * as vscode from 'vscode';
import { CancelledError } from '../../core/errors';
import type { JobRequest, JobResult } from '../../jobs/protocol';
import { startJob } from '../../jobs/runner';
import { log } from '../log';
import { describeProgress, overallFraction, ProgressIncrements } from './jobProgressText';

interface QueuedJob {
  title: string;
  cancel(): void;
}

/** Context key: a job is queued or running (shows "Cancel Running Merges"). */
export const CONTEXT_JOB_RUNNING = 'awd.jobRunning';

export class BackgroundJobs implements vscode.Disposable {
  private tail: Promise<unknown> = Promise.resolve();
  private readonly active = new Set<QueuedJob>();

  private setActive(entry: QueuedJob, on: boolean): void {
    if (on) this.active.add(entry);
    else this.active.delete(entry);
    void vscode.commands.executeCommand('setContext', CONTEXT_JOB_RUNNING, this.active.size > 0);
  }

  /** Jobs queued or running. */
  get count(): number {
    return this.active.size;
  }

  /**
   * Queues a job behind the others and shows its progress; resolves with its result, rejects with the job's
   * AwdError / Error, or CancelledError when the user (or `cancelAll`) cancels it, queued or running.
   */
  run(title: string, request: JobRequest): Promise<JobResult> {
    return new Promise<JobResult>((resolve, reject) => {
      void vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title, cancellable: true },
        async (progress, token) => {
          let cancelRunning: (() => void) | undefined;
          let cancelled = false;
          const entry: QueuedJob = {
            title,
            cancel: () => {
              cancelled = true;
              cancelRunning?.();
            },
          };
          this.setActive(entry, true);
          const subscription = token.onCancellationRequested(() => entry.cancel());
          const ahead = this.active.size - 1;
          if (ahead > 0) progress.report({ message: `queued behind ${ahead} job${ahead > 1 ? 's' : ''}` });
          const previous = this.tail;
          const turn = previous.then(
            () => undefined,
            () => undefined,
          );
          const finished = turn.then(async () => {
            if (cancelled) throw new CancelledError();
            const started = Date.now();
            log.info(`${title}: started`);
            const increments = new ProgressIncrements();
            const handle = startJob(request, {
              onProgress: (p) => progress.report({ message: describeProgress(p), increment: increments.next(overallFraction(p)) }),
              onLog: (message) => log.info(`${title}: ${message}`),
            });
            cancelRunning = () => handle.cancel();
            if (cancelled) handle.cancel();
            try {
              const result = await handle.done;
              log.info(`${title}: finished in ${((Date.now() - started) / 1000).toFixed(2)} s`);
              return result;
            } finally {
              cancelRunning = undefined;
            }
          });
          this.tail = finished.catch(() => undefined);
          try {
            resolve(await finished);
          } catch (e) {
            reject(e instanceof Error ? e : new Error(String(e)));
          } finally {
            subscription.dispose();
            this.setActive(entry, false);
          }
        },
      );
    });
  }

  /** Cancels every queued and running job; returns how many there were. */
  cancelAll(): number {
    const n = this.active.size;
    for (const job of [...this.active]) job.cancel();
    return n;
  }

  dispose(): void {
    this.cancelAll();
  }
}
