/**
 * The merge executor: runs a MergePlan as a few streaming passes over the inputs, tensor by tensor and chunk by
 * chunk, straight into the output file. Peak memory is the chunk buffers (set by the memory budget: a few sets of
 * K + 1 input chunks being read and computed on, plus per-set output buffers), whatever the model size and K.
 *
 * Passes (each reads every selected tensor of the base and the K models once):
 *  - statistics, only with AWD: the K×K Gram matrix of the task vectors per tensor → AWD's coefficients a;
 *  - threshold, only for TIES: per tensor (trim_scope `tensor`: tiesThresholds.ts, one pass; a tensor whose sample
 *    misled it takes the two histogram passes of magnitude.ts) or per model over everything (trim_scope `model`:
 *    the histogram of τ, τ̂ with AWD, plus one refinement pass for the low 16 bits of the threshold);
 *  - output: τ → τ̂ = τ − δ (δ = Σ_k a_k τ_k materialised per chunk only for the non-TA methods; task arithmetic
 *    with AWD runs as plain task arithmetic with the effective coefficients) → method → θ = θ_0 + λ·m → the
 *    writer casts once to the output dtype. Copied tensors go through byte for byte.
 *
 * Two cores: when every merged input is raw float32 or bfloat16 (the usual case), the passes run as chunk programs
 * (helperThread.ts) — a helper thread and this one each read and compute whole chunks, this one consumes them in
 * order — in cache-sized chunks. Otherwise (other dtypes, no WebAssembly SIMD, AWD_MERGE_THREADS=0, the
 * `chunkElements` option of tests) this thread computes every chunk as the loops below do, with the same kernels
 * in the same order: the same bits (test/unit/merge/programs.test.ts), and TIES at tensor scope then thresholds a
 * tensor that fits one budget-sized chunk in memory.
 *
 * Determinism: the Gram sums run in blocks aligned to the element index (gramPass.ts), the result statistics in fixed
 * blocks, every sum has a fixed order, and DARE's masks depend only on (seed, model, tensor, element). Wall-clock
 * times and the config file's name go only into the record file beside the output, never into the output's
 * `__metadata__`, so the same config — or the record it left — gives a bit-identical output file.
 *
 * The inputs' SHA-256 for the record are computed on another thread while the passes run (inputHashing.ts).
 */
import { writeFile, rm, stat } from 'node:fs/promises';
import type { Checkpoint } from '../formats/types';
import { createSafetensorsWriter, type SafetensorsWriter } from '../formats/safetensorsWriter';
import { DTYPE_SIZE } from '../formats/dtypes';
import { buildRecord, recordMetadata, recordPathFor, recordToJson, type MergeRecord } from '../config/record';
import { baseWithWeightedSumOfDifferences, weightedSumOfDifferences, subtractFromRows } from '../kernels/combine';
import { MagnitudeThreshold, kthLargestMagnitude } from './magnitude';
import { trimBelow, tiesMergeChunk } from './ties';
import { dareRescaleInPlace } from './dare';
import { effectiveTaskArithmeticCoefficients } from './awd';
import type { MergePlan, PlannedTensor } from './plan';
import { openArena, plainFloats, wasmKernels } from '../kernels/wasm';
import { ChunkPipeline, chunkItems, gramSlotBytes, chunkRanges, chunkElementsFor, inputBytesPerElement, CACHE_CHUNK_ELEMENTS, DEFAULT_MEMORY_BUDGET_BYTES, type ChunkItem, type InputChunk } from './chunkReader';
import { accumulateTensorGrams } from './gramPass';
import { runAwd, type AwdReport } from './awdDiagnostics';
import { ProgressMeter, throwIfCancelled, type PassPhase, type ProgressListener } from './progress';
import { TensorStatisticsAccumulator, STATISTICS_BLOCK, type BlockSums, type TensorStatistics } from './tensorStats';
import { helperThreads } from './helperThread';
import { sampledThresholdPass, candidateArea, candidateAreaSize, CANDIDATES_PER_CHUNK } from './tiesThresholds';
import { histogramFloats, modelThresholdPasses } from './modelThresholds';
import { outputProgram, outputProgramBytes, type FinishedChunk } from './outputProgram';
import { weightedSumOfRows, addScaledInto, weightedAverageInto } from './methodChunk';
import { hashFilesInBackground } from './inputHashing';
import type { DigestCache } from './digestCache';
import { NonFiniteCheckingPipeline } from './nonFiniteGuard';
import { nonFiniteTotal } from '../kernels/finite';
import { snapshotInputs } from './inputSnapshot';

