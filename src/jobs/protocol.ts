/**
 * Messages between a job's host (the extension or the CLI) and its worker thread. Both sides import this module,
 * so nothing untyped crosses the boundary: every message is one of the discriminated unions below.
 */
import type { MergeSummary } from '../core/merge/execute';
import type { SimilarityReport } from '../core/analysis/analyze';
import type { TensorStatsEntry, TensorStatsJobRequest } from './statsJob';

export type { TensorStatsJobRequest } from './statsJob';

/** AWD settings of a similarity job (the `awd` block of merge-config.md, in the same names). */
export interface SimilarityAwdRequest {
  alpha: number;
  learning_rate: number;
  iterations: number;
  granularity: 'model' | 'tensor';
  norm: 'l2' | 'l2_squared';
}

/** A merge job: either a config/record file, or the text of one with the file it stands for (relative paths resolve against its folder). */
export type MergeJobRequest =
  | { kind: 'merge'; configFile: string; chunkElements?: number; memoryBudgetBytes?: number }
  | { kind: 'merge'; config: { text: string; file: string }; chunkElements?: number; memoryBudgetBytes?: number };

/** A similarity job: pairwise cosine of the models' task vectors against the base, optionally with AWD. */
export interface SimilarityJobRequest {
  kind: 'similarity';
  base: string;
  models: string[];
  include?: string[];
  exclude?: string[];
  /** Present ⇒ also disentangle with AWD and report its diagnostics. */
  awd?: SimilarityAwdRequest;
  /** Include the per-tensor K×K cosine matrices in the report (the per-tensor Gram matrices are always kept). */
  perTensor?: boolean;
  chunkElements?: number;
  memoryBudgetBytes?: number;
}

/**
 * A similarity report again from kept per-tensor Gram matrices (T×K×K, row-major per tensor), with other AWD
 * settings or none: no model is read. The similarity panel's "Re-run AWD" (per-tensor AWD is seconds of arithmetic
 * for thousands of tensors, so it runs here, not in the extension host).
 */
export interface SimilarityFromGramsJobRequest {
  kind: 'similarityFromGrams';
  base: string;
  models: string[];
  tensors: { name: string; elements: number }[];
  grams: Float64Array;
  awd?: SimilarityAwdRequest;
  perTensor?: boolean;
  /** Carried into the report: the time the original analysis took. */
  seconds?: number;
}

export type JobRequest = MergeJobRequest | SimilarityJobRequest | TensorStatsJobRequest | SimilarityFromGramsJobRequest;

/** Host → worker. */
export type HostMessage = { type: 'start'; request: JobRequest } | { type: 'cancel' };

/** Where a job is: `bytesDone` of `bytesTotal` input bytes of the current phase. */
export interface JobProgress {
  phase: JobPhase;
  /** The tensor being processed, when there is one. */
  tensor?: string;
  bytesDone: number;
  bytesTotal: number;
}

/** statistics = the Gram / histogram pass; threshold = the extra magnitude passes of TIES; output = writing the result. */
export type JobPhase = 'plan' | 'statistics' | 'threshold' | 'output' | 'finish';

/** One user-facing problem of a failed job (an AwdError, flattened). */
export interface JobProblem {
  message: string;
  file?: string;
  tensor?: string;
  fix?: string;
}

export type JobResult =
  | { kind: 'merge'; merge: MergeSummary }
  | { kind: 'similarity'; similarity: SimilarityReport }
  | { kind: 'tensorStats'; stats: TensorStatsEntry[] };

/** Worker → host. Exactly one of result / error / cancelled ends every job. */
export type WorkerMessage =
  | { type: 'progress'; progress: JobProgress }
  | { type: 'log'; message: string }
  | { type: 'result'; result: JobResult }
  | {
      type: 'error';
      message: string;
      /** true for an AwdError (show the message, no stack); false for a bug or a crash. */
      userFacing: boolean;
      problems?: JobProblem[];
      stack?: string;
    }
  | { type: 'cancelled' };
