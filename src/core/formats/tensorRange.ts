/** Element-range checks shared by every reader, so a bad request fails the same way whatever the format. */
import { AwdError } from '../errors';
import type { TensorInfo } from './types';

/** Resolves optional [start, end) against a tensor's element count; anything outside is an AwdError. */
export function resolveElementRange(file: string, info: TensorInfo, start = 0, end = info.elements): [number, number] {
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start || end > info.elements) {
    throw new AwdError(`element range [${start}, ${end}) is outside the tensor's ${info.elements} elements`, {
      file,
      tensor: info.name,
    });
  }
  return [start, end];
}

/** Checks that a caller's `out` buffer holds exactly `n` elements. */
export function checkOutLength(file: string, info: TensorInfo, out: Float32Array | undefined, n: number): void {
  if (out && out.length !== n) {
    throw new AwdError(`output buffer holds ${out.length} elements but ${n} were asked for`, { file, tensor: info.name });
  }
}

/** The error for a name no tensor has. */
export function unknownTensorError(file: string, name: string): AwdError {
  return new AwdError('no such tensor in this checkpoint', { file, tensor: name, fix: 'Run `awd-merge inspect` on the file to list its tensors' });
}