export interface RunMergeOptions {
  /** Elements per chunk; overrides memoryBudgetBytes (tests use tiny values to force chunking). */
  chunkElements?: number;
  /** Bytes for all chunk buffers together (default 256 MiB); chunk = budget ÷ ((K + 4) × 4 bytes). */
  memoryBudgetBytes?: number;
  onProgress?: ProgressListener;
  signal?: AbortSignal;
  log?: (message: string) => void;
  /** Cache of input digests (see digestCache.ts); without one every input is hashed on every run. */
  digestCache?: DigestCache;
}

export interface MergeResult {
  /** Output files written (one, or the shards and their index). */
  files: string[];
  /** The reproducibility record (also in the output's `__metadata__`, without the times). */
  record: MergeRecord;
  recordFile: string;
  seconds: number;
  /** Peak resident set size of the process seen during the run. */
  peakBytes: number;
  /** Bytes of the chunk buffers. */
  bufferBytes: number;
  chunkElements: number;
  /** How many times the inputs were read. */
  passes: number;
  /** Per merged tensor, statistics of the result (float32, before the cast to the output dtype). */
  statistics: Record<string, TensorStatistics>;
  awd?: AwdReport;
}

/** What crosses the job boundary and what `merge --json` prints. */
export type MergeSummary = Omit<MergeResult, 'record' | 'statistics'>;

/**
 * Highest RSS seen at the sample points (chunk boundaries, at most one per SAMPLE_MS, and the end of the run):
 * reading the RSS took up to ~1 ms a call on a loaded machine, a quarter of task arithmetic's CPU time when
 * taken at every 131072-element chunk.
 */
class PeakMemory {
  private static readonly SAMPLE_MS = 50;
  peak = process.memoryUsage.rss();
  private last = performance.now();
  sample(force = false): void {
    const now = performance.now();
    if (!force && now - this.last < PeakMemory.SAMPLE_MS) return;
    this.last = now;
    const r = process.memoryUsage.rss();
    if (r > this.peak) this.peak = r;
  }
}

