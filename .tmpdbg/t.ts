import { openCheckpoint } from '../src/core/formats/open';
import { ChunkPipeline, chunkItems } from '../src/core/merge/chunkReader';
import { weightedSumOfDifferences } from '../src/core/kernels/combine';
import { addScaledInto } from '../src/core/merge/methodChunk';
import { TensorStatisticsAccumulator } from '../src/core/merge/tensorStats';
import { createSafetensorsWriter } from '../src/core/formats/safetensorsWriter';
import { join } from 'node:path';
async function main() {
  const dir = 'bench/data/p50000000';
  const base = await openCheckpoint(join(dir, 'base.safetensors'));
  const models = await Promise.all(Array.from({ length: 8 }, (_, k) => openCheckpoint(join(dir, `model${k}.safetensors`))));
  const ce = Number(process.env.CE ?? 3145728);
  const p = new ChunkPipeline(base, models, ce);
  const m = new Float32Array(ce), out = new Float32Array(ce);
  const c = new Float64Array(8).fill(0.5);
  const w = await createSafetensorsWriter('/tmp/tt.safetensors', base.tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape })), {});
  const T: Record<string, number> = { wait: 0, ws: 0, add: 0, stats: 0, write: 0 };
  const c0 = process.cpuUsage(); const t0 = performance.now();
  let t = performance.now();
  let stats = new TensorStatisticsAccumulator();
  for await (const { item, chunk } of p.run(chunkItems(base.tensors, ce))) {
    T.wait += performance.now() - t; t = performance.now();
    const n = item.end - item.start;
    weightedSumOfDifferences(chunk!.base, chunk!.models, c, m.subarray(0, n)); T.ws += performance.now() - t; t = performance.now();
    addScaledInto(out.subarray(0, n), chunk!.base, m.subarray(0, n), 1); T.add += performance.now() - t; t = performance.now();
    stats.add(out.subarray(0, n)); T.stats += performance.now() - t; t = performance.now();
    await w.writeFloat32(item.name, out.subarray(0, n)); T.write += performance.now() - t; t = performance.now();
  }
  t = performance.now(); await w.finish({}); const fin = performance.now() - t;
  const cpu = process.cpuUsage(c0);
  console.log(Object.fromEntries(Object.entries(T).map(([k, v]) => [k, v.toFixed(0)])), 'finish', fin.toFixed(0), 'total', (performance.now() - t0).toFixed(0), 'cpu', ((cpu.user + cpu.system) / 1000).toFixed(0));
}
void main();
