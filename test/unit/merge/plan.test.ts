// The merge plan: every check of merge-config.md before any tensor data is read, all problems at once.
import { strict as assert } from 'node:assert';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { AwdError, AwdErrorList } from '../../../src/core/errors';
import type { Checkpoint, DType, TensorInfo } from '../../../src/core/formats/types';
import { parseMergeConfig } from '../../../src/core/config/load';
import { ConfigProblem } from '../../../src/core/config/problem';
import { planMerge, planSimilarity, type PlanOptions } from '../../../src/core/merge/plan';

const DTYPE_BYTES: Record<DType, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, F8_E4M3: 1, F8_E5M2: 1, I64: 8, I32: 4, I16: 2, I8: 1, U64: 8, U32: 4, U16: 2, U8: 1, BOOL: 1 };

type Spec = [name: string, dtype: DType, shape: number[]];

/** A checkpoint that knows its header only: any data read fails the test, proving planning reads none. */
class HeaderOnlyCheckpoint implements Checkpoint {
  readonly format = 'safetensors' as const;
  readonly metadata = {};
  readonly tensors: TensorInfo[];
  closed = 0;
  constructor(
    readonly path: string,
    specs: readonly Spec[],
    readonly files: readonly string[] = [path],
  ) {
    this.tensors = specs.map(([name, dtype, shape]) => {
      const elements = shape.reduce((a, b) => a * b, 1);
      return { name, dtype, shape, elements, bytes: elements * DTYPE_BYTES[dtype] };
    });
  }
  tensor(name: string): TensorInfo | undefined {
    return this.tensors.find((t) => t.name === name);
  }
  readFloat32(): Promise<Float32Array> {
    throw new Error('tensor data read during planning');
  }
  readBytes(): Promise<Uint8Array> {
    throw new Error('tensor data read during planning');
  }
  close(): Promise<void> {
    this.closed++;
    return Promise.resolve();
  }
}

const BASE: Spec[] = [
  ['embed.weight', 'BF16', [10, 4]],
  ['layer.0.weight', 'F32', [4, 4]],
  ['layer.0.bias', 'F16', [4]],
  ['position_ids', 'I64', [1, 10]],
  ['head.weight', 'F8_E4M3', [4, 2]],
];

/** A project folder with empty files standing for checkpoints, and an opener that serves header-only doubles. */
function project(checkpoints: Record<string, Spec[]>): { dir: string; opened: HeaderOnlyCheckpoint[]; options: PlanOptions; calls: string[] } {
  const dir = mkdtempSync(path.join(tmpdir(), 'awd-plan-'));
  const opened: HeaderOnlyCheckpoint[] = [];
  const calls: string[] = [];
  for (const rel of Object.keys(checkpoints)) {
    mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    writeFileSync(path.join(dir, rel), '');
  }
  const options: PlanOptions = {
    open: (file) => {
      calls.push(file);
      const rel = path.relative(dir, file);
      const specs = checkpoints[rel];
      if (!specs) return Promise.reject(new AwdError('not a safetensors file: header length exceeds the file size', { file, fix: 'Re-export the checkpoint' }));
      const cp = new HeaderOnlyCheckpoint(file, specs);
      opened.push(cp);
      return Promise.resolve(cp);
    },
  };
  return { dir, opened, options, calls };
}

function config(dir: string, text: string) {
  return parseMergeConfig(text, path.join(dir, 'merge.yaml'));
}

async function planProblems(promise: Promise<unknown>): Promise<AwdError[]> {
  try {
    await promise;
  } catch (e) {
    assert.ok(e instanceof AwdErrorList, `expected an AwdErrorList, got ${String(e)}`);
    return [...e.problems];
  }
  assert.fail('the plan succeeded, but problems were expected');
}

const TA = `merge_method: task_arithmetic
base_model: base.safetensors
models:
  - model: a.safetensors
  - model: b.safetensors
    parameters: { weight: 0.5 }
`;

