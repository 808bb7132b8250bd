/**
 * A zip archive read through yauzl's central directory: entry list, the file offset of a stored entry's data (for
 * positional reads), and bounded inflation of deflated entries (never more than the stated size, so a zip bomb
 * fails instead of filling memory).
 */
import { Readable } from 'node:stream';
import * as yauzl from 'yauzl';
import { AwdError } from '../errors';
import type { PositionalFile } from './positionalFile';

/**
 * yauzl reads through our open file with every position checked first: a damaged zip64 record can hold offsets
 * beyond 2^53, which yauzl's own fd reader passes to fs.read inside a callback, where the throw escapes every handler.
 */
class PositionalZipReader extends yauzl.RandomAccessReader {
  constructor(private readonly file: PositionalFile) {
    super();
  }

  private outside(position: number, length: number): Error | undefined {
    if (Number.isSafeInteger(position) && position >= 0 && length >= 0 && position + length <= this.file.size) return undefined;
    return new Error(`a zip record points outside the file (${length} bytes at ${position})`);
  }

  override read(buffer: Buffer, offset: number, length: number, position: number, callback: (err: Error | null) => void): void {
    const bad = this.outside(position, length);
    if (bad) {
      setImmediate(() => callback(bad));
      return;
    }
    this.file.readInto(position, buffer.subarray(offset, offset + length)).then(
      () => callback(null),
      (e: unknown) => callback(e instanceof Error ? e : new Error(String(e))),
    );
  }

  /** Used for inflating: an entry's compressed bytes, streamed in 1 MiB reads so memory stays flat. */
  override _readStreamForRange(start: number, end: number): Readable {
    const file = this.file;
    const bad = this.outside(start, end - start);
    let position = start;
    return new Readable({
      read() {
        if (bad) return void this.destroy(bad);
        if (position >= end) return void this.push(null);
        const length = Math.min(1 << 20, end - position);
        const at = position;
        position += length;
        file.read(at, length).then(
          (bytes) => this.push(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)),
          (e: unknown) => this.destroy(e instanceof Error ? e : new Error(String(e))),
        );
      },
    });
  }

  /** The file belongs to the caller, who closes it. */
  override close(callback: (err: Error | null) => void): void {
    setImmediate(() => callback(null));
  }
}

export type ZipEntry = yauzl.Entry;

export class ZipArchive {
  private readonly dataStarts = new Map<ZipEntry, Promise<number>>();

  private constructor(
    private readonly file: PositionalFile,
    private readonly zip: yauzl.ZipFile,
    /** Entries in central-directory order. */
    readonly entries: readonly ZipEntry[],
    /** What to tell the user when the archive is damaged. */
    private readonly fix: string,
  ) {}

  /** Reads the central directory of `file`; a damaged or non-zip file is an AwdError with `fix`. */
  static async open(file: PositionalFile, fix: string): Promise<ZipArchive> {
    let zip: yauzl.ZipFile;
    try {
      zip = await yauzl.fromRandomAccessReaderPromise(new PositionalZipReader(file), file.size, {
        lazyEntries: true,
        autoClose: false,
        strictFileNames: false,
        // inflate() checks sizes itself; yauzl's check would fail a stream we stop early on its first chunk.
        validateEntrySizes: false,
      });
    } catch (e) {
      throw new AwdError(`not a readable zip archive: ${(e as Error).message}`, { file: file.path, fix });
    }
    const entries: ZipEntry[] = [];
    try {
      for await (const entry of zip.eachEntry()) entries.push(entry);
    } catch (e) {
      zip.close();
      throw new AwdError(`the zip archive is damaged: ${(e as Error).message}`, { file: file.path, fix });
    }
    return new ZipArchive(file, zip, entries, fix);
  }

  /** Absolute path of the archive. */
  get path(): string {
    return this.file.path;
  }

  /** True for entries stored without compression (readable at any offset). */
  static isStored(entry: ZipEntry): boolean {
    return entry.compressionMethod === 0;
  }

  /** Absolute file offset of a stored entry's first data byte, checked to lie inside the file with all its data. */
  dataStart(entry: ZipEntry): Promise<number> {
    let start = this.dataStarts.get(entry);
    if (!start) {
      start = this.locate(entry);
      this.dataStarts.set(entry, start);
    }
    return start;
  }

