// Merge benchmark: 8 models + base of N float32 parameters (default 50M: 1.8 GB of inputs, generated once into
// bench/data/), page cache warm. Each case runs in its own child process (so its peak RSS is its own) and is timed
// inside the child around the work itself (not Node/tsx start-up). The I/O floor — read every input once, write
// one output of the model's size — is measured in the same run for comparison.
//
//   npm run bench                    # 50M parameters per model
//   npm run bench -- --params 5e6    # a quick run
//   npm run bench -- --cases ta,ta_awd --repeat 3
//   npm run bench -- --dtype bf16    # bfloat16 checkpoints (0.9 GB of inputs)
//   npm run bench -- --rows          # updates whose scale differs from row to row (see ROWS)
import { spawnSync } from 'node:child_process';
import { Worker } from 'node:worker_threads';
import { existsSync, mkdirSync, openSync, readSync, closeSync, writeSync, rmSync, writeFileSync, statSync, fsyncSync } from 'node:fs';
import { join } from 'node:path';
import { loadMergeConfig } from '../src/core/config/load';
import { planMerge, planSimilarity } from '../src/core/merge/plan';
import { runMerge } from '../src/core/merge/execute';
import { analyzeSimilarity } from '../src/core/analysis/analyze';
import { DigestCache } from '../src/core/merge/digestCache';
import { hashFilesInBackground } from '../src/core/merge/inputHashing';
import { helperThreads, programStats } from '../src/core/merge/helperThread';

const K = 8;
const DATA = join(__dirname, 'data');

interface CaseResult {
  seconds: number;
  /** user + system CPU seconds of the case, all threads of the child process. */
  cpuSeconds: number;
  peakRssBytes: number;
  note?: string;
}

function argValue(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

/** Tensor sizes summing to `params`: a realistic mix of large matrices and small vectors. */
function tensorSizes(params: number): number[] {
  const sizes: number[] = [];
  let left = params;
  const pattern = [4_194_304, 1_048_576, 4096, 2_359_296, 1024, 589_824];
  for (let i = 0; left > 0; i++) {
    const s = Math.min(left, pattern[i % pattern.length]!);
    sizes.push(s);
    left -= s;
  }
  return sizes;
}

/** Writes one safetensors file of float32 tensors, values from `fill(tensorIndex, buffer)`. */
/** float32 → bfloat16 bits, round to nearest even (the values here are finite). */
function toBf16(values: Float32Array): Uint16Array {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  return Uint16Array.from(bits, (b) => ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff);
}

/** The tensors' storage dtype (`--dtype bf16` for bfloat16 checkpoints, the usual form of fine-tuned LLMs). */
const DTYPE = argValue('--dtype') === 'bf16' ? 'BF16' : 'F32';
/**
 * `--rows`: each model's own update scaled per run of 1024 elements (a matrix row) by a lognormal factor (σ = 0.5),
 * as fine-tuning updates differ from row to row; by default every entry is alike. TIES's threshold samples see
 * whole rows, so this is what shows whether their brackets hold on such data.
 */
const ROWS = process.argv.includes('--rows');
const ELEMENT_BYTES = DTYPE === 'BF16' ? 2 : 4;

function writeModel(file: string, sizes: number[], fill: (t: number, out: Float32Array) => void): void {
  const header: Record<string, unknown> = {};
  let offset = 0;
  sizes.forEach((n, t) => {
    header[`layers.${t}.weight`] = { dtype: DTYPE, shape: [n], data_offsets: [offset, offset + n * ELEMENT_BYTES] };
    offset += n * ELEMENT_BYTES;
  });
  const text = Buffer.from(JSON.stringify(header));
  const padded = Buffer.concat([text, Buffer.alloc((8 - (text.length % 8)) % 8, 0x20)]);
  const fd = openSync(file, 'w');
  try {
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(padded.length));
    writeSync(fd, len);
    writeSync(fd, padded);
    for (const [t, n] of sizes.entries()) {
      const values = new Float32Array(n);
      fill(t, values);
      writeSync(fd, DTYPE === 'BF16' ? new Uint8Array(toBf16(values).buffer) : new Uint8Array(values.buffer));
    }
  } finally {
    closeSync(fd);
  }
}

/** xorshift32 from `seed`: each call a roughly normal value (the sum of 4 uniforms, less 2), mean 0, variance 1/3. */
function roughNormals(seed: number): () => number {
  let x = seed | 1;
  return () => {
    let s = 0;
    for (let j = 0; j < 4; j++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      s += (x >>> 0) / 4294967296;
    }
    return s - 2;
  };
}

