// The reproducibility record: contents, SHA-256, metadata for the output, and re-running a stored config.
import { strict as assert } from 'node:assert';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { AwdError, AwdErrorList } from '../../../src/core/errors';
import { loadMergeConfig, parseMergeConfig } from '../../../src/core/config/load';
import {
  buildRecord,
  configFromRecord,
  METADATA_CONFIG_KEY,
  METADATA_RECORD_KEY,
  recordFromMetadata,
  recordMetadata,
  recordPathFor,
  recordToJson,
  sha256File,
  type BuildRecordArgs,
} from '../../../src/core/config/record';
import { TOOL_NAME, TOOL_VERSION } from '../../../src/core/version';

const CONFIG = `merge_method: ties
base_model: models/base.safetensors
models:
  - model: models/a.safetensors
    parameters: { weight: 0.7, density: 0.4 }
  - model: models/sharded/model.safetensors.index.json
awd: { iterations: 50 }
out_path: merged/model.safetensors
`;

/** A project with real input files, a loaded config and the arguments the executor would pass. */
function setup(): { dir: string; args: BuildRecordArgs; contents: Map<string, Buffer> } {
  const dir = mkdtempSync(path.join(tmpdir(), 'awd-rec-'));
  const contents = new Map<string, Buffer>();
  const put = (rel: string, bytes: number): string => {
    const file = path.join(dir, rel);
    mkdirSync(path.dirname(file), { recursive: true });
    const data = randomBytes(bytes);
    writeFileSync(file, data);
    contents.set(file, data);
    return file;
  };
  const base = put('models/base.safetensors', 1000);
  const a = put('models/a.safetensors', 5000);
  const index = put('models/sharded/model.safetensors.index.json', 100);
  const s1 = put('models/sharded/model-00001-of-00002.safetensors', 3000);
  const s2 = put('models/sharded/model-00002-of-00002.safetensors', 7);
  const { config, file } = parseMergeConfig(CONFIG, path.join(dir, 'merge.yaml'));
  const digests: Record<string, string> = {};
  const sizes: Record<string, number> = {};
  for (const [f, data] of contents) {
    digests[f] = createHash('sha256').update(data).digest('hex');
    sizes[f] = data.length;
  }
  const args: BuildRecordArgs = {
    config,
    configFile: file,
    recordFile: recordPathFor(config.out_path),
    base: { path: base, files: [base] },
    models: [
      { path: a, files: [a] },
      { path: index, files: [index, s1, s2] },
    ],
    digests,
    sizes,
    outputs: [config.out_path],
    startedAt: new Date('2026-01-02T03:04:05.000Z'),
    finishedAt: new Date('2026-01-02T03:04:07.500Z'),
    awd: { coefficients: new Float64Array([0.25, -0.5]), mean_abs_cos_before: 0.1, loss: [1, 0.5] },
    tensors: [
      { name: 'w', mean: 0.5, std: 1, min: -Infinity, max: 3, nan_count: 2, inf_count: 1, l2_norm: 4 },
      { name: '0', mean: 0, std: 0, min: 0, max: 0, nan_count: 0, inf_count: 0, l2_norm: 0 },
    ],
  };
  return { dir, args, contents };
}

