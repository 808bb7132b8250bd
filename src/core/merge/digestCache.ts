/**
 * A cache of input files' SHA-256, keyed by what `stat` says about the file (path, size, mtime, inode), as git's
 * index does: re-merging the same 1.8 GB of checkpoints then costs no re-hash. An entry is trusted only when the file
 * was hashed at least RACY_MS after its last modification (a file written during the same clock tick as its
 * hashing could change without changing its mtime). The cache is an optimisation: any problem reading or writing
 * it just means hashing again.
 */
import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import * as path from 'node:path';

interface CacheEntry {
  size: number;
  mtimeMs: number;
  ino: number;
  sha256: string;
  /** When the hash was computed (ms since epoch). */
  hashedAt: number;
}

const RACY_MS = 2000;
const MAX_ENTRIES = 2000;

/** The default cache file: $AWD_MERGE_CACHE_DIR, else $XDG_CACHE_HOME/awd-merge, else ~/.cache/awd-merge. */
export function defaultDigestCacheFile(): string {
  const dir = process.env['AWD_MERGE_CACHE_DIR'] ?? path.join(process.env['XDG_CACHE_HOME'] ?? path.join(homedir(), '.cache'), 'awd-merge');
  return path.join(dir, 'sha256-cache.json');
}

export class DigestCache {
  private entries: Record<string, CacheEntry> = {};

  constructor(private readonly file: string) {
    try {
      const parsed = JSON.parse(readFileSync(file, 'utf8')) as unknown;
      if (typeof parsed === 'object' && parsed !== null) this.entries = parsed as Record<string, CacheEntry>;
    } catch {
      // No cache yet, or an unreadable one: start empty.
    }
  }

  /** The cached digest of `file` if it is unchanged since it was hashed. */
  lookup(file: string): string | undefined {
    const e = this.entries[file];
    if (!e) return undefined;
    try {
      const st = statSync(file);
      const same = st.size === e.size && st.mtimeMs === e.mtimeMs && st.ino === e.ino && e.hashedAt - st.mtimeMs >= RACY_MS;
      return same ? e.sha256 : undefined;
    } catch {
      return undefined;
    }
  }

  /** Remembers digests computed at `hashedAt` for files whose stat was taken before hashing. */
  store(digests: Readonly<Record<string, { sha256: string; size: number; mtimeMs: number; ino: number }>>, hashedAt: number): void {
    for (const [f, d] of Object.entries(digests)) this.entries[f] = { ...d, hashedAt };
    const names = Object.keys(this.entries);
    if (names.length > MAX_ENTRIES) {
      names.sort((a, b) => this.entries[a]!.hashedAt - this.entries[b]!.hashedAt);
      for (const n of names.slice(0, names.length - MAX_ENTRIES)) delete this.entries[n];
    }
    try {
      mkdirSync(path.dirname(this.file), { recursive: true });
      const tmp = `${this.file}.${process.pid}.tmp`;
      writeFileSync(tmp, JSON.stringify(this.entries));
      renameSync(tmp, this.file);
    } catch {
      // A read-only home or a full disk only costs the next run a re-hash.
    }
  }
}
