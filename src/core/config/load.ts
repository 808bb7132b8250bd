/**
 * Reads a merge config (YAML or JSON, or a reproducibility record holding one), validates it against the JSON
 * Schema and the semantic rules of merge-config.md, and fills in every default. All problems of a document are
 * reported together in one AwdErrorList of ConfigProblems, each with its JSON pointer and source line.
 */
import { readFile, stat } from 'node:fs/promises';
import * as path from 'node:path';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, stringify, type Node as YamlNode } from 'yaml';
import { AwdError, AwdErrorList } from '../errors';
import { ConfigProblem, locate, pointerToPath, type PositionMap, type SourcePosition } from './problem';
import {
  AWD_DEFAULTS,
  DEFAULT_DENSITY,
  DEFAULT_LAMBDA,
  DEFAULT_OUT_PATH,
  DEFAULT_WEIGHT,
  IGNORED_MERGEKIT_KEYS,
  mergeConfigValidator,
  methodElectsSign,
  methodNeedsBase,
  methodTrimsByMagnitude,
  methodUsesDensity,
  type MergeMethod,
  type ResolvedMergeConfig,
  type SchemaError,
} from './schema';

export interface LoadedConfig {
  config: ResolvedMergeConfig;
  /** Absolute path of the config file (or of the record the config came from). */
  file: string;
  /** Folder that relative paths were resolved against. */
  dir: string;
  /** Problems that do not stop the merge (ignored keys, parameters the method does not use). */
  warnings: ConfigProblem[];
  /** Where each JSON pointer sits in the source text (absent when the config did not come from text). */
  positions?: PositionMap;
}

/** The `format` value that marks a reproducibility record (see record.ts). */
export const RECORD_FORMAT = 'awd-merge-record';

/** Reads and validates a config file; a reproducibility record is accepted too (its stored config runs). */
export async function loadMergeConfig(file: string): Promise<LoadedConfig> {
  const abs = path.resolve(file);
  let text: string;
  try {
    // A named pipe or device under a config's name would block the read forever (or never end): refuse it first.
    if (!(await stat(abs)).isFile()) throw new AwdError('is not a regular file', { file: abs, fix: 'Point at the merge config file itself' });
    text = await readFile(abs, 'utf8');
  } catch (e) {
    if (e instanceof AwdError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new AwdError(code === 'ENOENT' ? 'merge config not found' : `cannot read the merge config (${code ?? String(e)})`, {
      file: abs,
      fix: code === 'ENOENT' ? 'Check the path, or create one with the "AWD Merge: New Merge Config" command' : 'Check the file permissions',
    });
  }
  return parseMergeConfig(text, abs);
}

/** Parses config text (YAML, or JSON, which the YAML parser reads too, keeping line numbers) located at `file`. */
export function parseMergeConfig(text: string, file: string): LoadedConfig {
  const abs = path.resolve(file);
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false });
  if (doc.errors.length > 0) {
    const problems = doc.errors.map((e) => {
      const start = lineCounter.linePos(e.pos[0]);
      const end = lineCounter.linePos(e.pos[1]);
      const position = { line: start.line, column: start.col, endLine: end.line, endColumn: end.col };
      return new ConfigProblem(`not valid YAML/JSON: ${e.message.split('\n')[0] ?? e.code}`, {
        file: abs,
        pointer: '',
        position,
        fix: 'Fix the syntax at that line',
      });
    });
    throw new AwdErrorList(problems, `${abs}: the merge config cannot be parsed`);
  }
  const positions: Record<string, SourcePosition> = {};
  if (doc.contents) collectPositions(doc.contents as YamlNode, '', positions, lineCounter);
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 1000 });
  } catch (e) {
    // The YAML library refuses alias bombs ("billion laughs") and unresolvable aliases by throwing; that is a
    // problem of the file, not a bug.
    throw new AwdError(`the merge config cannot be read: ${(e as Error).message}`, { file: abs, fix: 'Write the values out instead of using YAML aliases (*name)' });
  }

  if (isPlainObject(raw) && raw['format'] === RECORD_FORMAT) {
    // A reproducibility record: its `config` runs, with paths relative to the record's folder.
    return resolveMergeConfig(raw['config'], abs, path.dirname(abs), subPositions(positions, '/config'));
  }
  return resolveMergeConfig(raw, abs, path.dirname(abs), positions);
}

