/**
 * The zoo's network: a stack of dense layers with ReLU between them (not after the last), trained with
 * softmax cross-entropy and Adam. Forward and backward are written out with tfjs-core ops (the tfjs-core node
 * bundle registers no gradients), which also keeps the op sequence, and so the result, fixed.
 */
import * as tf from '@tensorflow/tfjs-core';
import { SeededRandom } from './seededRandom';

/** A dense layer y = x Wᵀ + b with W stored [out, in] row-major, as PyTorch's nn.Linear does. */
export interface DenseLayer {
  readonly inputs: number;
  readonly outputs: number;
  readonly weight: Float32Array;
  readonly bias: Float32Array;
}

/** He-normal weights W ~ N(0, 2 / fan_in) (suited to ReLU) and zero biases. */
export function initDense(inputs: number, outputs: number, rng: SeededRandom): DenseLayer {
  const weight = new Float32Array(inputs * outputs);
  const std = Math.sqrt(2 / inputs);
  for (let i = 0; i < weight.length; i++) weight[i] = rng.nextNormal() * std;
  return { inputs, outputs, weight, bias: new Float32Array(outputs) };
}

export function copyDense(layer: DenseLayer): DenseLayer {
  return { inputs: layer.inputs, outputs: layer.outputs, weight: layer.weight.slice(), bias: layer.bias.slice() };
}

/** A labelled data set for a classifier: inputs count × features (float32) and a class per row. */
export interface LabelledData {
  readonly inputs: Float32Array;
  readonly features: number;
  readonly labels: Uint8Array;
  readonly classes: number;
}

export interface AdamSettings {
  readonly epochs: number;
  readonly batchSize: number;
  readonly learningRate: number;
  /** Seeds the mini-batch order. */
  readonly seed: number;
}

let runCounter = 0;

/** The layers' outputs for `x`: ReLU between layers, raw logits after the last. */
function forward(x: tf.Tensor2D, weights: readonly tf.Tensor2D[], biases: readonly tf.Tensor1D[]): { pre: tf.Tensor2D[]; post: tf.Tensor2D[] } {
  const pre: tf.Tensor2D[] = [];
  const post: tf.Tensor2D[] = [x];
  weights.forEach((w, l) => {
    const z = tf.add(tf.matMul(post[l]!, w, false, true), biases[l]!) as tf.Tensor2D;
    pre.push(z);
    post.push(l < weights.length - 1 ? tf.relu(z) : z);
  });
  return { pre, post };
}

/**
 * Trains every layer of `layers` on `data` by mini-batch Adam on the mean softmax cross-entropy and returns new
 * layers (the inputs are not modified). Gradients: d_L = (softmax(z_L) − y) / B, ∂W_l = d_lᵀ h_{l−1},
 * ∂b_l = Σ_rows d_l, d_{l−1} = (d_l W_l) ⊙ [z_{l−1} > 0].
 */
export function trainDenseStack(layers: readonly DenseLayer[], data: LabelledData, settings: AdamSettings): DenseLayer[] {
  const run = `zoo${runCounter++}`;
  const count = data.labels.length;
  const rng = new SeededRandom(settings.seed);
  const weights = layers.map((l, i) => tf.variable(tf.tensor2d(l.weight, [l.outputs, l.inputs]), true, `${run}/w${i}`));
  const biases = layers.map((l, i) => tf.variable(tf.tensor1d(l.bias), true, `${run}/b${i}`));
  const inputs = tf.tensor2d(data.inputs, [count, data.features]);
  const labels = tf.tensor1d(Int32Array.from(data.labels), 'int32');
  const optimizer = tf.train.adam(settings.learningRate);
  try {
    for (let epoch = 0; epoch < settings.epochs; epoch++) {
      const order = rng.permutation(count);
      for (let start = 0; start < count; start += settings.batchSize) {
        const batch = order.subarray(start, Math.min(count, start + settings.batchSize));
        tf.tidy(() => {
          const index = tf.tensor1d(batch, 'int32');
          const x = tf.gather(inputs, index) as tf.Tensor2D;
          const y = tf.cast(tf.oneHot(tf.gather(labels, index), data.classes), 'float32');
          const { pre, post } = forward(x, weights, biases);
          let delta = tf.div(tf.sub(tf.softmax(pre[pre.length - 1]!), y), batch.length) as tf.Tensor2D;
          const gradients: { name: string; tensor: tf.Tensor }[] = [];
          for (let l = weights.length - 1; l >= 0; l--) {
            gradients.push({ name: weights[l]!.name, tensor: tf.matMul(delta, post[l]!, true, false) });
            gradients.push({ name: biases[l]!.name, tensor: tf.sum(delta, 0) });
            if (l > 0) delta = tf.mul(tf.matMul(delta, weights[l]!), tf.step(pre[l - 1]!));
          }
          optimizer.applyGradients(gradients);
        });
      }
    }
    return layers.map((l, i) => ({
      inputs: l.inputs,
      outputs: l.outputs,
      weight: weights[i]!.dataSync() as Float32Array,
      bias: biases[i]!.dataSync() as Float32Array,
    }));
  } finally {
    optimizer.dispose();
    tf.dispose([...weights, ...biases, inputs, labels]);
  }
}

/** Runs `layers` over `inputs` (count × features) in batches and returns the last layer's outputs (count × last width). */
export function runDenseStack(layers: readonly DenseLayer[], inputs: Float32Array, features: number, reluAfterLast: boolean): Float32Array {
  const count = inputs.length / features;
  const outWidth = layers[layers.length - 1]!.outputs;
  const out = new Float32Array(count * outWidth);
  const chunk = 1000;
  tf.tidy(() => {
    const weights = layers.map((l) => tf.tensor2d(l.weight, [l.outputs, l.inputs]));
    const biases = layers.map((l) => tf.tensor1d(l.bias));
    for (let start = 0; start < count; start += chunk) {
      const rows = Math.min(chunk, count - start);
      tf.tidy(() => {
        const x = tf.tensor2d(inputs.subarray(start * features, (start + rows) * features), [rows, features]);
        const { post } = forward(x, weights, biases);
        const last = post[post.length - 1]!;
        out.set((reluAfterLast ? tf.relu(last) : last).dataSync() as Float32Array, start * outWidth);
      });
    }
  });
  return out;
}

/** Fraction of rows whose largest logit is at the label (ties go to the lowest class). */
export function accuracyOfLogits(logits: Float32Array, labels: Uint8Array, classes: number): number {
  let correct = 0;
  for (let n = 0; n < labels.length; n++) {
    let best = 0;
    for (let c = 1; c < classes; c++) if (logits[n * classes + c]! > logits[n * classes + best]!) best = c;
    if (best === labels[n]) correct++;
  }
  return correct / labels.length;
}

/** Accuracy of encoder + head (ReLU between all layers, none after the head) on labelled data. */
export function classifierAccuracy(encoder: readonly DenseLayer[], head: DenseLayer, data: LabelledData): number {
  const logits = runDenseStack([...encoder, head], data.inputs, data.features, false);
  return accuracyOfLogits(logits, data.labels, data.classes);
}
