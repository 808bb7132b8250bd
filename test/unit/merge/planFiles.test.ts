// The merge plan on real checkpoints: a safetensors file, a Hugging Face folder and a sharded index, opened with
// openCheckpoint; corrupt files are reported with the reader's message, together with the config's other problems.
import { strict as assert } from 'node:assert';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { AwdErrorList } from '../../../src/core/errors';
import { createSafetensorsWriter } from '../../../src/core/formats/safetensorsWriter';
import type { DType } from '../../../src/core/formats/types';
import { loadMergeConfig } from '../../../src/core/config/load';
import { planMerge } from '../../../src/core/merge/plan';

const ELEMENT_BYTES: Partial<Record<DType, number>> = { F32: 4, F16: 2, BF16: 2, I64: 8 };

async function writeCheckpoint(file: string, tensors: [string, DType, number[]][], shardSize?: number): Promise<void> {
  mkdirSync(path.dirname(file), { recursive: true });
  const w = await createSafetensorsWriter(file, tensors.map(([name, dtype, shape]) => ({ name, dtype, shape })), shardSize ? { shardSize } : {});
  for (const [name, dtype, shape] of tensors) {
    const n = shape.reduce((a, b) => a * b, 1);
    if (dtype === 'I64') await w.writeRaw(name, new Uint8Array(n * ELEMENT_BYTES[dtype]!));
    else await w.writeFloat32(name, Float32Array.from({ length: n }, (_, i) => i / 7));
  }
  await w.finish();
}

const TENSORS: [string, DType, number[]][] = [
  ['embed.weight', 'BF16', [16, 8]],
  ['layer.0.weight', 'F32', [8, 8]],
  ['layer.0.bias', 'F16', [8]],
  ['position_ids', 'I64', [1, 16]],
];

void describe('planMerge on files', () => {
  void it('opens a file, a folder and a sharded index, and plans from their headers', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'awd-planfiles-'));
    await writeCheckpoint(path.join(dir, 'models/base.safetensors'), TENSORS);
    await writeCheckpoint(path.join(dir, 'models/hf-a/model.safetensors'), TENSORS);
    await writeCheckpoint(path.join(dir, 'models/b/model.safetensors'), TENSORS, 300);
    writeFileSync(
      path.join(dir, 'merge.yaml'),
      `merge_method: dare_ties\nbase_model: models/base.safetensors\nmodels:\n  - model: models/hf-a\n  - model: models/b/model.safetensors.index.json\nparameters: { density: 0.5 }\ndtype: float16\n`,
    );
    const plan = await planMerge(await loadMergeConfig(path.join(dir, 'merge.yaml')));
    try {
      assert.equal(plan.models[0]!.path, path.join(dir, 'models/hf-a'));
      assert.ok(plan.models[1]!.files.length >= 3, 'index plus shards');
      assert.deepEqual(
        plan.tensors.map((t) => [t.name, t.action, t.outDtype]),
        [
          ['embed.weight', 'merge', 'F16'],
          ['layer.0.weight', 'merge', 'F16'],
          ['layer.0.bias', 'merge', 'F16'],
          ['position_ids', 'copy', 'I64'],
        ],
      );
      assert.deepEqual(plan.densities, [0.5, 0.5]);
    } finally {
      await plan.close();
    }
  });

  void it('reports a corrupt file, a missing tensor and a config error of the plan together', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'awd-planfiles-'));
    await writeCheckpoint(path.join(dir, 'base.safetensors'), TENSORS);
    await writeCheckpoint(path.join(dir, 'a.safetensors'), TENSORS.slice(1));
    writeFileSync(path.join(dir, 'corrupt.safetensors'), Buffer.from([255, 255, 255, 255, 255, 255, 255, 127, 1, 2, 3]));
    writeFileSync(
      path.join(dir, 'merge.yaml'),
      `merge_method: task_arithmetic\nbase_model: base.safetensors\nmodels:\n  - model: a.safetensors\n  - model: corrupt.safetensors\nout_path: base.safetensors\n`,
    );
    await assert.rejects(planMerge(await loadMergeConfig(path.join(dir, 'merge.yaml'))), (e: unknown) => {
      assert.ok(e instanceof AwdErrorList);
      const text = e.problems.map((p) => p.message).join('\n');
      assert.equal(e.problems.length, 3, text);
      assert.match(text, /tensor "embed\.weight".*model 1 has no tensor "embed\.weight".*line 4/);
      assert.match(text, /model 2 cannot be read: .*corrupt\.safetensors.*line 5/);
      assert.match(text, /the output would overwrite base model.*line 6/);
      return true;
    });
  });
});
