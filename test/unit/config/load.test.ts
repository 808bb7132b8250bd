// Merge config loading: defaults, path resolution, every validation rule of merge-config.md, line numbers, round trip.
import { strict as assert } from 'node:assert';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { AwdError, AwdErrorList } from '../../../src/core/errors';
import { loadMergeConfig, parseByteSize, parseMergeConfig, serializeMergeConfig } from '../../../src/core/config/load';
import { ConfigProblem } from '../../../src/core/config/problem';

const FILE = '/projects/demo/merge.yaml';

/** The problems a config text produces (fails the test when it loads). */
function problemsOf(text: string, file = FILE): ConfigProblem[] {
  try {
    parseMergeConfig(text, file);
  } catch (e) {
    assert.ok(e instanceof AwdErrorList, `expected an AwdErrorList, got ${String(e)}`);
    return e.problems.map((p) => {
      assert.ok(p instanceof ConfigProblem);
      return p;
    });
  }
  assert.fail('the config loaded, but problems were expected');
}

function onlyProblem(text: string): ConfigProblem {
  const ps = problemsOf(text);
  assert.equal(ps.length, 1, ps.map((p) => p.message).join('\n'));
  return ps[0]!;
}

const MINIMAL = `merge_method: task_arithmetic
base_model: models/base.safetensors
models:
  - model: models/a.safetensors
  - model: models/b.safetensors
`;

// The example of merge-config.md, verbatim.
const SPEC_EXAMPLE = `merge_method: task_arithmetic      # task_arithmetic | ties | dare_linear | dare_ties | linear (weighted average, no base needed)
base_model: models/base.safetensors
models:
  - model: models/rot90.safetensors
    parameters: { weight: 1.0 }     # per-model; density too for ties/dare (fraction of entries kept, 0..1]
  - model: models/invert            # a folder: model.safetensors, or a sharded *.safetensors.index.json, or a single .bin/.pt
parameters:                         # global; a per-model value overrides it
  lambda: 0.3                       # scale of the merged task vector (mergekit: default 1.0)
  density: 0.2                      # ties/dare default when a model gives none
  normalize: true                   # ties/dare_ties: divide by the summed weights of the agreeing models (mergekit default true for ties)
  trim_scope: tensor                # ties/dare magnitude trim per tensor (mergekit) or over the whole model ("model", as in the TIES paper)
awd:                                # present => disentangle task vectors before the merge method runs (see awd.md)
  alpha: 0.1
  learning_rate: 0.01
  iterations: 300
  granularity: model                # model | tensor
  norm: l2                          # l2 | l2_squared
include: ["*"]                      # tensor-name globs the merge applies to; the rest is copied from base_model
exclude: []
dtype: float32                      # output dtype: float32 | float16 | bfloat16 (default: the base model's)
random_seed: 0                      # dare: the masks are a pure function of (seed, tensor name, element index)
out_path: merged/model.safetensors  # not a mergekit key (mergekit takes it on its command line)
out_shard_size: 5GB                 # shard into model-0000i-of-0000N.safetensors + index when larger
`;

