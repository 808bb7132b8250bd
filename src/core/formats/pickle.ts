/**
 * A pickle opcode interpreter that executes nothing. It reads the opcodes of protocols 0–5 and builds inert data:
 * numbers, strings, bytes, lists, tuples, dicts, sets. A GLOBAL (a reference to Python code) resolves only through
 * the caller's allow-list into a `PickleGlobal` descriptor; REDUCE/NEWOBJ on such a descriptor calls the
 * descriptor's own TypeScript builder, never anything named by the file. Every other GLOBAL is refused with an
 * error naming it. Work and memory are bounded by the pickle's length and by explicit limits.
 */
import { AwdError } from '../errors';

/** A Python float, boxed so metadata can print `1.0` for a float and `1` for an int. */
export class PickleFloat {
  constructor(readonly value: number) {}
}

export class PickleList {
  constructor(readonly items: PickleValue[] = []) {}
}

export class PickleTuple {
  constructor(readonly items: readonly PickleValue[]) {}
}

export class PickleSet {
  constructor(
    readonly items: PickleValue[] = [],
    readonly frozen = false,
  ) {}
}

/** A dict (or OrderedDict): insertion-ordered, keys compared the way Python would for ints, floats, bools, str. */
export class PickleDict {
  private readonly entries = new Map<unknown, readonly [PickleValue, PickleValue]>();
  /** Instance attributes set by BUILD (an OrderedDict state_dict carries `_metadata` this way). */
  attributes: PickleValue = null;

  get size(): number {
    return this.entries.size;
  }
  set(key: PickleValue, value: PickleValue): void {
    this.entries.set(dictKey(key), [key, value]);
  }
  get(key: PickleValue): PickleValue | undefined {
    return this.entries.get(dictKey(key))?.[1];
  }
  items(): IterableIterator<readonly [PickleValue, PickleValue]> {
    return this.entries.values();
  }
}

/** Python's equal keys hash alike: True == 1 == 1.0; containers compare by identity here (enough for our files). */
function dictKey(key: PickleValue): unknown {
  if (key instanceof PickleFloat) return key.value;
  if (typeof key === 'boolean') return key ? 1 : 0;
  if (typeof key === 'bigint' && key >= BigInt(Number.MIN_SAFE_INTEGER) && key <= BigInt(Number.MAX_SAFE_INTEGER)) {
    return Number(key);
  }
  return key;
}

/**
 * An allow-listed Python global, inert. `call` (when present) builds the value REDUCE/NEWOBJ would produce, from
 * already-parsed data, in TypeScript; a global without `call` is only a value (a dtype, a storage type).
 */
export class PickleGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
    readonly call?: (args: readonly PickleValue[]) => PickleValue,
  ) {}
  get qualifiedName(): string {
    return `${this.module}.${this.name}`;
  }
}

/** Base of the inert objects an allow-listed builder returns (tensor and storage descriptors, …). */
export abstract class PickleInstance {
  abstract readonly typeName: string;
  /** BUILD on this object: by default refused, as we do not know what the state would mean. */
  setState(_state: PickleValue): void {
    throw new Error(`BUILD is not supported on ${this.typeName}`);
  }
}

export type PickleValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | PickleFloat
  | Uint8Array
  | PickleList
  | PickleTuple
  | PickleDict
  | PickleSet
  | PickleGlobal
  | PickleInstance;

export interface PickleLimits {
  /** Most values on the stack at once (including values under marks). */
  readonly maxStack: number;
  /** Most memo entries. */
  readonly maxMemo: number;
  /** Most items in one list, tuple, dict or set. */
  readonly maxContainer: number;
  /** Longest arbitrary-precision integer (LONG/LONG4), in bytes. */
  readonly maxLongBytes: number;
}

export const DEFAULT_PICKLE_LIMITS: PickleLimits = {
  maxStack: 1 << 22,
  maxMemo: 1 << 22,
  maxContainer: 1 << 24,
  maxLongBytes: 1024,
};

export interface PickleOptions {
  /** The file the pickle comes from, for error messages. */
  readonly file?: string;
  /** The allow-list: a descriptor for `module.name`, or undefined to refuse it. */
  readonly resolveGlobal: (module: string, name: string) => PickleGlobal | undefined;
  /** PERSID/BINPERSID: turns a persistent id into a value; absent means persistent ids are refused. */
  readonly persistentLoad?: (pid: PickleValue) => PickleValue;
  readonly limits?: Partial<PickleLimits>;
}

