/**
 * The worker-thread entry of merge and similarity jobs (bundled as dist/worker.js). It waits for one `start`,
 * runs the job with an AbortSignal that a `cancel` message trips, posts progress and log messages, and ends with
 * exactly one result / error / cancelled message.
 */
import { parentPort } from 'node:worker_threads';
import { AwdErrorList, CancelledError, isAwdError } from '../core/errors';
import { loadMergeConfig, parseMergeConfig, type LoadedConfig } from '../core/config/load';
import { planMerge, planSimilarity } from '../core/merge/plan';
import { runMerge } from '../core/merge/execute';
import { DigestCache, defaultDigestCacheFile } from '../core/merge/digestCache';
import { analyzeSimilarity, reportFromGrams } from '../core/analysis/analyze';
import { computeTensorStats, type TensorStatsJobRequest } from './statsJob';
import type { HostMessage, JobRequest, JobResult, WorkerMessage, MergeJobRequest, SimilarityJobRequest, SimilarityFromGramsJobRequest } from './protocol';

const port = parentPort;
if (!port) throw new Error('src/jobs/worker.ts must run in a worker thread');

const controller = new AbortController();
let started = false;

function post(message: WorkerMessage): void {
  port!.postMessage(message);
}

async function runMergeJob(request: MergeJobRequest): Promise<JobResult> {
  const loaded: LoadedConfig = 'configFile' in request ? await loadMergeConfig(request.configFile) : parseMergeConfig(request.config.text, request.config.file);
  post({ type: 'progress', progress: { phase: 'plan', bytesDone: 0, bytesTotal: 0 } });
  const plan = await planMerge(loaded);
  try {
    const result = await runMerge(plan, {
      ...(request.chunkElements !== undefined ? { chunkElements: request.chunkElements } : {}),
      ...(request.memoryBudgetBytes !== undefined ? { memoryBudgetBytes: request.memoryBudgetBytes } : {}),
      signal: controller.signal,
      onProgress: (progress) => post({ type: 'progress', progress }),
      log: (message) => post({ type: 'log', message }),
      digestCache: new DigestCache(defaultDigestCacheFile()),
    });
    const { record: _record, statistics: _statistics, ...summary } = result;
    return { kind: 'merge', merge: summary };
  } finally {
    await plan.close();
  }
}

async function runSimilarityJob(request: SimilarityJobRequest): Promise<JobResult> {
  post({ type: 'progress', progress: { phase: 'plan', bytesDone: 0, bytesTotal: 0 } });
  const plan = await planSimilarity(request.base, request.models, { include: request.include ?? ['*'], exclude: request.exclude ?? [] });
  for (const w of plan.warnings) post({ type: 'log', message: `warning: ${w.message}` });
  try {
    const similarity = await analyzeSimilarity(plan, {
      ...(request.awd ? { awd: request.awd } : {}),
      perTensor: request.perTensor ?? false,
      ...(request.chunkElements !== undefined ? { chunkElements: request.chunkElements } : {}),
      ...(request.memoryBudgetBytes !== undefined ? { memoryBudgetBytes: request.memoryBudgetBytes } : {}),
      signal: controller.signal,
      onProgress: (progress) => post({ type: 'progress', progress }),
    });
    return { kind: 'similarity', similarity };
  } finally {
    await plan.close();
  }
}

/** The similarity report from kept Gram matrices (the similarity panel's "Re-run AWD"): no model is read. */
function runSimilarityFromGramsJob(request: SimilarityFromGramsJobRequest): JobResult {
  const K = request.models.length;
  const grams = request.tensors.map((t, i) => ({ name: t.name, elements: t.elements, gram: request.grams.slice(i * K * K, (i + 1) * K * K) }));
  const similarity = reportFromGrams(request.models, request.base, grams, { ...(request.awd ? { awd: request.awd } : {}), perTensor: request.perTensor ?? false });
  return { kind: 'similarity', similarity: { ...similarity, seconds: request.seconds ?? 0 } };
}

/** The inspector's statistics (src/jobs/statsJob.ts). */
async function runTensorStatsJob(request: TensorStatsJobRequest): Promise<JobResult> {
  const stats = await computeTensorStats(request, { signal: controller.signal, onProgress: (progress) => post({ type: 'progress', progress }) });
  return { kind: 'tensorStats', stats };
}

async function run(request: JobRequest): Promise<void> {
  try {
    const result =
      request.kind === 'merge' ? await runMergeJob(request)
      : request.kind === 'similarity' ? await runSimilarityJob(request)
      : request.kind === 'similarityFromGrams' ? runSimilarityFromGramsJob(request)
      : await runTensorStatsJob(request);
    post({ type: 'result', result });
  } catch (e) {
    if (e instanceof CancelledError || (controller.signal.aborted && !isAwdError(e))) {
      post({ type: 'cancelled' });
    } else if (isAwdError(e)) {
      const problems = e instanceof AwdErrorList ? e.problems.map((p) => ({ message: p.message, file: p.file, tensor: p.tensor, fix: p.fix })) : undefined;
      post({ type: 'error', message: e.message, userFacing: true, ...(problems ? { problems } : {}) });
    } else {
      const err = e instanceof Error ? e : new Error(String(e));
      post({ type: 'error', message: err.message, userFacing: false, ...(err.stack ? { stack: err.stack } : {}) });
    }
  } finally {
    port!.close();
  }
}

port.on('message', (message: HostMessage) => {
  if (message.type === 'cancel') {
    controller.abort();
  } else if (message.type === 'start' && !started) {
    started = true;
    void run(message.request);
  }
});