/**
 * Validates a parsed config object and fills in defaults; relative paths resolve against `dir`.
 * Throws one AwdErrorList with every error; warnings are returned.
 */
export function resolveMergeConfig(raw: unknown, file: string, dir: string, positions?: PositionMap): LoadedConfig {
  const errors: ConfigProblem[] = [];
  const warnings: ConfigProblem[] = [];
  const problem = (detail: string, pointer: string, fix?: string, key = false): ConfigProblem =>
    new ConfigProblem(detail, { file, pointer, fix, position: locate(positions, pointer, key) });
  const warning = (detail: string, pointer: string, fix?: string): ConfigProblem =>
    new ConfigProblem(detail, { file, pointer, fix, position: locate(positions, pointer, true), severity: 'warning' });

  if (!isPlainObject(raw)) {
    const got = raw === null || raw === undefined ? 'an empty document' : describe(raw);
    throw new AwdErrorList(
      [problem(`a merge config must be a mapping of keys (merge_method, base_model, models, …); got ${got}`, '', 'See the example in the AWD Merge documentation')],
      `${file}: the merge config is not valid`,
    );
  }

  const validate = mergeConfigValidator();
  if (!validate(raw)) errors.push(...translateSchemaErrors(validate.errors ?? [], problem));

  for (const [key, why] of Object.entries(IGNORED_MERGEKIT_KEYS)) {
    const pointer = key.startsWith('/') ? key : `/${key}`;
    if (hasPointer(raw, pointer)) warnings.push(warning(`${pointerToPath(pointer)} is ignored: ${why}`, pointer, 'Remove it to silence this warning'));
  }

  // Semantic rules the schema cannot express. Each looks only at values of the right type, so that a document
  // with schema errors still gets every other problem reported in the same run.
  const method = typeof raw['merge_method'] === 'string' && isMergeMethod(raw['merge_method']) ? raw['merge_method'] : undefined;
  const models = Array.isArray(raw['models']) ? raw['models'] : [];
  const params = isPlainObject(raw['parameters']) ? raw['parameters'] : {};
  const awdRaw = raw['awd'];
  const awdPresent = 'awd' in raw && (awdRaw === null || isPlainObject(awdRaw));
  const baseGiven = typeof raw['base_model'] === 'string' && raw['base_model'] !== '';

  if (method !== undefined) {
    if (methodNeedsBase(method) && !('base_model' in raw)) {
      errors.push(
        problem(`missing key "base_model": ${method} works on task vectors θ_i − θ_0 and needs the pre-trained model`, '', 'Add base_model: <path to the checkpoint the models were fine-tuned from>, or use merge_method: linear'),
      );
    }
    if (method === 'linear') {
      if (baseGiven) warnings.push(warning('base_model is ignored by linear (a weighted average of the models)', '/base_model', 'Remove it, or choose task_arithmetic to merge task vectors'));
      if (awdPresent) errors.push(problem('awd needs task vectors, and linear has no base model to take them from', '/awd', 'Use merge_method: task_arithmetic (or ties/dare) with a base_model, or remove the awd block', true));
      if ('lambda' in params) warnings.push(warning('parameters.lambda is ignored by linear', '/parameters/lambda', 'Remove it'));
    }
    if (!methodUsesDensity(method)) {
      if ('density' in params) warnings.push(warning(`parameters.density is ignored by ${method}`, '/parameters/density', 'Remove it, or choose ties, dare_linear or dare_ties'));
      models.forEach((m, i) => {
        if (isPlainObject(m) && isPlainObject(m['parameters']) && 'density' in m['parameters']) {
          warnings.push(warning(`density is ignored by ${method}`, `/models/${i}/parameters/density`, 'Remove it, or choose ties, dare_linear or dare_ties'));
        }
      });
    }
    if (!methodElectsSign(method) && 'normalize' in params) {
      warnings.push(warning(`parameters.normalize is ignored by ${method}`, '/parameters/normalize', 'It applies to ties and dare_ties only'));
    }
    if (!methodTrimsByMagnitude(method) && 'trim_scope' in params) {
      warnings.push(warning(`parameters.trim_scope is ignored by ${method}`, '/parameters/trim_scope', 'It applies to ties only (DARE drops entries at random)'));
    }
    if (method !== 'dare_linear' && method !== 'dare_ties' && 'random_seed' in raw) {
      warnings.push(warning(`random_seed is ignored by ${method}`, '/random_seed', 'It seeds the DARE masks only'));
    }
    const weights = models.map((m) => (isPlainObject(m) && isPlainObject(m['parameters']) ? m['parameters']['weight'] : undefined));
    if (models.length > 0 && weights.every((w) => w === undefined || typeof w === 'number')) {
      const sum = weights.reduce<number>((s, w) => s + ((w as number | undefined) ?? DEFAULT_WEIGHT), 0);
      const normalize = typeof params['normalize'] === 'boolean' ? params['normalize'] : true;
      const divides = method === 'linear' || (methodElectsSign(method) && normalize);
      if (divides && sum === 0) {
        errors.push(
          problem(
            `the model weights sum to zero, and ${method === 'linear' ? 'linear' : `${method} with normalize: true`} divides by their sum`,
            '/models',
            method === 'linear' ? 'Give weights with a non-zero sum' : 'Give weights with a non-zero sum, or set parameters.normalize: false',
            true,
          ),
        );
      }
    }
  }
  if (awdPresent && models.length === 1) {
    errors.push(problem('awd needs at least two models (it makes their task vectors orthogonal); got 1', '/awd', 'Add another model, or remove the awd block', true));
  }
  if ('out_shard_size' in raw) {
    const size = raw['out_shard_size'];
    if (typeof size === 'string' && /^\s*[0-9]+(\.[0-9]+)?\s*([kKmMgGtT]i?[bB]|[bB])?\s*$/.test(size) && parseByteSize(size) < 1) {
      errors.push(problem(`out_shard_size must be at least 1 byte; got "${size}"`, '/out_shard_size', 'Give a size such as 5GB or 500MB'));
    }
  }

  if (errors.length > 0) {
    errors.sort(byPosition);
    throw new AwdErrorList(errors, `${file}: ${errors.length} problem${errors.length === 1 ? '' : 's'} in the merge config`);
  }
  warnings.sort(byPosition);
  return { config: fillDefaults(raw, dir), file, dir, warnings, positions };
}

