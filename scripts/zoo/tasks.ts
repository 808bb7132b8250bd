/**
 * The fine-tuning tasks of the zoo, all built from the same digits: a pixel rearrangement (x'[i] = x[index[i]],
 * blank where index[i] = −1), then inverted intensities where a mask says so (x'[i] = 255 − x'[i]), and a
 * relabelling of the digit (class = labelOfDigit[digit]).
 */
import { IMAGE_PIXELS, IMAGE_SIDE, type DigitSet } from './digits';
import { SeededRandom } from './seededRandom';

export interface TaskDefinition {
  /** Folder name in the zoo and key in the manifest. */
  readonly name: string;
  /** One line for people: what the task asks. */
  readonly description: string;
  /** Number of output classes of the task's head. */
  readonly classes: number;
  /** Output pixel i is input pixel pixelIndex[i], or blank (0) where it is −1. */
  readonly pixelIndex: Int32Array;
  /** 1 where the output pixel's intensity is inverted after the rearrangement. */
  readonly invertMask: Uint8Array;
  /** The class of each digit 0..9. */
  readonly labelOfDigit: Uint8Array;
}

const N = IMAGE_SIDE;

/** The pixel index of a rearrangement given as a map from output (row, column) to input (row, column); off-image is blank. */
function pixelIndexOf(source: (row: number, col: number) => [number, number]): Int32Array {
  const index = new Int32Array(IMAGE_PIXELS);
  for (let r = 0; r < N; r++) {
    for (let c = 0; c < N; c++) {
      const [sr, sc] = source(r, c);
      index[r * N + c] = sr >= 0 && sr < N && sc >= 0 && sc < N ? sr * N + sc : -1;
    }
  }
  return index;
}

/** An invert mask that is 1 where `inverted(row, column)` holds. */
function invertMaskOf(inverted: (row: number, col: number) => boolean): Uint8Array {
  return Uint8Array.from({ length: IMAGE_PIXELS }, (_, i) => (inverted(Math.floor(i / N), i % N) ? 1 : 0));
}

const identity = (): Int32Array => pixelIndexOf((r, c) => [r, c]);
const noInversion = (): Uint8Array => new Uint8Array(IMAGE_PIXELS);
const digitLabels = (): Uint8Array => Uint8Array.from({ length: 10 }, (_, d) => d);

/** A 4×4 grid of 7×7 tiles put in a seeded order that moves every tile. */
function tileShuffleIndex(seed: number): Int32Array {
  const tile = 7;
  const grid = N / tile;
  const rng = new SeededRandom(seed);
  let order: Int32Array;
  do order = rng.permutation(grid * grid);
  while (order.some((t, i) => t === i));
  return pixelIndexOf((r, c) => {
    const from = order[Math.floor(r / tile) * grid + Math.floor(c / tile)]!;
    return [Math.floor(from / grid) * tile + (r % tile), (from % grid) * tile + (c % tile)];
  });
}

/**
 * The task list; `seed` fixes the random pixel permutation and the tile order. Every task keeps the ten digit
 * classes and changes the input: relabelling tasks on plain digits (parity, ≥ 5) were tried and dropped, because a
 * linear probe on the pre-trained digit features came within 0.4 and 2 points of fine-tuning on them.
 */
export function zooTasks(seed: number): TaskDefinition[] {
  const task = (name: string, description: string, pixelIndex: Int32Array, invertMask = noInversion()): TaskDefinition =>
    ({ name, description, classes: 10, pixelIndex, invertMask, labelOfDigit: digitLabels() });
  return [
    task('rot90', 'digits rotated 90° clockwise', pixelIndexOf((r, c) => [N - 1 - c, r])),
    task('flip_lr', 'digits mirrored left–right', pixelIndexOf((r, c) => [r, N - 1 - c])),
    task('flip_ud', 'digits mirrored top–bottom', pixelIndexOf((r, c) => [N - 1 - r, c])),
    task('invert', 'digits with inverted intensities (255 − x)', identity(), invertMaskOf(() => true)),
    task('checker', 'digits with intensities inverted on a checkerboard of 7×7 tiles', identity(), invertMaskOf((r, c) => (Math.floor(r / 7) + Math.floor(c / 7)) % 2 === 1)),
    task('permute', 'digits under a fixed random permutation of the 784 pixels', new SeededRandom(seed + 101).permutation(IMAGE_PIXELS)),
    task('tiles', 'digits cut into a 4×4 grid of 7×7 tiles, tiles shuffled in a fixed order', tileShuffleIndex(seed + 202)),
    task('shift', 'digits moved 4 pixels right and 4 pixels down (vacated pixels blank)', pixelIndexOf((r, c) => [r - 4, c - 4])),
  ];
}

/** The task's inputs in [0, 1] (count × 784, float32) and class labels for a set of digits. */
export function taskInputs(task: TaskDefinition, set: DigitSet): { inputs: Float32Array; labels: Uint8Array } {
  const inputs = new Float32Array(set.count * IMAGE_PIXELS);
  const labels = new Uint8Array(set.count);
  for (let n = 0; n < set.count; n++) {
    const src = n * IMAGE_PIXELS;
    for (let i = 0; i < IMAGE_PIXELS; i++) {
      const from = task.pixelIndex[i]!;
      const v = from < 0 ? 0 : set.pixels[src + from]!;
      inputs[src + i] = (task.invertMask[i] ? 255 - v : v) / 255;
    }
    labels[n] = task.labelOfDigit[set.digits[n]!]!;
  }
  return { inputs, labels };
}
