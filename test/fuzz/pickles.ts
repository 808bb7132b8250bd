// Hostile pickles for the fuzzing harness: code-reaching GLOBALs through every opcode that can call or build
// (REDUCE, BUILD, NEWOBJ, NEWOBJ_EX, INST, OBJ), deep nesting, memo abuse, shared-reference bombs, cycles, lying
// lengths, and opcode soup. Built as bytes by hand (opcodes of pickle protocols 0–5), since Python is not needed.
import { int, type Rand } from '../support/mutations';

const latin1 = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0) & 0xff);
const u32 = (n: number): string => String.fromCharCode(n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff);
const u64 = (n: bigint): string => {
  let s = '';
  for (let i = 0n; i < 8n; i++) s += String.fromCharCode(Number((n >> (8n * i)) & 0xffn));
  return s;
};
/** BINUNICODE: a UTF-8 string with a 4-byte length (ASCII here, so chars = bytes). */
const str = (s: string): string => `X${u32(s.length)}${s}`;
const PROTO2 = '\x80\x02';
const PROTO4 = '\x80\x04';

/** Globals that would run code, read or write files, or load another pickle if an unpickler resolved them. */
export const DANGEROUS_GLOBALS: readonly (readonly [string, string])[] = [
  ['os', 'system'],
  ['posix', 'system'],
  ['nt', 'system'],
  ['os', 'popen'],
  ['subprocess', 'Popen'],
  ['subprocess', 'check_output'],
  ['subprocess', 'run'],
  ['builtins', 'eval'],
  ['builtins', 'exec'],
  ['builtins', 'compile'],
  ['builtins', 'getattr'],
  ['builtins', '__import__'],
  ['builtins', 'open'],
  ['__builtin__', 'eval'],
  ['torch', 'load'],
  ['torch.serialization', 'load'],
  ['torch', '_utils._rebuild_tensor_v2.__globals__'],
  ['torch._utils', '_rebuild_tensor_v2.__code__'],
  ['pickle', 'loads'],
  ['_pickle', 'loads'],
  ['numpy', 'load'],
  ['runpy', '_run_code'],
  ['shutil', 'rmtree'],
  ['webbrowser', 'open'],
  ['collections', 'OrderedDict.__init__.__globals__'],
  ['os.path', 'join'],
];

/** The ways a pickle can get a global called or its state applied. */
export const CALL_PATHS = ['GLOBAL+REDUCE', 'STACK_GLOBAL+REDUCE', 'INST', 'OBJ', 'NEWOBJ', 'NEWOBJ_EX', 'BUILD', 'nested-in-state-dict'] as const;
export type CallPath = (typeof CALL_PATHS)[number];

/** A pickle that, in Python, would call `module.name(command)` through `path`. */
export function codeReachingPickle(module: string, name: string, path: CallPath, command: string): Uint8Array {
  const global = `c${module}\n${name}\n`;
  const stackGlobal = `${str(module)}${str(name)}\x93`;
  switch (path) {
    case 'GLOBAL+REDUCE':
      return latin1(`${PROTO2}${global}(${str(command)}tR.`);
    case 'STACK_GLOBAL+REDUCE':
      return latin1(`${PROTO4}${stackGlobal}${str(command)}\x85R.`);
    case 'INST':
      return latin1(`(${str(command)}i${module}\n${name}\n.`);
    case 'OBJ':
      return latin1(`${PROTO2}(${global}${str(command)}o.`);
    case 'NEWOBJ':
      return latin1(`${PROTO2}${global}${str(command)}\x85\x81.`);
    case 'NEWOBJ_EX':
      return latin1(`${PROTO4}${stackGlobal}${str(command)}\x85}\x92.`);
    case 'BUILD':
      // An allow-listed object whose state names the dangerous global: BUILD must not call anything.
      return latin1(`${PROTO2}ccollections\nOrderedDict\n)R}${str('__setstate__')}${global}sb.`);
    case 'nested-in-state-dict':
      // A plausible state_dict whose second value is the call.
      return latin1(`${PROTO2}ccollections\nOrderedDict\n)R(${str('a')}K\x01${str('b')}${global}(${str(command)}tRu.`);
  }
}

/** `depth` nested lists, [[[…]]], built with EMPTY_LIST × depth then APPEND × (depth − 1). */
export function deeplyNestedPickle(depth: number): Uint8Array {
  return latin1(`${PROTO2}${']'.repeat(depth)}${'a'.repeat(depth - 1)}.`);
}

/** `depth` nested tuples through MARKs: ((((…)))). */
export function deeplyMarkedPickle(depth: number): Uint8Array {
  return latin1(`${PROTO2}${'('.repeat(depth)}${'t'.repeat(depth)}.`);
}