const FIX_MALFORMED = 'The file is damaged or not a pickle; re-save it, or convert it to safetensors';

/** Thrown inside the interpreter; turned into an AwdError naming the file and byte offset. */
class PickleFormatError extends Error {}
/** The data ended in the middle of the pickle. */
class PickleTruncation extends PickleFormatError {}

/** The pickle ran past the end of the bytes given: a truncated file, or more bytes are needed. */
export class PickleTruncatedError extends AwdError {}

/** Parses one pickle from `data` starting at `start`; returns the value and the offset just past STOP. */
export function unpickle(
  data: Uint8Array,
  options: PickleOptions,
  start = 0,
): { value: PickleValue; end: number } {
  const machine = new PickleMachine(data, options, start);
  try {
    const value = machine.run();
    return { value, end: machine.pos };
  } catch (e) {
    if (e instanceof AwdError) throw e;
    const message = e instanceof Error ? e.message : String(e);
    const where = { file: options.file, fix: FIX_MALFORMED };
    // A short read (a truncated file, or a caller reading the file in growing pieces) is told apart from bad data.
    if (e instanceof PickleTruncation) {
      throw new PickleTruncatedError(`the pickle is cut short at byte ${machine.opStart}: ${message}`, where);
    }
    throw new AwdError(`the pickle is malformed at byte ${machine.opStart}: ${message}`, where);
  }
}

const latin1 = new TextDecoder('latin1');
const utf8 = new TextDecoder('utf-8', { fatal: true });

class PickleMachine {
  pos: number;
  opStart: number;
  private readonly stack: PickleValue[] = [];
  /** Stack heights at each MARK, innermost last. */
  private readonly marks: number[] = [];
  private readonly memo = new Map<number, PickleValue>();
  private readonly limits: PickleLimits;
  private readonly view: DataView;

  constructor(
    private readonly data: Uint8Array,
    private readonly options: PickleOptions,
    start: number,
  ) {
    this.pos = start;
    this.opStart = start;
    this.limits = { ...DEFAULT_PICKLE_LIMITS, ...options.limits };
    this.view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  }

