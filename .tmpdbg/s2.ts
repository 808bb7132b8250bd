import { TensorStatisticsAccumulator } from '../src/core/merge/tensorStats';
import { addScaledInto } from '../src/core/merge/methodChunk';
const n = 3145728;
const x = new Float32Array(n).map(() => Math.random());
const y = new Float32Array(n).map(() => Math.random());
const o = new Float32Array(n);
for (let r = 0; r < 5; r++) {
  let t = performance.now();
  const a = new TensorStatisticsAccumulator(); a.add(x); a.result();
  const st = performance.now() - t; t = performance.now();
  addScaledInto(o, x, y, 1);
  console.log('stats', st.toFixed(1), 'add', (performance.now() - t).toFixed(1));
}
