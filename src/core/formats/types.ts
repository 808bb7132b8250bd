/** The one reader interface every checkpoint format sits behind: a merge method never knows the file format. */

/** Element types, named as in safetensors. */
export type DType =
  | 'F64' | 'F32' | 'F16' | 'BF16' | 'F8_E4M3' | 'F8_E5M2'
  | 'I64' | 'I32' | 'I16' | 'I8' | 'U64' | 'U32' | 'U16' | 'U8' | 'BOOL';

export type CheckpointFormat = 'safetensors' | 'safetensors-sharded' | 'pytorch' | 'npy' | 'npz';

export interface TensorInfo {
  readonly name: string;
  readonly dtype: DType;
  /** Row-major shape; [] for a 0-d tensor. */
  readonly shape: readonly number[];
  /** Number of elements (product of shape; 1 for 0-d). */
  readonly elements: number;
  /** Size in bytes in its own dtype (elements × dtype size). */
  readonly bytes: number;
}

/** An open file descriptor, the byte offset at which a tensor's elements start, and their dtype. */
export interface RawSource {
  readonly fd: number;
  readonly offset: number;
  readonly dtype: 'F32' | 'BF16';
}

export interface Checkpoint {
  /** The path the user gave (file, index file or folder), resolved to absolute. */
  readonly path: string;
  readonly format: CheckpointFormat;
  /** Tensors in file order. */
  readonly tensors: readonly TensorInfo[];
  /** String metadata: safetensors `__metadata__`, non-tensor leaves of a torch pickle, … */
  readonly metadata: Readonly<Record<string, string>>;
  /** Every file whose bytes make up this checkpoint (for hashing and change detection). */
  readonly files: readonly string[];
  tensor(name: string): TensorInfo | undefined;
  /**
   * Elements [start, end) of a tensor in row-major order, decoded to float32 (default: the whole tensor).
   * `out`, when given, must hold end − start elements and is filled and returned.
   */
  readFloat32(name: string, start?: number, end?: number, out?: Float32Array): Promise<Float32Array>;
  /**
   * Where a tensor's elements lie as contiguous little-endian float32 or bfloat16 in a file this checkpoint holds
   * open: the descriptor, the byte offset of element 0 and the dtype, so that another thread of this process can
   * pread them (merge/helperThread.ts). Undefined for other dtypes and compressed data; readFloat32 always works.
   */
  rawSource?(name: string): RawSource | undefined;
  /** Elements [start, end) as raw little-endian bytes of the tensor's own dtype, row-major. */
  readBytes(name: string, start?: number, end?: number): Promise<Uint8Array>;
  /** Releases file handles. Further reads fail. */
  close(): Promise<void>;
}
