// Numbers that break naive code: NaN/±Inf in the inputs are found and reported per input and tensor, and the merge
// refuses unless the config sets allow_nonfinite; denormals, huge values, zero-norm task vectors, identical models
// and K = 2 go through AWD and every method without producing a single non-finite output value.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { AwdError, AwdErrorList } from '../../../src/core/errors';
import { parseMergeConfig } from '../../../src/core/config/load';
import { planMerge } from '../../../src/core/merge/plan';
import { runMerge, type MergeResult } from '../../../src/core/merge/execute';
import { countNonFinite, describeCount } from '../../../src/core/merge/nonFiniteGuard';
import { floatTensors, seededRandom, tempFolder, writeSafetensorsFile, type FixtureTensor } from '../merge/executeFixtures';

const folder = tempFolder('awd-numbers-');
after(folder.cleanup);

const W: FixtureTensor = { name: 'w', shape: [64, 32], dtype: 'F32' };
const B: FixtureTensor = { name: 'b', shape: [32], dtype: 'F32' };
let caseNumber = 0;

/** Writes base + models (w and b each) into a fresh folder and merges them with `config`; returns the result or throws. */
async function merge(
  base: { w: Float32Array; b: Float32Array },
  models: { w: Float32Array; b: Float32Array }[],
  config: Record<string, unknown>,
  log?: (m: string) => void,
): Promise<{ result: MergeResult; out: Map<string, Float32Array> }> {
  const dir = join(folder.dir, `case-${caseNumber++}`);
  mkdirSync(dir);
  const write = (name: string, t: { w: Float32Array; b: Float32Array }): string => {
    const file = join(dir, name);
    writeSafetensorsFile(file, [
      { tensor: W, values: t.w },
      { tensor: B, values: t.b },
    ]);
    return file;
  };
  const text = JSON.stringify({
    base_model: write('base.safetensors', base),
    models: models.map((m, i) => ({ model: write(`m${i}.safetensors`, m) })),
    out_path: 'out/merged.safetensors',
    ...config,
  });
  const plan = await planMerge(parseMergeConfig(text, join(dir, 'x.merge.json')));
  try {
    const result = await runMerge(plan, { chunkElements: 500, ...(log ? { log } : {}) });
    return { result, out: floatTensors(result.files[0]!) };
  } finally {
    await plan.close();
  }
}

const random = seededRandom(99);
const randomTensor = (n: number, scale = 1): Float32Array => Float32Array.from({ length: n }, () => (random() - 0.5) * 2 * scale);
const model = (scale = 1): { w: Float32Array; b: Float32Array } => ({ w: randomTensor(64 * 32, scale), b: randomTensor(32, scale) });
const plus = (a: { w: Float32Array; b: Float32Array }, d: { w: Float32Array; b: Float32Array }, s = 1) => ({
  w: Float32Array.from(a.w, (x, i) => x + s * d.w[i]!),
  b: Float32Array.from(a.b, (x, i) => x + s * d.b[i]!),
});

function assertAllFinite(out: Map<string, Float32Array>, what: string): void {
  for (const [name, values] of out) {
    const c = { nan: 0, posInf: 0, negInf: 0 };
    countNonFinite(values, c);
    assert.equal(c.nan + c.posInf + c.negInf, 0, `${what}: tensor ${name} holds ${describeCount(c)}`);
  }
}

const METHODS = [
  { merge_method: 'task_arithmetic', parameters: { lambda: 0.7 } },
  { merge_method: 'ties', parameters: { lambda: 0.7, density: 0.5 } },
  { merge_method: 'dare_ties', parameters: { lambda: 0.7, density: 0.5 } },
  { merge_method: 'dare_linear', parameters: { lambda: 0.7, density: 0.5 } },
] as const;

