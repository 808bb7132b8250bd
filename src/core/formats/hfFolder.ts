/**
 * Hugging Face model folders: a directory with `config.json` and its weights under one of a few standard names.
 * Resolving the folder names the one file (weights or index) that the checkpoint is opened from.
 */
import { promises as fsp } from 'node:fs';
import { join, resolve as resolvePath } from 'node:path';
import { AwdError } from '../errors';
import { fileOpenError } from './positionalFile';

/** Standard weight file names, in the order transformers itself prefers them. */
export const HF_WEIGHT_FILES = [
  'model.safetensors',
  'model.safetensors.index.json',
  'pytorch_model.bin',
  'pytorch_model.bin.index.json',
] as const;

/**
 * The weights file of a model folder: a standard name when present, else the single `*.safetensors.index.json`,
 * else the single `*.safetensors` (e.g. diffusion_pytorch_model.safetensors); anything else is an AwdError.
 */
export async function resolveModelFolder(folder: string): Promise<string> {
  const dir = resolvePath(folder);
  let names: string[];
  try {
    names = (await fsp.readdir(dir, { withFileTypes: true })).filter((d) => d.isFile() || d.isSymbolicLink()).map((d) => d.name);
  } catch (e) {
    throw fileOpenError(dir, e);
  }
  for (const name of HF_WEIGHT_FILES) if (names.includes(name)) return join(dir, name);
  for (const suffix of ['.safetensors.index.json', '.safetensors']) {
    const matches = names.filter((n) => n.endsWith(suffix));
    if (matches.length === 1) return join(dir, matches[0]!);
    if (matches.length > 1) {
      throw new AwdError(`the folder holds several ${suffix} files (${matches.slice(0, 4).join(', ')}${matches.length > 4 ? ', …' : ''})`, {
        file: dir,
        fix: 'Open one of the files directly',
      });
    }
  }
  throw new AwdError('the folder holds no model weights', {
    file: dir,
    fix: `Expected one of ${HF_WEIGHT_FILES.join(', ')}, or a single *.safetensors file`,
  });
}