  run(): PickleValue {
    const d = this.data;
    for (;;) {
      this.opStart = this.pos;
      if (this.pos >= d.length) throw new PickleTruncation('the pickle ends before its STOP opcode');
      const op = d[this.pos++]!;
      switch (op) {
        case 0x80: // PROTO
          if (this.u8() > 5) throw new PickleFormatError('unsupported pickle protocol (newer than 5)');
          break;
        case 0x95: // FRAME: a length hint only; framing does not change the opcode stream
          this.uint(8);
          break;
        case 0x2e: // STOP
          if (this.marks.length) throw new PickleFormatError('STOP inside an open MARK');
          return this.pop();
        case 0x28: // MARK
          this.marks.push(this.stack.length);
          this.checkStack();
          break;
        case 0x30: // POP
          if (this.marks.length && this.marks[this.marks.length - 1] === this.stack.length) this.marks.pop();
          else this.pop();
          break;
        case 0x31: // POP_MARK
          this.popMark();
          break;
        case 0x32: // DUP
          this.push(this.top());
          break;

        // Constants and numbers
        case 0x4e: // NONE
          this.push(null);
          break;
        case 0x88: // NEWTRUE
          this.push(true);
          break;
        case 0x89: // NEWFALSE
          this.push(false);
          break;
        case 0x4b: // BININT1
          this.push(this.u8());
          break;
        case 0x4d: // BININT2
          this.push(this.uint(2));
          break;
        case 0x4a: // BININT
          this.need(4);
          this.push(this.view.getInt32(this.pos, true));
          this.pos += 4;
          break;
        case 0x8a: // LONG1
          this.push(this.long(this.u8()));
          break;
        case 0x8b: // LONG4
          this.push(this.long(this.uint(4)));
          break;
        case 0x47: // BINFLOAT: big-endian IEEE double
          this.need(8);
          this.push(new PickleFloat(this.view.getFloat64(this.pos, false)));
          this.pos += 8;
          break;
        case 0x49: // INT (text); "00"/"01" are protocol 0's False/True
          this.push(this.textInt(this.line(), true));
          break;
        case 0x4c: // LONG (text, optional L suffix)
          this.push(this.textInt(this.line().replace(/L$/, ''), false));
          break;
        case 0x46: {
          // FLOAT (text)
          const text = this.line().trim();
          if (!/^[-+]?(\d+\.?\d*([eE][-+]?\d+)?|\.\d+([eE][-+]?\d+)?|inf|nan)$/i.test(text)) {
            throw new PickleFormatError(`bad FLOAT literal "${text.slice(0, 40)}"`);
          }
          this.push(new PickleFloat(/inf/i.test(text) ? (text.startsWith('-') ? -Infinity : Infinity) : Number(text)));
          break;
        }

        // Strings and bytes
        case 0x58: // BINUNICODE
          this.push(this.utf8(this.uint(4)));
          break;
        case 0x8c: // SHORT_BINUNICODE
          this.push(this.utf8(this.u8()));
          break;
        case 0x8d: // BINUNICODE8
          this.push(this.utf8(this.uint(8)));
          break;
        case 0x56: // UNICODE (raw-unicode-escape text line)
          this.push(rawUnicodeUnescape(this.line()));
          break;
        case 0x43: // SHORT_BINBYTES
          this.push(this.bytes(this.u8()));
          break;
        case 0x42: // BINBYTES
          this.push(this.bytes(this.uint(4)));
          break;
        case 0x8e: // BINBYTES8
        case 0x96: // BYTEARRAY8
          this.push(this.bytes(this.uint(8)));
          break;
        case 0x55: // SHORT_BINSTRING: Python 2 str, taken as latin-1 text
          this.push(latin1.decode(this.bytes(this.u8())));
          break;
        case 0x54: // BINSTRING
          this.push(latin1.decode(this.bytes(this.uint(4))));
          break;
        case 0x53: // STRING (quoted repr text line)
          this.push(pythonStringLiteral(this.line()));
          break;

        // Containers
        case 0x7d: // EMPTY_DICT
          this.push(new PickleDict());
          break;
        case 0x5d: // EMPTY_LIST
          this.push(new PickleList());
          break;
        case 0x29: // EMPTY_TUPLE
          this.push(new PickleTuple([]));
          break;
        case 0x8f: // EMPTY_SET
          this.push(new PickleSet());
          break;
        case 0x85: // TUPLE1
          this.push(new PickleTuple([this.pop()]));
          break;
        case 0x86: {
          // TUPLE2
          const b = this.pop();
          const a = this.pop();
          this.push(new PickleTuple([a, b]));
          break;
        }
        case 0x87: {
          // TUPLE3
          const c = this.pop();
          const b = this.pop();
          const a = this.pop();
          this.push(new PickleTuple([a, b, c]));
          break;
        }
        case 0x74: // TUPLE
          this.push(new PickleTuple(this.popMark()));
          break;
        case 0x6c: // LIST
          this.push(new PickleList(this.popMark()));
          break;
        case 0x91: // FROZENSET
          this.push(new PickleSet(this.popMark(), true));
          break;
        case 0x64: {
          // DICT
          const items = this.popMark();
          this.push(this.fillDict(new PickleDict(), items));
          break;
        }
        case 0x61: {
          // APPEND
          const value = this.pop();
          this.appendTo(this.top(), [value]);
          break;
        }
        case 0x65: {
          // APPENDS
          const items = this.popMark();
          this.appendTo(this.top(), items);
          break;
        }
        case 0x90: {
          // ADDITEMS
          const items = this.popMark();
          const target = this.top();
          if (!(target instanceof PickleSet) || target.frozen) throw new PickleFormatError('ADDITEMS on a non-set');
          this.appendTo(target, items);
          break;
        }
        case 0x73: {
          // SETITEM
          const value = this.pop();
          const key = this.pop();
          this.fillDict(this.top(), [key, value]);
          break;
        }
        case 0x75: {
          // SETITEMS
          const items = this.popMark();
          this.fillDict(this.top(), items);
          break;
        }

        // Memo
        case 0x71: // BINPUT
          this.put(this.u8());
          break;
        case 0x72: // LONG_BINPUT
          this.put(this.uint(4));
          break;
        case 0x70: // PUT (text)
          this.put(this.textIndex(this.line()));
          break;
        case 0x94: // MEMOIZE
          this.put(this.memo.size);
          break;
        case 0x68: // BINGET
          this.push(this.get(this.u8()));
          break;
        case 0x6a: // LONG_BINGET
          this.push(this.get(this.uint(4)));
          break;
        case 0x67: // GET (text)
          this.push(this.get(this.textIndex(this.line())));
          break;

        // References to Python code: only through the allow-list
        case 0x63: {
          // GLOBAL "module\nname\n"
          const module = this.line();
          const name = this.line();
          this.push(this.resolve(module, name));
          break;
        }
        case 0x93: {
          // STACK_GLOBAL
          const name = this.pop();
          const module = this.pop();
          if (typeof module !== 'string' || typeof name !== 'string') {
            throw new PickleFormatError('STACK_GLOBAL needs two strings');
          }
          this.push(this.resolve(module, name));
          break;
        }
        case 0x69: {
          // INST "module\nname\n" with arguments since the mark: class lookup + call in one opcode
          const module = this.line();
          const name = this.line();
          const callee = this.resolve(module, name);
          this.push(this.invoke(callee, this.popMark()));
          break;
        }
        case 0x6f: {
          // OBJ: class and arguments since the mark
          const items = this.popMark();
          if (items.length === 0) throw new PickleFormatError('OBJ without a class');
          this.push(this.invoke(items[0]!, items.slice(1)));
          break;
        }
        case 0x52: {
          // REDUCE
          const args = this.pop();
          const callee = this.pop();
          if (!(args instanceof PickleTuple)) throw new PickleFormatError('REDUCE arguments are not a tuple');
          this.push(this.invoke(callee, args.items));
          break;
        }
        case 0x81: {
          // NEWOBJ: cls.__new__(cls, *args)
          const args = this.pop();
          const cls = this.pop();
          if (!(args instanceof PickleTuple)) throw new PickleFormatError('NEWOBJ arguments are not a tuple');
          this.push(this.invoke(cls, args.items));
          break;
        }
        case 0x92: {
          // NEWOBJ_EX: keyword arguments are refused unless empty
          const kwargs = this.pop();
          const args = this.pop();
          const cls = this.pop();
          if (!(args instanceof PickleTuple) || !(kwargs instanceof PickleDict)) {
            throw new PickleFormatError('NEWOBJ_EX needs a tuple and a dict');
          }
          if (kwargs.size) throw new PickleFormatError('NEWOBJ_EX with keyword arguments is not supported');
          this.push(this.invoke(cls, args.items));
          break;
        }
        case 0x62: {
          // BUILD: obj.__setstate__(state) — data only
          const state = this.pop();
          const target = this.top();
          if (target instanceof PickleDict) target.attributes = state;
          else if (target instanceof PickleInstance) target.setState(state);
          else throw new PickleFormatError(`BUILD on a ${describe(target)} is not supported`);
          break;
        }
        case 0x51: {
          // BINPERSID
          const pid = this.pop();
          this.push(this.persistent(pid));
          break;
        }
        case 0x50: // PERSID (text)
          this.push(this.persistent(this.line()));
          break;
        case 0x82:
        case 0x83:
        case 0x84: // EXT1/2/4: the copyreg extension registry names code we cannot vet
          throw this.refuse('an extension-registry code (EXT opcode)');
        case 0x97:
        case 0x98: // NEXT_BUFFER / READONLY_BUFFER: out-of-band buffers do not exist in a file
          throw new PickleFormatError('out-of-band buffers are not supported');
        default:
          throw new PickleFormatError(`unknown opcode 0x${op.toString(16).padStart(2, '0')}`);
      }
    }
  }

