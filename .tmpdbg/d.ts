import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadMergeConfig } from '../src/core/config/load';
import { planMerge } from '../src/core/merge/plan';
import { runMerge } from '../src/core/merge/execute';
import { writeModelSet, readSafetensorsFile, tempFolder } from '../test/unit/merge/executeFixtures';
async function main() {
  const { dir } = tempFolder();
  const set = writeModelSet(dir, { K: 3, tensors: [{ name: 'a', shape: [50], dtype: 'F32' }], seed: 1 });
  const cfg = join(dir, 'c.json');
  writeFileSync(cfg, JSON.stringify({ merge_method: 'dare_linear', base_model: set.base, models: set.models.map((m) => ({ model: m, parameters: { weight: 1, density: 0.5 } })), out_path: 'out/m.safetensors' }));
  const outs = [];
  for (const c of [3, 1000]) {
    const plan = await planMerge(await loadMergeConfig(cfg));
    const r = await runMerge(plan, { chunkElements: c });
    await plan.close();
    outs.push(readSafetensorsFile(r.files[0]!));
  }
  const a = outs[0]!.metadata['awd_merge.record']!, b = outs[1]!.metadata['awd_merge.record']!; let i = 0; while (a[i] === b[i]) i++; console.log(a.slice(i - 200, i + 100)); console.log(b.slice(i - 200, i + 100));
  console.log(Array.from(outs[0]!.tensors.get('a')!.values.slice(0, 8)), Array.from(outs[1]!.tensors.get('a')!.values.slice(0, 8)));
}
void main();
