/**
 * `npm run eval [-- --quick] [--out DIR] [--zoo DIR] [--cli PATH] [--keep]`: merge quality on the model zoo.
 * For each grid point (merge method × λ, with and without AWD) it writes a merge config, runs the product's
 * command line `awd-merge merge CONFIG --json`, loads the merged encoder from the file the CLI wrote and
 * scores it with every task's own head on the held-out digits. Task-vector similarity before and after AWD comes
 * from `awd-merge similarity --json --awd`. Writes docs/merge-quality.{md,json,svg,png} (or --out).
 */
import { execFile } from 'node:child_process';
import { existsSync, promises as fsp, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { promisify } from 'node:util';
import { DEFAULT_ZOO_FOLDER } from './zooPaths';
import { selectDigits, IMAGE_PIXELS } from './digits';
import { classifierAccuracy, type DenseLayer, type LabelledData } from './mlp';
import { taskInputs } from './tasks';
import { startTfjs } from './tfjsRuntime';
import { encoderLayerNames, readDenseLayers, readTestData } from './zooFiles';
import { MANIFEST_FILE, type ZooManifest } from './zooBuilder';
import { evaluationGrid, gridPoints, mergeConfigFor, type GridPoint } from './mergeGrid';
import { accuracySvg, renderSvgToPng, type PlotPanel } from './accuracyPlot';
import { mergeQualityMarkdown } from './mergeQualityReport';

const runFile = promisify(execFile);
const PROJECT_ROOT = join(__dirname, '..', '..');

export interface PointResult {
  readonly method: string;
  readonly label: string;
  readonly density: number | null;
  readonly lambda: number;
  readonly awd: boolean;
  /** Accuracy per task (in the order of `tasks`), 0..1. */
  readonly accuracies: number[];
  readonly average: number;
  /** Mean over tasks of accuracy / fine-tuned accuracy. */
  readonly normalized: number;
  /** Seconds the merge CLI reported for the merge itself. */
  readonly merge_seconds: number;
}

export interface EvaluationResult {
  readonly quick: boolean;
  readonly tasks: string[];
  readonly test_images: number;
  readonly cli: string;
  readonly fine_tuned: number[];
  readonly probe: number[];
  /** Base encoder with each task's fine-tuned head: λ = 0 of every method. */
  readonly base_with_task_heads: number[];
  readonly similarity: {
    readonly mean_abs_cos_before: number;
    readonly mean_abs_cos_after: number;
    readonly delta_norm_relative: number;
    readonly cos_before: number[][];
    readonly cos_after: number[][];
  };
  readonly grids: readonly { readonly method: string; readonly label: string; readonly density: number | null; readonly lambdas: readonly number[] }[];
  readonly points: PointResult[];
  readonly seconds: number;
}

interface CliCommand {
  readonly file: string;
  readonly prefix: readonly string[];
  readonly description: string;
}

function newestModification(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestModification(path) : statSync(path).mtimeMs);
  }
  return newest;
}

/**
 * The product's CLI: `--cli PATH` when given; else dist/cli.js when it is newer than every source file it is built
 * from (a stale bundle would test old code); else the TypeScript entry through tsx.
 */
function resolveCli(explicit: string | undefined): CliCommand {
  if (explicit) return { file: process.execPath, prefix: [resolve(explicit)], description: relative(PROJECT_ROOT, resolve(explicit)) };
  const bundle = join(PROJECT_ROOT, 'dist', 'cli.js');
  if (existsSync(bundle) && statSync(bundle).mtimeMs >= newestModification(join(PROJECT_ROOT, 'src'))) {
    return { file: process.execPath, prefix: [bundle], description: 'dist/cli.js' };
  }
  return { file: process.execPath, prefix: ['--import', 'tsx', join(PROJECT_ROOT, 'src', 'cli', 'main.ts')], description: 'src/cli/main.ts (through tsx)' };
}

async function runCli(cli: CliCommand, args: readonly string[]): Promise<unknown> {
  try {
    const { stdout } = await runFile(cli.file, [...cli.prefix, ...args], { cwd: PROJECT_ROOT, maxBuffer: 64 << 20 });
    return JSON.parse(stdout) as unknown;
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`awd-merge ${args.join(' ')} failed: ${err.stderr?.trim() || err.message}`);
  }
}

interface MergeJson {
  readonly files: string[];
  readonly seconds: number;
  readonly awd?: { readonly mean_abs_cos_before: number; readonly mean_abs_cos_after: number; readonly delta_norm_relative: number };
}

interface SimilarityJson {
  readonly mean_abs_cos: number;
  readonly cosine: number[][];
  readonly awd?: { readonly mean_abs_cos_before: number; readonly mean_abs_cos_after: number; readonly delta_norm_relative: number; readonly cos_after: number[][] };
}

const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