/** Source order; problems without a line last, in the order found. */
function byPosition(a: ConfigProblem, b: ConfigProblem): number {
  return (a.line ?? Infinity) - (b.line ?? Infinity) || (a.column ?? 0) - (b.column ?? 0);
}

/** Every default of merge-config.md filled in, paths made absolute. Assumes `raw` passed validation. */
function fillDefaults(raw: Record<string, unknown>, dir: string): ResolvedMergeConfig {
  const r = raw as unknown as RawMergeConfig;
  const method = r.merge_method;
  const abs = (p: string): string => path.resolve(dir, p);
  const config: ResolvedMergeConfig = {
    merge_method: method,
    ...(r.base_model !== undefined ? { base_model: abs(r.base_model) } : {}),
    models: r.models.map((m) => ({
      model: abs(m.model),
      parameters: {
        weight: m.parameters?.weight ?? DEFAULT_WEIGHT,
        ...(m.parameters?.density !== undefined ? { density: m.parameters.density } : {}),
      },
    })),
    parameters: {
      lambda: r.parameters?.lambda ?? DEFAULT_LAMBDA,
      ...(r.parameters?.density !== undefined
        ? { density: r.parameters.density }
        : methodUsesDensity(method)
          ? { density: DEFAULT_DENSITY }
          : {}),
      normalize: r.parameters?.normalize ?? true,
      trim_scope: r.parameters?.trim_scope ?? 'tensor',
    },
    include: r.include ?? ['*'],
    exclude: r.exclude ?? [],
    random_seed: r.random_seed ?? 0,
    out_path: abs(r.out_path ?? DEFAULT_OUT_PATH),
  };
  if ('awd' in r) config.awd = { ...AWD_DEFAULTS, ...(r.awd ?? {}) };
  if (r.dtype !== undefined) config.dtype = r.dtype;
  if (r.out_shard_size !== undefined) config.out_shard_size = parseByteSize(r.out_shard_size);
  if (r.allow_nonfinite === true) config.allow_nonfinite = true;
  return config;
}

