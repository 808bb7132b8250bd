/**
 * Change detection for a merge's input files: size, modification time and inode of each file when the merge
 * starts, compared again before the output is renamed into place. A file truncated, rewritten in place or
 * replaced while the merge read it would otherwise give an output mixing two versions (or a record whose SHA-256
 * names bytes the merge never used); the merge then stops and nothing is left behind.
 */
import { stat } from 'node:fs/promises';
import { AwdError } from '../errors';

interface FileStamp {
  size: number;
  mtimeMs: number;
  ino: number;
}

export interface InputSnapshot {
  /** Throws an AwdError naming the first input whose size, mtime or inode differs from the snapshot. */
  verifyUnchanged(): Promise<void>;
}

async function stampOf(file: string): Promise<FileStamp | undefined> {
  try {
    const s = await stat(file);
    return { size: s.size, mtimeMs: s.mtimeMs, ino: s.ino };
  } catch {
    return undefined;
  }
}

/** What changed between two stamps, in words, or undefined when nothing did. */
function difference(before: FileStamp | undefined, after: FileStamp | undefined): string | undefined {
  if (!before) return undefined;
  if (!after) return 'was deleted or moved';
  if (after.ino !== before.ino) return 'was replaced by another file';
  if (after.size !== before.size) return `changed size from ${before.size} to ${after.size} bytes`;
  if (after.mtimeMs !== before.mtimeMs) return `was modified (mtime ${new Date(before.mtimeMs).toISOString()} → ${new Date(after.mtimeMs).toISOString()})`;
  return undefined;
}

/** Stamps every input file now. */
export async function snapshotInputs(files: readonly string[]): Promise<InputSnapshot> {
  const unique = [...new Set(files)];
  const before = await Promise.all(unique.map(stampOf));
  return {
    async verifyUnchanged(): Promise<void> {
      for (const [i, file] of unique.entries()) {
        const change = difference(before[i], await stampOf(file));
        if (change) {
          throw new AwdError(`${change} while the merge was reading it; nothing was written`, {
            file,
            fix: 'Wait until the file is complete (e.g. a download or save finished), then run the merge again',
          });
        }
      }
    },
  };
}