/** Runs the plan; on failure or cancellation nothing is left behind (no output file, no record file). */
export async function runMerge(plan: MergePlan, opts: RunMergeOptions = {}): Promise<MergeResult> {
  const started = new Date();
  const t0 = performance.now();
  const config = plan.config;
  const method = config.merge_method;
  const K = plan.models.length;
  const chunkElements = opts.chunkElements ?? chunkElementsFor(K, opts.memoryBudgetBytes ?? DEFAULT_MEMORY_BUDGET_BYTES);
  // The buffers hold chunkElements; the passes, whose results do not depend on chunking (the Gram pass sums in
  // blocks aligned to the element index: gramPass.ts), read smaller, cache-sized chunks (CACHE_CHUNK_ELEMENTS).
  // TIES at tensor scope keeps the budget's chunk: a tensor that fits one is thresholded in memory.
  const streamChunk = opts.chunkElements ?? Math.min(chunkElements, CACHE_CHUNK_ELEMENTS);
  // With whole-chunk programs on both threads (helperThread.ts) TIES finds its tensor-scope thresholds in a pass
  // of its own (tiesThresholds.ts), so it too streams cache-sized chunks.
  const programs = opts.chunkElements === undefined && streamChunk % STATISTICS_BLOCK === 0 && programsPossible(plan);
  const tiesInMemory = method === 'ties' && config.parameters.trim_scope === 'tensor' && !programs;
  /** What the buffers must hold: the largest chunk any pass of this merge reads. */
  const bufferChunk = tiesInMemory ? chunkElements : streamChunk;
  const log = opts.log ?? (() => undefined);
  const memory = new PeakMemory();
  const base = method === 'linear' ? undefined : plan.base;
  if (method !== 'linear' && !base) throw new Error(`runMerge: ${method} needs a base model in the plan`);

  for (const w of plan.warnings) log(`warning: ${w.message}`);
  const inputFiles = [...(plan.base?.files ?? []), ...plan.models.flatMap((m) => m.files)];
  const inputsAtStart = await snapshotInputs(inputFiles);
  const hashing = hashFilesInBackground(inputFiles, opts.digestCache);
  // Every chunk buffer of the passes in WASM memory where possible, so the kernels take them without copying.
  const mergedCount = plan.tensors.filter((t) => t.action === 'merge').length;
  const extraBytes = programs ? programSlotBytes(method, K, bufferChunk, config.awd !== undefined) : 0;
  /** TIES at tensor scope on both threads: its candidate lists, in the arena (tiesThresholds.ts). */
  const candidateFloats = programs && method === 'ties' && config.parameters.trim_scope === 'tensor' ? candidateAreaSize(K).total : 0;
  const arena = openArena((ChunkPipeline.floatsFor(base !== undefined, K, bufferChunk, extraBytes) + 3 * bufferChunk + 3 * K * (mergedCount + 1) + (method === 'ties' ? histogramFloats(K) : 0) + candidateFloats + 128) * 4, K + 1);
  const alloc = arena ?? plainFloats;
  /** Task arithmetic's coefficients per merged tensor, K float64 each, in WASM memory for the program passes. */
  const coefficientFloats = arena?.floats(2 * K * (mergedCount + 1));
  const coefficientTable = coefficientFloats && new Float64Array(coefficientFloats.buffer, coefficientFloats.byteOffset, K * (mergedCount + 1));
  /** TIES's thresholds per merged tensor, K float32 each, in WASM memory for the output programs. */
  const thresholdTable = arena?.floats(K * (mergedCount + 1));
  /** The two threads' magnitude histograms of TIES's per-model thresholds (modelThresholds.ts). */
  const histogramTable = method === 'ties' ? arena?.floats(histogramFloats(K)) : undefined;
  // Large (up to 32M entries) and mostly unwritten: not zeroed, and counted as used only as far as the pass wrote.
  const candidateTable = candidateFloats > 0 ? arena?.lazyFloats(candidateFloats) : undefined;
  let writer: SafetensorsWriter | undefined;
  let recordFile: string | undefined;
  /** Output files already renamed into place: removed again if writing the record fails, so nothing half-done stays. */
  let written: string[] = [];
  try {
    const merged = plan.tensors.filter((t) => t.action === 'merge');
    const pipeline = new NonFiniteCheckingPipeline(base, plan.models, bufferChunk, config.allow_nonfinite === true, log, alloc, extraBytes);
    const inputs: (Checkpoint | undefined)[] = [base, ...plan.models];
    const perElement = new Map(merged.map((t) => [t.name, inputBytesPerElement(inputs, t.name)]));
    const byName = new Map(plan.tensors.map((t) => [t.name, t]));
    let passes = 0;

    // Statistics pass: AWD's Gram matrices and coefficients.
    let awd: ReturnType<typeof runAwd> | undefined;
    if (config.awd && base) {
      log(`statistics pass: Gram matrices of ${K} task vectors over ${merged.length} tensors`);
      const grams = await accumulateTensorGrams(base, plan.models, merged, { chunkElements: streamChunk, signal: opts.signal, onProgress: opts.onProgress }, pipeline);
      passes++;
      awd = runAwd(grams, K, config.awd, plan.weights, config.parameters.lambda);
      log(`AWD (${config.awd.granularity}): mean |cos| ${awd.report.mean_abs_cos_before.toFixed(4)} → ${awd.report.mean_abs_cos_after.toFixed(4)}, ‖δ‖/mean‖τ‖ = ${awd.report.delta_norm_relative.toFixed(4)}`);
    }
    const coefficientsOf = new Map<string, Float64Array>();
    if (awd) merged.forEach((t, i) => coefficientsOf.set(t.name, awd.coefficientsPerTensor[i]!));
    /** Each merged tensor's row in coefficientTable (the program passes' coefficients, in WASM memory). */
    const tensorIndex = new Map(merged.map((t, i) => [t.name, i]));

    const delta = alloc.floats(awd && method !== 'task_arithmetic' ? bufferChunk : 0);
    const mergedTask = alloc.floats(bufferChunk);
    const output = alloc.floats(bufferChunk);

    /** Turns a chunk's model rows into τ̂_i (τ_i without AWD), in place. */
    const toTaskVectors = (name: string, chunk: InputChunk): void => {
      const a = coefficientsOf.get(name);
      const d = delta.subarray(0, chunk.end - chunk.start);
      if (a) weightedSumOfDifferences(chunk.base, chunk.models, a, d);
      subtractFromRows(chunk.models, chunk.base);
      if (a) subtractFromRows(chunk.models, d);
    };

    /** One read of the given tensors' τ̂ chunks, each row handed to `visit(modelIndex, row)`. */
    const taskVectorPass = async (phase: PassPhase, tensors: readonly PlannedTensor[], visit: (i: number, row: Float32Array) => void): Promise<void> => {
      const meter = new ProgressMeter(phase, tensors.reduce((s, t) => s + t.elements * perElement.get(t.name)!, 0), opts.onProgress);
      throwIfCancelled(opts.signal);
      for await (const { item, chunk } of pipeline.run(chunkItems(tensors, streamChunk))) {
        toTaskVectors(item.name, chunk!);
        chunk!.models.forEach((row, i) => visit(i, row));
        meter.add((item.end - item.start) * perElement.get(item.name)!, item.name);
        memory.sample();
        throwIfCancelled(opts.signal);
      }
      meter.end();
    };

    /** AWD's coefficients of every merged tensor in coefficientTable, for the threshold programs' δ. */
    const tableAwdCoefficients = (table: Float64Array): void => merged.forEach((t, i) => table.set(coefficientsOf.get(t.name) ?? new Float64Array(K), i * K));
    /**
     * Exact per-model magnitude thresholds over `tensors` (k_i = floor(density_i · n)): one or two reads of them,
     * on both threads when their chunks can run as programs (modelThresholds.ts), else on this one.
     */
    const streamedThresholds = async (tensors: readonly PlannedTensor[]): Promise<{ thresholds: number[]; reads: number }> => {
      const count = tensors.reduce((s, t) => s + t.elements, 0);
      const items = chunkItems(tensors, streamChunk);
      if (programs && base && coefficientTable && histogramTable && pipeline.canRunPrograms(items, programSlotBytes(method, K, streamChunk, false))) {
        tableAwdCoefficients(coefficientTable);
        const bytes = tensors.reduce((s, t) => s + t.elements * perElement.get(t.name)!, 0);
        let meter: ProgressMeter | undefined;
        const found = await modelThresholdPasses(
          {
            pipeline,
            K,
            densities: plan.densities,
            count,
            ...(awd ? { awd: (name: string) => coefficientTable.byteOffset + tensorIndex.get(name)! * K * 8 } : {}),
            histograms: histogramTable,
            onPass: () => {
              meter?.end();
              meter = new ProgressMeter('threshold', bytes, opts.onProgress);
              throwIfCancelled(opts.signal);
            },
            onChunk: (item) => {
              meter!.add((item.end - item.start) * perElement.get(item.name)!, item.name);
              memory.sample();
              throwIfCancelled(opts.signal);
            },
          },
          items,
        );
        meter?.end();
        if (found) return found;
        log('threshold pass: the helper thread stopped in the middle of a chunk; counting again on this thread');
      }
      const selectors = plan.models.map((_, i) => new MagnitudeThreshold(count, plan.densities[i]!));
      await taskVectorPass('threshold', tensors, (i, row) => selectors[i]!.pass1(row));
      let reads = 1;
      if (selectors.some((s) => s.needsPass2())) {
        await taskVectorPass('threshold', tensors, (i, row) => selectors[i]!.pass2(row));
        reads++;
      }
      return { thresholds: selectors.map((s) => s.threshold()), reads };
    };

    // TIES thresholds that need their own reads: per model over everything (scope `model`), or per tensor for the
    // tensors too large for one chunk (scope `tensor`; smaller ones are thresholded in memory in the output pass).
    const thresholdsOf = new Map<string, number[]>();
    if (method === 'ties' && config.parameters.trim_scope === 'model') {
      log(`threshold pass: per-model magnitude thresholds over ${merged.length} tensors`);
      const { thresholds, reads } = await streamedThresholds(merged);
      passes += reads;
      for (const t of merged) thresholdsOf.set(t.name, thresholds);
    } else if (method === 'ties') {
      const thresholdItems = chunkItems(merged, streamChunk);
      if (programs && coefficientTable && candidateTable && base && pipeline.canRunPrograms(thresholdItems, programSlotBytes(method, K, streamChunk, false))) {
        log(`threshold pass: per-tensor magnitude thresholds over ${merged.length} tensors, on two threads`);
        tableAwdCoefficients(coefficientTable);
        const meter = new ProgressMeter('threshold', merged.reduce((s, t) => s + t.elements * perElement.get(t.name)!, 0), opts.onProgress);
        const { thresholds, unresolved } = await sampledThresholdPass(
          {
            pipeline,
            models: plan.models,
            tensors: merged,
            densities: plan.densities,
            ...(awd ? { awd: { of: (name: string) => coefficientsOf.get(name)!, pointer: (name: string) => coefficientTable.byteOffset + tensorIndex.get(name)! * K * 8 } } : {}),
            onChunk: (item) => {
              meter.add((item.end - item.start) * perElement.get(item.name)!, item.name);
              memory.sample();
              throwIfCancelled(opts.signal);
            },
            candidates: candidateArea(candidateTable, K),
          },
          thresholdItems,
        );
        meter.end();
        passes++;
        for (const [name, th] of thresholds) thresholdsOf.set(name, th);
        if (unresolved.length > 0) log(`threshold pass: ${unresolved.length} tensor(s) need the exact histogram passes`);
        for (const t of unresolved) thresholdsOf.set(t.name, (await streamedThresholds([byName.get(t.name)!])).thresholds);
      } else {
        for (const t of merged.filter((x) => x.elements > bufferChunk)) thresholdsOf.set(t.name, (await streamedThresholds([t])).thresholds);
      }
    }

    // Output pass.
    writer = await createSafetensorsWriter(
      plan.outPath,
      plan.tensors.map((t) => ({ name: t.name, dtype: t.outDtype, shape: t.shape })),
      { metadataReserve: metadataReserveFor(plan), shardSize: config.out_shard_size },
    );
    const out = writer;
    const outputTotal = plan.tensors.reduce((s, t) => s + (t.action === 'merge' ? t.elements * perElement.get(t.name)! : copySource(plan).tensor(t.name)!.bytes), 0);
    const meter = new ProgressMeter('output', outputTotal, opts.onProgress);
    const statistics: Record<string, TensorStatistics> = {};
    const taCoefficients = new Map(
      merged.map((t) => {
        const a = coefficientsOf.get(t.name);
        return [t.name, a ? effectiveTaskArithmeticCoefficients(a, plan.weights, config.parameters.lambda) : Float64Array.from(plan.weights, (w) => config.parameters.lambda * w)];
      }),
    );
    const outputChunk = tiesInMemory ? chunkElements : streamChunk;
    const items: ChunkItem[] = plan.tensors.flatMap((t) =>
      t.action === 'copy' ? [{ name: t.name, start: 0, end: t.elements, read: false }] : chunkItems([t], outputChunk),
    );
    let stats: TensorStatisticsAccumulator | undefined;
    throwIfCancelled(opts.signal);
    // Task arithmetic screens its inputs for NaN/Inf only where the result has one (any non-finite input reaches
    // θ_0 + Σ c_i τ_i: 0·Inf is NaN); the other methods can drop one (TIES elects no sign for a NaN), so their
    // inputs are screened as they arrive.
    /**
     * The rest of a merged chunk, whoever computed it: statistics (given, or of the float32 `row`), then the write
     * (none when the program wrote the row, raw when it encoded it), progress.
     */
    const finishChunk = async (t: PlannedTensor, item: ChunkItem, row: Partial<Omit<FinishedChunk, 'blockSums'>>, blockSums?: readonly BlockSums[]): Promise<void> => {
      if (item.start === 0) stats = new TensorStatisticsAccumulator();
      if (blockSums) blockSums.forEach((b, i) => stats!.addBlockSums(b, Math.min(STATISTICS_BLOCK, item.end - item.start - i * STATISTICS_BLOCK)));
      else stats!.add(row.result!);
      if (row.written) await out.wroteDirectly(t.name, (item.end - item.start) * DTYPE_SIZE[t.outDtype]);
      else if (row.encoded) await out.writeRaw(t.name, row.encoded);
      else await out.writeFloat32(t.name, row.result!);
      if (item.end === t.elements) statistics[t.name] = stats!.result();
      meter.add((item.end - item.start) * perElement.get(t.name)!, t.name);
      memory.sample();
      throwIfCancelled(opts.signal);
    };
    const copy = (t: PlannedTensor): Promise<void> => copyTensor(copySource(plan), t, out, chunkElements, opts.signal, (bytes) => meter.add(bytes, t.name));
    const program =
      programs && method !== 'linear' && coefficientTable && thresholdTable && pipeline.canRunPrograms(items, outputProgramBytes(K, outputChunk))
        ? outputProgram({
            plan,
            pipeline,
            chunk: outputChunk,
            table: coefficientTable,
            tensorIndex,
            taCoefficients,
            awdCoefficients: coefficientsOf,
            thresholds: thresholdsOf,
            thresholdTable,
            directTarget: (name, byteStart) => out.directTarget(name, byteStart),
          })
        : undefined;
    if (program) {
      // Both threads read, compute and write whole chunks (outputProgram.ts); this thread takes them in order.
      for await (const { item, chunk, slot } of pipeline.runPrograms(items, program.ops)) {
        const t = byName.get(item.name)!;
        if (!chunk) {
          await copy(t);
          continue;
        }
        const finished = await program.finish(item, slot, chunk);
        await finishChunk(t, item, finished, finished.blockSums);
      }
    } else {
      for await (const { item, chunk } of pipeline.run(items, method === 'task_arithmetic' ? 'deferred' : 'eager')) {
        const t = byName.get(item.name)!;
        if (!chunk) {
          await copy(t);
          continue;
        }
        const { start, end } = item;
        const n = end - start;
        const result = output.subarray(0, n);
        const m = mergedTask.subarray(0, n);
        if (method === 'linear') {
          weightedAverageInto(chunk.models, plan.weights, result);
        } else if (method === 'task_arithmetic') {
          baseWithWeightedSumOfDifferences(chunk.base, chunk.models, taCoefficients.get(t.name)!, result);
          if (nonFiniteTotal(result) > 0) pipeline.screen(t.name, chunk);
        } else {
          toTaskVectors(t.name, chunk);
          const rows = chunk.models;
          if (method === 'ties') {
            // A tensor without streamed thresholds fits one chunk, so it is wholly in memory here.
            const thresholds = thresholdsOf.get(t.name) ?? rows.map((row, i) => kthLargestMagnitude(row, Math.floor(plan.densities[i]! * n)));
            rows.forEach((row, i) => trimBelow(row, thresholds[i]!));
          } else {
            rows.forEach((row, i) => dareRescaleInPlace(row, plan.densities[i]!, { seed: config.random_seed, model: i, tensor: t.name }, start));
          }
          if (method === 'dare_linear') weightedSumOfRows(rows, plan.weights, m);
          else tiesMergeChunk(rows, plan.weights, config.parameters.normalize, m);
          addScaledInto(result, chunk.base, m, config.parameters.lambda);
        }
        await finishChunk(t, item, { result });
      }
    }
    // Empty merged tensors have no chunk: their statistics are those of nothing.
    for (const t of merged) statistics[t.name] ??= new TensorStatisticsAccumulator().result();
    passes++;
    throwIfCancelled(opts.signal);
    meter.end();

    opts.onProgress?.({ phase: 'finish', bytesDone: 0, bytesTotal: 0 });
    const digests = await hashing.digests;
    await inputsAtStart.verifyUnchanged();
    throwIfCancelled(opts.signal);
    const sizes: Record<string, number> = {};
    for (const f of inputFiles) sizes[f] = (await stat(f)).size;
    const recordPath = recordPathFor(plan.outPath);
    const recordArgs = {
      config,
      ...(plan.configFile !== undefined ? { configFile: plan.configFile } : {}),
      recordFile: recordPath,
      ...(base ? { base: { path: base.path, files: base.files } } : {}),
      models: plan.models.map((m) => ({ path: m.path, files: m.files })),
      digests,
      sizes,
      outputs: out.plannedFiles,
      startedAt: started,
      awd: awd?.report,
      tensors: merged.map((t) => ({ name: t.name, ...statistics[t.name]! })),
    };
    // __metadata__ gets the record without what differs between reruns of the same merge: recordMetadata drops the
    // times (so this placeholder end time never reaches the file), and the config file is left out because a rerun
    // from the record file must give the same bytes as the run from the config.
    const { configFile: _configFile, ...timelessArgs } = recordArgs;
    const files = await out.finish(recordMetadata(buildRecord({ ...timelessArgs, finishedAt: started })));
    writer = undefined;
    written = files;
    const record = buildRecord({ ...recordArgs, outputs: files, finishedAt: new Date() });
    recordFile = recordPath;
    await writeFile(recordFile, recordToJson(record));
    memory.sample(true);
    return {
      files,
      record,
      recordFile,
      seconds: (performance.now() - t0) / 1000,
      peakBytes: memory.peak,
      bufferBytes: pipeline.bufferBytes + (delta.length + mergedTask.length + output.length) * 4,
      chunkElements,
      passes,
      statistics,
      ...(awd ? { awd: awd.report } : {}),
    };
  } catch (e) {
    await hashing.cancel();
    if (writer) await writer.abort();
    if (recordFile) await rm(recordFile, { force: true });
    for (const f of written) await rm(f, { force: true });
    throw e;
  } finally {
    arena?.release();
  }
}

