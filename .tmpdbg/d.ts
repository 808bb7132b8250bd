import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadMergeConfig } from '../src/core/config/load';
import { planMerge } from '../src/core/merge/plan';
import { runMerge } from '../src/core/merge/execute';
import { writeModelSet, tempFolder } from '../test/unit/merge/executeFixtures';
async function main() {
  const { dir, cleanup } = tempFolder();
  const set = writeModelSet(dir, { K: 8, tensors: [{ name: 'a', shape: [7, 13], dtype: 'F32' }, { name: 'b', shape: [60], dtype: 'F32' }], seed: 1 });
  const cfg = join(dir, 'c.json');
  writeFileSync(cfg, JSON.stringify({ merge_method: 'ties', base_model: set.base, models: set.models.map((m) => ({ model: m, parameters: { weight: 1, density: 0.5 } })), out_path: 'out/m.safetensors' }));
  for (const c of [5, 1000, 5, 1000]) {
    let t = performance.now();
    const loaded = await loadMergeConfig(cfg);
    const t1 = performance.now() - t; t = performance.now();
    const plan = await planMerge(loaded);
    const t2 = performance.now() - t; t = performance.now();
    const r = await runMerge(plan, { chunkElements: c });
    const t3 = performance.now() - t;
    await plan.close();
    console.log(c, t1.toFixed(1), t2.toFixed(1), t3.toFixed(1), r.seconds);
  }
  cleanup();
}
void main();