void describe('non-finite inputs', () => {
  void it('countNonFinite matches a straightforward count on random arrays with NaN/±Inf sprinkled in', () => {
    const r = seededRandom(5);
    for (let trial = 0; trial < 50; trial++) {
      const values = Float32Array.from({ length: 1 + Math.floor(r() * 3000) }, () => {
        const u = r();
        return u < 0.02 ? NaN : u < 0.03 ? Infinity : u < 0.04 ? -Infinity : u < 0.05 ? 3e38 * 10 : (r() - 0.5) * 1e30;
      });
      const want = { nan: 0, posInf: 0, negInf: 0 };
      for (const x of values) {
        if (Number.isNaN(x)) want.nan++;
        else if (x === Infinity) want.posInf++;
        else if (x === -Infinity) want.negInf++;
      }
      const got = { nan: 0, posInf: 0, negInf: 0 };
      countNonFinite(values, got);
      assert.deepEqual(got, want);
    }
  });

  void it('NaN/Inf in a model: the merge refuses, naming the model, the tensor and the counts, and writes nothing', async () => {
    const base = model();
    const bad = plus(base, model(0.1));
    bad.w[3] = NaN;
    bad.w[700] = NaN;
    bad.w[1500] = NaN;
    bad.w[10] = Infinity;
    bad.w[2047] = Infinity;
    bad.b[0] = -Infinity;
    for (const awd of [undefined, { iterations: 5 }]) {
      const error = await merge(base, [plus(base, model(0.1)), bad], { merge_method: 'task_arithmetic', ...(awd ? { awd } : {}) }).then(
        () => assert.fail('merged despite NaN'),
        (e: unknown) => e,
      );
      assert.ok(error instanceof AwdErrorList, String(error));
      assert.match(error.message, /allow_nonfinite: true/);
      const lines = error.problems.map((p) => p.message);
      assert.equal(lines.length, 2, lines.join('\n'));
      assert.ok(lines.some((l) => l.includes('m1.safetensors') && l.includes('tensor "w"') && l.includes('3 NaN, 2 +Inf')), lines.join('\n'));
      assert.ok(lines.some((l) => l.includes('m1.safetensors') && l.includes('tensor "b"') && l.includes('1 −Inf')), lines.join('\n'));
      const dir = join(folder.dir, `case-${caseNumber - 1}`, 'out');
      assert.deepEqual(existsSync(dir) ? readdirSync(dir) : [], []);
    }
  });

  void it('NaN in the base alone is found too (it would poison every task vector)', async () => {
    const base = model();
    const models = [plus(base, model(0.1)), plus(base, model(0.1))];
    base.b[5] = NaN;
    await assert.rejects(merge(base, models, { merge_method: 'ties', parameters: { density: 0.5 } }), (e: unknown) => {
      assert.ok(e instanceof AwdError && e.message.includes('base.safetensors') && e.message.includes('1 NaN'), String(e));
      return true;
    });
  });

  void it('allow_nonfinite: true merges anyway, logs the counts, and the NaN propagates where it was', async () => {
    const base = model();
    const bad = plus(base, model(0.1));
    bad.w[42] = NaN;
    const logs: string[] = [];
    const { out } = await merge(base, [plus(base, model(0.1)), bad], { merge_method: 'task_arithmetic', allow_nonfinite: true }, (m) => logs.push(m));
    assert.ok(logs.some((l) => l.includes('m1.safetensors') && l.includes('"w"') && l.includes('1 NaN')), logs.join('\n'));
    const w = out.get('w')!;
    assert.ok(Number.isNaN(w[42]!));
    assert.equal(w.filter((x) => Number.isNaN(x)).length, 1);
  });
});

void describe('extreme but finite numbers through AWD and every method', () => {
  const cases: { name: string; make: () => { base: { w: Float32Array; b: Float32Array }; models: { w: Float32Array; b: Float32Array }[] } }[] = [
    {
      name: 'zero-norm task vectors (every model equals the base), K = 2',
      make: () => {
        const base = model();
        return { base, models: [plus(base, model(), 0), plus(base, model(), 0)] };
      },
    },
    {
      name: 'one zero-norm task vector among K = 2',
      make: () => {
        const base = model();
        return { base, models: [plus(base, model(), 0), plus(base, model(0.1))] };
      },
    },
    {
      name: 'identical models (τ_1 = τ_2, a singular Gram matrix), K = 2',
      make: () => {
        const base = model();
        const m = plus(base, model(0.1));
        return { base, models: [m, { w: m.w.slice(), b: m.b.slice() }] };
      },
    },
    {
      name: 'denormal task vectors (|τ| ~ 1e-42), K = 3',
      make: () => {
        const base = model();
        return { base, models: [0, 1, 2].map(() => plus(base, model(1e-42))) };
      },
    },
    {
      name: 'denormal weights and base (|θ| ~ 1e-40), K = 2',
      make: () => ({ base: model(1e-40), models: [model(1e-40), model(1e-40)] }),
    },
    {
      name: 'huge values (|θ| ~ 1e37, ‖τ‖² far beyond float32), K = 2',
      make: () => {
        const base = model(1e37);
        return { base, models: [plus(base, model(1e36)), plus(base, model(1e36))] };
      },
    },
  ];
  for (const c of cases) {
    void it(`${c.name}: finite output and finite AWD diagnostics`, async () => {
      const { base, models } = c.make();
      for (const method of METHODS) {
        for (const awd of [undefined, { iterations: 20 }, { iterations: 20, granularity: 'tensor', norm: 'l2_squared' }]) {
          const what = `${method.merge_method}${awd ? ` + AWD ${JSON.stringify(awd)}` : ''}`;
          const { result, out } = await merge(base, models, { ...method, ...(awd ? { awd } : {}) });
          assertAllFinite(out, what);
          if (result.awd) {
            const a = result.awd;
            const perTensor = Object.values(a.per_tensor).flatMap((t) => [t.mean_abs_cos_after, t.delta_norm]);
            for (const x of [a.mean_abs_cos_before, a.mean_abs_cos_after, a.delta_norm, ...(a.coefficients ?? []), ...a.loss, ...perTensor]) {
              assert.ok(Number.isFinite(x), `${what}: AWD diagnostic ${x}`);
            }
          }
          if (c.name.startsWith('zero-norm')) {
            // No task vector at all: every method must give back the base exactly.
            assert.deepEqual([...out.get('w')!], [...base.w], what);
          }
        }
      }
    });
  }
});
