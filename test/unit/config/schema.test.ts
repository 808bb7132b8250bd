// The JSON Schema: valid draft-07, usable by editors (descriptions, defaults, enums), and in step with the code.
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, it, test } from 'node:test';
import { spawnSync } from 'node:child_process';
import Ajv from 'ajv';
import { AWD_DEFAULTS, DEFAULT_LAMBDA, DEFAULT_OUT_PATH, DEFAULT_WEIGHT, MERGE_CONFIG_SCHEMA, MERGE_METHODS, mergeConfigValidator } from '../../../src/core/config/schema';

type SchemaNode = { type?: unknown; description?: string; default?: unknown; enum?: unknown[]; properties?: Record<string, SchemaNode>; items?: SchemaNode; additionalProperties?: unknown };
const schema = MERGE_CONFIG_SCHEMA as SchemaNode;

function walk(node: SchemaNode, at: string, visit: (n: SchemaNode, at: string) => void): void {
  visit(node, at);
  for (const [k, v] of Object.entries(node.properties ?? {})) walk(v, `${at}/${k}`, visit);
  if (node.items) walk(node.items, `${at}/items`, visit);
}

void describe('merge-config.schema.json', () => {
  void it('is the file shipped in schemas/ and a valid draft-07 schema', () => {
    const onDisk: unknown = JSON.parse(readFileSync(path.join(__dirname, '../../../schemas/merge-config.schema.json'), 'utf8'));
    assert.deepEqual(onDisk, MERGE_CONFIG_SCHEMA);
    const ajv = new Ajv({ strict: false });
    assert.equal(ajv.validateSchema(MERGE_CONFIG_SCHEMA), true, JSON.stringify(ajv.errors));
    assert.equal((MERGE_CONFIG_SCHEMA as { $schema: string }).$schema, 'http://json-schema.org/draft-07/schema#');
  });

  void it('describes every key and rejects unknown keys in every object', () => {
    walk(schema, '', (n, at) => {
      assert.ok(at === '' || at.endsWith('/items') || n.description, `no description at ${at}`);
      if (n.properties) assert.equal(n.additionalProperties, false, `unknown keys allowed at ${at}`);
    });
  });

  void it('has exactly the keys of merge-config.md plus the accepted mergekit keys', () => {
    assert.deepEqual(Object.keys(schema.properties!), [
      'merge_method', 'base_model', 'models', 'parameters', 'awd', 'include', 'exclude', 'dtype', 'random_seed', 'allow_nonfinite', 'out_path', 'out_shard_size',
      'tokenizer_source', 'tokenizer', 'chat_template',
    ]);
    assert.deepEqual(Object.keys(schema.properties!['models']!.items!.properties!), ['model', 'parameters']);
    assert.deepEqual(Object.keys(schema.properties!['models']!.items!.properties!['parameters']!.properties!), ['weight', 'density']);
    assert.deepEqual(Object.keys(schema.properties!['parameters']!.properties!), ['lambda', 'density', 'normalize', 'trim_scope', 'int8_mask']);
    assert.deepEqual(Object.keys(schema.properties!['awd']!.properties!), ['alpha', 'learning_rate', 'iterations', 'granularity', 'norm']);
    assert.deepEqual(schema.properties!['merge_method']!.enum, [...MERGE_METHODS]);
    assert.deepEqual(schema.properties!['dtype']!.enum, ['float32', 'float16', 'bfloat16']);
  });

  void it('states the same defaults as the loader', () => {
    const p = schema.properties!;
    const awd = p['awd']!.properties!;
    for (const [k, v] of Object.entries(AWD_DEFAULTS)) assert.equal(awd[k]!.default, v, `awd.${k}`);
    assert.equal(p['parameters']!.properties!['lambda']!.default, DEFAULT_LAMBDA);
    assert.equal(p['parameters']!.properties!['normalize']!.default, true);
    assert.equal(p['parameters']!.properties!['trim_scope']!.default, 'tensor');
    assert.equal(p['models']!.items!.properties!['parameters']!.properties!['weight']!.default, DEFAULT_WEIGHT);
    assert.deepEqual(p['include']!.default, ['*']);
    assert.deepEqual(p['exclude']!.default, []);
    assert.equal(p['random_seed']!.default, 0);
    assert.equal(p['out_path']!.default, DEFAULT_OUT_PATH);
  });

  void it('validates at run time with the same schema', () => {
    const validate = mergeConfigValidator();
    assert.equal(validate({ merge_method: 'ties', base_model: 'b', models: [{ model: 'a', parameters: { density: 0.5 } }] }), true);
    assert.equal(validate({ merge_method: 'ties', models: [{ model: 'a', parameters: { density: 1.01 } }] }), false);
    assert.equal(validate({ merge_method: 'ties', models: [{ model: 'a' }], out_shard_size: '2.5 GiB' }), true);
    assert.equal(validate({ merge_method: 'ties', models: [{ model: 'a' }], out_shard_size: 'lots' }), false);
  });
});

void test('the committed standalone validator is the compilation of the schema (npm run build:schema)', () => {
  const r = spawnSync(process.execPath, ['scripts/build-schema-validator.mjs', '--check'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr + r.stdout);
});