/** out = add + scale · roughly normal values, fast enough for 450M numbers. */
function noise(seed: number, scale: number, out: Float32Array, add?: Float32Array): void {
  const next = roughNormals(seed);
  for (let e = 0; e < out.length; e++) out[e] = (add ? add[e]! : 0) + scale * next();
}

function generate(params: number): string {
  const dir = join(DATA, `p${params}${DTYPE === 'BF16' ? '-bf16' : ''}${ROWS ? '-rows' : ''}`);
  const done = join(dir, 'complete');
  if (existsSync(done)) return dir;
  mkdirSync(dir, { recursive: true });
  const sizes = tensorSizes(params);
  console.error(`generating ${K} models + base of ${params} ${DTYPE === 'BF16' ? 'bfloat16' : 'float32'} parameters into ${dir} …`);
  writeModel(join(dir, 'base.safetensors'), sizes, (t, out) => noise(1000 + t, 0.5, out));
  for (let k = 0; k < K; k++) {
    writeModel(join(dir, `model${k}.safetensors`), sizes, (t, out) => {
      const base = new Float32Array(out.length);
      noise(1000 + t, 0.5, base);
      const shared = new Float32Array(out.length);
      noise(5000 + t, 0.02, shared, base);
      if (!ROWS) {
        noise(100_000 * (k + 1) + t, 0.05, out, shared);
        return;
      }
      noise(100_000 * (k + 1) + t, 0.05, out);
      const rowNormal = roughNormals(200_000 * (k + 1) + t);
      for (let r = 0; r * 1024 < out.length; r++) {
        // exp(0.5 · z), z roughly standard normal, one per row.
        const scale = Math.exp(0.5 * rowNormal() * Math.sqrt(3));
        for (let e = r * 1024; e < Math.min(out.length, (r + 1) * 1024); e++) out[e] = shared[e]! + scale * out[e]!;
      }
    });
  }
  writeFileSync(done, '');
  return dir;
}

function writeConfig(dir: string, name: string, body: object): string {
  const file = join(dir, `${name}.json`);
  writeFileSync(
    file,
    JSON.stringify({
      base_model: 'base.safetensors',
      models: Array.from({ length: K }, (_, k) => ({ model: `model${k}.safetensors`, parameters: { weight: 1 } })),
      out_path: `out/${name}.safetensors`,
      ...body,
    }),
  );
  return file;
}