void describe('planMerge', () => {
  void it('plans every base tensor in base order: floats merged, integer buffers copied, dtypes decided', async () => {
    const p = project({ 'base.safetensors': BASE, 'a.safetensors': BASE, 'b.safetensors': BASE });
    const plan = await planMerge(config(p.dir, TA), p.options);
    assert.deepEqual(
      plan.tensors.map((t) => [t.name, t.action, t.sourceDtype, t.outDtype, t.shape, t.elements]),
      [
        ['embed.weight', 'merge', 'BF16', 'BF16', [10, 4], 40],
        ['layer.0.weight', 'merge', 'F32', 'F32', [4, 4], 16],
        ['layer.0.bias', 'merge', 'F16', 'F16', [4], 4],
        ['position_ids', 'copy', 'I64', 'I64', [1, 10], 10],
        ['head.weight', 'merge', 'F8_E4M3', 'F32', [4, 2], 8], // fp8 cannot be written back: float32
      ],
    );
    assert.deepEqual(plan.weights, [1, 0.5]);
    assert.equal(plan.base?.path, path.join(p.dir, 'base.safetensors'));
    assert.deepEqual(plan.models.map((m) => path.basename(m.path)), ['a.safetensors', 'b.safetensors']);
    assert.equal(plan.outPath, path.join(p.dir, 'merged/model.safetensors'));
    assert.equal(plan.configFile, path.join(p.dir, 'merge.yaml'));
    assert.deepEqual(plan.warnings, []);
    await plan.close();
    assert.deepEqual(p.opened.map((c) => c.closed), [1, 1, 1]);
  });

  void it('casts merged tensors to the configured dtype; copies keep theirs', async () => {
    const p = project({ 'base.safetensors': BASE, 'a.safetensors': BASE, 'b.safetensors': BASE });
    const plan = await planMerge(config(p.dir, `${TA}dtype: bfloat16\n`), p.options);
    assert.deepEqual(plan.tensors.map((t) => t.outDtype), ['BF16', 'BF16', 'BF16', 'I64', 'BF16']);
  });

  void it('applies include/exclude globs (* crosses dots)', async () => {
    const p = project({ 'base.safetensors': BASE, 'a.safetensors': BASE, 'b.safetensors': BASE });
    const plan = await planMerge(config(p.dir, `${TA}include: ["layer.*", "*.weight"]\nexclude: ["*.bias", "head.*"]\n`), p.options);
    assert.deepEqual(plan.tensors.map((t) => t.action), ['merge', 'merge', 'copy', 'copy', 'copy']);
  });

  void it('resolves densities per model: own value, else global, else 1.0', async () => {
    const p = project({ 'base.safetensors': BASE, 'a.safetensors': BASE, 'b.safetensors': BASE });
    const ties = `merge_method: ties\nbase_model: base.safetensors\nmodels:\n  - model: a.safetensors\n    parameters: { density: 0.3 }\n  - model: b.safetensors\n`;
    assert.deepEqual((await planMerge(config(p.dir, `${ties}parameters: { density: 0.7 }\n`), p.options)).densities, [0.3, 0.7]);
    assert.deepEqual((await planMerge(config(p.dir, ties), p.options)).densities, [0.3, 1]);
  });

  void it('reports every problem at once, before reading any data, and closes what it opened', async () => {
    const missingInA = BASE.filter(([n]) => n !== 'layer.0.bias');
    const reshapedB: Spec[] = BASE.map(([n, d, s]) => (n === 'layer.0.weight' ? [n, d, [2, 8]] : [n, d, s]));
    const intInC: Spec[] = BASE.map(([n, d, s]) => (n === 'embed.weight' ? [n, 'I32', s] : [n, d, s]));
    const base = project({ 'base.safetensors': BASE, 'a.safetensors': missingInA, 'b.safetensors': reshapedB, 'c.safetensors': intInC });
    writeFileSync(path.join(base.dir, 'broken.safetensors'), 'garbage');
    const text = `merge_method: ties
base_model: base.safetensors
models:
  - model: a.safetensors
  - model: b.safetensors
  - model: c.safetensors
  - model: gone.safetensors
  - model: broken.safetensors
include: ["*", "position_ids", "no.such.tensor", "nothing.*"]
out_path: a.safetensors
`;
    const problems = await planProblems(planMerge(config(base.dir, text), base.options));
    const messages = problems.map((q) => q.message);
    const expect = [
      /tensor "position_ids".*is I64 in the base model, not floating point, and cannot be merged.*at include\[1\] \(line 9/,
      /include names tensor "no\.such\.tensor", which the base model does not have.*at include\[2\]/,
      /tensor "layer\.0\.bias".*model 1 has no tensor "layer\.0\.bias".*at models\[0\]\.model \(line 4/,
      /tensor "layer\.0\.weight".*model 2 has shape \[2, 8\], the base model \[4, 4\].*at models\[1\]\.model \(line 5/,
      /tensor "embed\.weight".*is I32 in model 3, not floating point/,
      /model 4 not found: .*gone\.safetensors.*at models\[3\]\.model \(line 7/,
      /model 5 cannot be read: .*broken\.safetensors: not a safetensors file.*at models\[4\]\.model/,
      /the output would overwrite model 1 .*at out_path/,
    ];
    for (const re of expect) assert.ok(messages.some((m) => re.test(m)), `no problem matches ${String(re)}:\n${messages.join('\n')}`);
    assert.equal(problems.length, expect.length, messages.join('\n'));
    for (const q of problems) {
      assert.ok(q instanceof ConfigProblem);
      assert.equal(q.file, path.join(base.dir, 'merge.yaml'));
      assert.ok(q.fix, `no fix in: ${q.message}`);
      assert.ok(q.line !== undefined, `no line in: ${q.message}`);
    }
    assert.equal(base.opened.length, 4);
    assert.deepEqual(base.opened.map((c) => c.closed), [1, 1, 1, 1]);
  });

  void it('warns about wildcard includes that match nothing and tensors only a model has', async () => {
    const extra: Spec[] = [...BASE, ['lora.A', 'F32', [2, 2]]];
    const p = project({ 'base.safetensors': BASE, 'a.safetensors': extra, 'b.safetensors': BASE });
    const plan = await planMerge(config(p.dir, `${TA}include: ["*", "vision.*"]\n`), p.options);
    assert.equal(plan.warnings.length, 2);
    assert.match(plan.warnings[0]!.message, /include pattern "vision\.\*" matches no tensor/);
    assert.match(plan.warnings[1]!.message, /model 1 has 1 tensor that the base model lacks \("lora\.A"\); they are not in the output/);
  });

  void it('warns when the base model is also listed as a model', async () => {
    const p = project({ 'base.safetensors': BASE, 'a.safetensors': BASE });
    const plan = await planMerge(config(p.dir, TA.replace('b.safetensors', 'base.safetensors')), p.options);
    assert.equal(plan.warnings.length, 1);
    assert.match(plan.warnings[0]!.message, /model 2 is the base model itself, so its task vector is zero.*line 5/);
  });

  void it('refuses a selection with nothing to merge', async () => {
    const p = project({ 'base.safetensors': BASE, 'a.safetensors': BASE, 'b.safetensors': BASE });
    const problems = await planProblems(planMerge(config(p.dir, `${TA}exclude: ["*"]\n`), p.options));
    assert.equal(problems.length, 1);
    assert.match(problems[0]!.message, /select no floating-point tensor of the base model, so there is nothing to merge/);
  });

  void it('summarises a model that misses many tensors instead of listing them all', async () => {
    const many: Spec[] = Array.from({ length: 30 }, (_, i) => [`t.${i}`, 'F32', [2]]);
    const p = project({ 'base.safetensors': many, 'a.safetensors': [], 'b.safetensors': many });
    const problems = await planProblems(planMerge(config(p.dir, TA), p.options));
    assert.equal(problems.length, 11);
    assert.match(problems[10]!.message, /… and 20 more tensor problems in model 1/);
  });

  void it('protects the inputs from the output: same file, inside an input folder, shard names, record, folder', async () => {
    const p = project({ 'base.safetensors': BASE, 'hf/a/model.safetensors': BASE, 'b.safetensors': BASE, 'out/m-00001-of-00002.safetensors': BASE });
    const hf = `merge_method: task_arithmetic\nbase_model: base.safetensors\nmodels:\n  - model: hf/a/model.safetensors\n  - model: b.safetensors\n`;
    // Inside the folder of an input given as a folder.
    const inFolder = p.options.open!;
    const folderOpts: PlanOptions = {
      open: (file) => inFolder(file.endsWith('hf/a') ? path.join(file, 'model.safetensors') : file),
    };
    const folderCfg = hf.replace('hf/a/model.safetensors', 'hf/a') + 'out_path: hf/a/merged.safetensors\n';
    let problems = await planProblems(planMerge(config(p.dir, folderCfg), folderOpts));
    assert.match(problems.map((q) => q.message).join('\n'), /out_path lies inside the folder of model 1/);
    // A file of the input (the folder's model.safetensors) as the output.
    problems = await planProblems(planMerge(config(p.dir, `${hf}out_path: hf/a/model.safetensors\n`), p.options));
    assert.match(problems[0]!.message, /the output would overwrite model 1/);
    // Shards of a sharded output would overwrite an input named like one.
    const sharded = hf.replace('b.safetensors', 'out/m-00001-of-00002.safetensors') + 'out_path: out/m.safetensors\nout_shard_size: 1MB\n';
    problems = await planProblems(planMerge(config(p.dir, sharded), p.options));
    assert.match(problems[0]!.message, /the output would overwrite model 2/);
    // Without sharding the same out_path is fine.
    await planMerge(config(p.dir, hf.replace('b.safetensors', 'out/m-00001-of-00002.safetensors') + 'out_path: out/m.safetensors\n'), p.options);
    // The record beside the output counts as output.
    writeFileSync(path.join(p.dir, 'x.awd-record.json'), '');
    const recordClash = `merge_method: task_arithmetic\nbase_model: base.safetensors\nmodels:\n  - model: x.awd-record.json\n  - model: b.safetensors\nout_path: x.safetensors\n`;
    const recOpts: PlanOptions = { open: (file) => Promise.resolve(new HeaderOnlyCheckpoint(file, BASE)) };
    problems = await planProblems(planMerge(config(p.dir, recordClash), recOpts));
    assert.match(problems[0]!.message, /the output would overwrite model 1/);
    // An out_path that is an existing folder.
    mkdirSync(path.join(p.dir, 'taken.safetensors'));
    problems = await planProblems(planMerge(config(p.dir, `${hf}out_path: taken.safetensors\n`), p.options));
    assert.match(problems[0]!.message, /out_path is a folder/);
  });

  void it('linear needs no base: it is not opened, and copies come from the first model', async () => {
    const p = project({ 'a.safetensors': BASE, 'b.safetensors': BASE });
    const text = `merge_method: linear\nbase_model: base.safetensors\nmodels:\n  - model: a.safetensors\n  - model: b.safetensors\n`;
    const loaded = config(p.dir, text);
    const plan = await planMerge(loaded, p.options);
    assert.equal(plan.base, undefined);
    assert.deepEqual(p.calls.map((c) => path.basename(c)), ['a.safetensors', 'b.safetensors']);
    assert.deepEqual(plan.tensors.map((t) => t.action), ['merge', 'merge', 'merge', 'copy', 'merge']);
    assert.match(plan.warnings[0]!.message, /base_model is ignored by linear/);
    const reshaped: Spec[] = BASE.map(([n, d, s]) => (n === 'layer.0.bias' ? [n, d, [5]] : [n, d, s]));
    const q = project({ 'a.safetensors': BASE, 'b.safetensors': reshaped });
    const problems = await planProblems(planMerge(config(q.dir, text), q.options));
    assert.equal(problems.length, 1);
    assert.match(problems[0]!.message, /model 2 has shape \[5\], the first model \[4\]/);
  });

  void it('reports the base model problems too, and cannot check tensors without it', async () => {
    const p = project({ 'a.safetensors': BASE, 'b.safetensors': BASE });
    const problems = await planProblems(planMerge(config(p.dir, TA), p.options));
    assert.equal(problems.length, 1);
    assert.match(problems[0]!.message, /base model not found: .*base\.safetensors.*at base_model \(line 2/);
  });
});

void describe('planSimilarity', () => {
  void it('selects float tensors present in every model; copies the rest', async () => {
    const p = project({ 'base.safetensors': BASE, 'a.safetensors': BASE, 'b.safetensors': BASE });
    const plan = await planSimilarity(path.join(p.dir, 'base.safetensors'), [path.join(p.dir, 'a.safetensors'), path.join(p.dir, 'b.safetensors')], { exclude: ['embed.*'] }, p.options);
    assert.deepEqual(plan.tensors.map((t) => t.action), ['copy', 'merge', 'merge', 'copy', 'merge']);
    assert.equal(plan.models.length, 2);
    await plan.close();
  });

  void it('reports missing tensors and files with the checkpoint path', async () => {
    const p = project({ 'base.safetensors': BASE, 'a.safetensors': BASE.slice(1) });
    const problems = await planProblems(planSimilarity(path.join(p.dir, 'base.safetensors'), [path.join(p.dir, 'a.safetensors'), path.join(p.dir, 'nope.safetensors')], {}, p.options));
    assert.equal(problems.length, 2);
    assert.ok(problems.every((q) => !(q instanceof ConfigProblem)));
    assert.equal(problems.find((q) => q.tensor === 'embed.weight')?.file, path.join(p.dir, 'a.safetensors'));
    assert.ok(problems.some((q) => /model 2 not found/.test(q.message)));
  });
});
