/**
 * The helper thread of the merge passes: the second core reads, and computes, chunks while this thread does too.
 * Chunk buffers live in the WASM kernels' shared memory (kernels/wasm.ts), so both threads read input rows straight
 * into them and run the same kernels on them by pointer.
 *
 * Measured (bench, 1.8 GB of inputs from the page cache, 2 cores): the promise-based reads of 9 inputs per chunk on
 * libuv's pool took 290 CPU-ms for 170 ms of wall clock; readSync of the same bytes ~115 ms of one core. And a
 * kernel is fastest on a chunk that the same core has just read (it is still in that core's caches): task
 * arithmetic's kernel took 112 ms over chunks in cache, 250 ms over chunks another thread had read.
 *
 * Two kinds of pass:
 *  - reads (`startReads`): the thread fills item r's slot (r mod S) once item r − S has been released, and
 *    publishes READY = r + 1; this thread computes. Used where a chunk's computation is not a fixed kernel list.
 *  - programs (`startPrograms`): each item is its reads plus a list of kernel calls (ChunkOp), all pointers into
 *    its slot. Both threads claim items in order (an atomic counter), each running an item whole — read, then
 *    compute, on one core — and the caller consumes them in order. The same interpreter (ITEM_RUNNER) runs on both
 *    threads, so which thread ran an item never changes a bit of its result.
 *
 * Reads come only from what a checkpoint reports as raw float32 or bfloat16 in a file it holds open (rawSource:
 * descriptors are shared by the threads of a process, so the thread reads the very file that was validated;
 * bfloat16 is decoded by a WASM kernel, exactly as formats/dtypes.ts decodes it). A read that fails marks its item
 * failed; the caller then reads it through readFloat32, which gives the usual errors, and runs its program itself. One helper per JS thread (the kernels' memory is per thread), started on
 * first use and unref'd while idle, so that it never keeps a process alive. It executes nothing from a checkpoint.
 */
import { Worker } from 'node:worker_threads';
import { readSync, writeSync } from 'node:fs';
import { wasmKernels } from '../kernels/wasm';

const READY = 0;
const CONSUMED = 1;
const CANCEL = 2;
const NEXT = 3;
/** 1 while the helper sleeps on CONSUMED, 1 while this thread waits on an item's state: only then is a notify due. */
const HELPER_WAITING = 4;
const CALLER_WAITING = 5;
const CONTROL_WORDS = 6;

/** Item states of a program pass. */
const PENDING = 0;
const DONE = 1;
const FAILED = 2;

/** The kernel calls an item may make, by index in the encoded program (the first three are the interpreter's). */
export const CHUNK_FUNCTIONS = [
  'fill0', // (ptr, bytes): zero bytes
  'statsInit', // (ptr): a statisticsLanes state of an empty block (sums 0, min +Inf, max −Inf)
  'countNonFiniteInto', // (row, n, resultPtr): int32 count of NaN/±Inf at resultPtr
  'weightedSumOfDifferences',
  'statisticsLanes',
  'gramOfDifferencesUpper',
  'gramOfDifferencesUpperF64',
  'subtractFromRows',
  'trimBelow',
  'tiesMerge',
  'dareRescale',
  'magnitudeHistogram',
  'addScaled',
  'bracketCount',
  'decodeBf16',
  'encodeBf16',
  'tiesMergeOfDifferences',
  'magnitudeHistogramLocal', // (row, n, bucket, hist, threadStride): magnitudeHistogram64 into hist + thread·threadStride
  'sampleBracket',
  'writeOut', // (ptr, bytes, fd, position, resultPtr): pwrite of the bytes; int32 1 at resultPtr once written, else 0
] as const;

export type ChunkFunction = (typeof CHUNK_FUNCTIONS)[number];

/** One kernel call: its arguments are numbers (pointers are byte offsets into the shared memory). */
export interface ChunkOp {
  fn: ChunkFunction;
  args: readonly number[];
}

