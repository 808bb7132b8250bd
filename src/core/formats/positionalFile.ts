/**
 * One open file read at explicit offsets (pread): the readers never stream a whole file to list or read a tensor,
 * and concurrent reads of different tensors share one handle.
 */
import { constants as fsConstants, promises as fsp } from 'node:fs';
import { AwdError } from '../errors';

const MAX_READ_BYTES = 1 << 30;

export class PositionalFile {
  private closed = false;

  private constructor(
    /** Absolute path, used in every error message. */
    readonly path: string,
    private readonly handle: fsp.FileHandle,
    /** Size in bytes when opened. */
    readonly size: number,
  ) {}

  /** Opens `path` for reading; a missing or unreadable file is an AwdError. */
  static async open(path: string): Promise<PositionalFile> {
    let handle: fsp.FileHandle;
    try {
      // Non-blocking, so that a named pipe planted under a checkpoint's name cannot hang the open (it is refused
      // below); on regular files the flag changes nothing.
      handle = await fsp.open(path, fsConstants.O_RDONLY | (fsConstants.O_NONBLOCK ?? 0));
    } catch (e) {
      throw fileOpenError(path, e);
    }
    try {
      const stat = await handle.stat();
      if (stat.isDirectory()) throw new AwdError('is a folder, not a file', { file: path });
      if (!stat.isFile()) throw new AwdError('is not a regular file (a pipe, device or socket)', { file: path, fix: 'Point at the checkpoint file itself' });
      return new PositionalFile(path, handle, stat.size);
    } catch (e) {
      await handle.close();
      throw e;
    }
  }

  /** Fills `target` with the bytes at [position, position + target.length); a short file is an AwdError. */
  async readInto(position: number, target: Uint8Array): Promise<Uint8Array> {
    if (this.closed) throw new AwdError('read after the checkpoint was closed', { file: this.path });
    let done = 0;
    while (done < target.byteLength) {
      // fs.read takes at most 2 GiB per call; a larger tensor range is read in pieces.
      const { bytesRead } = await this.handle.read(target, done, Math.min(target.byteLength - done, MAX_READ_BYTES), position + done);
      if (bytesRead === 0) {
        throw new AwdError(`file ends at byte ${position + done}, before byte ${position + target.byteLength} it should hold`, {
          file: this.path,
          fix: 'The file is truncated or was changed while open; re-download or re-save it',
        });
      }
      done += bytesRead;
    }
    return target;
  }

  /** The open descriptor (for preads on another thread of this process while this file stays open). */
  get fd(): number {
    if (this.closed) throw new AwdError('read after the checkpoint was closed', { file: this.path });
    return this.handle.fd;
  }

  /** Reads `length` bytes at `position` into a new buffer. */
  read(position: number, length: number): Promise<Uint8Array> {
    return this.readInto(position, new Uint8Array(length));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.handle.close();
  }
}

/** Turns an fs error from opening a file into a message for people. */
export function fileOpenError(path: string, e: unknown): AwdError {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT') return new AwdError('no such file or folder', { file: path, fix: 'Check the path' });
  if (code === 'EACCES' || code === 'EPERM') return new AwdError('permission denied', { file: path, fix: 'Check the file permissions' });
  if (code === 'EISDIR') return new AwdError('is a folder, not a file', { file: path });
  if (code === 'ELOOP') return new AwdError('is a loop of symbolic links', { file: path, fix: 'Point at the file the links should lead to' });
  return new AwdError(`cannot open: ${(e as Error).message}`, { file: path });
}
