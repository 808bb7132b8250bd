// The inspector's statistics job (src/jobs/statsJob.ts) against a direct computation, and the header listing of a
// checkpoint with many tensors (what the inspector sends its page) timed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSafetensorsWriter } from '../../../src/core/formats/safetensorsWriter';
import { openCheckpoint } from '../../../src/core/formats/open';
import { computeTensorStats } from '../../../src/jobs/statsJob';
import { summarizeTensors } from '../../../src/extension/checkpoints/checkpointSummary';
import { tableView } from '../../../src/webview/inspector/tensorTable';
import { CancelledError } from '../../../src/core/errors';

function random(seed: number, n: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 2 ** 32) * 4 - 2;
  }
  return out;
}

async function write(file: string, tensors: Record<string, { shape: number[]; values: Float32Array; dtype?: 'F32' | 'BF16' }>): Promise<void> {
  const w = await createSafetensorsWriter(file, Object.entries(tensors).map(([name, t]) => ({ name, dtype: t.dtype ?? 'F32', shape: t.shape })));
  for (const [name, t] of Object.entries(tensors)) await w.writeFloat32(name, t.values);
  await w.finish();
}

/** Straightforward statistics over the finite entries, in float64. */
function reference(x: Float32Array, base?: Float32Array) {
  const finite = Array.from(x).filter((v) => Number.isFinite(v));
  const mean = finite.reduce((s, v) => s + v, 0) / finite.length;
  const std = Math.sqrt(finite.reduce((s, v) => s + (v - mean) ** 2, 0) / finite.length);
  const diff = base ? Math.sqrt(Array.from(x).reduce((s, v, i) => { const d = Math.fround(v - base[i]!); return Number.isFinite(d) ? s + d * d : s; }, 0)) : undefined;
  return {
    mean, std, min: Math.min(...finite), max: Math.max(...finite),
    l2: Math.sqrt(finite.reduce((s, v) => s + v * v, 0)),
    nan: Array.from(x).filter((v) => Number.isNaN(v)).length,
    inf: Array.from(x).filter((v) => v === Infinity || v === -Infinity).length,
    diff,
  };
}

const close = (a: number, b: number, rel = 1e-9): boolean => Math.abs(a - b) <= rel * Math.max(1, Math.abs(b));

void test('statistics match a direct computation for every chunk size, NaN/Inf counted, ‖Δ base‖ where shapes agree', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'awd-stats-'));
  try {
    const w = random(1, 1000);
    w[3] = NaN;
    w[500] = Infinity;
    w[999] = -Infinity;
    const b = random(2, 1000);
    const bias = random(3, 10);
    await write(join(dir, 'model.safetensors'), { w: { shape: [10, 100], values: w }, bias: { shape: [10], values: bias }, only: { shape: [3], values: new Float32Array([1, 2, 3]) } });
    await write(join(dir, 'base.safetensors'), { w: { shape: [10, 100], values: b }, bias: { shape: [2, 5], values: random(4, 10) } });
    for (const chunkElements of [7, 64, 1000, 4096]) {
      const stats = await computeTensorStats({ kind: 'tensorStats', checkpoint: join(dir, 'model.safetensors'), base: join(dir, 'base.safetensors'), tensors: ['w', 'bias', 'only'], chunkElements });
      assert.deepEqual(stats.map((s) => s.name), ['w', 'bias', 'only']);
      const r = reference(w, b);
      const s = stats[0]!;
      assert.ok(close(s.mean, r.mean) && close(s.std, r.std) && close(s.l2_norm, r.l2), `chunk ${chunkElements}: ${JSON.stringify(s)} vs ${JSON.stringify(r)}`);
      assert.equal(s.min, r.min);
      assert.equal(s.max, r.max);
      assert.equal(s.nan_count, 1);
      assert.equal(s.inf_count, 2);
      assert.ok(close(s.diff_norm!, r.diff!, 1e-6), `‖Δ‖ ${s.diff_norm} vs ${r.diff}`);
      assert.equal(stats[1]!.diff_norm, undefined);
      assert.equal(stats[1]!.diff_problem, 'shape [2, 5] in the base model');
      assert.equal(stats[2]!.diff_problem, 'not in the base model');
      assert.deepEqual([stats[2]!.mean, stats[2]!.min, stats[2]!.max], [2, 1, 3]);
    }
    const alone = await computeTensorStats({ kind: 'tensorStats', checkpoint: join(dir, 'model.safetensors'), tensors: ['bias'] });
    assert.equal(alone[0]!.diff_norm, undefined);
    assert.equal(alone[0]!.diff_problem, undefined);
    await assert.rejects(computeTensorStats({ kind: 'tensorStats', checkpoint: join(dir, 'model.safetensors'), tensors: ['nope'] }), /tensor "nope": no such tensor/);
    const controller = new AbortController();
    controller.abort();
    await assert.rejects(computeTensorStats({ kind: 'tensorStats', checkpoint: join(dir, 'model.safetensors'), tensors: ['w'] }, { signal: controller.signal }), CancelledError);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

void test('a checkpoint of 20 000 tensors lists (header only) and pages quickly', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'awd-many-'));
  try {
    const file = join(dir, 'many.safetensors');
    const n = 20_000;
    const w = await createSafetensorsWriter(file, Array.from({ length: n }, (_, i) => ({ name: `layers.${i}.weight`, dtype: 'F32' as const, shape: [2] })));
    for (let i = 0; i < n; i++) await w.writeFloat32(`layers.${i}.weight`, new Float32Array([i, -i]));
    await w.finish();
    const t0 = performance.now();
    const c = await openCheckpoint(file);
    const rows = c.tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: [...t.shape], elements: t.elements, bytes: t.bytes }));
    const summary = summarizeTensors(c.tensors);
    await c.close();
    const t1 = performance.now();
    const view = tableView(rows, { search: 'layers 1999', sortKey: 'name', direction: 'desc', page: 0, pageSize: 100 });
    const t2 = performance.now();
    console.log(`# ${n} tensors: header listed in ${(t1 - t0).toFixed(0)} ms, filtered + sorted + paged in ${(t2 - t1).toFixed(0)} ms`);
    assert.equal(summary.parameters, 2 * n);
    assert.equal(view.matching, 12); // layers.1999, layers.11999 and layers.19990 … layers.19999
    assert.equal(view.rows[0]!.name, 'layers.19999.weight');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
