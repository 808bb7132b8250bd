/**
 * A reader thread for the merge passes: it preads the inputs' float32 chunks with plain synchronous reads straight
 * into the chunk buffers, which live in the WASM kernels' shared memory (kernels/wasm.ts), while this thread
 * computes on the chunk before. Measured (bench, 1.8 GB of inputs from the page cache, 2 cores): the promise-based
 * reads of 9 inputs per chunk on libuv's pool took 290 CPU-ms for 170 ms of wall clock and competed with the
 * compute for both cores; the same bytes by readSync on one thread take ~115 ms of one core.
 *
 * It reads only what a checkpoint reports as raw float32 in a file it holds open (Checkpoint.float32Source: the
 * descriptor is shared by the threads of a process, so the thread reads the very file that was validated); rows
 * that need decoding, and any read that fails, are read here by readFloat32 instead, which gives the usual errors.
 * One thread per JS thread (the kernels' memory is per thread), started on first use and unref'd, so that it
 * never keeps a process alive; nothing from a checkpoint is executed by it — it copies bytes.
 *
 * Protocol, per pass: this side posts the whole list of reads (item by item: descriptor, file offset, bytes,
 * destination offset in the memory) and a control block; the thread fills item r into slot r mod S once item
 * r − S has been released (CONSUMED ≥ r − S + 1), then publishes READY = r + 1. CANCEL stops it; it answers each
 * pass with `passDone` when it will touch the memory no more.
 */
import { Worker } from 'node:worker_threads';

const READY = 0;
const CONSUMED = 1;
const CANCEL = 2;
const CONTROL_WORDS = 4;

/** The thread's code: plain JS, no module of ours loaded, so it starts in a few tens of milliseconds. */
const SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { readSync } = require('node:fs');
const memory = workerData.memory;
const MAX_READ = 1 << 30;
parentPort.on('message', (m) => {
  const ctl = new Int32Array(m.control);
  const failed = new Uint8Array(m.failed);
  const tasks = m.tasks;
  const buffer = memory.buffer;
  let t = 0;
  const items = tasks[t++];
  for (let r = 0; r < items; r++) {
    for (;;) {
      if (Atomics.load(ctl, ${CANCEL}) !== 0) { parentPort.postMessage({ type: 'passDone', id: m.id }); return; }
      const consumed = Atomics.load(ctl, ${CONSUMED});
      if (r - consumed < m.slots) break;
      Atomics.wait(ctl, ${CONSUMED}, consumed, 200);
    }
    const reads = tasks[t++];
    for (let k = 0; k < reads; k++) {
      const fd = tasks[t++], position = tasks[t++], bytes = tasks[t++], dest = tasks[t++];
      if (failed[r] !== 0) continue;
      try {
        let done = 0;
        while (done < bytes) {
          const n = Math.min(bytes - done, MAX_READ);
          const got = readSync(fd, new Uint8Array(buffer, dest + done, n), 0, n, position + done);
          if (got === 0) throw new Error('short read');
          done += got;
        }
      } catch {
        failed[r] = 1;
      }
    }
    Atomics.store(ctl, ${READY}, r + 1);
    Atomics.notify(ctl, ${READY});
  }
  parentPort.postMessage({ type: 'passDone', id: m.id });
});
`;

/** One read the thread is to do: `bytes` at `position` of descriptor `fd` into byte `dest` of the shared memory. */
export interface RawRead {
  fd: number;
  position: number;
  bytes: number;
  dest: number;
}

/** A pass of reads in progress: wait for an item, release it, stop early. */
export interface ReaderPass {
  /** Resolves once item r (0-based) is in its slot; true when any of its reads failed (read it another way). */
  ready(r: number): Promise<boolean>;
  /** Item r is no longer used: its slot may be filled again. */
  release(r: number): void;
  /** Stops the thread's work on this pass and resolves when it touches the memory no more. */
  finish(): Promise<void>;
}

interface Pending {
  resolve: () => void;
}

class ReaderThread {
  private readonly worker: Worker;
  private nextId = 1;
  private readonly passes = new Map<number, Pending>();
  private running = 0;
  /** Set when the thread has exited or failed: every later wait gives up and reports the item as failed. */
  dead = false;

  constructor(memory: WebAssembly.Memory) {
    this.worker = new Worker(SOURCE, { eval: true, workerData: { memory } });
    this.worker.unref();
    this.worker.on('message', (m: { type: string; id: number }) => {
      if (m.type === 'passDone') {
        this.passes.get(m.id)?.resolve();
        this.passes.delete(m.id);
      }
    });
    const die = (): void => {
      this.dead = true;
      for (const p of this.passes.values()) p.resolve();
      this.passes.clear();
    };
    this.worker.on('error', die);
    this.worker.on('exit', die);
  }

  /** Starts a pass over `items` (each a list of reads) into `slots` rotating slots. */
  start(items: readonly (readonly RawRead[])[], slots: number): ReaderPass {
    const id = this.nextId++;
    const control = new SharedArrayBuffer(CONTROL_WORDS * 4);
    const ctl = new Int32Array(control);
    const failedBuffer = new SharedArrayBuffer(Math.max(1, items.length));
    const failed = new Uint8Array(failedBuffer);
    const tasks = new Float64Array(1 + items.reduce((s, reads) => s + 1 + 4 * reads.length, 0));
    let t = 0;
    tasks[t++] = items.length;
    for (const reads of items) {
      tasks[t++] = reads.length;
      for (const r of reads) {
        tasks[t++] = r.fd;
        tasks[t++] = r.position;
        tasks[t++] = r.bytes;
        tasks[t++] = r.dest;
      }
    }
    const done = new Promise<void>((resolve) => {
      if (this.dead) resolve();
      else this.passes.set(id, { resolve });
    });
    // Referenced while a pass runs: this side then waits on shared memory alone, which keeps no event loop alive.
    this.running++;
    this.worker.ref();
    if (!this.dead) this.worker.postMessage({ id, control, failed: failedBuffer, tasks, slots }, [tasks.buffer]);
    let finished = false;
    return {
      ready: async (r) => {
        for (;;) {
          const have = Atomics.load(ctl, READY);
          if (have > r) return failed[r] !== 0;
          if (this.dead || finished) return true;
          const w = waitAsync(ctl, READY, have, 100);
          if (w.async) await w.value;
        }
      },
      release: (r) => {
        Atomics.store(ctl, CONSUMED, r + 1);
        Atomics.notify(ctl, CONSUMED);
      },
      finish: async () => {
        if (finished) return;
        finished = true;
        Atomics.store(ctl, CANCEL, 1);
        Atomics.notify(ctl, CONSUMED);
        await done;
        if (--this.running === 0) this.worker.unref();
      },
    };
  }
}

/** Atomics.waitAsync (ES2024; in Node since 16), typed here because the project's lib is ES2022. */
function waitAsync(ctl: Int32Array, index: number, value: number, timeoutMs: number): { async: false; value: string } | { async: true; value: Promise<string> } {
  return (Atomics as unknown as { waitAsync: typeof waitAsync }).waitAsync(ctl, index, value, timeoutMs);
}

const threads = new WeakMap<WebAssembly.Memory, ReaderThread>();

/** The reader thread of `memory` (created on first use), or undefined when it has died. */
export function readerThreadFor(memory: WebAssembly.Memory): ReaderThread | undefined {
  let t = threads.get(memory);
  if (!t) {
    t = new ReaderThread(memory);
    threads.set(memory, t);
  }
  return t.dead ? undefined : t;
}

export type { ReaderThread };
