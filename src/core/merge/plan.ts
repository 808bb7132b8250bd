/**
 * The merge plan: every input opened and checked against the config, and the output tensors decided, before a
 * single byte of tensor data is read. All problems are collected and thrown as one AwdErrorList.
 *
 * Selection rule: a tensor of the reference checkpoint (the base; for `linear` the first model) is merged when it
 * matches an `include` glob and no `exclude` glob and is floating point (F64/F32/F16/BF16/F8_*). A non-float
 * tensor matched only by a wildcard is copied (so the default include ["*"] copies integer buffers such as
 * position ids); one named exactly by an `include` entry is an error, since the user asked for the impossible.
 * An exact include entry that names no tensor is an error (a typo would otherwise silently copy the base); a
 * wildcard entry that matches nothing is a warning. Tensors that only the fine-tuned models have are left out of
 * the output (warning). Output order is the reference's tensor order.
 */
import { prepareHelperThread } from './helperThread';
import { existsSync, realpathSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { AwdError, AwdErrorList } from '../errors';
import type { Checkpoint, DType, TensorInfo } from '../formats/types';
import { openCheckpoint } from '../formats/open';
import type { LoadedConfig } from '../config/load';
import { ConfigProblem, locate, type PositionMap } from '../config/problem';
import { DEFAULT_DENSITY, methodNeedsBase, methodUsesDensity, type OutputDtypeName, type ResolvedMergeConfig } from '../config/schema';
import { recordPathFor } from '../config/record';
import { globMatch, hasWildcard, isSelected } from './glob';

export interface PlannedTensor {
  name: string;
  shape: number[];
  elements: number;
  /** The dtype written: `dtype` of the config, else the source's when F32/F16/BF16/F64, else F32; copies keep theirs. */
  outDtype: DType;
  /** `copy`: taken byte for byte from the base (for `linear`: from the first model). */
  action: 'merge' | 'copy';
  /** The reference checkpoint's dtype of this tensor. */
  sourceDtype: DType;
}

export interface MergePlan {
  config: ResolvedMergeConfig;
  configFile?: string;
  /** Absent for `linear`. */
  base?: Checkpoint;
  models: Checkpoint[];
  weights: number[];
  /** Per model: its own density, else the global one, else 1.0. */
  densities: number[];
  /** Output tensors in output order. */
  tensors: PlannedTensor[];
  outPath: string;
  /** Problems that do not stop the merge: the config's and the plan's. */
  warnings: AwdError[];
  close(): Promise<void>;
}

export interface SimilarityPlan {
  base: Checkpoint;
  models: Checkpoint[];
  /** Every base tensor in base order; action `merge` for the ones analysed. */
  tensors: PlannedTensor[];
  warnings: AwdError[];
  close(): Promise<void>;
}

export interface PlanOptions {
  /** Opens a checkpoint (tests pass a double; default: openCheckpoint of formats/open.ts). */
  open?: (file: string) => Promise<Checkpoint>;
}

const FLOAT_DTYPES: ReadonlySet<DType> = new Set<DType>(['F64', 'F32', 'F16', 'BF16', 'F8_E4M3', 'F8_E5M2']);
const WRITABLE_FLOAT_DTYPES: ReadonlySet<DType> = new Set<DType>(['F64', 'F32', 'F16', 'BF16']);
const CONFIG_DTYPE: Readonly<Record<OutputDtypeName, DType>> = { float32: 'F32', float16: 'F16', bfloat16: 'BF16' };
/** Beyond this many missing/mismatched tensors in one model, the rest are summarised in one line. */
const MAX_TENSOR_PROBLEMS_PER_MODEL = 10;

export function isFloatDtype(dtype: DType): boolean {
  return FLOAT_DTYPES.has(dtype);
}

/** Opens and checks every input of a loaded config; throws one AwdErrorList with every problem found. */
export async function planMerge(loaded: LoadedConfig, options: PlanOptions = {}): Promise<MergePlan> {
  prepareHelperThread();
  const { config } = loaded;
  const problems = new ProblemCollector(loaded.file, loaded.positions);
  for (const w of loaded.warnings) problems.warnings.push(w);
  const needsBase = methodNeedsBase(config.merge_method);

  const inputs: InputSpec[] = [
    ...(needsBase && config.base_model !== undefined ? [{ path: config.base_model, pointer: '/base_model', label: 'base model' }] : []),
    ...config.models.map((m, i) => ({ path: m.model, pointer: `/models/${i}/model`, label: `model ${i + 1}` })),
  ];
  const opened = await openInputs(inputs, problems, options.open ?? openCheckpoint);
  const base = needsBase ? opened[0] : undefined;
  const models = needsBase ? opened.slice(1) : opened;
  const modelSpecs = needsBase ? inputs.slice(1) : inputs;
  const closeAll = async (): Promise<void> => {
    await Promise.allSettled(opened.map((c) => c?.close()));
  };

  const reference = needsBase ? base : models[0];
  let tensors: PlannedTensor[] = [];
  if (reference) {
    tensors = planTensors(
      reference,
      needsBase ? models.map((m, i) => ({ checkpoint: m, spec: modelSpecs[i]! })) : models.slice(1).map((m, i) => ({ checkpoint: m, spec: modelSpecs[i + 1]! })),
      config.include,
      config.exclude,
      config.dtype,
      problems,
      needsBase ? 'the base model' : 'the first model',
    );
  }

  if (base) {
    models.forEach((m, i) => {
      if (m && m.path === base.path) {
        problems.warning(`model ${i + 1} is the base model itself, so its task vector is zero`, { pointer: `/models/${i}/model`, fix: 'Remove it from models unless that is intended' });
      }
    });
  }

  const outPath = config.out_path;
  checkOutputPath(outPath, config.out_shard_size !== undefined, inputs, opened, problems);

  const densities = config.models.map((m) => m.parameters.density ?? config.parameters.density ?? DEFAULT_DENSITY);
  if (methodUsesDensity(config.merge_method)) {
    densities.forEach((d, i) => {
      // The config loader enforces this already; a plan built from a hand-made config object must hold it too.
      if (!(d > 0 && d <= 1)) problems.error(`density must be in (0, 1]; got ${d}`, { pointer: `/models/${i}/parameters/density`, fix: 'Give a density in (0, 1]' });
    });
  }

  if (problems.errors.length > 0) {
    await closeAll();
    throw problems.toError(`${loaded.file}: the merge cannot run`);
  }
  return {
    config,
    configFile: loaded.file,
    ...(base ? { base } : {}),
    models: models as Checkpoint[],
    weights: config.models.map((m) => m.parameters.weight),
    densities,
    tensors,
    outPath,
    warnings: problems.warnings,
    close: closeAll,
  };
}

/** Opens base and models for the similarity analysis with the same checks as a merge (no output, no config). */
export async function planSimilarity(
  basePath: string,
  modelPaths: readonly string[],
  select: { include?: readonly string[]; exclude?: readonly string[] } = {},
  options: PlanOptions = {},
): Promise<SimilarityPlan> {
  prepareHelperThread();
  const problems = new ProblemCollector(undefined, undefined);
  const inputs: InputSpec[] = [
    { path: path.resolve(basePath), pointer: '', label: 'base model' },
    ...modelPaths.map((p, i) => ({ path: path.resolve(p), pointer: '', label: `model ${i + 1}` })),
  ];
  if (modelPaths.length < 1) problems.error('the similarity analysis needs at least one model besides the base', { pointer: '', fix: 'Give the fine-tuned checkpoints after the base' });
  const opened = await openInputs(inputs, problems, options.open ?? openCheckpoint);
  const closeAll = async (): Promise<void> => {
    await Promise.allSettled(opened.map((c) => c?.close()));
  };
  const base = opened[0];
  const models = opened.slice(1);
  const tensors = base
    ? planTensors(
        base,
        models.map((m, i) => ({ checkpoint: m, spec: inputs[i + 1]! })),
        select.include ?? ['*'],
        select.exclude ?? [],
        undefined,
        problems,
        'the base model',
      )
    : [];
  if (problems.errors.length > 0 || !base) {
    await closeAll();
    throw problems.toError('the similarity analysis cannot run');
  }
  return { base, models: models as Checkpoint[], tensors, warnings: problems.warnings, close: closeAll };
}

interface InputSpec {
  path: string;
  /** JSON pointer of the config key naming it ('' outside a config). */
  pointer: string;
  label: string;
}

/** Problems as ConfigProblems located in the config when there is one, else as plain AwdErrors naming the checkpoint. */
class ProblemCollector {
  readonly errors: AwdError[] = [];
  readonly warnings: AwdError[] = [];
  constructor(
    private readonly configFile: string | undefined,
    private readonly positions: PositionMap | undefined,
  ) {}

  error(detail: string, where: { pointer: string; file?: string; tensor?: string; fix?: string }): void {
    this.errors.push(this.make(detail, where, 'error'));
  }

  warning(detail: string, where: { pointer: string; file?: string; tensor?: string; fix?: string }): void {
    this.warnings.push(this.make(detail, where, 'warning'));
  }

  toError(summary: string): AwdErrorList {
    return new AwdErrorList(this.errors, `${summary}: ${this.errors.length} problem${this.errors.length === 1 ? '' : 's'}`);
  }

  private make(detail: string, where: { pointer: string; file?: string; tensor?: string; fix?: string }, severity: 'error' | 'warning'): AwdError {
    if (this.configFile === undefined || where.pointer === '') {
      return new AwdError(detail, { file: where.file ?? this.configFile, tensor: where.tensor, fix: where.fix });
    }
    const inFile = where.file !== undefined ? `${where.file}: ` : '';
    return new ConfigProblem(`${inFile}${detail}`, {
      file: this.configFile,
      pointer: where.pointer,
      tensor: where.tensor,
      fix: where.fix,
      position: locate(this.positions, where.pointer),
      severity,
    });
  }
}

/** Opens every input that exists, concurrently; missing or unreadable ones become problems (undefined slots). */
async function openInputs(
  inputs: readonly InputSpec[],
  problems: ProblemCollector,
  open: (file: string) => Promise<Checkpoint>,
): Promise<(Checkpoint | undefined)[]> {
  const settled = await Promise.allSettled(
    inputs.map(async (input) => {
      if (!existsSync(input.path)) {
        problems.error(`${input.label} not found: ${input.path}`, {
          pointer: input.pointer,
          fix: 'Check the path (relative paths resolve against the config file\'s folder; Hugging Face Hub names are not downloaded: give a local folder)',
        });
        return undefined;
      }
      return open(input.path);
    }),
  );
  return settled.map((s, i) => {
    if (s.status === 'fulfilled') return s.value;
    const input = inputs[i]!;
    const e: unknown = s.reason;
    if (e instanceof AwdErrorList) {
      for (const p of e.problems) problems.error(`${input.label} cannot be read: ${withoutFix(p)}`, { pointer: input.pointer, tensor: p.tensor, fix: p.fix ?? READ_FIX });
    } else if (e instanceof AwdError) {
      problems.error(`${input.label} cannot be read: ${withoutFix(e)}`, { pointer: input.pointer, tensor: e.tensor, fix: e.fix ?? READ_FIX });
    } else {
      problems.error(`${input.label} cannot be read: ${e instanceof Error ? e.message : String(e)}`, {
        pointer: input.pointer,
        file: input.path,
        fix: READ_FIX,
      });
    }
    return undefined;
  });
}

const READ_FIX = 'Check that it is a safetensors, PyTorch or NumPy checkpoint and that it is readable';

/** A reader's message without its trailing fix (the fix is passed on separately, so it is not said twice). */
function withoutFix(e: AwdError): string {
  const tail = e.fix ? `. ${e.fix}` : '';
  return tail && e.message.endsWith(tail) ? e.message.slice(0, -tail.length) : e.message;
}

/** Decides merge/copy per reference tensor and checks every other checkpoint against the merged ones. */
function planTensors(
  reference: Checkpoint,
  others: readonly { checkpoint: Checkpoint | undefined; spec: InputSpec }[],
  include: readonly string[],
  exclude: readonly string[],
  dtype: OutputDtypeName | undefined,
  problems: ProblemCollector,
  referenceLabel: string,
): PlannedTensor[] {
  const exactIncludes = new Set(include.filter((g) => !hasWildcard(g)));
  const tensors: PlannedTensor[] = [];
  for (const t of reference.tensors) {
    const selected = isSelected(t.name, include, exclude);
    const float = isFloatDtype(t.dtype);
    if (selected && !float && exactIncludes.has(t.name)) {
      problems.error(`is ${t.dtype} in ${referenceLabel}, not floating point, and cannot be merged`, {
        pointer: `/include/${include.indexOf(t.name)}`,
        file: reference.path,
        tensor: t.name,
        fix: `Remove "${t.name}" from include: non-float tensors are copied from ${referenceLabel}`,
      });
    }
    const merge = selected && float;
    tensors.push({
      name: t.name,
      shape: [...t.shape],
      elements: t.elements,
      outDtype: merge ? outputDtype(t.dtype, dtype) : t.dtype,
      action: merge ? 'merge' : 'copy',
      sourceDtype: t.dtype,
    });
  }

  include.forEach((g, j) => {
    if (reference.tensors.some((t) => globMatch(g, t.name))) return;
    if (hasWildcard(g)) {
      problems.warning(`include pattern "${g}" matches no tensor of ${referenceLabel}`, { pointer: `/include/${j}`, file: reference.path, fix: 'Check the pattern (`*` matches any characters including dots)' });
    } else {
      problems.error(`include names tensor "${g}", which ${referenceLabel} does not have`, { pointer: `/include/${j}`, file: reference.path, fix: 'Check the tensor name (the Checkpoint Inspector lists them), or use a glob with *' });
    }
  });
  const merged = tensors.filter((t) => t.action === 'merge');
  if (merged.length === 0 && reference.tensors.length > 0) {
    problems.error(`include/exclude select no floating-point tensor of ${referenceLabel}, so there is nothing to merge`, {
      pointer: '/include',
      file: reference.path,
      fix: 'Widen include (default ["*"]) or narrow exclude',
    });
  }

  for (const { checkpoint, spec } of others) {
    if (!checkpoint) continue;
    let reported = 0;
    let unreported = 0;
    const report = (detail: string, tensor: string, fix: string): void => {
      if (reported < MAX_TENSOR_PROBLEMS_PER_MODEL) {
        reported++;
        problems.error(detail, { pointer: spec.pointer, file: checkpoint.path, tensor, fix });
      } else {
        unreported++;
      }
    };
    for (const t of merged) {
      const other: TensorInfo | undefined = checkpoint.tensor(t.name);
      if (!other) {
        report(`${spec.label} has no tensor "${t.name}", which ${referenceLabel} has and the merge selects`, t.name, 'Check that this model was fine-tuned from the base, or exclude the tensor');
      } else if (!sameShape(other.shape, t.shape)) {
        report(`${spec.label} has shape [${other.shape.join(', ')}], ${referenceLabel} [${t.shape.join(', ')}]`, t.name, 'Merge only models of the same architecture, or exclude the tensor');
      } else if (!isFloatDtype(other.dtype)) {
        report(`is ${other.dtype} in ${spec.label}, not floating point, and cannot be merged`, t.name, 'Exclude the tensor');
      }
    }
    if (unreported > 0) {
      problems.error(`… and ${unreported} more tensor problem${unreported === 1 ? '' : 's'} in ${spec.label}`, { pointer: spec.pointer, file: checkpoint.path, fix: 'Check that this model was fine-tuned from the base' });
    }
    const extra = checkpoint.tensors.filter((o) => isSelected(o.name, include, exclude) && !reference.tensor(o.name));
    if (extra.length > 0) {
      const names = extra.slice(0, 5).map((o) => `"${o.name}"`).join(', ');
      problems.warning(
        `${spec.label} has ${extra.length} tensor${extra.length === 1 ? '' : 's'} that ${referenceLabel} lacks (${names}${extra.length > 5 ? ', …' : ''}); they are not in the output`,
        { pointer: spec.pointer, file: checkpoint.path, fix: 'Exclude them to silence this warning' },
      );
    }
  }
  return tensors;
}

/** `dtype` of the config when given, else the source's when it can be written as is, else F32. */
function outputDtype(source: DType, configured: OutputDtypeName | undefined): DType {
  if (configured !== undefined) return CONFIG_DTYPE[configured];
  return WRITABLE_FLOAT_DTYPES.has(source) ? source : 'F32';
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** The output may not overwrite, or live inside, any input; sharded outputs and the record count as outputs too. */
function checkOutputPath(
  outPath: string,
  sharded: boolean,
  inputs: readonly InputSpec[],
  opened: readonly (Checkpoint | undefined)[],
  problems: ProblemCollector,
): void {
  const canonical = (p: string): string => {
    try {
      return realpathSync(p);
    } catch {
      // Not there yet: canonicalise the nearest existing folder so symlinked folders still compare equal.
      const parent = path.dirname(p);
      return parent === p ? p : path.join(canonical(parent), path.basename(p));
    }
  };
  const out = canonical(outPath);
  const outDir = path.dirname(out);
  const stem = path.basename(out).replace(/\.safetensors$/, '');
  const written = new Set([out, canonical(recordPathFor(outPath)), `${out}.index.json`]);
  const isShardName = (file: string): boolean =>
    path.dirname(file) === outDir && new RegExp(`^${escapeRegExp(stem)}-\\d{5}-of-\\d{5}\\.safetensors$`).test(path.basename(file));

  if (existsSync(out) && statSync(out).isDirectory()) {
    problems.error(`out_path is a folder: ${outPath}`, { pointer: '/out_path', fix: 'Name the output file, e.g. merged/model.safetensors' });
  }
  inputs.forEach((input, i) => {
    const inputPath = canonical(input.path);
    const files = [inputPath, ...(opened[i]?.files ?? []).map(canonical)];
    const clash = files.find((f) => written.has(f) || (sharded && isShardName(f)));
    if (clash !== undefined) {
      problems.error(`the output would overwrite ${input.label} (${clash})`, { pointer: '/out_path', fix: 'Choose an out_path outside the inputs, e.g. merged/model.safetensors' });
      return;
    }
    const isFolder = existsSync(inputPath) && statSync(inputPath).isDirectory();
    if (isFolder && (out + path.sep).startsWith(inputPath + path.sep)) {
      problems.error(`out_path lies inside the folder of ${input.label} (${inputPath}), which would change that checkpoint`, { pointer: '/out_path', fix: 'Choose an out_path outside the input folders' });
    }
  });
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