const CASES: Record<string, (dir: string) => Promise<string | undefined>> = {
  /** Read every input file once (sequential 8 MiB reads) and write one output file of a model's size. */
  floor: async (dir) => {
    const buffer = Buffer.allocUnsafe(8 << 20);
    let bytes = 0;
    for (const f of ['base', ...Array.from({ length: K }, (_, k) => `model${k}`)]) {
      const fd = openSync(join(dir, `${f}.safetensors`), 'r');
      for (;;) {
        const n = readSync(fd, buffer, 0, buffer.length, null);
        if (n === 0) break;
        bytes += n;
      }
      closeSync(fd);
    }
    const size = statSync(join(dir, 'base.safetensors')).size;
    mkdirSync(join(dir, 'out'), { recursive: true });
    const fd = openSync(join(dir, 'out', 'floor.bin'), 'w');
    for (let written = 0; written < size; written += buffer.length) writeSync(fd, buffer, 0, Math.min(buffer.length, size - written));
    closeSync(fd);
    return `${(bytes / 1e9).toFixed(2)} GB read`;
  },
  /** The floor with the output made durable (fsync), as the merge's writer does before renaming into place. */
  floor_fsync: async (dir) => {
    await CASES['floor']!(dir);
    const fd = openSync(join(dir, 'out', 'floor.bin'), 'r+');
    fsyncSync(fd);
    closeSync(fd);
    return 'floor + fsync of the output';
  },
  /**
   * The least a pass's reads cost on two cores: every input read once by two threads (this one and a worker started
   * before the clock), alternating 512 KiB pieces as the passes' chunks alternate, each into one reused buffer.
   */
  read_2threads: async (dir) => {
    const files = inputFiles(dir);
    const PIECE = 512 << 10;
    const source = `
      const { parentPort, workerData } = require('node:worker_threads');
      const { openSync, readSync, closeSync, fstatSync } = require('node:fs');
      const buffer = new Uint8Array(${PIECE}).fill(1);
      parentPort.postMessage('ready');
      parentPort.once('message', () => {
        for (const f of workerData.files) {
          const fd = openSync(f, 'r');
          const size = fstatSync(fd).size;
          for (let p = ${PIECE}; p < size; p += ${2 * PIECE}) readSync(fd, buffer, 0, Math.min(${PIECE}, size - p), p);
          closeSync(fd);
        }
        parentPort.postMessage('done');
      });`;
    const worker = new Worker(source, { eval: true, workerData: { files } });
    await new Promise((r) => worker.once('message', r));
    restartClock();
    const done = new Promise((r) => worker.once('message', r));
    worker.postMessage('go');
    const buffer = new Uint8Array(PIECE).fill(1);
    for (const f of files) {
      const fd = openSync(f, 'r');
      const size = statSync(f).size;
      for (let p = 0; p < size; p += 2 * PIECE) readSync(fd, buffer, 0, Math.min(PIECE, size - p), p);
      closeSync(fd);
    }
    await done;
    await worker.terminate();
    return 'two threads, 512 KiB pieces into reused buffers';
  },
  read_floor: async (dir) => {
    const buffer = Buffer.allocUnsafe(8 << 20);
    for (const f of ['base', ...Array.from({ length: K }, (_, k) => `model${k}`)]) {
      const fd = openSync(join(dir, `${f}.safetensors`), 'r');
      while (readSync(fd, buffer, 0, buffer.length, null) > 0);
      closeSync(fd);
    }
    return undefined;
  },
  similarity: async (dir) => {
    const plan = await planSimilarity(join(dir, 'base.safetensors'), Array.from({ length: K }, (_, k) => join(dir, `model${k}.safetensors`)));
    try {
      const r = await analyzeSimilarity(plan, { awd: { alpha: 0.1, learning_rate: 0.01, iterations: 300, granularity: 'model', norm: 'l2' } });
      return `mean |cos| ${r.mean_abs_cos.toFixed(4)} → ${r.awd!.mean_abs_cos_after.toFixed(4)}`;
    } finally {
      await plan.close();
    }
  },
  /** SHA-256 of the 9 inputs on the hashing thread, no cache: what a merge would add if it hashed before or after streaming. */
  hash_only: async (dir) => {
    await hashFilesInBackground(inputFiles(dir), undefined, 0).digests;
    return undefined;
  },
  /** Fills the digest cache (not reported). */
  warm_digests: async (dir) => {
    await hashFilesInBackground(inputFiles(dir), new DigestCache(join(dir, 'sha256-cache.json')), 0).digests;
    return undefined;
  },
  /** Task arithmetic hashing every input on the hashing thread while it streams (no digest cache). */
  ta_hashing: (dir) => merge(dir, 'ta_hashing', { merge_method: 'task_arithmetic', parameters: { lambda: 0.5 } }, false),
  ta: (dir) => merge(dir, 'ta', { merge_method: 'task_arithmetic', parameters: { lambda: 0.5 } }),
  ta_awd: (dir) => merge(dir, 'ta_awd', { merge_method: 'task_arithmetic', parameters: { lambda: 0.5 }, awd: {} }),
  ties: (dir) => merge(dir, 'ties', { merge_method: 'ties', parameters: { lambda: 1, density: 0.2 } }),
  ties_model: (dir) => merge(dir, 'ties_model', { merge_method: 'ties', parameters: { lambda: 1, density: 0.2, trim_scope: 'model' } }),
  dare: (dir) => merge(dir, 'dare', { merge_method: 'dare_ties', parameters: { lambda: 1, density: 0.2 } }),
};

// The same cases with the helper thread switched off (every pass on one thread, the same output bytes): what the
// second core buys.
for (const name of ['similarity', 'ta', 'ta_awd', 'ties', 'dare']) {
  const run = CASES[name]!;
  CASES[`${name}_1thread`] = (dir) => {
    helperThreads.enabled = false;
    return run(dir);
  };
}

/** Runs a merge; with the digest cache (as the CLI and the extension run it) the unchanged inputs are not re-hashed. */
async function merge(dir: string, name: string, body: object, digestCache = true): Promise<string> {
  const plan = await planMerge(await loadMergeConfig(writeConfig(dir, name, body)));
  try {
    const r = await runMerge(plan, digestCache ? { digestCache: new DigestCache(join(dir, 'sha256-cache.json')) } : {});
    const waits = `waits: helper ${programStats.helperWaitMs.toFixed(0)} ms, this thread ${programStats.callerWaitMs.toFixed(0)} ms`;
    return `${r.passes} pass(es), ${programStats.items > 0 ? `two threads (${programStats.here} of ${programStats.items} chunk programs on this one; ${waits})` : 'one thread'}`;
  } finally {
    await plan.close();
  }
}

