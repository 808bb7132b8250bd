/**
 * SHA-256 of every input file for the reproducibility record, computed on a separate thread while the merge
 * streams: hashing 1.8 GB takes about as long as the merge itself, so doing it inline would nearly double a run.
 * The thread's source is a short inline script, so it needs no bundle of its own and works from the CLI, the
 * extension and the unit tests alike.
 */
import { Worker } from 'node:worker_threads';

const HASH_THREAD_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const { openSync, readSync, closeSync } = require('node:fs');
const buffer = Buffer.allocUnsafe(4 << 20);
const digests = {};
for (const file of workerData.files) {
  const fd = openSync(file, 'r');
  try {
    const hash = createHash('sha256');
    for (;;) {
      const n = readSync(fd, buffer, 0, buffer.length, null);
      if (n === 0) break;
      hash.update(buffer.subarray(0, n));
    }
    digests[file] = hash.digest('hex');
  } finally {
    closeSync(fd);
  }
}
parentPort.postMessage(digests);
`;

export interface FileHashing {
  /** file → lowercase hex SHA-256, for every file given. */
  readonly digests: Promise<Record<string, string>>;
  /** Stops the hashing thread (the digests promise then rejects). */
  cancel(): Promise<void>;
}

/** Starts hashing `files` (deduplicated) on a separate thread. */
export function hashFilesInBackground(files: readonly string[]): FileHashing {
  const unique = [...new Set(files)];
  const worker = new Worker(HASH_THREAD_SOURCE, { eval: true, workerData: { files: unique } });
  let finished = false;
  const digests = new Promise<Record<string, string>>((resolve, reject) => {
    worker.once('message', (d: Record<string, string>) => {
      finished = true;
      resolve(d);
    });
    worker.once('error', (e) => {
      finished = true;
      reject(e);
    });
    worker.once('exit', (code) => {
      if (!finished) reject(new Error(`the hashing thread stopped (exit code ${code})`));
    });
  });
  // A cancelled merge never awaits the digests; keep that rejection from surfacing as unhandled.
  digests.catch(() => undefined);
  return {
    digests,
    cancel: async () => {
      if (!finished) await worker.terminate();
    },
  };
}