/** The shape of a config that passed the schema (optional keys absent when not given). */
interface RawMergeConfig {
  merge_method: MergeMethod;
  base_model?: string;
  models: { model: string; parameters?: { weight?: number; density?: number } }[];
  parameters?: { lambda?: number; density?: number; normalize?: boolean; trim_scope?: 'tensor' | 'model' };
  awd?: Partial<ResolvedMergeConfig['awd']> | null;
  include?: string[];
  exclude?: string[];
  dtype?: ResolvedMergeConfig['dtype'];
  random_seed?: number;
  allow_nonfinite?: boolean;
  out_path?: string;
  out_shard_size?: string | number;
}

const SIZE_UNITS: Readonly<Record<string, number>> = {
  '': 1,
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40,
};

/** "5GB" → 5e9, "500MiB" → 500·2²⁰, 1234 → 1234 (units as in Hugging Face: GB = 10⁹, GiB = 2³⁰). */
export function parseByteSize(size: string | number): number {
  if (typeof size === 'number') return size;
  const m = /^\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*$/.exec(size);
  const unit = m ? SIZE_UNITS[(m[2] ?? '').toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new AwdError(`not a size: "${size}"`, { fix: 'Give a number of bytes or a size such as 5GB or 500MB' });
  return Math.floor(Number(m[1]) * unit);
}

/**
 * Writes a resolved config back out, paths relative to `relativeTo` (the folder the file will live in), every
 * default spelled out, so that loading the written file gives back an equal config.
 */
export function serializeMergeConfig(config: ResolvedMergeConfig, format: 'yaml' | 'json', relativeTo: string): string {
  const obj = configToPlainObject(config, relativeTo);
  if (format === 'json') return `${JSON.stringify(obj, null, 2)}\n`;
  return stringify(obj, { lineWidth: 0 });
}

/** The resolved config as a plain object in the documented key order, paths relative to `relativeTo`. */
export function configToPlainObject(config: ResolvedMergeConfig, relativeTo: string): Record<string, unknown> {
  const rel = (p: string): string => relativePath(relativeTo, p);
  const obj: Record<string, unknown> = { merge_method: config.merge_method };
  if (config.base_model !== undefined) obj['base_model'] = rel(config.base_model);
  obj['models'] = config.models.map((m) => ({
    model: rel(m.model),
    parameters: { weight: m.parameters.weight, ...(m.parameters.density !== undefined ? { density: m.parameters.density } : {}) },
  }));
  const p = config.parameters;
  obj['parameters'] = {
    lambda: p.lambda,
    ...(p.density !== undefined ? { density: p.density } : {}),
    normalize: p.normalize,
    trim_scope: p.trim_scope,
  };
  if (config.awd) obj['awd'] = { ...config.awd };
  obj['include'] = [...config.include];
  obj['exclude'] = [...config.exclude];
  if (config.dtype !== undefined) obj['dtype'] = config.dtype;
  obj['random_seed'] = config.random_seed;
  if (config.allow_nonfinite) obj['allow_nonfinite'] = true;
  obj['out_path'] = rel(config.out_path);
  if (config.out_shard_size !== undefined) obj['out_shard_size'] = config.out_shard_size;
  return obj;
}

/** A path relative to `from`, with forward slashes so that the file reads the same on every OS. */
function relativePath(from: string, to: string): string {
  const rel = path.relative(from, to);
  if (rel === '') return '.';
  // Different Windows drives: no relative form exists.
  if (path.isAbsolute(rel)) return to;
  return rel.split(path.sep).join('/');
}

function translateSchemaErrors(
  errs: readonly SchemaError[],
  problem: (detail: string, pointer: string, fix?: string, key?: boolean) => ConfigProblem,
): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  const seen = new Set<string>();
  for (const e of errs) {
    const translated = translateSchemaError(e, problem);
    const id = `${translated.pointer}|${translated.detail}`;
    if (!seen.has(id)) {
      seen.add(id);
      out.push(translated);
    }
  }
  return out;
}