function inputFiles(dir: string): string[] {
  return ['base', ...Array.from({ length: K }, (_, k) => `model${k}`)].map((f) => join(dir, `${f}.safetensors`));
}

/** Where a case's clock started (a case may restart it once its own set-up is done). */
const clock = { t0: 0, cpu0: process.cpuUsage() };
function restartClock(): void {
  clock.t0 = performance.now();
  clock.cpu0 = process.cpuUsage();
}

async function child(caseName: string, dir: string): Promise<void> {
  const run = CASES[caseName];
  if (!run) throw new Error(`unknown case ${caseName}`);
  restartClock();
  const note = await run(dir);
  const seconds = (performance.now() - clock.t0) / 1000;
  const cpu = process.cpuUsage(clock.cpu0);
  const result: CaseResult = { seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6, peakRssBytes: process.resourceUsage().maxRSS * 1024, ...(note ? { note } : {}) };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

function runCase(caseName: string, dir: string): CaseResult {
  const r = spawnSync(process.execPath, ['--import', 'tsx', __filename, '--child', caseName, '--dir', dir], { encoding: 'utf8', maxBuffer: 1 << 24 });
  if (r.status !== 0) throw new Error(`case ${caseName} failed:\n${r.stderr}`);
  const last = r.stdout.trim().split('\n').pop()!;
  return JSON.parse(last) as CaseResult;
}

async function main(): Promise<void> {
  const childCase = argValue('--child');
  if (childCase) return child(childCase, argValue('--dir')!);
  const params = Math.round(Number(argValue('--params') ?? 50e6));
  const repeat = Number(argValue('--repeat') ?? 1);
  const cases = (
    argValue('--cases') ?? 'read_floor,read_2threads,floor,floor_fsync,hash_only,similarity,ta_hashing,ta,ta_awd,ties,ties_model,dare,similarity_1thread,ta_1thread,ta_awd_1thread,ties_1thread,dare_1thread'
  ).split(',');
  const fresh = !existsSync(join(DATA, `p${params}${DTYPE === 'BF16' ? '-bf16' : ''}${ROWS ? '-rows' : ''}`, 'complete'));
  const dir = generate(params);
  // The digest cache trusts only files hashed well after their last write (digestCache.ts).
  if (fresh) await new Promise((r) => setTimeout(r, 2500));
  rmSync(join(dir, 'out'), { recursive: true, force: true });
  // Warm the page cache and the digest cache.
  runCase('warm_digests', dir);
  const results = new Map<string, CaseResult>();
  for (const c of cases) {
    let best: CaseResult | undefined;
    for (let i = 0; i < repeat; i++) {
      const r = runCase(c, dir);
      if (!best || r.seconds < best.seconds) best = r;
    }
    results.set(c, best!);
    console.error(`${c}: ${best!.seconds.toFixed(3)} s wall, ${best!.cpuSeconds.toFixed(3)} s CPU`);
  }
  const floor = results.get('floor')?.seconds;
  const readFloor = results.get('read_floor')?.seconds;
  const ta = results.get('ta')?.seconds;
  const lines = [
    `K = ${K} models + base, ${(params / 1e6).toFixed(1)}M ${DTYPE === "BF16" ? "bfloat16" : "float32"} parameters each${ROWS ? " (updates scaled per row)" : ""} (${((params * ELEMENT_BYTES * (K + 1)) / 1e9).toFixed(2)} GB of inputs), page cache warm, best of ${repeat}`,
    '',
    '| case | wall (s) | CPU (s) | × I/O floor | × read floor | × TA | peak RSS (MB) | notes |',
    '|---|---:|---:|---:|---:|---:|---:|---|',
  ];
  for (const [c, r] of results) {
    const ratio = (d: number | undefined): string => (d ? (r.seconds / d).toFixed(2) : '–');
    lines.push(`| ${c} | ${r.seconds.toFixed(3)} | ${r.cpuSeconds.toFixed(3)} | ${ratio(floor)} | ${ratio(readFloor)} | ${ratio(ta)} | ${(r.peakRssBytes / 1e6).toFixed(0)} | ${r.note ?? ''} |`);
  }
  console.log(lines.join('\n'));
  rmSync(join(dir, 'out'), { recursive: true, force: true });
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
