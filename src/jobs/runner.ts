/**
 * The host side of a job: starts the worker thread, forwards progress and log messages, and settles `done` with
 * the result, or rejects it with the AwdError (user-facing), CancelledError or Error (a bug or a crashed worker)
 * the job ended with. A worker that dies without answering becomes an error, never a hang. The extension and the
 * CLI both run their merges and analyses through here.
 */
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { AwdError, AwdErrorList, CancelledError } from '../core/errors';
import type { HostMessage, JobProgress, JobRequest, JobResult, WorkerMessage } from './protocol';

export interface JobCallbacks {
  onProgress?: (progress: JobProgress) => void;
  onLog?: (message: string) => void;
}

export interface JobOptions {
  /** The worker script; default: worker.js beside this bundle, or src/jobs/worker.ts through tsx when run from source. */
  workerPath?: string;
  /** After a cancel, how long to wait for the worker to stop cleanly before terminating it (default 10 s). */
  cancelGraceMs?: number;
}

export interface JobHandle {
  /** The job's result; rejects with AwdError, CancelledError or Error. */
  readonly done: Promise<JobResult>;
  /** Asks the job to stop: it stops between chunks and removes what it wrote; `done` then rejects with CancelledError. */
  cancel(): void;
}

/** Starts a merge or similarity job on a worker thread. */
export function startJob(request: JobRequest, callbacks: JobCallbacks = {}, options: JobOptions = {}): JobHandle {
  const worker = createWorker(options.workerPath);
  let settled = false;
  let cancelTimer: NodeJS.Timeout | undefined;
  let resolveDone!: (r: JobResult) => void;
  let rejectDone!: (e: Error) => void;
  const done = new Promise<JobResult>((resolve, reject) => {
    resolveDone = resolve;
    rejectDone = reject;
  });
  const settle = (outcome: { result: JobResult } | { error: Error }): void => {
    if (settled) return;
    settled = true;
    if (cancelTimer) clearTimeout(cancelTimer);
    if ('result' in outcome) resolveDone(outcome.result);
    else rejectDone(outcome.error);
  };

  worker.on('message', (message: WorkerMessage) => {
    switch (message.type) {
      case 'progress':
        callbacks.onProgress?.(message.progress);
        break;
      case 'log':
        callbacks.onLog?.(message.message);
        break;
      case 'result':
        settle({ result: message.result });
        break;
      case 'cancelled':
        settle({ error: new CancelledError() });
        break;
      case 'error':
        settle({ error: errorFromWorker(message) });
        break;
    }
  });
  worker.on('error', (e) => settle({ error: new Error(`the job's worker thread crashed: ${e.message}`, { cause: e }) }));
  // Deferred a turn so that a final message already in flight is handled first.
  worker.on('exit', (code) =>
    setImmediate(() => settle({ error: new Error(`the job's worker thread stopped without a result (exit code ${code})`) })),
  );
  worker.postMessage({ type: 'start', request } satisfies HostMessage);

  return {
    done,
    cancel: () => {
      if (settled || cancelTimer) return;
      worker.postMessage({ type: 'cancel' } satisfies HostMessage);
      cancelTimer = setTimeout(() => {
        settle({ error: new CancelledError() });
        void worker.terminate();
      }, options.cancelGraceMs ?? 10_000);
    },
  };
}

/** Rebuilds the error a worker reported: an AwdError (or AwdErrorList) for user-facing ones, so callers show it as such. */
function errorFromWorker(message: Extract<WorkerMessage, { type: 'error' }>): Error {
  if (message.userFacing) {
    if (message.problems && message.problems.length > 0) {
      const problems = message.problems.map((p) => AwdError.restore(p));
      const list = new AwdErrorList(problems);
      // Keep the worker's own wording (its summary line names the file).
      Object.defineProperty(list, 'message', { value: message.message });
      return list;
    }
    return new AwdError(message.message);
  }
  const e = new Error(message.message);
  if (message.stack) e.stack = message.stack;
  return e;
}

function createWorker(workerPath: string | undefined): Worker {
  if (workerPath && !workerPath.endsWith('.ts')) return new Worker(workerPath);
  const bundled = path.join(__dirname, 'worker.js');
  if (!workerPath && existsSync(bundled)) return new Worker(bundled);
  // Running from the TypeScript sources (unit tests, `node --import tsx src/cli/main.ts`): load the worker through tsx.
  const source = workerPath ?? path.join(__dirname, 'worker.ts');
  // A variable, not a literal, so that bundlers leave this development-only path alone (the bundles ship worker.js).
  const loaderModule = 'tsx/cjs';
  const tsxLoader = require.resolve(loaderModule);
  return new Worker(`require(${JSON.stringify(tsxLoader)}); require(${JSON.stringify(source)});`, { eval: true });
}