/**
 * True when the passes can run as whole-chunk programs on both threads (helperThread.ts): WebAssembly SIMD, the
 * helper allowed, and every merged tensor of every input raw float32 or bfloat16 that both threads can read.
 */
function programsPossible(plan: MergePlan): boolean {
  if (!helperThreads.enabled || !wasmKernels()) return false;
  const inputs = [...(plan.config.merge_method !== 'linear' && plan.base ? [plan.base] : []), ...plan.models];
  return plan.tensors.every((t) => t.action !== 'merge' || inputs.every((c) => c.rawSource?.(t.name) !== undefined));
}

/** Per-slot extra bytes the program passes of a merge use (their layouts in runMerge and tiesThresholds.ts). */
function programSlotBytes(method: MergePlan['config']['merge_method'], K: number, chunk: number, awd: boolean): number {
  const output = outputProgramBytes(K, chunk);
  const thresholds = method === 'ties' ? chunk * 4 + K * CANDIDATES_PER_CHUNK * 4 + 16 * K + 256 : 0;
  return Math.max(output, thresholds, awd ? gramSlotBytes(K) : 0);
}

/** Where copied tensors come from: the base, or for `linear` (no base) the first model. */
function copySource(plan: MergePlan): Checkpoint {
  const source = plan.config.merge_method === 'linear' ? plan.models[0] : plan.base;
  if (!source) throw new Error('runMerge: no checkpoint to copy tensors from');
  return source;
}

