import { weightedSumOfDifferences } from '../src/core/kernels/combine';
import { weightedSumOfDifferencesJs } from '../src/core/kernels/combineJs';
import { accumulateGramOfDifferences } from '../src/core/kernels/gram';
const n = 3145728, K = 8;
const base = new Float32Array(n).map(() => Math.random());
const models = Array.from({ length: K }, () => new Float32Array(n).map(() => Math.random()));
const out = new Float32Array(n);
const c = new Float64Array(K).fill(0.5);
for (const [name, f] of [['wasm', () => weightedSumOfDifferences(base, models, c, out)], ['js', () => weightedSumOfDifferencesJs(base, models, c, out)], ['gram', () => accumulateGramOfDifferences(models, base, new Float64Array(K * K))]] as const) {
  for (let r = 0; r < 3; r++) {
    const c0 = process.cpuUsage(); const t = performance.now();
    f();
    const cpu = process.cpuUsage(c0);
    console.log(name, 'wall', (performance.now() - t).toFixed(1), 'cpu', ((cpu.user + cpu.system) / 1000).toFixed(1), 'ms');
  }
}
