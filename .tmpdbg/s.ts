import { TensorStatisticsAccumulator } from '../src/core/merge/tensorStats';
const x = Float32Array.from({ length: 300000 }, (_, i) => 1 + 0.01 * Math.sin(i) + (i === 5 ? NaN : 0));
x[7] = Infinity;
const a = new TensorStatisticsAccumulator(); a.add(x.subarray(0, 100000)); a.add(x.subarray(100000));
const f = Array.from(x).filter(Number.isFinite);
const mean = f.reduce((s, v) => s + v, 0) / f.length;
const std = Math.sqrt(f.reduce((s, v) => s + (v - mean) ** 2, 0) / f.length);
console.log(a.result(), mean, std);