/** Header space kept for `__metadata__` (the record, with per-tensor statistics): generous, it is only padding. */
function metadataReserveFor(plan: MergePlan): number {
  return 64 * 1024 + plan.tensors.length * 1024 + plan.models.length * 4096;
}

/** A tensor taken over unchanged: byte for byte when its dtype stays, else decoded and cast once by the writer. */
async function copyTensor(
  source: Checkpoint,
  t: PlannedTensor,
  out: SafetensorsWriter,
  chunkElements: number,
  signal: AbortSignal | undefined,
  onBytes: (bytes: number) => void,
): Promise<void> {
  const info = source.tensor(t.name)!;
  const bytesPerElement = info.elements > 0 ? info.bytes / info.elements : 0;
  const sameDtype = t.outDtype === t.sourceDtype;
  // chunkElements counts float32 elements, so a raw chunk of the same byte size holds 4 / size of them.
  const step = sameDtype ? Math.max(1, Math.floor((chunkElements * 4) / Math.max(1, bytesPerElement))) : chunkElements;
  for (const [start, end] of chunkRanges(info.elements, step)) {
    throwIfCancelled(signal);
    if (sameDtype) await out.writeRaw(t.name, await source.readBytes(t.name, start, end));
    else await out.writeFloat32(t.name, await source.readFloat32(t.name, start, end));
    onBytes((end - start) * bytesPerElement);
  }
}