const MISSING_KEY_FIX: Readonly<Record<string, string>> = {
  merge_method: 'Add merge_method: task_arithmetic (or ties, dare_linear, dare_ties, linear)',
  models: 'Add models: with one "- model: <path>" entry per fine-tuned checkpoint',
  model: 'Give the checkpoint path as model: <path>',
};

const UNKNOWN_KEY_FIX: Readonly<Record<string, string>> = {
  slices: 'slices are not supported: merge whole models and choose tensors with include/exclude',
  out_dtype: 'Use dtype (the output dtype) instead',
  weight: 'weight is a per-model parameter: put it under models[i].parameters',
  base_model_path: 'Use base_model',
};

function translateSchemaError(
  e: SchemaError,
  problem: (detail: string, pointer: string, fix?: string, key?: boolean) => ConfigProblem,
): ConfigProblem {
  const pointer = e.instancePath;
  const name = keyName(pointer);
  const parent = (e.parentSchema ?? {}) as Record<string, unknown>;
  switch (e.keyword) {
    case 'additionalProperties': {
      const key = String((e.params as { additionalProperty: string }).additionalProperty);
      const known = Object.keys((parent['properties'] ?? {}) as object);
      const near = closest(key, known);
      const fix = UNKNOWN_KEY_FIX[key] ?? (near ? `Did you mean "${near}"?` : `Known keys here: ${known.join(', ')}`);
      return problem(`unknown key "${key}"`, `${pointer}/${escapePointer(key)}`, fix, true);
    }
    case 'required': {
      const key = String((e.params as { missingProperty: string }).missingProperty);
      return problem(`missing key "${key}"${pointer === '' ? '' : ` in ${name}`}`, pointer, MISSING_KEY_FIX[key] ?? `Add ${key}`);
    }
    case 'type': {
      const want = ([] as string[]).concat(parent['type'] as string | string[]).map(typeName).join(' or ');
      return problem(`${name} must be ${want}; got ${describe(e.data)}`, pointer, `Give ${name} as ${want}`);
    }
    case 'enum': {
      const allowed = (parent['enum'] as unknown[]).map(String);
      const near = typeof e.data === 'string' ? (DTYPE_ALIASES[e.data.toLowerCase()] ?? closest(e.data, allowed)) : undefined;
      return problem(`${name} must be one of ${allowed.join(', ')}; got ${describe(e.data)}`, pointer, near ? `Did you mean "${near}"?` : `Use one of ${allowed.join(', ')}`);
    }
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum': {
      const range = describeRange(parent);
      return problem(`${name} must be ${range}; got ${describe(e.data)}`, pointer, `Give a value ${range}`);
    }
    case 'pattern':
      if (pointer === '/out_path') return problem(`out_path must end in .safetensors; got ${describe(e.data)}`, pointer, 'Name the output file like merged/model.safetensors');
      if (pointer === '/out_shard_size') {
        return problem(`out_shard_size must be a number of bytes or a size such as "5GB" or "500MB"; got ${describe(e.data)}`, pointer, 'Units: B, KB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024)');
      }
      return problem(`${name} does not have the expected form; got ${describe(e.data)}`, pointer);
    case 'minItems':
      return problem(`${name} must list at least ${String((e.params as { limit: number }).limit)} entr${(e.params as { limit: number }).limit === 1 ? 'y' : 'ies'}`, pointer, pointer === '/models' ? MISSING_KEY_FIX['models'] : undefined);
    case 'minLength':
      return problem(`${name} must not be empty`, pointer, `Give ${name} a value`);
    default:
      return problem(`${name} ${e.message ?? 'is not valid'}`, pointer);
  }
}

/** mergekit/torch spellings of the output dtypes, suggested as fixes. */
const DTYPE_ALIASES: Readonly<Record<string, string>> = {
  fp16: 'float16',
  half: 'float16',
  bf16: 'bfloat16',
  fp32: 'float32',
  float: 'float32',
};

