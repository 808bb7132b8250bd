/**
 * Starts TensorFlow.js for the zoo: the WASM backend (measured here about 3× faster than the pure-JS CPU
 * backend for this MLP), single-threaded so that results do not depend on thread scheduling.
 */
import * as tf from '@tensorflow/tfjs-core';
import { setThreadsCount, setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';

const requireFromHere = createRequire(__filename);
let started: Promise<void> | undefined;

/** Sets the backend once per process; the .wasm binaries load from node_modules (nothing is downloaded). */
export function startTfjs(): Promise<void> {
  started ??= (async () => {
    const wasmDir = dirname(requireFromHere.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm'));
    setWasmPaths(join(wasmDir, '/'));
    setThreadsCount(1);
    if (!(await tf.setBackend('wasm'))) throw new Error('TensorFlow.js could not start its WASM backend');
    await tf.ready();
  })();
  return started;
}

/** The tfjs packages whose numerics the zoo depends on, with their versions (recorded in the manifest). */
export function tfjsVersions(): Record<string, string> {
  const version = (pkg: string): string =>
    (requireFromHere(`${pkg}/package.json`) as { version: string }).version;
  return { '@tensorflow/tfjs-core': version('@tensorflow/tfjs-core'), '@tensorflow/tfjs-backend-wasm': version('@tensorflow/tfjs-backend-wasm') };
}
