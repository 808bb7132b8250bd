/**
 * Reading and writing the zoo's files through the product's own safetensors writer and checkpoint reader, so the
 * zoo is exactly what a user's checkpoints look like to the extension.
 */
import { openCheckpoint } from '../../src/core/formats/open';
import { createSafetensorsWriter } from '../../src/core/formats/safetensorsWriter';
import type { DType } from '../../src/core/formats/types';
import type { DenseLayer } from './mlp';
import type { DigitSet } from './digits';
import { IMAGE_PIXELS } from './digits';
import type { TaskDefinition } from './tasks';

/** One tensor to write: float32 values are stored as F32, integer arrays under their own dtype. */
export interface TensorToWrite {
  readonly name: string;
  readonly shape: readonly number[];
  readonly data: Float32Array | Int32Array | Uint8Array;
}

function dtypeOf(data: TensorToWrite['data']): DType {
  if (data instanceof Float32Array) return 'F32';
  if (data instanceof Int32Array) return 'I32';
  return 'U8';
}

/** Writes a safetensors file in the given tensor order (the same inputs give the same bytes). */
export async function writeSafetensorsFile(path: string, tensors: readonly TensorToWrite[], metadata: Record<string, string>): Promise<void> {
  const writer = await createSafetensorsWriter(
    path,
    tensors.map((t) => ({ name: t.name, dtype: dtypeOf(t.data), shape: t.shape })),
    { metadata },
  );
  try {
    for (const t of tensors) {
      if (t.data instanceof Float32Array) await writer.writeFloat32(t.name, t.data);
      // Integer tensors go through as raw bytes: typed arrays are little-endian on every platform Node runs on.
      else await writer.writeRaw(t.name, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
    }
    await writer.finish();
  } catch (e) {
    await writer.abort();
    throw e;
  }
}

/** PyTorch-style tensor names of dense layer `index` of `prefix`: `<prefix>.<index>.weight` [out, in] and `.bias`. */
export function denseTensors(prefix: string, layer: DenseLayer): TensorToWrite[] {
  return [
    { name: `${prefix}.weight`, shape: [layer.outputs, layer.inputs], data: layer.weight },
    { name: `${prefix}.bias`, shape: [layer.outputs], data: layer.bias },
  ];
}

/** Names of the encoder's linear layers, as in a PyTorch nn.Sequential(Linear, ReLU, Linear, ReLU, …). */
export function encoderLayerNames(layerCount: number): string[] {
  return Array.from({ length: layerCount }, (_, i) => `encoder.${2 * i}`);
}

/** Reads dense layers `<prefix>.weight` / `<prefix>.bias` from a checkpoint (file or model folder). */
export async function readDenseLayers(path: string, prefixes: readonly string[]): Promise<DenseLayer[]> {
  const checkpoint = await openCheckpoint(path);
  try {
    const layers: DenseLayer[] = [];
    for (const prefix of prefixes) {
      const info = checkpoint.tensor(`${prefix}.weight`);
      if (!info || info.shape.length !== 2) throw new Error(`${path}: no 2-d tensor ${prefix}.weight`);
      const [outputs, inputs] = info.shape as [number, number];
      const weight = await checkpoint.readFloat32(`${prefix}.weight`);
      const bias = await checkpoint.readFloat32(`${prefix}.bias`);
      layers.push({ inputs, outputs, weight, bias });
    }
    return layers;
  } finally {
    await checkpoint.close();
  }
}

/** The held-out test set and every task's transform, as stored in data/test.safetensors. */
export interface StoredTestData {
  readonly digits: DigitSet;
  /** Tasks rebuilt from the stored transforms (descriptions are not stored in the file). */
  readonly tasks: TaskDefinition[];
}

/** The tensors of data/test.safetensors: `images` U8 [N, 784], `digits` U8 [N], and per task its transform. */
export function testDataTensors(test: DigitSet, tasks: readonly TaskDefinition[]): TensorToWrite[] {
  return [
    { name: 'images', shape: [test.count, IMAGE_PIXELS], data: test.pixels },
    { name: 'digits', shape: [test.count], data: test.digits },
    ...tasks.flatMap((t) => [
      { name: `tasks.${t.name}.pixel_index`, shape: [IMAGE_PIXELS], data: t.pixelIndex },
      { name: `tasks.${t.name}.invert_mask`, shape: [IMAGE_PIXELS], data: t.invertMask },
      { name: `tasks.${t.name}.label_of_digit`, shape: [10], data: t.labelOfDigit },
    ]),
  ];
}

/** Reads data/test.safetensors back (through the product's reader). */
export async function readTestData(path: string): Promise<StoredTestData> {
  const checkpoint = await openCheckpoint(path);
  try {
    const asBytes = async (name: string): Promise<Uint8Array> => Uint8Array.from(await checkpoint.readFloat32(name));
    const pixels = await asBytes('images');
    const digits = await asBytes('digits');
    const names = checkpoint.tensors.map((t) => /^tasks\.(.+)\.pixel_index$/.exec(t.name)?.[1]).filter((n): n is string => n !== undefined);
    const tasks: TaskDefinition[] = [];
    for (const name of names) {
      const labelOfDigit = await asBytes(`tasks.${name}.label_of_digit`);
      tasks.push({
        name,
        description: '',
        classes: Math.max(...labelOfDigit) + 1,
        pixelIndex: Int32Array.from(await checkpoint.readFloat32(`tasks.${name}.pixel_index`)),
        invertMask: await asBytes(`tasks.${name}.invert_mask`),
        labelOfDigit,
      });
    }
    return { digits: { count: digits.length, pixels, digits }, tasks };
  } finally {
    await checkpoint.close();
  }
}