  // --- reading the opcode arguments -------------------------------------------------------------------------

  private need(n: number): void {
    if (n > this.data.length - this.pos) {
      throw new PickleTruncation(`an argument of ${n} bytes runs past the end of the pickle`);
    }
  }

  private u8(): number {
    this.need(1);
    return this.data[this.pos++]!;
  }

  /** Little-endian unsigned integer of `n` bytes (n ≤ 8); above 2^53 it cannot be a valid length anyway. */
  private uint(n: number): number {
    this.need(n);
    let value = 0;
    for (let i = n - 1; i >= 0; i--) value = value * 256 + this.data[this.pos + i]!;
    this.pos += n;
    return value;
  }

  private bytes(n: number): Uint8Array {
    this.need(n);
    const out = this.data.slice(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  private utf8(n: number): string {
    this.need(n);
    const text = utf8.decode(this.data.subarray(this.pos, this.pos + n));
    this.pos += n;
    return text;
  }

  /** A protocol-0 argument: bytes up to the next newline, as latin-1. */
  private line(): string {
    const end = this.data.indexOf(0x0a, this.pos);
    if (end < 0) throw new PickleTruncation('a text argument has no terminating newline');
    const text = latin1.decode(this.data.subarray(this.pos, end));
    this.pos = end + 1;
    return text;
  }

  /** Two's-complement little-endian integer of n bytes: a number when safe, else a bigint. */
  private long(n: number): number | bigint {
    if (n > this.limits.maxLongBytes) {
      throw new PickleFormatError(`an integer of ${n} bytes is larger than the ${this.limits.maxLongBytes} allowed`);
    }
    this.need(n);
    if (n === 0) return 0;
    let value = 0n;
    for (let i = n - 1; i >= 0; i--) value = (value << 8n) | BigInt(this.data[this.pos + i]!);
    if (this.data[this.pos + n - 1]! & 0x80) value -= 1n << BigInt(8 * n);
    this.pos += n;
    return narrow(value);
  }

  private textInt(text: string, boolCodes: boolean): number | bigint | boolean {
    const t = text.trim();
    if (boolCodes && t === '00') return false;
    if (boolCodes && t === '01') return true;
    if (!/^[-+]?\d+$/.test(t) || t.length > 2.5 * this.limits.maxLongBytes) {
      throw new PickleFormatError(`bad integer literal "${t.slice(0, 40)}"`);
    }
    return narrow(BigInt(t));
  }

  private textIndex(text: string): number {
    const t = text.trim();
    if (!/^\d{1,15}$/.test(t)) throw new PickleFormatError(`bad memo index "${t.slice(0, 40)}"`);
    return Number(t);
  }

  // --- stack, marks, memo -------------------------------------------------------------------------------------

  private push(value: PickleValue): void {
    this.stack.push(value);
    this.checkStack();
  }

  private checkStack(): void {
    if (this.stack.length + this.marks.length > this.limits.maxStack) {
      throw this.limitError(`more than ${this.limits.maxStack} values on the pickle stack`);
    }
  }

  private pop(): PickleValue {
    const floor = this.marks.length ? this.marks[this.marks.length - 1]! : 0;
    if (this.stack.length <= floor) throw new PickleFormatError('the pickle stack is empty');
    return this.stack.pop()!;
  }

  private top(): PickleValue {
    const floor = this.marks.length ? this.marks[this.marks.length - 1]! : 0;
    if (this.stack.length <= floor) throw new PickleFormatError('the pickle stack is empty');
    return this.stack[this.stack.length - 1]!;
  }

  /** Pops everything above the innermost MARK, and the mark. */
  private popMark(): PickleValue[] {
    const height = this.marks.pop();
    if (height === undefined) throw new PickleFormatError('an opcode needs a MARK that is not there');
    const items = this.stack.splice(height);
    if (items.length > this.limits.maxContainer) {
      throw this.limitError(`a container of more than ${this.limits.maxContainer} items`);
    }
    return items;
  }

  private put(index: number): void {
    if (!this.memo.has(index) && this.memo.size >= this.limits.maxMemo) {
      throw this.limitError(`more than ${this.limits.maxMemo} memo entries`);
    }
    this.memo.set(index, this.top());
  }

  private get(index: number): PickleValue {
    const value = this.memo.get(index);
    if (value === undefined) throw new PickleFormatError(`memo entry ${index} was never stored`);
    return value;
  }

  // --- containers ---------------------------------------------------------------------------------------------

  private appendTo(target: PickleValue, items: readonly PickleValue[]): void {
    if (!(target instanceof PickleList) && !(target instanceof PickleSet)) {
      throw new PickleFormatError(`APPEND to a ${describe(target)}`);
    }
    if (target.items.length + items.length > this.limits.maxContainer) {
      throw this.limitError(`a container of more than ${this.limits.maxContainer} items`);
    }
    for (const item of items) target.items.push(item);
  }

  private fillDict(target: PickleValue, items: readonly PickleValue[]): PickleDict {
    if (!(target instanceof PickleDict)) throw new PickleFormatError(`SETITEM on a ${describe(target)}`);
    if (items.length % 2) throw new PickleFormatError('SETITEMS with an odd number of values');
    if (target.size + items.length / 2 > this.limits.maxContainer) {
      throw this.limitError(`a container of more than ${this.limits.maxContainer} items`);
    }
    for (let i = 0; i < items.length; i += 2) target.set(items[i]!, items[i + 1]!);
    return target;
  }

  // --- globals and calls --------------------------------------------------------------------------------------

  private resolve(module: string, name: string): PickleGlobal {
    const allowed = this.options.resolveGlobal(module, name);
    if (!allowed) throw this.refuse(`${module}.${name}`);
    return allowed;
  }

  private invoke(callee: PickleValue, args: readonly PickleValue[]): PickleValue {
    if (!(callee instanceof PickleGlobal) || !callee.call) {
      throw new PickleFormatError(`a call on ${callee instanceof PickleGlobal ? callee.qualifiedName : describe(callee)}, which is not callable here`);
    }
    try {
      return callee.call(args);
    } catch (e) {
      if (e instanceof AwdError) throw e;
      throw new PickleFormatError(`${callee.qualifiedName}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  private persistent(pid: PickleValue): PickleValue {
    if (!this.options.persistentLoad) throw new PickleFormatError('a persistent id where none is expected');
    return this.options.persistentLoad(pid);
  }

  private refuse(what: string): AwdError {
    return new AwdError(
      `refusing to load: the pickle references ${what}, which could run code; this file may be malicious`,
      {
        file: this.options.file,
        fix: 'Only open checkpoints from sources you trust; a trusted file can be converted to safetensors with PyTorch',
      },
    );
  }

  private limitError(what: string): AwdError {
    return new AwdError(`the pickle is too large to read safely: ${what}`, {
      file: this.options.file,
      fix: 'Convert the checkpoint to safetensors with PyTorch',
    });
  }
}

function narrow(value: bigint): number | bigint {
  return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
}

/** A short, safe description of a value's type for error messages. */
export function describe(value: PickleValue): string {
  if (value === null) return 'None';
  if (typeof value === 'boolean') return 'bool';
  if (typeof value === 'number' || typeof value === 'bigint') return 'int';
  if (typeof value === 'string') return 'str';
  if (value instanceof PickleFloat) return 'float';
  if (value instanceof Uint8Array) return 'bytes';
  if (value instanceof PickleList) return 'list';
  if (value instanceof PickleTuple) return 'tuple';
  if (value instanceof PickleDict) return 'dict';
  if (value instanceof PickleSet) return value.frozen ? 'frozenset' : 'set';
  if (value instanceof PickleGlobal) return value.qualifiedName;
  return value.typeName;
}

/** Python's raw-unicode-escape: latin-1 text where only \uXXXX and \UXXXXXXXX are escapes. */
function rawUnicodeUnescape(text: string): string {
  return text.replace(/\\u([0-9a-fA-F]{4})|\\U([0-9a-fA-F]{8})/g, (_m, u4: string | undefined, u8: string | undefined) => {
    const code = parseInt((u4 ?? u8)!, 16);
    if (code > 0x10ffff) throw new PickleFormatError('a \\U escape beyond U+10FFFF');
    return String.fromCodePoint(code);
  });
}

/** A protocol-0 STRING argument: a Python 2 str repr in single or double quotes, with backslash escapes. */
function pythonStringLiteral(text: string): string {
  const quote = text[0];
  if (text.length < 2 || (quote !== "'" && quote !== '"') || text[text.length - 1] !== quote) {
    throw new PickleFormatError('a STRING argument is not quoted');
  }
  const body = text.slice(1, -1);
  const simple: Record<string, string> = { n: '\n', r: '\r', t: '\t', '\\': '\\', "'": "'", '"': '"', a: '\x07', b: '\b', f: '\f', v: '\v' };
  return body.replace(/\\(x[0-9a-fA-F]{2}|[0-7]{1,3}|.)/g, (_m, esc: string) => {
    if (esc[0] === 'x') return String.fromCharCode(parseInt(esc.slice(1), 16));
    if (/^[0-7]+$/.test(esc)) return String.fromCharCode(parseInt(esc, 8) & 0xff);
    const mapped = simple[esc];
    return mapped ?? `\\${esc}`;
  });
}