void describe('reproducibility record', () => {
  void it('streams SHA-256 of a file', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'awd-sha-'));
    const data = randomBytes(9 << 20); // more than one read chunk
    writeFileSync(path.join(dir, 'x.bin'), data);
    assert.equal(await sha256File(path.join(dir, 'x.bin')), createHash('sha256').update(data).digest('hex'));
    writeFileSync(path.join(dir, 'empty'), '');
    assert.equal(await sha256File(path.join(dir, 'empty')), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  });

  void it('names the record beside the output', () => {
    assert.equal(recordPathFor('/p/merged/model.safetensors'), '/p/merged/model.awd-record.json');
    assert.equal(recordPathFor('/p/out.safetensors'), '/p/out.awd-record.json');
  });

  void it('holds the config as it ran, inputs with hashes, tool, times, AWD diagnostics and tensor statistics', async () => {
    const { dir, args, contents } = setup();
    const record = buildRecord(args);
    assert.equal(record.format, 'awd-merge-record');
    assert.deepEqual(record.tool, { name: TOOL_NAME, version: TOOL_VERSION });
    assert.equal(record.started_at, '2026-01-02T03:04:05.000Z');
    assert.equal(record.finished_at, '2026-01-02T03:04:07.500Z');
    assert.equal(record.duration_seconds, 2.5);
    assert.equal(record.config_file, '../merge.yaml');
    // Every default filled in, paths relative to the record's folder (merged/).
    assert.deepEqual(record.config, {
      merge_method: 'ties',
      base_model: '../models/base.safetensors',
      models: [
        { model: '../models/a.safetensors', parameters: { weight: 0.7, density: 0.4 } },
        { model: '../models/sharded/model.safetensors.index.json', parameters: { weight: 1 } },
      ],
      parameters: { lambda: 1, density: 1, normalize: true, trim_scope: 'tensor' },
      awd: { alpha: 0.1, learning_rate: 0.01, iterations: 50, granularity: 'model', norm: 'l2' },
      include: ['*'],
      exclude: [],
      random_seed: 0,
      out_path: 'model.safetensors',
    });
    assert.deepEqual(
      record.inputs.map((i) => [i.role, i.index, i.path, i.files.length]),
      [
        ['base', undefined, '../models/base.safetensors', 1],
        ['model', 0, '../models/a.safetensors', 1],
        ['model', 1, '../models/sharded/model.safetensors.index.json', 3],
      ],
    );
    for (const input of record.inputs) {
      for (const f of input.files) {
        const abs = path.resolve(dir, 'merged', f.path);
        assert.equal(f.sha256, await sha256File(abs));
        assert.equal(f.bytes, contents.get(abs)!.length);
      }
    }
    assert.deepEqual(record.outputs, ['model.safetensors']);
    assert.deepEqual(record.awd, { coefficients: [0.25, -0.5], mean_abs_cos_before: 0.1, loss: [1, 0.5] });
    assert.deepEqual(record.tensors.map((t) => t.name), ['w', '0']);
    // JSON keeps non-finite statistics as strings instead of turning them into null.
    const json = JSON.parse(recordToJson(record)) as { tensors: { min: unknown }[] };
    assert.equal(json.tensors[0]!.min, '-Infinity');
  });

  void it('refuses to build a record for an input that was not hashed', () => {
    const { args } = setup();
    const digests = { ...args.digests };
    delete digests[args.base!.path];
    assert.throws(() => buildRecord({ ...args, digests }), /no digest or size/);
  });

  void it('puts config and record into __metadata__ as strings, without clock times (bit-identical reruns)', () => {
    const { args } = setup();
    const first = recordMetadata(buildRecord(args));
    const later = recordMetadata(buildRecord({ ...args, startedAt: new Date('2027-01-01T00:00:00Z'), finishedAt: new Date('2027-01-01T00:01:00Z') }));
    assert.deepEqual(first, later);
    assert.deepEqual(Object.keys(first), [METADATA_CONFIG_KEY, METADATA_RECORD_KEY]);
    for (const v of Object.values(first)) assert.equal(typeof v, 'string');
    const cfg = parseYaml(first[METADATA_CONFIG_KEY]!) as { merge_method: string; out_path: string };
    assert.equal(cfg.merge_method, 'ties');
    assert.equal(cfg.out_path, 'model.safetensors');
    const stored = recordFromMetadata(first);
    assert.ok(stored);
    assert.equal((stored as Record<string, unknown>)['started_at'], undefined);
    assert.equal(stored.inputs.length, 3);
    assert.equal(recordFromMetadata({}), undefined);
    assert.equal(recordFromMetadata({ [METADATA_RECORD_KEY]: '{' }), undefined);
  });

  void it('runs the stored config again: configFromRecord and loadMergeConfig give the config that ran', async () => {
    const { args } = setup();
    const record = buildRecord(args);
    const recordFile = args.recordFile;
    mkdirSync(path.dirname(recordFile), { recursive: true });
    writeFileSync(recordFile, recordToJson(record));
    const fromRecord = await configFromRecord(recordFile);
    assert.deepEqual(fromRecord.config, args.config);
    assert.equal(fromRecord.file, recordFile);
    assert.deepEqual((await loadMergeConfig(recordFile)).config, args.config);
    // The metadata copy is runnable too, written as a config file beside the output.
    const yamlFile = path.join(path.dirname(recordFile), 'from-metadata.yaml');
    writeFileSync(yamlFile, recordMetadata(record)[METADATA_CONFIG_KEY]!);
    assert.deepEqual((await loadMergeConfig(yamlFile)).config, args.config);
  });

  void it('explains a file that is not a record, and a record whose config is broken', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'awd-rec-bad-'));
    writeFileSync(path.join(dir, 'x.json'), '{"hello": 1}');
    await assert.rejects(configFromRecord(path.join(dir, 'x.json')), (e: unknown) => e instanceof AwdError && /not a merge record/.test(e.message));
    writeFileSync(path.join(dir, 'y.json'), 'nope');
    await assert.rejects(configFromRecord(path.join(dir, 'y.json')), (e: unknown) => e instanceof AwdError && /not JSON/.test(e.message));
    const broken = { format: 'awd-merge-record', config: { merge_method: 'ties', base_model: 'b', models: [{ model: 'a', parameters: { density: 3 } }] } };
    writeFileSync(path.join(dir, 'z.json'), JSON.stringify(broken, null, 2));
    await assert.rejects(configFromRecord(path.join(dir, 'z.json')), (e: unknown) => {
      assert.ok(e instanceof AwdErrorList);
      assert.match(e.problems[0]!.message, /density must be in \(0, 1\]; got 3 at models\[0\]\.parameters\.density \(line 10/);
      return true;
    });
  });
});