/**
 * One read the thread is to do: `bytes` at `position` of descriptor `fd`, float32 values to byte `dest` of the
 * shared memory. bfloat16 (`bf16`) is read into the upper half of the destination and decoded in place.
 */
export interface RawRead {
  fd: number;
  position: number;
  bytes: number;
  dest: number;
  bf16: boolean;
}

/**
 * The interpreter of one item, as source text: the helper evaluates it inside its own code, this thread through
 * `new Function`, so there is exactly one implementation. runItem(k, buffer, tasks, at, doReads, readSync, writeSync,
 * thread) does the reads (when doReads) and then the calls; it returns false, having called nothing, when a read
 * failed. `thread` is 0 here, 1 on the helper: calls into per-thread buffers (magnitudeHistogramLocal) use it.
 * A failed write (writeOut) only leaves 0 at its result: the caller writes those bytes again its own way, which
 * reports the error.
 */
const ITEM_RUNNER = `
const FNS = ${JSON.stringify(CHUNK_FUNCTIONS)};
/** Argument arrays by length, reused from call to call. */
const ARGS = [];
/** One byte view of the pass's memory, kept while the buffer is the same (a view per read cost its GC). */
let VIEW = null;
function bytesOf(buffer) {
  if (VIEW === null || VIEW.buffer !== buffer) VIEW = new Uint8Array(buffer);
  return VIEW;
}
function runItem(k, buffer, tasks, at, doReads, readSync, writeSync, thread) {
  let t = at;
  const reads = tasks[t++];
  if (doReads) {
    for (let i = 0; i < reads; i++) {
      const fd = tasks[t], position = tasks[t + 1], bytes = tasks[t + 2], dest = tasks[t + 3], bf16 = tasks[t + 4];
      t += 5;
      const into = bf16 ? dest + bytes : dest;
      let done = 0;
      try {
        while (done < bytes) {
          const n = Math.min(bytes - done, 1 << 30);
          const got = readSync(fd, bytesOf(buffer), into + done, n, position + done);
          if (got === 0) return false;
          done += got;
        }
      } catch {
        return false;
      }
      if (bf16) k.decodeBf16(into, dest, bytes / 2);
    }
  } else {
    t += 5 * reads;
  }
  const ops = tasks[t++];
  for (let i = 0; i < ops; i++) {
    const fn = FNS[tasks[t++]];
    const argc = tasks[t++];
    const a = ARGS[argc] || (ARGS[argc] = new Array(argc));
    for (let q = 0; q < argc; q++) a[q] = tasks[t + q];
    t += argc;
    if (fn === 'fill0') new Uint8Array(buffer, a[0], a[1]).fill(0);
    else if (fn === 'statsInit') { const s = new Float64Array(buffer, a[0], 19); s.fill(0); s.fill(Infinity, 8, 12); s.fill(-Infinity, 12, 16); }
    else if (fn === 'countNonFiniteInto') new Int32Array(buffer, a[2], 1)[0] = k.countNonFinite(a[0], a[1]);
    else if (fn === 'writeOut') {
      let done = 0;
      try {
        while (done < a[1]) {
          const got = writeSync(a[2], bytesOf(buffer), a[0] + done, a[1] - done, a[3] + done);
          if (!(got > 0)) break;
          done += got;
        }
      } catch {
        // Reported through the result: the caller's own write gives the error.
      }
      new Int32Array(buffer, a[4], 1)[0] = done === a[1] ? 1 : 0;
    }
    else if (fn === 'magnitudeHistogramLocal') k.magnitudeHistogram64(a[0], a[1], a[2], a[3] + thread * a[4]);
    else if (fn === 'dareRescale') k.dareRescale(a[0], a[1], BigInt(a[2]), a[3], a[4], a[5], a[6], a[7], a[8]);
    else k[fn](...a);
  }
  return true;
}
`;

