/**
 * The merge wizard's answers and everything derived from them without asking: defaults for each step, the file
 * names of the config and the output, the check that the answers make a runnable merge, and the resolved config
 * the wizard writes. No vscode here: the interactive wizard and the tests that pass answers as arguments share it.
 */
import * as path from 'node:path';
import {
  AWD_DEFAULTS,
  MERGE_METHODS,
  methodNeedsBase,
  methodUsesDensity,
  type MergeMethod,
  type ResolvedAwdConfig,
  type ResolvedMergeConfig,
} from '../../core/config/schema';

/** A fully answered wizard: what to merge, how, and where the config and the result go. Paths are absolute. */
export interface MergeRequest {
  base?: string;
  models: string[];
  method: MergeMethod;
  /** λ; ignored by `linear`. */
  lambda: number;
  /** Fraction kept by ties / dare; ignored by the other methods. */
  density: number;
  /** Present ⇒ AWD runs before the method. */
  awd?: ResolvedAwdConfig;
  /** Where the merged .safetensors file goes. */
  outPath: string;
  /** Where the config is written before the merge runs. */
  configPath: string;
}

/** What the wizard may be given up front (the command's argument); every missing answer is asked, or defaulted. */
export interface MergeWizardAnswers {
  base?: string;
  models?: string[];
  method?: MergeMethod;
  lambda?: number;
  density?: number;
  /** `false` = no AWD; an object = AWD with these parameters (missing ones from the settings). */
  awd?: false | Partial<ResolvedAwdConfig>;
  /** Name of the merge: names the config file and the output folder. */
  name?: string;
  outPath?: string;
  configPath?: string;
}

/** The wizard defaults that come from the settings. */
export interface MergeDefaults {
  method: MergeMethod;
  lambda: number;
  density: number;
  /** Whether AWD is pre-selected, and its parameters. */
  awdEnabled: boolean;
  awd: ResolvedAwdConfig;
  /** Workspace-relative folder the merged models go into (one sub-folder per merge). */
  outputFolder: string;
  /** Workspace-relative folder the configs are written into. */
  configFolder: string;
}

export const BUILT_IN_DEFAULTS: MergeDefaults = {
  method: 'task_arithmetic',
  lambda: 0.3,
  density: 0.2,
  awdEnabled: false,
  awd: { ...AWD_DEFAULTS },
  outputFolder: 'merged',
  configFolder: 'merges',
};

export function isMergeMethod(s: unknown): s is MergeMethod {
  return typeof s === 'string' && (MERGE_METHODS as readonly string[]).includes(s);
}

const METHOD_SHORT_NAMES: Readonly<Record<MergeMethod, string>> = {
  task_arithmetic: 'ta',
  ties: 'ties',
  dare_linear: 'dare',
  dare_ties: 'dare-ties',
  linear: 'linear',
};

/** The model's name without folder and weight-file extension: ".../rot90.safetensors" → "rot90", ".../invert/" → "invert". */
export function modelStem(modelPath: string): string {
  const name = path.basename(modelPath.replace(/[\\/]+$/, ''));
  return name.replace(/\.safetensors\.index\.json$|\.bin\.index\.json$|\.(safetensors|bin|pth?|npz)$/i, '');
}

/** A file-name-safe slug: lower case, [a-z0-9-] only, no leading/trailing/double dashes, at most `max` characters. */
export function slug(text: string, max = 60): string {
  const s = text
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
  return s.slice(0, max).replace(/-+$/, '') || 'merge';
}

/** "ta-rot90-invert" or "ties-awd-a-b-c": the method, AWD when on, then the models' names. */
export function suggestMergeName(method: MergeMethod, models: readonly string[], awd: boolean): string {
  return slug([METHOD_SHORT_NAMES[method], ...(awd ? ['awd'] : []), ...models.map(modelStem)].join('-'));
}

/** `name`, else `name-2`, `name-3`, … whichever is first not taken. */
export function uniqueName(name: string, taken: (candidate: string) => boolean): string {
  if (!taken(name)) return name;
  for (let i = 2; ; i++) {
    const candidate = `${name}-${i}`;
    if (!taken(candidate)) return candidate;
  }
}

/** `<root>/<configFolder>/<name>.merge.yaml`. */
export function defaultConfigPath(workspaceRoot: string, defaults: MergeDefaults, name: string): string {
  return path.join(workspaceRoot, defaults.configFolder, `${name}.merge.yaml`);
}

/** `<root>/<outputFolder>/<name>/model.safetensors`: one folder per merge, so shards and the record stay together. */
export function defaultOutPath(workspaceRoot: string, defaults: MergeDefaults, name: string): string {
  return path.join(workspaceRoot, defaults.outputFolder, name, 'model.safetensors');
}

/** Why the answers cannot make a merge, one sentence each with what to do (empty when they can). */
export function requestProblems(r: Pick<MergeRequest, 'base' | 'models' | 'method' | 'lambda' | 'density' | 'awd' | 'outPath'>): string[] {
  const problems: string[] = [];
  if (r.models.length === 0) problems.push('No fine-tuned model is selected: add at least one with "AWD: Add to Merge"');
  if (methodNeedsBase(r.method) && r.base === undefined) {
    problems.push(`${r.method} needs a base model: choose one with "AWD: Set as Base Model"`);
  }
  if (r.base !== undefined && r.models.includes(r.base)) problems.push('The base model is also listed as a fine-tuned model: remove it from the models');
  if (!Number.isFinite(r.lambda)) problems.push('λ must be a number, e.g. 0.3');
  if (methodUsesDensity(r.method) && !(r.density > 0 && r.density <= 1)) {
    problems.push(`density must be in (0, 1], got ${r.density}: it is the fraction of task-vector entries kept`);
  }
  if (r.awd) {
    if (r.method === 'linear') problems.push('AWD disentangles task vectors, which linear does not use: pick another method or turn AWD off');
    else if (r.models.length < 2) problems.push('AWD needs at least two fine-tuned models: add another, or turn AWD off');
  }
  if (!r.outPath.endsWith('.safetensors')) problems.push(`The output must be a .safetensors file, got "${r.outPath}"`);
  return problems;
}

/** Parses a number typed in an input box; undefined unless the whole text is one finite number. */
export function parseNumberInput(text: string): number | undefined {
  const t = text.trim();
  if (t === '' || !/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(t)) return undefined;
  const n = Number(t);
  return Number.isFinite(n) ? n : undefined;
}

/** The config the request stands for, every default filled in and paths absolute (serializeMergeConfig relativises them). */
export function requestToConfig(r: MergeRequest): ResolvedMergeConfig {
  const usesDensity = methodUsesDensity(r.method);
  return {
    merge_method: r.method,
    ...(methodNeedsBase(r.method) && r.base !== undefined ? { base_model: r.base } : {}),
    models: r.models.map((model) => ({ model, parameters: { weight: 1 } })),
    parameters: {
      lambda: r.method === 'linear' ? 1 : r.lambda,
      ...(usesDensity ? { density: r.density } : {}),
      normalize: true,
      trim_scope: 'tensor',
    },
    ...(r.awd && r.method !== 'linear' ? { awd: { ...r.awd } } : {}),
    include: ['*'],
    exclude: [],
    random_seed: 0,
    out_path: r.outPath,
  };
}

/** AWD parameters from a partial answer, the rest from the defaults. */
export function completeAwd(partial: Partial<ResolvedAwdConfig>, defaults: ResolvedAwdConfig): ResolvedAwdConfig {
  return { ...defaults, ...partial };
}
