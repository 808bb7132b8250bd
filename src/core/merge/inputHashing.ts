/**
 * SHA-256 of every input file for the reproducibility record, computed on a separate thread while the merge
 * streams: hashing 1.8 GB (about 1.2 s at 1.5 GB/s) takes about as long as the merge itself, so doing it inline
 * would nearly double a run. The thread's source is a short inline script, so it needs no bundle of its own and
 * works from the CLI, the extension and the unit tests alike. With a DigestCache, files unchanged since an earlier
 * run are not hashed again.
 */
import { statSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { sha256File } from '../config/record';
import type { DigestCache } from './digestCache';

/** Below this many bytes in all, hashing on this thread is cheaper than starting a thread (~50–200 ms). */
const THREAD_THRESHOLD_BYTES = 64 << 20;

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

/** Starts hashing `files` (deduplicated): cached digests first, the rest on a separate thread, or inline when small. */
export function hashFilesInBackground(files: readonly string[], cache?: DigestCache, threadThresholdBytes = THREAD_THRESHOLD_BYTES): FileHashing {
  const unique = [...new Set(files)];
  const known: Record<string, string> = {};
  const todo: string[] = [];
  for (const f of unique) {
    const cached = cache?.lookup(f);
    if (cached) known[f] = cached;
    else todo.push(f);
  }
  // stat before hashing: if the file changes while being hashed, its new mtime will not match this entry.
  const stats = Object.fromEntries(todo.map((f) => [f, statSync(f)]));
  const startedAt = Date.now();
  const remember = (computed: Record<string, string>): Record<string, string> => {
    cache?.store(
      Object.fromEntries(Object.entries(computed).map(([f, sha256]) => [f, { sha256, size: stats[f]!.size, mtimeMs: stats[f]!.mtimeMs, ino: stats[f]!.ino }])),
      startedAt,
    );
    return { ...known, ...computed };
  };
  if (todo.length === 0) return { digests: Promise.resolve(known), cancel: async () => undefined };
  if (todo.reduce((s, f) => s + stats[f]!.size, 0) < threadThresholdBytes) {
    const digests = (async () => {
      const out: Record<string, string> = {};
      for (const f of todo) out[f] = await sha256File(f);
      return remember(out);
    })();
    digests.catch(() => undefined);
    return { digests, cancel: async () => undefined };
  }
  const worker = new Worker(HASH_THREAD_SOURCE, { eval: true, workerData: { files: todo } });
  let finished = false;
  const digests = new Promise<Record<string, string>>((resolve, reject) => {
    worker.once('message', (d: Record<string, string>) => {
      finished = true;
      resolve(remember(d));
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