export interface EvaluateOptions {
  readonly quick: boolean;
  readonly zoo: string;
  readonly cli?: string;
  /** Keep the configs and merged files (in the returned work folder) instead of deleting them. */
  readonly keep?: boolean;
  readonly log?: (line: string) => void;
}

/** Runs the whole grid and returns the numbers (writes nothing outside a temporary work folder). */
export async function evaluateZoo(options: EvaluateOptions): Promise<EvaluationResult> {
  const log = options.log ?? ((line: string) => console.log(line));
  const started = performance.now();
  const zoo = resolve(options.zoo);
  const manifest = JSON.parse(await fsp.readFile(join(zoo, MANIFEST_FILE), 'utf8')) as ZooManifest;
  const taskNames = manifest.tasks.map((t) => t.name);
  const cli = resolveCli(options.cli);
  await startTfjs();

  const stored = await readTestData(join(zoo, 'data', 'test.safetensors'));
  // --quick scores the first 500 held-out images: a CI smoke test, not a measurement.
  const testImages = options.quick ? Math.min(500, stored.digits.count) : stored.digits.count;
  const digits = selectDigits(stored.digits, Array.from({ length: testImages }, (_, i) => i));
  const layerNames = encoderLayerNames(manifest.settings.hiddenSizes.length);
  const data: LabelledData[] = [];
  const heads: DenseLayer[] = [];
  const probeHeads: DenseLayer[] = [];
  const fineTuned: number[] = [];
  for (const name of taskNames) {
    const task = stored.tasks.find((t) => t.name === name);
    if (!task) throw new Error(`${zoo}/data/test.safetensors holds no transform for task ${name}`);
    const { inputs, labels } = taskInputs(task, digits);
    const d: LabelledData = { inputs, features: IMAGE_PIXELS, labels, classes: task.classes };
    data.push(d);
    heads.push((await readDenseLayers(join(zoo, name, 'head.safetensors'), ['head']))[0]!);
    probeHeads.push((await readDenseLayers(join(zoo, name, 'probe_head.safetensors'), ['head']))[0]!);
    fineTuned.push(classifierAccuracy(await readDenseLayers(join(zoo, name, 'model.safetensors'), layerNames), heads[heads.length - 1]!, d));
  }
  const baseEncoder = await readDenseLayers(join(zoo, 'base', 'model.safetensors'), layerNames);
  const score = (encoder: readonly DenseLayer[], withHeads: readonly DenseLayer[]): number[] => data.map((d, i) => classifierAccuracy(encoder, withHeads[i]!, d));
  const probe = score(baseEncoder, probeHeads);
  const baseWithTaskHeads = score(baseEncoder, heads);
  log(`fine-tuned average ${(mean(fineTuned) * 100).toFixed(2)}%, linear probes ${(mean(probe) * 100).toFixed(2)}%, base encoder + task heads ${(mean(baseWithTaskHeads) * 100).toFixed(2)}% (${testImages} test images, CLI: ${cli.description})`);

  const modelPaths = taskNames.map((n) => join(zoo, n));
  const similarity = (await runCli(cli, ['similarity', '--base', join(zoo, 'base'), ...modelPaths, '--json', '--awd'])) as SimilarityJson;
  if (!similarity.awd) throw new Error('awd-merge similarity --awd returned no AWD section');
  log(`mean |cos| of the task vectors: ${similarity.awd.mean_abs_cos_before.toFixed(4)} → ${similarity.awd.mean_abs_cos_after.toFixed(4)} after AWD`);

  const grids = evaluationGrid(options.quick);
  const work = await fsp.mkdtemp(join(tmpdir(), 'awd-merge-eval-'));
  const points: PointResult[] = [];
  try {
    for (const [index, point] of gridPoints(grids).entries()) {
      const name = `${point.grid.method}${point.awd ? '-awd' : ''}-lambda${point.lambda}`;
      const configPath = join(work, `${name}.merge.json`);
      const outPath = join(work, name, 'model.safetensors');
      await fsp.writeFile(configPath, `${JSON.stringify(mergeConfigFor(point, join(zoo, 'base'), modelPaths, outPath), null, 2)}\n`);
      const merged = (await runCli(cli, ['merge', configPath, '--json'])) as MergeJson;
      const written = merged.files[0];
      if (written === undefined) throw new Error(`awd-merge merge ${configPath} reported no output file`);
      const accuracies = score(await readDenseLayers(written, layerNames), heads);
      const result = pointResult(point, accuracies, fineTuned, merged.seconds);
      points.push(result);
      log(`[${index + 1}] ${point.grid.label.padEnd(26)} ${point.awd ? '+AWD' : '    '} λ=${String(point.lambda).padEnd(4)} average ${(result.average * 100).toFixed(2)}%  normalised ${(result.normalized * 100).toFixed(2)}%`);
      if (!options.keep) await fsp.rm(join(work, name), { recursive: true, force: true });
    }
  } finally {
    if (!options.keep) await fsp.rm(work, { recursive: true, force: true });
    else log(`configs and merged models kept in ${work}`);
  }
  return {
    quick: options.quick,
    tasks: taskNames,
    test_images: testImages,
    cli: cli.description,
    fine_tuned: fineTuned,
    probe,
    base_with_task_heads: baseWithTaskHeads,
    similarity: {
      mean_abs_cos_before: similarity.awd.mean_abs_cos_before,
      mean_abs_cos_after: similarity.awd.mean_abs_cos_after,
      delta_norm_relative: similarity.awd.delta_norm_relative,
      cos_before: similarity.cosine,
      cos_after: similarity.awd.cos_after,
    },
    grids: grids.map((g) => ({ method: g.method, label: g.label, density: g.density ?? null, lambdas: g.lambdas })),
    points,
    seconds: (performance.now() - started) / 1000,
  };
}