  private async locate(entry: ZipEntry): Promise<number> {
    let start: number;
    try {
      ({ fileDataStart: start } = await this.zip.readLocalFileHeaderPromise(entry, { minimal: true }));
    } catch (e) {
      throw new AwdError(`the zip entry ${entry.fileName} is damaged: ${(e as Error).message}`, { file: this.file.path, fix: this.fix });
    }
    if (start + entry.compressedSize > this.file.size) {
      throw new AwdError(`the zip entry ${entry.fileName} runs past the end of the file`, {
        file: this.file.path,
        fix: 'The file is truncated; re-download or re-save it',
      });
    }
    return start;
  }

  /**
   * The first min(n, size) bytes of an entry's uncompressed content: read in place when stored, inflated and
   * stopped early when deflated.
   */
  async readPrefix(entry: ZipEntry, n: number): Promise<Uint8Array> {
    const length = Math.min(n, entry.uncompressedSize);
    if (ZipArchive.isStored(entry)) {
      if (entry.compressedSize !== entry.uncompressedSize) throw this.damaged(entry, 'stored entry sizes disagree');
      return this.file.read(await this.dataStart(entry), length);
    }
    return this.inflate(entry, length, true);
  }

  /** Bytes [offset, offset + length) of a stored entry, read in place. */
  async readStoredRange(entry: ZipEntry, offset: number, length: number): Promise<Uint8Array> {
    if (!ZipArchive.isStored(entry) || entry.compressedSize !== entry.uncompressedSize) throw this.damaged(entry, 'not a stored entry');
    if (offset < 0 || offset + length > entry.uncompressedSize) throw this.damaged(entry, `bytes [${offset}, ${offset + length}) lie outside the entry`);
    return this.file.read((await this.dataStart(entry)) + offset, length);
  }

  /** The whole uncompressed content of an entry; `limit` bounds the stated size before anything is read. */
  async readWhole(entry: ZipEntry, limit: number): Promise<Uint8Array> {
    if (entry.uncompressedSize > limit) {
      throw new AwdError(`${entry.fileName} is ${entry.uncompressedSize} bytes uncompressed, more than the ${limit} we inflate`, {
        file: this.file.path,
        fix: this.fix,
      });
    }
    return this.readPrefix(entry, entry.uncompressedSize);
  }

  /** Inflates up to `length` bytes, buffering only what actually comes out; more than the stated size fails. */
  private async inflate(entry: ZipEntry, length: number, stopEarly: boolean): Promise<Uint8Array> {
    if (entry.compressionMethod !== 8) throw this.damaged(entry, `compression method ${entry.compressionMethod} is not supported (only stored and deflate)`);
    // Deflate cannot expand more than about 1032:1; a larger stated size is a lie we must not allocate for.
    if (entry.uncompressedSize > entry.compressedSize * 1032 + 1024) throw this.damaged(entry, 'its stated size is impossible for its compressed size');
    await this.dataStart(entry);
    const out = new Uint8Array(length);
    let filled = 0;
    let total = 0;
    try {
      const stream = await this.zip.openReadStreamPromise(entry);
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        const take = Math.min(chunk.length, length - filled);
        out.set(chunk.subarray(0, take), filled);
        filled += take;
        total += chunk.length;
        // Stop as soon as we hold what was asked for: nothing past it is inflated into memory.
        if (stopEarly && filled === length && length < entry.uncompressedSize) {
          stream.destroy();
          return out;
        }
        if (total > entry.uncompressedSize) throw new Error('the entry inflates past its stated size');
      }
    } catch (e) {
      if (e instanceof AwdError) throw e;
      throw this.damaged(entry, (e as Error).message);
    }
    if (filled !== length) throw this.damaged(entry, 'the entry inflates to less than its stated size');
    return out;
  }

  private damaged(entry: ZipEntry, why: string): AwdError {
    return new AwdError(`cannot read ${entry.fileName}: ${why}`, { file: this.file.path, fix: this.fix });
  }

  close(): void {
    this.zip.close();
  }
}