void describe('merge config: defaults and paths', () => {
  void it('fills in every default of merge-config.md and mergekit', () => {
    const { config, warnings } = parseMergeConfig(MINIMAL, FILE);
    assert.deepEqual(warnings, []);
    assert.deepEqual(config, {
      merge_method: 'task_arithmetic',
      base_model: '/projects/demo/models/base.safetensors',
      models: [
        { model: '/projects/demo/models/a.safetensors', parameters: { weight: 1 } },
        { model: '/projects/demo/models/b.safetensors', parameters: { weight: 1 } },
      ],
      parameters: { lambda: 1, normalize: true, trim_scope: 'tensor' },
      include: ['*'],
      exclude: [],
      random_seed: 0,
      out_path: '/projects/demo/merged/model.safetensors',
    });
  });

  void it('fills density 1.0 (mergekit) for the methods that use it, and AWD defaults for an empty awd block', () => {
    const { config } = parseMergeConfig(MINIMAL.replace('task_arithmetic', 'ties') + 'awd:\n', FILE);
    assert.equal(config.parameters.density, 1);
    assert.equal(config.parameters.normalize, true);
    assert.deepEqual(config.awd, { alpha: 0.1, learning_rate: 0.01, iterations: 300, granularity: 'model', norm: 'l2' });
    const partial = parseMergeConfig(MINIMAL + 'awd: { alpha: 0.5, norm: l2_squared }\n', FILE).config;
    assert.deepEqual(partial.awd, { alpha: 0.5, learning_rate: 0.01, iterations: 300, granularity: 'model', norm: 'l2_squared' });
    assert.equal(parseMergeConfig(MINIMAL, FILE).config.awd, undefined);
  });

  void it('reads the example of merge-config.md as written', () => {
    const { config, warnings } = parseMergeConfig(SPEC_EXAMPLE, FILE);
    assert.equal(config.parameters.lambda, 0.3);
    assert.equal(config.parameters.density, 0.2);
    assert.equal(config.models[1]!.model, '/projects/demo/models/invert');
    assert.equal(config.out_shard_size, 5e9);
    assert.equal(config.dtype, 'float32');
    // task_arithmetic does not use density / trim_scope / normalize / random_seed: said, not fatal.
    assert.deepEqual(warnings.map((w) => w.pointer).sort(), ['/parameters/density', '/parameters/normalize', '/parameters/trim_scope', '/random_seed']);
  });

  void it('resolves relative paths against the config file folder and keeps absolute ones', () => {
    const text = `merge_method: task_arithmetic\nbase_model: ../shared/base\nmodels:\n  - model: /data/ft.safetensors\n  - model: ./ft2\nout_path: out/m.safetensors\n`;
    const { config, dir, file } = parseMergeConfig(text, '/a/b/c/merge.yaml');
    assert.equal(file, '/a/b/c/merge.yaml');
    assert.equal(dir, '/a/b/c');
    assert.equal(config.base_model, '/a/b/shared/base');
    assert.equal(config.models[0]!.model, '/data/ft.safetensors');
    assert.equal(config.models[1]!.model, '/a/b/c/ft2');
    assert.equal(config.out_path, '/a/b/c/out/m.safetensors');
  });

  void it('loads from disk, YAML and JSON alike, resolving against the file folder', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'awd-cfg-'));
    writeFileSync(path.join(dir, 'm.yaml'), MINIMAL);
    writeFileSync(
      path.join(dir, 'm.json'),
      JSON.stringify({ merge_method: 'task_arithmetic', base_model: 'models/base.safetensors', models: [{ model: 'models/a.safetensors' }, { model: 'models/b.safetensors' }] }, null, '\t'),
    );
    const y = await loadMergeConfig(path.join(dir, 'm.yaml'));
    const j = await loadMergeConfig(path.join(dir, 'm.json'));
    assert.deepEqual(j.config, y.config);
    assert.equal(y.config.base_model, path.join(dir, 'models/base.safetensors'));
    await assert.rejects(loadMergeConfig(path.join(dir, 'missing.yaml')), (e: unknown) => e instanceof AwdError && /merge config not found/.test(e.message));
  });

  void it('parses shard sizes as Hugging Face does (GB = 1e9, GiB = 2^30)', () => {
    assert.equal(parseByteSize('5GB'), 5e9);
    assert.equal(parseByteSize('500MB'), 5e8);
    assert.equal(parseByteSize('1.5 GiB'), 1.5 * 2 ** 30);
    assert.equal(parseByteSize('2kib'), 2048);
    assert.equal(parseByteSize('1234'), 1234);
    assert.equal(parseByteSize(777), 777);
    assert.throws(() => parseByteSize('5 parsecs'), AwdError);
    assert.equal(parseMergeConfig(MINIMAL + 'out_shard_size: 1000000\n', FILE).config.out_shard_size, 1e6);
  });

  void it('accepts and ignores mergekit tokenizer keys and int8_mask, with a warning', () => {
    const { warnings } = parseMergeConfig(MINIMAL + 'tokenizer_source: union\nchat_template: chatml\nparameters: { int8_mask: true }\n', FILE);
    assert.deepEqual(warnings.map((w) => [w.pointer, w.severity]), [
      ['/tokenizer_source', 'warning'],
      ['/chat_template', 'warning'],
      ['/parameters/int8_mask', 'warning'],
    ]);
  });

  void it('lets linear go without a base model and warns when one is given', () => {
    const text = `merge_method: linear\nmodels:\n  - model: a.safetensors\n    parameters: { weight: 2 }\n  - model: b.safetensors\n`;
    assert.equal(parseMergeConfig(text, FILE).config.base_model, undefined);
    const w = parseMergeConfig(text + 'base_model: base.safetensors\n', FILE).warnings;
    assert.deepEqual(w.map((p) => p.pointer), ['/base_model']);
  });
});

