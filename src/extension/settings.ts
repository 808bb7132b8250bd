/**
 * The extension's settings (package.json `contributes.configuration`, section "awdMerge"), read fresh each time
 * they are needed so a change applies to the next action without a reload. Invalid values fall back to the
 * built-in defaults rather than failing a command.
 */
import * as vscode from 'vscode';
import { AWD_DEFAULTS, type AwdGranularity, type AwdNorm } from '../core/config/schema';
import { BUILT_IN_DEFAULTS, isMergeMethod, type MergeDefaults } from './merge/mergeRequest';

export const SETTINGS_SECTION = 'awdMerge';

export const DEFAULT_SCAN_INCLUDE = ['**/*.safetensors', '**/*.safetensors.index.json', '**/*.bin', '**/*.pt', '**/*.pth', '**/*.npz', '**/config.json'];
export const DEFAULT_SCAN_EXCLUDE = ['**/node_modules/**', '**/.git/**', '**/.vscode-test/**'];

function finiteOr(value: unknown, fallback: number, ok: (n: number) => boolean = () => true): number {
  return typeof value === 'number' && Number.isFinite(value) && ok(value) ? value : fallback;
}

function folderOr(value: unknown, fallback: string): string {
  return typeof value === 'string' && value.trim() !== '' ? value.trim() : fallback;
}

function globsOr(value: unknown, fallback: readonly string[]): string[] {
  return Array.isArray(value) && value.every((g) => typeof g === 'string') ? (value as string[]) : [...fallback];
}

/** Defaults of the merge wizard and of Insert Merge Config. */
export function mergeDefaults(): MergeDefaults {
  const c = vscode.workspace.getConfiguration(SETTINGS_SECTION);
  const method = c.get<unknown>('defaultMethod');
  const granularity = c.get<unknown>('awd.granularity');
  const norm = c.get<unknown>('awd.norm');
  return {
    method: isMergeMethod(method) ? method : BUILT_IN_DEFAULTS.method,
    lambda: finiteOr(c.get('defaultLambda'), BUILT_IN_DEFAULTS.lambda),
    density: finiteOr(c.get('defaultDensity'), BUILT_IN_DEFAULTS.density, (d) => d > 0 && d <= 1),
    awdEnabled: c.get<boolean>('awd.enabled') === true,
    awd: {
      alpha: finiteOr(c.get('awd.alpha'), AWD_DEFAULTS.alpha, (a) => a >= 0),
      learning_rate: finiteOr(c.get('awd.learningRate'), AWD_DEFAULTS.learning_rate, (b) => b > 0),
      iterations: finiteOr(c.get('awd.iterations'), AWD_DEFAULTS.iterations, (n) => Number.isInteger(n) && n >= 0),
      granularity: granularity === 'tensor' || granularity === 'model' ? (granularity as AwdGranularity) : AWD_DEFAULTS.granularity,
      norm: norm === 'l2' || norm === 'l2_squared' ? (norm as AwdNorm) : AWD_DEFAULTS.norm,
    },
    outputFolder: folderOr(c.get('outputFolder'), BUILT_IN_DEFAULTS.outputFolder),
    configFolder: folderOr(c.get('configFolder'), BUILT_IN_DEFAULTS.configFolder),
  };
}

/** Bytes the worker may hold in chunk buffers (setting in MiB). */
export function memoryBudgetBytes(): number {
  const mib = finiteOr(vscode.workspace.getConfiguration(SETTINGS_SECTION).get('memoryBudgetMB'), 512, (m) => m >= 16);
  return Math.floor(mib * 2 ** 20);
}

/** Globs the checkpoints view scans and skips. */
export function scanGlobs(): { include: string[]; exclude: string[] } {
  const c = vscode.workspace.getConfiguration(SETTINGS_SECTION);
  return { include: globsOr(c.get('scan.include'), DEFAULT_SCAN_INCLUDE), exclude: globsOr(c.get('scan.exclude'), DEFAULT_SCAN_EXCLUDE) };
}