function pointResult(point: GridPoint, accuracies: number[], fineTuned: readonly number[], seconds: number): PointResult {
  return {
    method: point.grid.method,
    label: point.grid.label,
    density: point.grid.density ?? null,
    lambda: point.lambda,
    awd: point.awd,
    accuracies,
    average: mean(accuracies),
    normalized: mean(accuracies.map((a, i) => a / fineTuned[i]!)),
    merge_seconds: seconds,
  };
}

/** The plot's panels: average accuracy against λ per method, without and with AWD. */
export function plotPanels(result: EvaluationResult): PlotPanel[] {
  return result.grids.map((g: { method: string; label: string }) => ({
    title: g.label,
    series: [false, true].map((awd) => ({
      label: awd ? 'with AWD' : 'without AWD',
      dashed: awd,
      color: awd ? '#d95f02' : '#1b6ca8',
      // λ = 0 is θ₀ for every method, with or without AWD: the curves start from the unmerged base.
      points: [
        [0, mean(result.base_with_task_heads) * 100] as const,
        ...result.points.filter((p) => p.method === g.method && p.awd === awd).map((p) => [p.lambda, p.average * 100] as const),
      ],
    })),
  }));
}

async function main(args: readonly string[]): Promise<number> {
  let quick = false;
  let keep = false;
  let out: string | undefined;
  let zoo = DEFAULT_ZOO_FOLDER;
  let cli: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const next = (): string => {
      const v = args[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--quick') quick = true;
    else if (a === '--keep') keep = true;
    else if (a === '--out') out = resolve(next());
    else if (a === '--zoo') zoo = resolve(next());
    else if (a === '--cli') cli = next();
    else {
      process.stderr.write(
        'usage: npm run eval -- [--quick] [--out DIR] [--zoo DIR] [--cli PATH] [--keep]\n' +
          '  --quick  one λ per method on 500 test images (CI); writes files only with --out\n' +
          '  --out    folder for merge-quality.{md,json,svg,png} (default docs/ for the full grid)\n',
      );
      return a === '--help' ? 0 : 2;
    }
  }
  if (!existsSync(join(zoo, MANIFEST_FILE))) throw new Error(`${zoo} holds no ${MANIFEST_FILE}; run npm run zoo first`);
  const result = await evaluateZoo({ quick, zoo, cli, keep });
  const markdown = mergeQualityMarkdown(result);
  process.stdout.write(`\n${markdown}`);
  out ??= quick ? undefined : join(PROJECT_ROOT, 'docs');
  if (out) {
    await fsp.mkdir(out, { recursive: true });
    await fsp.writeFile(join(out, 'merge-quality.md'), markdown);
    await fsp.writeFile(join(out, 'merge-quality.json'), `${JSON.stringify({ ...result, seconds: Number(result.seconds.toFixed(1)) }, null, 2)}\n`);
    const svg = accuracySvg(`Merging ${result.tasks.length} MLPs fine-tuned on MNIST tasks: average accuracy vs λ`, plotPanels(result), [
      { label: `fine-tuned ${(mean(result.fine_tuned) * 100).toFixed(1)}%`, value: mean(result.fine_tuned) * 100 },
      { label: `no merge (λ = 0) ${(mean(result.base_with_task_heads) * 100).toFixed(1)}%`, value: mean(result.base_with_task_heads) * 100 },
    ]);
    await fsp.writeFile(join(out, 'merge-quality.svg'), svg);
    const png = join(out, 'merge-quality.png');
    if (quick) console.log(`wrote ${join(out, 'merge-quality.md')} (no PNG in --quick)`);
    else if (renderSvgToPng(svg, png)) console.log(`wrote ${join(out, 'merge-quality.md')} and ${png}`);
    else console.log(`wrote ${join(out, 'merge-quality.md')}; no PNG: Chromium not found (set CHROMIUM_PATH)`);
  }
  console.log(`evaluation took ${result.seconds.toFixed(1)} s`);
  return 0;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: unknown) => {
      process.stderr.write(`error: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exit(1);
    },
  );
}
