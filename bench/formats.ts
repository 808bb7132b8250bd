/**
 * Format benchmark (`npm run bench:formats`): writes a 1 GiB f32 safetensors file to bench/data/ with our writer,
 * reads it back from the page cache with our reader (GB/s), and times bf16 → f32 (and f16 → f32, f32 → bf16)
 * conversion on one core (M elements/s). Targets: ≥ 1 GB/s read, ≥ 300 M elements/s bf16 decode.
 * Options: --gib N (file size, default 1), --keep (leave the file for the next run).
 */
import { existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { decodeToFloat32, encodeFloat32 } from '../src/core/formats/dtypes';
import { openSafetensors } from '../src/core/formats/safetensors';
import { createSafetensorsWriter } from '../src/core/formats/safetensorsWriter';

const args = process.argv.slice(2);
const gib = Number(args[args.indexOf('--gib') + 1] ?? 1) || 1;
const keep = args.includes('--keep');
const DATA = join(__dirname, 'data');
const FILE = join(DATA, 'bench-f32.safetensors');
const TENSORS = 4;
const ELEMENTS_PER_TENSOR = Math.floor((gib * 2 ** 30) / 4 / TENSORS);
const CHUNK = 1 << 22; // 4 Mi elements = 16 MiB per read/write call

async function bestAsync(runs: number, f: () => Promise<number>): Promise<number> {
  let min = Infinity;
  for (let i = 0; i < runs; i++) min = Math.min(min, await f());
  return min;
}

async function writeFile(): Promise<number> {
  const plan = Array.from({ length: TENSORS }, (_, i) => ({ name: `layer.${i}.weight`, dtype: 'F32' as const, shape: [ELEMENTS_PER_TENSOR] }));
  const chunk = Float32Array.from({ length: CHUNK }, (_, i) => Math.sin(i));
  const t0 = performance.now();
  const w = await createSafetensorsWriter(FILE, plan, { metadata: { bench: 'formats' } });
  for (const t of plan) {
    for (let s = 0; s < ELEMENTS_PER_TENSOR; s += CHUNK) await w.writeFloat32(t.name, chunk.subarray(0, Math.min(CHUNK, ELEMENTS_PER_TENSOR - s)));
  }
  await w.finish();
  return (performance.now() - t0) / 1000;
}

let readCpuSeconds = Infinity;

async function readAll(): Promise<number> {
  const c = await openSafetensors(FILE);
  const c0 = process.cpuUsage();
  const out = new Float32Array(CHUNK);
  let sum = 0;
  const t0 = performance.now();
  for (const t of c.tensors) {
    for (let s = 0; s < t.elements; s += CHUNK) {
      const e = Math.min(t.elements, s + CHUNK);
      const got = await c.readFloat32(t.name, s, e, e - s === CHUNK ? out : undefined);
      sum += got[0]!;
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(c0);
  readCpuSeconds = Math.min(readCpuSeconds, (cpu.user + cpu.system) / 1e6);
  await c.close();
  if (!Number.isFinite(sum)) throw new Error('unexpected values');
  return seconds;
}

/** Best of 5 by wall time and by this process's CPU time (the machine may be shared; CPU time is less disturbed). */
function conversionRate(label: string, n: number, f: () => void): string {
  f(); // warm-up: JIT and lookup tables
  let wall = Infinity;
  let cpu = Infinity;
  for (let i = 0; i < 5; i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    f();
    wall = Math.min(wall, (performance.now() - t0) / 1000);
    const c = process.cpuUsage(c0);
    cpu = Math.min(cpu, (c.user + c.system) / 1e6);
  }
  const rate = (s: number): string => (n / s / 1e6).toFixed(0).padStart(6);
  return `${label.padEnd(20)} ${rate(wall)} M elements/s wall, ${rate(cpu)} M elements/s CPU time`;
}

async function run(): Promise<void> {
  mkdirSync(DATA, { recursive: true });
  const bytes = ELEMENTS_PER_TENSOR * 4 * TENSORS;
  console.log(`formats benchmark (node ${process.version}, ${bytes / 2 ** 30} GiB f32 file, one thread, load average ${loadavg()[0]!.toFixed(1)})`);
  if (!existsSync(FILE) || statSync(FILE).size < bytes) {
    const seconds = await writeFile();
    console.log(`write  ${(bytes / seconds / 1e9).toFixed(2)} GB/s  (writer, f32, 16 MiB chunks, includes fsync)`);
  }
  await readAll(); // make sure the file is in the page cache
  const readSeconds = await bestAsync(3, readAll);
  console.log(
    `read   ${(bytes / readSeconds / 1e9).toFixed(2)} GB/s wall, ${(bytes / readCpuSeconds / 1e9).toFixed(2)} GB/s per CPU second ` +
      '(page cache → Float32Array, 16 MiB reads into one buffer; target ≥ 1)',
  );

  const n = 1 << 24;
  const values = Float32Array.from({ length: n }, (_, i) => Math.cos(i) * 10);
  const bf16 = encodeFloat32('BF16', values);
  const f16 = encodeFloat32('F16', values);
  const out = new Float32Array(n);
  console.log(conversionRate('bf16 → f32 decode', n, () => decodeToFloat32('BF16', bf16, out)));
  console.log(conversionRate('f16 → f32 decode', n, () => decodeToFloat32('F16', f16, out)));
  const target = new Uint8Array(n * 2);
  console.log(conversionRate('f32 → bf16 encode', n, () => encodeFloat32('BF16', values, target)));
  console.log(conversionRate('f32 → f16 encode', n, () => encodeFloat32('F16', values, target)));
  if (!keep) rmSync(FILE, { force: true });
}

void run();
