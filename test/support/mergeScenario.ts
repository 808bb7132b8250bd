// A merge to break on purpose: a model set, a config whose output goes wherever the test says, the inputs'
// SHA-256 to prove they are untouched, the output folder's leftovers, and tmpfs mounts for full / read-only disks.
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeModelSet, type FixtureTensor, type ModelSet } from '../unit/merge/executeFixtures';

export interface MergeScenario extends ModelSet {
  dir: string;
  /** The config file (JSON); its out_path is absolute. */
  configFile: string;
  outPath: string;
}

/**
 * Three models and a base (F32 [rows, 256] plus a BF16 vector) in `dir`, and a config merging them with
 * `method` into `outPath`.
 */
export function mergeScenario(dir: string, outPath: string, opts: { rows?: number; seed?: number; extra?: object } = {}): MergeScenario {
  mkdirSync(dir, { recursive: true });
  const tensors: FixtureTensor[] = [
    { name: 'layers.0.weight', shape: [opts.rows ?? 512, 256], dtype: 'F32' },
    { name: 'layers.0.bias', shape: [256], dtype: 'BF16' },
    { name: 'layers.1.weight', shape: [opts.rows ?? 512, 256], dtype: 'F32' },
  ];
  const set = writeModelSet(dir, { K: 3, tensors, seed: opts.seed ?? 7, shared: 0.1 });
  const configFile = join(dir, 'fault.merge.json');
  writeConfig(configFile, set, outPath, opts.extra);
  return { ...set, dir, configFile, outPath };
}

/** (Re)writes a task-arithmetic + AWD config over `set` into `file`. */
export function writeConfig(file: string, set: ModelSet, outPath: string, extra: object = {}): void {
  writeFileSync(
    file,
    JSON.stringify({
      merge_method: 'task_arithmetic',
      base_model: set.base,
      models: set.models.map((m) => ({ model: m, parameters: { weight: 1 } })),
      parameters: { lambda: 0.5 },
      awd: { iterations: 10 },
      out_path: outPath,
      ...extra,
    }),
  );
}

/** SHA-256 of each file, to compare before and after. */
export function digests(files: readonly string[]): Record<string, string> {
  return Object.fromEntries(files.map((f) => [f, createHash('sha256').update(readFileSync(f)).digest('hex')]));
}

/** Names in `folder` (none when it does not exist). */
export function entriesOf(folder: string): string[] {
  return existsSync(folder) ? readdirSync(folder).sort() : [];
}

/** Names in `folder` that are temporary output files (`*.tmp-*`). */
export function tempFilesIn(folder: string): string[] {
  return entriesOf(folder).filter((n) => n.includes('.tmp-'));
}

/** Mounts a tmpfs of `sizeBytes` at `at` (read-only when asked); returns false when mounting is not permitted. */
export function mountTmpfs(at: string, sizeBytes: number, readOnly = false): boolean {
  mkdirSync(at, { recursive: true });
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeBytes}${readOnly ? ',ro' : ''}`, 'tmpfs', at], { stdio: 'pipe' });
    return true;
  } catch {
    return false;
  }
}

/** Remounts the tmpfs at `at` with new options (e.g. "rw,size=67108864"). */
export function remount(at: string, options: string): void {
  execFileSync('mount', ['-o', `remount,${options}`, at], { stdio: 'pipe' });
}

export function unmount(at: string): void {
  try {
    execFileSync('umount', [at], { stdio: 'pipe' });
  } catch {
    // Already unmounted (or never mounted).
  }
}

/** Whether this process may mount file systems (root in CI; the probe mounts and unmounts a tiny tmpfs). */
export function canMount(scratch: string): boolean {
  const probe = join(scratch, 'mount-probe');
  if (!mountTmpfs(probe, 64 * 1024)) return false;
  unmount(probe);
  return true;
}