/** The helper's code: plain JS around ITEM_RUNNER, no module of ours loaded, so it starts in tens of milliseconds. */
const SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { readSync, writeSync } = require('node:fs');
${ITEM_RUNNER}
const memory = workerData.memory;
const k = new WebAssembly.Instance(workerData.module, { env: { memory } }).exports;
/** Milliseconds this thread slept waiting for a free slot during the current pass (reported with passDone). */
let waited = 0;
/** Waits until item r's slot is free (items up to r − slots consumed); false when the pass is cancelled. */
function slotFree(ctl, r, slots) {
  for (;;) {
    if (Atomics.load(ctl, ${CANCEL}) !== 0) return false;
    if (r - Atomics.load(ctl, ${CONSUMED}) < slots) return true;
    // Say so before the last look: the caller's release stores CONSUMED, then looks at HELPER_WAITING.
    Atomics.store(ctl, ${HELPER_WAITING}, 1);
    const consumed = Atomics.load(ctl, ${CONSUMED});
    if (r - consumed < slots) {
      Atomics.store(ctl, ${HELPER_WAITING}, 0);
      return true;
    }
    const t0 = performance.now();
    Atomics.wait(ctl, ${CONSUMED}, consumed, 200);
    waited += performance.now() - t0;
    Atomics.store(ctl, ${HELPER_WAITING}, 0);
  }
}
function readsPass(m) {
  const ctl = new Int32Array(m.control);
  const failed = new Uint8Array(m.failed);
  const buffer = memory.buffer;
  const tasks = m.tasks;
  let t = 0;
  const items = tasks[t++];
  for (let r = 0; r < items; r++) {
    if (!slotFree(ctl, r, m.slots)) return;
    const at = t;
    t += 1 + 5 * tasks[t];
    // A reads-only item is an item with no calls: the runner's read loop, then nothing.
    const copy = new Float64Array(t - at + 1);
    copy.set(tasks.subarray(at, t));
    if (!runItem(k, buffer, copy, 0, true, readSync, writeSync, 1)) failed[r] = 1;
    Atomics.store(ctl, ${READY}, r + 1);
    if (Atomics.load(ctl, ${CALLER_WAITING}) !== 0) Atomics.notify(ctl, ${READY});
  }
}
function programPass(m) {
  const ctl = new Int32Array(m.control);
  const state = new Int32Array(m.state);
  const buffer = memory.buffer;
  const items = m.offsets.length;
  for (;;) {
    if (Atomics.load(ctl, ${CANCEL}) !== 0) return;
    const r = Atomics.add(ctl, ${NEXT}, 1);
    if (r >= items) return;
    if (!slotFree(ctl, r, m.slots)) return;
    const ok = runItem(k, buffer, m.tasks, m.offsets[r], true, readSync, writeSync, 1);
    Atomics.store(state, r, ok ? ${DONE} : ${FAILED});
    if (Atomics.load(ctl, ${CALLER_WAITING}) !== 0) Atomics.notify(state, r);
  }
}
parentPort.on('message', (m) => {
  waited = 0;
  if (m.type === 'reads') readsPass(m);
  else programPass(m);
  parentPort.postMessage({ type: 'passDone', id: m.id, waitedMs: waited });
});
`;

/** A reads pass in progress. */
export interface ReaderPass {
  /** Resolves once item r (0-based) is in its slot; true when any of its reads failed (read it another way). */
  ready(r: number): Promise<boolean>;
  /** Item r is no longer used: its slot may be filled again. */
  release(r: number): void;
  /** Stops the thread's work on this pass and resolves when it touches the memory no more. */
  finish(): Promise<void>;
}

/** A program pass in progress. */
export interface ProgramPass {
  /**
   * Resolves once item r has run (on either thread; this thread runs items itself while it waits); false when
   * its reads failed and nothing of it ran: the caller reads its rows another way and calls runHere(r).
   */
  ready(r: number): Promise<boolean>;
  /** Runs item r's calls on this thread without its reads (the rows are in its slot already). */
  runHere(r: number): void;
  release(r: number): void;
  finish(): Promise<void>;
}

/** One item of a program pass: its reads and its calls. */
export interface ChunkProgram {
  reads: readonly RawRead[];
  ops: readonly ChunkOp[];
}

type ItemRunner = (k: unknown, buffer: SharedArrayBuffer, tasks: Float64Array, at: number, doReads: boolean, read: typeof readSync, write: typeof writeSync, thread: 0 | 1) => boolean;

/** ITEM_RUNNER on this thread (our own constant source, the very text the helper runs). */
const runItemHere = new Function(`${ITEM_RUNNER}; return runItem;`)() as ItemRunner;

/** Numbers a list of reads takes in the encoding below. */
function readsLength(reads: readonly RawRead[]): number {
  return 1 + 5 * reads.length;
}

/** Writes reads at `t` of `tasks` as the runner reads them: [reads, (fd, position, bytes, dest, bf16)…]. */
function encodeReads(tasks: Float64Array, t: number, reads: readonly RawRead[]): number {
  tasks[t++] = reads.length;
  for (const r of reads) {
    tasks[t] = r.fd;
    tasks[t + 1] = r.position;
    tasks[t + 2] = r.bytes;
    tasks[t + 3] = r.dest;
    tasks[t + 4] = r.bf16 ? 1 : 0;
    t += 5;
  }
  return t;
}

const FUNCTION_INDEX = new Map<ChunkFunction, number>(CHUNK_FUNCTIONS.map((f, i) => [f, i]));

/**
 * Encodes items as the runner reads them: [reads, (fd, position, bytes, dest, bf16)…, calls, (fn, argc, args…)…],
 * straight into one array (a pass encodes a few hundred thousand numbers before either thread can start).
 */
function encodePrograms(items: readonly ChunkProgram[]): { tasks: Float64Array; offsets: Float64Array } {
  const offsets = new Float64Array(items.length);
  let total = 0;
  for (const item of items) {
    total += readsLength(item.reads) + 1;
    for (const op of item.ops) total += 2 + op.args.length;
  }
  const tasks = new Float64Array(total);
  let t = 0;
  items.forEach((item, r) => {
    offsets[r] = t;
    t = encodeReads(tasks, t, item.reads);
    tasks[t++] = item.ops.length;
    for (const op of item.ops) {
      tasks[t++] = FUNCTION_INDEX.get(op.fn)!;
      tasks[t++] = op.args.length;
      for (const a of op.args) tasks[t++] = a;
    }
  });
  return { tasks, offsets };
}

class HelperThread {
  private readonly worker: Worker;
  private nextId = 1;
  private readonly passes = new Map<number, () => void>();
  /** Set when the thread has exited or failed: every later wait gives up and reports the item as failed. */
  dead = false;

  constructor(
    private readonly memory: WebAssembly.Memory,
    module: WebAssembly.Module,
    private readonly kernels: Readonly<Record<string, unknown>>,
  ) {
    this.worker = new Worker(SOURCE, { eval: true, workerData: { memory, module } });
    this.worker.on('message', (m: { type: string; id: number; waitedMs: number }) => {
      if (m.type === 'passDone') {
        programStats.helperWaitMs += m.waitedMs;
        this.passes.get(m.id)?.();
        this.passes.delete(m.id);
      }
    });
    const die = (): void => {
      this.dead = true;
      for (const resolve of this.passes.values()) resolve();
      this.passes.clear();
    };
    this.worker.on('error', die);
    this.worker.on('exit', die);
    // After the listeners (adding one references the thread again): an idle helper never keeps a process alive.
    this.worker.unref();
  }

  /** Ends the thread (tests: the passes must then finish on this thread alone, with the same results). */
  async stop(): Promise<void> {
    await this.worker.terminate();
    this.dead = true;
  }

  /** Posts a pass; the returned promise resolves when the thread is done with it (or has died). */
  private post(message: Record<string, unknown>, transfer: ArrayBuffer[]): { id: number; done: Promise<void>; end: () => Promise<void> } {
    const id = this.nextId++;
    const done = new Promise<void>((resolve) => {
      if (this.dead) resolve();
      else this.passes.set(id, resolve);
    });
    // This side waits on shared memory (Atomics.waitAsync), which keeps no event loop alive: a timer does, for as
    // long as the pass runs, whatever becomes of the helper.
    const keepAlive = setInterval(() => undefined, 60_000);
    if (!this.dead) this.worker.postMessage({ ...message, id }, transfer);
    let ended = false;
    return {
      id,
      done,
      end: async () => {
        if (ended) return;
        ended = true;
        await done;
        clearInterval(keepAlive);
      },
    };
  }

  /** Starts a reads pass over `items` (each a list of reads) into `slots` rotating slots. */
  startReads(items: readonly (readonly RawRead[])[], slots: number): ReaderPass {
    const ctl = new Int32Array(new SharedArrayBuffer(CONTROL_WORDS * 4));
    const failedBuffer = new SharedArrayBuffer(Math.max(1, items.length));
    const failed = new Uint8Array(failedBuffer);
    let total = 1;
    for (const reads of items) total += readsLength(reads);
    const tasks = new Float64Array(total);
    tasks[0] = items.length;
    let t = 1;
    for (const reads of items) t = encodeReads(tasks, t, reads);
    const pass = this.post({ type: 'reads', control: ctl.buffer, failed: failedBuffer, tasks, slots }, [tasks.buffer]);
    let finished = false;
    return {
      ready: async (r) => {
        for (;;) {
          const have = Atomics.load(ctl, READY);
          if (have > r) return failed[r] !== 0;
          if (this.dead || finished) return true;
          await waitFor(ctl, ctl, READY, have);
        }
      },
      release: (r) => release(ctl, r),
      finish: async () => {
        finished = true;
        await cancel(ctl, pass);
      },
    };
  }

  /** Starts a program pass over `items` into `slots` rotating slots (item r uses slot r mod slots). */
  startPrograms(items: readonly ChunkProgram[], slots: number): ProgramPass {
    const ctl = new Int32Array(new SharedArrayBuffer(CONTROL_WORDS * 4));
    const state = new Int32Array(new SharedArrayBuffer(Math.max(1, items.length) * 4));
    const { tasks, offsets } = encodePrograms(items);
    const pass = this.post({ type: 'programs', control: ctl.buffer, state: state.buffer, tasks, offsets, slots }, []);
    programStats.items += items.length;
    const buffer = this.memory.buffer as unknown as SharedArrayBuffer;
    let finished = false;
    let consumed = 0;
    /** Claims and runs the next item here when its slot is free; false when there is none to take now. */
    const helpOnce = (): boolean => {
      for (;;) {
        const next = Atomics.load(ctl, NEXT);
        if (next >= items.length || next - consumed >= slots) return false;
        if (Atomics.compareExchange(ctl, NEXT, next, next + 1) !== next) continue;
        const ok = runItemHere(this.kernels, buffer, tasks, offsets[next]!, true, readSync, writeSync, 0);
        Atomics.store(state, next, ok ? DONE : FAILED);
        programStats.here++;
        return true;
      }
    };
    return {
      ready: async (r) => {
        for (;;) {
          const s = Atomics.load(state, r);
          if (s !== PENDING) return s === DONE;
          if (finished) return false;
          if (this.dead) {
            // Nobody else will run it: take it here if it was never claimed, else report it failed.
            if (!helpOnce()) return Atomics.load(state, r) === DONE;
            continue;
          }
          if (helpOnce()) continue;
          await waitFor(ctl, state, r, PENDING);
        }
      },
      runHere: (r) => {
        runItemHere(this.kernels, buffer, tasks, offsets[r]!, false, readSync, writeSync, 0);
      },
      release: (r) => {
        consumed = r + 1;
        release(ctl, r);
      },
      finish: async () => {
        finished = true;
        await cancel(ctl, pass);
      },
    };
  }
}

/** Item r is no longer used: the helper may fill its slot again (woken only if it sleeps: a wake costs ~0.1 ms). */
function release(ctl: Int32Array, r: number): void {
  Atomics.store(ctl, CONSUMED, r + 1);
  if (Atomics.load(ctl, HELPER_WAITING) !== 0) Atomics.notify(ctl, CONSUMED);
}

/**
 * Waits (without blocking this thread) while words[index] is `value`, at most 100 ms. CALLER_WAITING is set
 * before the wait looks at the word, so the helper, which stores the word and then looks at the flag, never
 * skips a notify that is needed.
 */
async function waitFor(ctl: Int32Array, words: Int32Array, index: number, value: number): Promise<void> {
  Atomics.store(ctl, CALLER_WAITING, 1);
  const t0 = performance.now();
  try {
    const w = waitAsync(words, index, value, 100);
    if (w.async) await w.value;
  } finally {
    Atomics.store(ctl, CALLER_WAITING, 0);
    programStats.callerWaitMs += performance.now() - t0;
  }
}

/** Stops the helper's work on a pass and waits until it touches the memory no more. */
async function cancel(ctl: Int32Array, pass: { end: () => Promise<void> }): Promise<void> {
  Atomics.store(ctl, CANCEL, 1);
  Atomics.notify(ctl, CONSUMED);
  await pass.end();
}

/** Atomics.waitAsync (ES2024; in Node since 16), typed here because the project's lib is ES2022. */
function waitAsync(ctl: Int32Array, index: number, value: number, timeoutMs: number): { async: false; value: string } | { async: true; value: Promise<string> } {
  return (Atomics as unknown as { waitAsync: typeof waitAsync }).waitAsync(ctl, index, value, timeoutMs);
}

/**
 * Whether the passes may use the helper thread: on unless AWD_MERGE_THREADS=0 (one thread does everything then,
 * with the same results); tests switch it to compare both.
 */
export const helperThreads = { enabled: process.env['AWD_MERGE_THREADS'] !== '0' };

/**
 * Chunk programs run in this thread, how many of them ran here rather than on the helper, and the milliseconds
 * each side slept waiting for the other (the helper for a free slot, this thread for an item): tests, benchmarks.
 */
export const programStats = { items: 0, here: 0, helperWaitMs: 0, callerWaitMs: 0 };

const threads = new WeakMap<WebAssembly.Memory, HelperThread>();

/**
 * Starts this thread's helper now, so that its start (a few tens of milliseconds) overlaps opening the inputs
 * rather than the first pass; called when a merge or an analysis is planned. Does nothing without WASM SIMD.
 */
export function prepareHelperThread(): void {
  const kernels = wasmKernels();
  if (kernels) helperThreadFor(kernels);
}

/** The helper thread of the kernels' memory (created on first use), or undefined when helpers are switched off. */
export function helperThreadFor(kernels: { memory: WebAssembly.Memory; module: WebAssembly.Module; exports: Readonly<Record<string, unknown>> }): HelperThread | undefined {
  if (!helperThreads.enabled) return undefined;
  let t = threads.get(kernels.memory);
  // A helper that has ended (stopped, or crashed) is replaced by a new one for the next pass.
  if (!t || t.dead) {
    try {
      t = new HelperThread(kernels.memory, kernels.module, kernels.exports);
    } catch {
      // No threads here (a host that forbids them): every pass runs on this thread, with the same results.
      return undefined;
    }
    threads.set(kernels.memory, t);
  }
  return t;
}

export type { HelperThread };