/** The key a pointer ends in, as the user wrote it: '/models/1/parameters/density' → 'density', '/models/1' → 'models[1]'. */
function keyName(pointer: string): string {
  if (pointer === '') return 'the config';
  const segs = pointer.split('/').slice(1);
  const last = segs[segs.length - 1] ?? '';
  return /^\d+$/.test(last) ? pointerToPath(`/${segs.slice(-2).join('/')}`) : last.replace(/~1/g, '/').replace(/~0/g, '~');
}

/** "in (0, 1]", "≥ 0", "> 0" from a schema node's bounds. */
function describeRange(schema: Record<string, unknown>): string {
  const num = (k: string): number | undefined => (typeof schema[k] === 'number' ? (schema[k] as number) : undefined);
  const lo = num('exclusiveMinimum') ?? num('minimum');
  const loOpen = num('exclusiveMinimum') !== undefined;
  const hi = num('exclusiveMaximum') ?? num('maximum');
  const hiOpen = num('exclusiveMaximum') !== undefined;
  if (lo !== undefined && hi !== undefined) return `in ${loOpen ? '(' : '['}${lo}, ${hi}${hiOpen ? ')' : ']'}`;
  if (lo !== undefined) return `${loOpen ? '>' : '≥'} ${lo}`;
  if (hi !== undefined) return `${hiOpen ? '<' : '≤'} ${hi}`;
  return 'in range';
}

function typeName(t: string): string {
  return t === 'object' ? 'a mapping' : t === 'array' ? 'a list' : t === 'integer' ? 'an integer' : t === 'null' ? 'empty' : `a ${t}`;
}

function describe(v: unknown): string {
  if (v === null || v === undefined) return 'nothing';
  if (typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return String(v);
}

/** The candidate within edit distance 2 (or a case-insensitive match), if any. */
function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = 3;
  for (const c of candidates) {
    const d = c.toLowerCase() === word.toLowerCase() ? 0 : editDistance(word, c);
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length] ?? 0;
}

function escapePointer(seg: string): string {
  return seg.replace(/~/g, '~0').replace(/\//g, '~1');
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isMergeMethod(v: string): v is MergeMethod {
  return ['task_arithmetic', 'ties', 'dare_linear', 'dare_ties', 'linear'].includes(v);
}

function hasPointer(obj: unknown, pointer: string): boolean {
  let cur: unknown = obj;
  for (const seg of pointer.split('/').slice(1)) {
    if (!isPlainObject(cur) || !(seg in cur)) return false;
    cur = cur[seg];
  }
  return true;
}

/** Records where every value (and every mapping key, under `pointer#key`) sits in the text. */
function collectPositions(node: YamlNode, pointer: string, out: Record<string, SourcePosition>, lc: LineCounter): void {
  const at = (range: readonly [number, number, number] | null | undefined): SourcePosition | undefined => {
    if (!range) return undefined;
    const s = lc.linePos(range[0]);
    const e = lc.linePos(range[1]);
    return { line: s.line, column: s.col, endLine: e.line, endColumn: e.col };
  };
  const here = at(node.range);
  if (here) out[pointer] = here;
  if (isMap(node)) {
    for (const pair of node.items) {
      const keyNode = pair.key as YamlNode | null;
      const key = isScalar(keyNode) ? String(keyNode.value) : String(keyNode);
      const child = `${pointer}/${escapePointer(key)}`;
      const keyPos = keyNode && at(keyNode.range);
      if (keyPos) out[`${child}#key`] = keyPos;
      const value = pair.value as YamlNode | null;
      if (value && value.range) collectPositions(value, child, out, lc);
      else if (keyPos) out[child] = keyPos;
    }
  } else if (isSeq(node)) {
    node.items.forEach((item, i) => {
      if (item) collectPositions(item as YamlNode, `${pointer}/${i}`, out, lc);
    });
  }
}

function subPositions(positions: PositionMap, prefix: string): PositionMap {
  const out: Record<string, SourcePosition> = {};
  for (const [k, v] of Object.entries(positions)) {
    if (k === prefix || k.startsWith(`${prefix}/`) || k.startsWith(`${prefix}#`)) out[k.slice(prefix.length)] = v;
  }
  return out;
}