void describe('merge config: every problem, with its place and fix', () => {
  void it('density outside (0, 1], per model and global', () => {
    const p = onlyProblem(MINIMAL.replace('task_arithmetic', 'ties').replace('  - model: models/b.safetensors\n', '  - model: models/b.safetensors\n    parameters: { density: 1.5 }\n'));
    assert.equal(p.pointer, '/models/1/parameters/density');
    assert.match(p.message, /density must be in \(0, 1\]; got 1\.5 at models\[1\]\.parameters\.density \(line 6, column 28\)/);
    assert.equal(p.line, 6);
    assert.equal(p.file, FILE);
    assert.ok(p.fix);
    assert.match(onlyProblem(MINIMAL.replace('task_arithmetic', 'dare_ties') + 'parameters: { density: 0 }\n').message, /density must be in \(0, 1\]; got 0 at parameters\.density/);
    assert.match(onlyProblem(MINIMAL.replace('task_arithmetic', 'dare_linear') + 'parameters: { density: -0.2 }\n').message, /got -0\.2/);
  });

  void it('unknown keys at every level, with a suggestion', () => {
    const ps = problemsOf(MINIMAL + 'lamda: 0.3\nparameters: { lamda: 0.3 }\nawd: { alpah: 1 }\n');
    assert.deepEqual(ps.map((p) => p.pointer), ['/lamda', '/parameters/lamda', '/awd/alpah']);
    assert.match(ps[0]!.message, /unknown key "lamda"/);
    assert.match(ps[1]!.fix ?? '', /Did you mean "lambda"\?/);
    assert.match(ps[2]!.fix ?? '', /Did you mean "alpha"\?/);
    assert.equal(ps[0]!.line, 6);
    assert.equal(ps[0]!.column, 1);
    assert.match(onlyProblem(MINIMAL + 'slices: []\n').fix ?? '', /slices are not supported/);
    assert.match(onlyProblem(MINIMAL.replace('  - model: models/a.safetensors\n', '  - model: models/a.safetensors\n    weight: 2\n')).message, /unknown key "weight" at models\[0\]\.weight/);
  });

  void it('missing keys: merge_method, models, base_model (except for linear), model', () => {
    assert.match(onlyProblem('base_model: b\nmodels: [{ model: a }]\n').message, /missing key "merge_method"/);
    assert.match(onlyProblem('merge_method: ties\nbase_model: b\n').message, /missing key "models"/);
    const p = onlyProblem('merge_method: ties\nmodels: [{ model: a }, { model: c }]\n');
    assert.match(p.message, /missing key "base_model": ties works on task vectors/);
    assert.match(p.fix ?? '', /merge_method: linear/);
    assert.match(onlyProblem('merge_method: linear\nmodels: [{ parameters: { weight: 1 } }]\n').message, /missing key "model" in models\[0\]/);
    assert.match(onlyProblem('merge_method: linear\nmodels: []\n').message, /models must list at least 1 entry/);
  });

  void it('wrong types and enum values', () => {
    const ps = problemsOf(MINIMAL.replace('task_arithmetic', 'slerp') + 'include: "*"\nrandom_seed: 1.5\nawd: { granularity: layer, iterations: 10.5 }\nparameters: { normalize: "yes" }\n');
    const byPointer = new Map(ps.map((p) => [p.pointer, p.message]));
    assert.match(byPointer.get('/merge_method') ?? '', /merge_method must be one of task_arithmetic, ties, dare_linear, dare_ties, linear; got "slerp"/);
    assert.match(byPointer.get('/include') ?? '', /include must be a list; got "\*"/);
    assert.match(byPointer.get('/random_seed') ?? '', /random_seed must be an integer; got 1\.5/);
    assert.match(byPointer.get('/awd/granularity') ?? '', /granularity must be one of model, tensor; got "layer"/);
    assert.match(byPointer.get('/awd/iterations') ?? '', /iterations must be an integer/);
    assert.match(byPointer.get('/parameters/normalize') ?? '', /normalize must be a boolean/);
    assert.equal(ps.length, 6);
  });

  void it('awd with fewer than two models, and awd with linear', () => {
    const one = `merge_method: task_arithmetic\nbase_model: b\nmodels: [{ model: a }]\nawd: {}\n`;
    assert.match(onlyProblem(one).message, /awd needs at least two models/);
    const lin = `merge_method: linear\nmodels: [{ model: a }, { model: c }]\nawd:\n`;
    assert.match(onlyProblem(lin).message, /awd needs task vectors, and linear has no base model/);
  });

  void it('weights summing to zero where the method divides by them', () => {
    const lin = `merge_method: linear\nmodels:\n  - { model: a, parameters: { weight: 1 } }\n  - { model: c, parameters: { weight: -1 } }\n`;
    assert.match(onlyProblem(lin).message, /the model weights sum to zero, and linear divides by their sum/);
    const ties = MINIMAL.replace('task_arithmetic', 'ties').replace('  - model: models/b.safetensors\n', '  - model: models/b.safetensors\n    parameters: { weight: -1 }\n');
    assert.match(onlyProblem(ties).message, /ties with normalize: true divides/);
    // Without normalize, and for task arithmetic, a zero sum is legitimate (e.g. a difference of task vectors).
    parseMergeConfig(ties + 'parameters: { normalize: false }\n', FILE);
    parseMergeConfig(ties.replace('ties', 'task_arithmetic'), FILE);
  });

  void it('out_path must name a .safetensors file; out_shard_size must be a size', () => {
    assert.match(onlyProblem(MINIMAL + 'out_path: merged/\n').message, /out_path must end in \.safetensors/);
    assert.match(onlyProblem(MINIMAL + 'out_shard_size: 0\n').message, /out_shard_size must be ≥ 1; got 0/);
    assert.match(onlyProblem(MINIMAL + 'out_shard_size: 0GB\n').message, /at least 1 byte/);
  });

  void it('reports every problem of a document at once, in source order', () => {
    const text = `merge_method: ties
models:
  - model: a.safetensors
    parameters: { density: 2 }
  - model: b.safetensors
    parameters: { weight: x }
parameters: { lamda: 1 }
awd: { norm: l1 }
dtype: fp16
`;
    const ps = problemsOf(text);
    assert.deepEqual(
      ps.map((p) => [p.pointer, p.line]),
      [
        ['', 1], // the missing base_model is placed on the document
        ['/models/0/parameters/density', 4],
        ['/models/1/parameters/weight', 6],
        ['/parameters/lamda', 7],
        ['/awd/norm', 8],
        ['/dtype', 9],
      ],
    );
    assert.match(ps.find((p) => p.pointer === '/dtype')!.fix ?? '', /Did you mean "float16"/);
  });

  void it('syntax errors carry their line', () => {
    const ps = problemsOf('merge_method: ties\nmodels:\n  - model: a\n   bad: [\n');
    assert.ok(ps.length >= 1);
    assert.match(ps[0]!.message, /not valid YAML\/JSON/);
    assert.ok((ps[0]!.line ?? 0) >= 3);
    const dup = problemsOf('merge_method: ties\nmerge_method: linear\nmodels: []\n');
    assert.equal(dup[0]!.line, 2);
  });

  void it('rejects a document that is not a mapping', () => {
    assert.match(onlyProblem('').message, /must be a mapping of keys.*got an empty document/);
    assert.match(onlyProblem('- a\n- b\n').message, /got a list/);
  });

  void it('JSON configs get line numbers too', () => {
    const json = '{\n  "merge_method": "ties",\n  "base_model": "b",\n  "models": [\n    {"model": "a", "parameters": {"density": 7}}\n  ]\n}\n';
    const p = onlyProblem(json);
    assert.equal(p.pointer, '/models/0/parameters/density');
    assert.equal(p.line, 5);
    assert.equal(p.column, 46);
  });
});

