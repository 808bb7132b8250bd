// Plain-JavaScript references for the zoo tests: a straightforward float64 forward pass of encoder + head, written
// independently of the TensorFlow.js code that trained and scored the models.
import type { DenseLayer } from '../../../scripts/zoo/mlp';

/** argmax of head(relu(… relu(x W₀ᵀ + b₀) …)) for one input row, in float64. */
export function predictReference(encoder: readonly DenseLayer[], head: DenseLayer, x: Float32Array): number {
  let h: Float64Array = Float64Array.from(x);
  for (const layer of [...encoder, head]) {
    const out = new Float64Array(layer.outputs);
    for (let o = 0; o < layer.outputs; o++) {
      let s = layer.bias[o]!;
      const row = o * layer.inputs;
      for (let i = 0; i < layer.inputs; i++) s += layer.weight[row + i]! * h[i]!;
      out[o] = layer === head ? s : Math.max(0, s);
    }
    h = out;
  }
  let best = 0;
  for (let c = 1; c < h.length; c++) if (h[c]! > h[best]!) best = c;
  return best;
}

/** Accuracy over rows of `inputs` (count × features) with the reference forward pass. */
export function accuracyReference(encoder: readonly DenseLayer[], head: DenseLayer, inputs: Float32Array, labels: Uint8Array): number {
  const features = encoder[0]!.inputs;
  let correct = 0;
  for (let n = 0; n < labels.length; n++) {
    if (predictReference(encoder, head, inputs.subarray(n * features, (n + 1) * features)) === labels[n]) correct++;
  }
  return correct / labels.length;
}