/** Shared-reference bomb: L0 = [], L_i = [L_{i−1}, L_{i−1}] via the memo; a tree walk without a visited set sees 2^depth leaves. */
export function sharedReferenceBomb(depth: number, asDict: boolean): Uint8Array {
  let s = `${PROTO2}]q\x00`;
  for (let i = 1; i <= depth; i++) {
    const prev = `h${String.fromCharCode((i - 1) & 0xff)}`;
    s += asDict ? `}(${str('x')}${prev}${str('y')}${prev}uq${String.fromCharCode(i & 0xff)}` : `](${prev}${prev}eq${String.fromCharCode(i & 0xff)}`;
    if (i >= 255) break;
  }
  return latin1(`${s}.`);
}

/** A list that contains itself (and, with `viaDict`, a dict that contains itself): a cycle. */
export function cyclicPickle(viaDict: boolean): Uint8Array {
  return latin1(viaDict ? `${PROTO2}}q\x00${str('self')}h\x00s.` : `${PROTO2}]q\x00h\x00a.`);
}

/** Memo abuse: huge indexes, GET of never-stored entries, many entries, MEMOIZE without protocol 4. */
export function memoAbusePickle(r: Rand): Uint8Array {
  switch (int(r, 6)) {
    case 0:
      return latin1(`${PROTO2}Np99999999999999999999\n.`);
    case 1:
      return latin1(`${PROTO2}Nr${u32(0xffffffff)}j${u32(0xffffffff)}.`);
    case 2:
      return latin1(`${PROTO2}Nh\x07.`);
    case 3: {
      // Tens of thousands of memo entries of one value.
      const n = 1000 + int(r, 60_000);
      let s = `${PROTO2}N`;
      for (let i = 0; i < n; i++) s += `r${u32(i)}`;
      return latin1(`${s}.`);
    }
    case 4:
      return latin1(`${PROTO4}${'N\x94'.repeat(1000 + int(r, 10_000))}.`);
    default:
      // The same index overwritten with ever-growing lists (each refers to the last).
      return latin1(`${PROTO2}]q\x00${'](h\x00eq\x00'.repeat(1000 + int(r, 10_000))}.`);
  }
}

/** Length fields that lie: strings, bytes, longs and frames claiming far more than the pickle holds. */
export function lyingLengthPickle(r: Rand): Uint8Array {
  const big = [0xffffffff, 0x7fffffff, 0x80000000, 1 << 30][int(r, 4)]!;
  const big64 = [2n ** 63n, 2n ** 64n - 1n, 2n ** 53n + 1n, 1n << 40n][int(r, 4)]!;
  switch (int(r, 8)) {
    case 0:
      return latin1(`${PROTO2}X${u32(big)}abc.`);
    case 1:
      return latin1(`${PROTO4}\x8d${u64(big64)}abc.`);
    case 2:
      return latin1(`${PROTO4}\x8e${u64(big64)}abc.`);
    case 3:
      return latin1(`${PROTO2}\x8b${u32(big)}\x01.`);
    case 4:
      return latin1(`${PROTO4}\x95${u64(big64)}N.`);
    case 5:
      return latin1(`${PROTO2}B${u32(big)}abc.`);
    case 6:
      return latin1(`${PROTO4}\x96${u64(big64)}abc.`);
    default:
      return latin1(`${PROTO2}T${u32(big)}abc.`);
  }
}

/** Opcodes (with plausible arguments) for soup: short random programs of the pickle machine. */
const SOUP: readonly ((r: Rand) => string)[] = [
  () => '(',
  () => ')',
  () => ']',
  () => '}',
  () => 'N',
  () => 'a',
  () => 'e',
  () => 's',
  () => 'u',
  () => 't',
  () => 'l',
  () => 'd',
  () => '0',
  () => '1',
  () => '2',
  () => 'R',
  () => 'b',
  () => '\x81',
  () => '\x85',
  () => '\x86',
  () => '\x87',
  () => '\x88',
  () => '\x89',
  () => '\x93',
  () => '\x94',
  (r) => `K${String.fromCharCode(int(r, 256))}`,
  (r) => `J${u32(int(r, 2 ** 32))}`,
  (r) => `q${String.fromCharCode(int(r, 4))}`,
  (r) => `h${String.fromCharCode(int(r, 4))}`,
  (r) => str(['a', 'torch', 'os', 'system', '_rebuild_tensor_v2', 'storage', 'cpu', 'OrderedDict'][int(r, 8)]!),
  () => 'ccollections\nOrderedDict\n',
  () => 'ctorch._utils\n_rebuild_tensor_v2\n',
  () => 'ctorch\nFloatStorage\n',
  () => 'cos\nsystem\n',
  () => 'Q',
  (r) => `\x8a\x08${u64(BigInt(int(r, 2 ** 30)) << 30n)}`,
  (r) => `G${u64(BigInt(int(r, 2 ** 30)) << 34n)}`,
];

/** A random program of 1–200 opcodes, ending in STOP. */
export function opcodeSoup(r: Rand): Uint8Array {
  let s = r() < 0.5 ? PROTO2 : PROTO4;
  const n = 1 + int(r, 200);
  for (let i = 0; i < n; i++) s += SOUP[int(r, SOUP.length)]!(r);
  return latin1(`${s}.`);
}