void describe('merge config: serialize and load round trip', () => {
  const cases = [
    SPEC_EXAMPLE,
    MINIMAL,
    `merge_method: linear\nmodels:\n  - { model: ../x/a.safetensors, parameters: { weight: 0.25 } }\n  - { model: /abs/b, parameters: { weight: 0.75 } }\ndtype: bfloat16\n`,
    MINIMAL.replace('task_arithmetic', 'dare_ties') + 'parameters: { density: 0.35, lambda: 1e-7, normalize: false }\nrandom_seed: 4294967295\nawd: { granularity: tensor, iterations: 0, alpha: 0 }\ninclude: ["model.*.weight", "lm_head.?"]\nexclude: ["*.bias"]\n',
  ];
  for (const [i, text] of cases.entries()) {
    for (const format of ['yaml', 'json'] as const) {
      void it(`case ${i}, ${format}: load(serialize(c)) == c, written into another folder`, () => {
        const { config } = parseMergeConfig(text, '/projects/demo/merge.yaml');
        const otherDir = '/projects/elsewhere/configs';
        const written = serializeMergeConfig(config, format, otherDir);
        assert.ok(!written.includes('/projects/demo'), 'paths are written relative to the target folder');
        const again = parseMergeConfig(written, path.join(otherDir, `merge.${format}`));
        assert.deepEqual(again.config, config);
        assert.deepEqual(again.warnings.filter((w) => w.severity === 'error'), []);
      });
    }
  }
});
