/**
 * The merge config's types and its JSON Schema (schemas/merge-config.schema.json), the same schema the editor
 * uses for validation and completion. Keys and semantics: shared/spec/merge-config.md.
 */
import type { ErrorObject, ValidateFunction } from 'ajv';
import validateMergeConfig from './generated/mergeConfigValidator';
import mergeConfigSchema from '../../../schemas/merge-config.schema.json';

export const MERGE_METHODS = ['task_arithmetic', 'ties', 'dare_linear', 'dare_ties', 'linear'] as const;
export type MergeMethod = (typeof MERGE_METHODS)[number];
export type OutputDtypeName = 'float32' | 'float16' | 'bfloat16';
export type TrimScope = 'tensor' | 'model';
export type AwdGranularity = 'model' | 'tensor';
export type AwdNorm = 'l2' | 'l2_squared';

export interface ResolvedModelEntry {
  /** Absolute path: a file, a sharded index or a folder. */
  model: string;
  parameters: { weight: number; density?: number };
}

export interface ResolvedAwdConfig {
  alpha: number;
  learning_rate: number;
  iterations: number;
  granularity: AwdGranularity;
  norm: AwdNorm;
}

/** Every key of merge-config.md with its default filled in; paths absolute. */
export interface ResolvedMergeConfig {
  merge_method: MergeMethod;
  /** Absolute; absent only for `linear` (which ignores it when given). */
  base_model?: string;
  models: ResolvedModelEntry[];
  parameters: {
    lambda: number;
    /** Filled with 1.0 (mergekit's default) for the methods that use it when the config gives none. */
    density?: number;
    normalize: boolean;
    trim_scope: TrimScope;
  };
  awd?: ResolvedAwdConfig;
  include: string[];
  exclude: string[];
  dtype?: OutputDtypeName;
  random_seed: number;
  /** Present (true) only when the config opts in to merging inputs that hold NaN/±Inf; absent = refuse them. */
  allow_nonfinite?: boolean;
  /** Absolute path of the output .safetensors file (or of the name the shards and index derive from). */
  out_path: string;
  /** Bytes; absent = one output file. */
  out_shard_size?: number;
}

/** Methods that work on task vectors and therefore need `base_model`. */
export function methodNeedsBase(method: MergeMethod): boolean {
  return method !== 'linear';
}

/** Methods that read `density`. */
export function methodUsesDensity(method: MergeMethod): boolean {
  return method === 'ties' || method === 'dare_linear' || method === 'dare_ties';
}

/** Methods that run TIES' sign election (and so read `normalize` and `trim_scope`). */
export function methodElectsSign(method: MergeMethod): boolean {
  return method === 'ties' || method === 'dare_ties';
}

/** Methods that trim by magnitude (`trim_scope` applies). */
export function methodTrimsByMagnitude(method: MergeMethod): boolean {
  return method === 'ties';
}

export const AWD_DEFAULTS: ResolvedAwdConfig = {
  alpha: 0.1,
  learning_rate: 0.01,
  iterations: 300,
  granularity: 'model',
  norm: 'l2',
};

export const DEFAULT_LAMBDA = 1.0;
export const DEFAULT_WEIGHT = 1.0;
export const DEFAULT_DENSITY = 1.0;
export const DEFAULT_OUT_PATH = 'merged/model.safetensors';

/** mergekit keys accepted and ignored, with the reason shown in the warning. */
export const IGNORED_MERGEKIT_KEYS: Readonly<Record<string, string>> = {
  tokenizer_source: 'this tool merges weights only and writes no tokenizer files',
  tokenizer: 'this tool merges weights only and writes no tokenizer files',
  chat_template: 'this tool merges weights only and writes no tokenizer files',
  '/parameters/int8_mask': 'it is a mergekit memory option that never changes the result',
};

/** The JSON Schema object itself (for tests and for tools that want to show it). */
export const MERGE_CONFIG_SCHEMA: object = mergeConfigSchema;

/**
 * The schema's validator: compiled by Ajv ahead of time into generated/mergeConfigValidator.js
 * (scripts/build-schema-validator.mjs: `allErrors`, so that every problem is reported in one go, and `verbose`,
 * which puts the offending value and its schema on each error for the messages to quote). Compiling it at run time
 * cost ~60 ms at the start of every merge.
 */
export function mergeConfigValidator(): ValidateFunction {
  return validateMergeConfig;
}

export type SchemaError = ErrorObject;
