// The fuzzing harness's case families: each turns a seeded random source into one hostile input on disk (or in
// memory) and says what must happen to it. Every family is deterministic in (seed, case index), so a failure
// reported by `npm run fuzz` reproduces with `--seed S --only FAMILY --case N`.
import { deflateRawSync } from 'node:zlib';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { int, mutate, mutateRegion, nastyNumber, type Rand } from '../support/mutations';
import { buildSafetensors, bytesOf, rawSafetensors } from '../unit/formats/testFiles';
import { statePickle, writeZip, type HandmadeEntry } from '../fixtures/pytorch/handmade';
import { CALL_PATHS, DANGEROUS_GLOBALS, codeReachingPickle, cyclicPickle, deeplyMarkedPickle, deeplyNestedPickle, lyingLengthPickle, memoAbusePickle, opcodeSoup, sharedReferenceBomb } from './pickles';

const FIXTURES = join(__dirname, '..', 'fixtures');
const NUMPY = join(FIXTURES, 'formats', 'numpy');
const PYTORCH = join(FIXTURES, 'pytorch');

/** What a case hands to the child: a checkpoint path, a pickle in memory, or a merge config. */
export type FuzzTarget =
  | { kind: 'checkpoint'; path: string; mustRefuse?: string }
  | { kind: 'pickle'; bytes: Uint8Array; mustRefuse?: string }
  | { kind: 'config'; path: string; mustRefuse?: string };

/** Shared context of one child process: its scratch folder and a small model set the configs point at. */
export interface FuzzContext {
  /** Scratch folder of this case (emptied after it). */
  dir: string;
  /** A canary path: a code-reaching pickle asks Python to create it; it must never appear. */
  canary: string;
  /** base.safetensors, a.safetensors, b.safetensors (F32 [4, 3] and [3]) in a folder that outlives the cases. */
  models: { folder: string; base: string; a: string; b: string };
}

type Family = (r: Rand, ctx: FuzzContext) => FuzzTarget;

const pick = <T>(r: Rand, xs: readonly T[]): T => xs[int(r, xs.length)]!;
const f32 = (n: number, scale = 1): Uint8Array => bytesOf(Float32Array.from({ length: n }, (_, i) => (i - n / 2) * scale));

/** A small well-formed safetensors file, the seed of the safetensors mutations. */
function seedSafetensors(): Uint8Array {
  return buildSafetensors(
    [
      { name: 'w', dtype: 'F32', shape: [4, 3], data: f32(12, 1 / 3) },
      { name: 'b', dtype: 'BF16', shape: [3], data: bytesOf(new Uint16Array([0x3f80, 0x4000, 0xbf80])) },
      { name: 'ids', dtype: 'I64', shape: [2], data: bytesOf(new BigInt64Array([1n, 2n])) },
      { name: 'h', dtype: 'F16', shape: [2, 2], data: bytesOf(new Uint16Array([0x3c00, 0x4000, 0xc000, 0x7c00])) },
    ],
    { format: 'pt' },
  );
}

const SAFETENSORS_SEED = seedSafetensors();
const readFixture = (...parts: string[]): Uint8Array => new Uint8Array(readFileSync(join(...parts)));
const NPY_SEEDS = ['f64_fortran.npy', 'i4_big_endian.npy', 'f2_big_fortran.npy', 'scalar.npy', 'v2_header.npy', 'bool.npy'].map((n) => readFixture(NUMPY, n));
const NPZ_SEEDS = ['stored.npz', 'deflated.npz'].map((n) => readFixture(NUMPY, n));
const TORCH_ZIPS = ['views.pt', 'nested.pt', 'dtypes.pt', 'module_state_dict.bin', 'protocol4.pt', 'protocol1.pt'];

/** A named pipe at `path` (Node has no mkfifo; where the tool is missing, a plain empty file stands in). */
function mkfifoSync(path: string): void {
  try {
    execFileSync('mkfifo', [path], { stdio: 'ignore' });
  } catch {
    writeFileSync(path, '');
  }
}

function write(ctx: FuzzContext, name: string, bytes: Uint8Array | string): string {
  const path = join(ctx.dir, name);
  writeFileSync(path, bytes);
  return path;
}

/** A .npy file's bytes: v1 header for `descr`/`shape`, then `data`. */
function npy(descr: string, shape: readonly number[], data: Uint8Array, fortran = false): Uint8Array {
  let header = `{'descr': '${descr}', 'fortran_order': ${fortran ? 'True' : 'False'}, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  header += ' '.repeat((64 - ((10 + header.length + 1) % 64)) % 64) + '\n';
  const head = new Uint8Array(10 + header.length);
  head.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, header.length & 0xff, header.length >> 8]);
  head.set(Uint8Array.from(header, (c) => c.charCodeAt(0)), 10);
  return new Uint8Array([...head, ...data]);
}

/** Patches the sizes a zip claims for entry `index` (local header and central directory) to `compressed`/`uncompressed`. */
function lieAboutSizes(zip: Uint8Array, compressed: number | undefined, uncompressed: number | undefined): Uint8Array {
  const out = zip.slice();
  const view = new DataView(out.buffer);
  for (let i = 0; i + 4 <= out.length; i++) {
    const sig = view.getUint32(i, true);
    if (sig === 0x04034b50) {
      if (compressed !== undefined) view.setUint32(i + 18, compressed >>> 0, true);
      if (uncompressed !== undefined) view.setUint32(i + 22, uncompressed >>> 0, true);
    } else if (sig === 0x02014b50) {
      if (compressed !== undefined) view.setUint32(i + 20, compressed >>> 0, true);
      if (uncompressed !== undefined) view.setUint32(i + 24, uncompressed >>> 0, true);
    }
  }
  return out;
}

export const FAMILIES: Readonly<Record<string, Family>> = {
  'safetensors-mutation': (r, ctx) => ({ kind: 'checkpoint', path: write(ctx, 'm.safetensors', mutate(SAFETENSORS_SEED, r)) }),

  'safetensors-lying-header': (r, ctx) => {
    const data = f32(12);
    const n = nastyNumber(r);
    const headers: object[] = [
      { w: { dtype: 'F32', shape: [4, 3], data_offsets: [0, 1e12] } },
      { w: { dtype: 'F32', shape: [1e9, 1e9], data_offsets: [0, 48] } },
      { w: { dtype: 'F32', shape: [-1, 12], data_offsets: [0, 48] } },
      { w: { dtype: 'F32', shape: [4, 3], data_offsets: [40, 8] } },
      { w: { dtype: 'F32', shape: [4, 3], data_offsets: [0, 48] }, v: { dtype: 'F32', shape: [4, 3], data_offsets: [0, 48] } },
      { w: { dtype: 'F128', shape: [3], data_offsets: [0, 48] } },
      { w: { dtype: 'F32', shape: [2 ** 53, 2], data_offsets: [0, 48] } },
      { w: { dtype: 'F32', shape: [], data_offsets: [0, 4] }, __metadata__: { a: { nested: 'object' } } },
      { w: { dtype: 'F32', shape: [4, 3], data_offsets: [0, 48], extra: JSON.parse(n) as unknown } },
      { w: { dtype: 'F32', shape: JSON.parse(n) as unknown, data_offsets: [0, 48] } },
      { w: { dtype: 'F32', shape: [4, 3], data_offsets: JSON.parse(`[0, ${n}]`) as unknown } },
      { ['x'.repeat(1 + int(r, 100_000))]: { dtype: 'F32', shape: [4, 3], data_offsets: [0, 48] } },
    ];
    const header = pick(r, headers);
    const lengths = [undefined, 0n, 2n ** 63n, BigInt(int(r, 200)), 2n ** 64n - 1n, 100_000_001n];
    return { kind: 'checkpoint', path: write(ctx, 'l.safetensors', rawSafetensors(header, data, pick(r, lengths))) };
  },

  'npy-mutation': (r, ctx) => ({ kind: 'checkpoint', path: write(ctx, 'm.npy', mutate(pick(r, NPY_SEEDS), r)) }),

  'npz-mutation': (r, ctx) => ({ kind: 'checkpoint', path: write(ctx, 'm.npz', mutateRegion(pick(r, NPZ_SEEDS), r)) }),

  'npz-bomb': (r, ctx) => {
    // Zeros compress ~1000:1: a few KB on disk claiming or inflating to tens of MB.
    const elements = (1 + int(r, 32)) << 17; // 1–32 MiB of float64 zeros
    const member = npy('<f8', [elements], new Uint8Array(0));
    const content = new Uint8Array(member.length + elements * 8);
    content.set(member);
    const deflated = new Uint8Array(deflateRawSync(content, { level: 1 }));
    const entries: HandmadeEntry[] = [['arr_0.npy', deflated, 8]];
    let zip = writeZip(entries);
    switch (int(r, 5)) {
      case 0:
        // Honest sizes: allowed to inflate as much as it says (bounded by the reader's own cap).
        zip = lieAboutSizes(zip, undefined, content.length);
        break;
      case 1:
        // Claims 1 KB uncompressed: the inflater must stop there, not inflate megabytes.
        zip = lieAboutSizes(zip, undefined, 1024);
        break;
      case 2:
        // Claims 4 GB − 1 uncompressed.
        zip = lieAboutSizes(zip, undefined, 0xffffffff);
        break;
      case 3:
        // Compressed size larger than the file.
        zip = lieAboutSizes(zip, 0x7fffffff, content.length);
        break;
      default: {
        // A .npy header promising far more data than the member inflates to.
        const liar = npy('<f8', [1 << 28], new Uint8Array(64));
        zip = lieAboutSizes(writeZip([['arr_0.npy', new Uint8Array(deflateRawSync(liar)), 8]]), undefined, liar.length);
      }
    }
    return { kind: 'checkpoint', path: write(ctx, 'bomb.npz', zip) };
  },

  'torch-zip-mutation': (r, ctx) => {
    const name = pick(r, TORCH_ZIPS);
    const original = readFixture(PYTORCH, name);
    let bytes: Uint8Array;
    if (r() < 0.5) {
      bytes = mutateRegion(original, r);
    } else {
      // Mutate the pickle inside a well-formed zip, so the interpreter (not the zip reader) sees it.
      bytes = writeZip(torchEntries(name).map(([n, d]) => [n, n.endsWith('/data.pkl') ? mutateRegion(d, r) : d] as const));
    }
    return { kind: 'checkpoint', path: write(ctx, 'm.pt', bytes) };
  },

  'torch-legacy-mutation': (r, ctx) => {
    const original = readFixture(PYTORCH, 'legacy.pt');
    const bytes = r() < 0.6 ? mutateRegion(original, r, [0, Math.min(original.length, 1500)]) : mutateRegion(original, r);
    return { kind: 'checkpoint', path: write(ctx, 'm.pt', bytes) };
  },

  'pickle-code': (r, ctx) => {
    const [module, name] = pick(r, DANGEROUS_GLOBALS);
    const path = pick(r, CALL_PATHS);
    const pickle = codeReachingPickle(module, name, path, `touch ${ctx.canary}`);
    if (r() < 0.5) return { kind: 'pickle', bytes: pickle, mustRefuse: module };
    // The same pickle as data.pkl of a torch.save zip: refused through the whole reader too.
    const zip = writeZip([['archive/data.pkl', pickle], ['archive/version', new TextEncoder().encode('3\n')]]);
    return { kind: 'checkpoint', path: write(ctx, 'evil.pt', zip), mustRefuse: module };
  },

  'pickle-structure': (r) => {
    const makers: (() => Uint8Array)[] = [
      () => deeplyNestedPickle(2 + int(r, 200_000)),
      () => deeplyMarkedPickle(2 + int(r, 200_000)),
      () => sharedReferenceBomb(1 + int(r, 64), r() < 0.5),
      () => cyclicPickle(r() < 0.5),
      () => memoAbusePickle(r),
      () => lyingLengthPickle(r),
      () => opcodeSoup(r),
      () => opcodeSoup(r),
    ];
    return { kind: 'pickle', bytes: pick(r, makers)() };
  },

  'index-json': (r, ctx) => indexCase(r, ctx),

  'hf-folder': (r, ctx) => folderCase(r, ctx),

  config: (r, ctx) => configCase(r, ctx),
};

const torchEntryCache = new Map<string, [string, Uint8Array][]>();
/** The entries of a fixture torch zip (stored members: local header, name, data, in order). */
function torchEntries(name: string): [string, Uint8Array][] {
  const cached = torchEntryCache.get(name);
  if (cached) return cached;
  const bytes = readFixture(PYTORCH, name);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const entries: [string, Uint8Array][] = [];
  let at = 0;
  while (at + 30 <= bytes.length && view.getUint32(at, true) === 0x04034b50) {
    const size = view.getUint32(at + 18, true);
    const nameLength = view.getUint16(at + 26, true);
    const extraLength = view.getUint16(at + 28, true);
    const entryName = new TextDecoder().decode(bytes.subarray(at + 30, at + 30 + nameLength));
    const start = at + 30 + nameLength + extraLength;
    entries.push([entryName, bytes.slice(start, start + size)]);
    at = start + size;
  }
  torchEntryCache.set(name, entries);
  return entries;
}

/** A sharded index with two shards, mutated or with hostile shard paths. */
function indexCase(r: Rand, ctx: FuzzContext): FuzzTarget {
  const shard = (names: string[]): Uint8Array => buildSafetensors(names.map((name) => ({ name, dtype: 'F32', shape: [2], data: f32(2) })));
  mkdirSync(join(ctx.dir, 'sub'));
  writeFileSync(join(ctx.dir, 'model-00001-of-00002.safetensors'), shard(['a', 'b']));
  writeFileSync(join(ctx.dir, 'model-00002-of-00002.safetensors'), shard(['c']));
  const map: Record<string, string> = { a: 'model-00001-of-00002.safetensors', b: 'model-00001-of-00002.safetensors', c: 'model-00002-of-00002.safetensors' };
  const text = JSON.stringify({ metadata: { total_size: 24 }, weight_map: map });
  const path = join(ctx.dir, 'model.safetensors.index.json');
  const choice = int(r, 4);
  if (choice === 0) {
    writeFileSync(path, mutate(new TextEncoder().encode(text), r));
    return { kind: 'checkpoint', path };
  }
  if (choice === 1) {
    // A shard path that leaves the index's folder: always refused (the rule of sharded.ts).
    const escape = pick(r, ['../x.safetensors', '/etc/passwd', `${ctx.models.base}`, '../../../../../../etc/shadow', 'sub/../../x.safetensors', '..', '.', '']);
    writeFileSync(path, JSON.stringify({ weight_map: { ...map, c: escape } }));
    return { kind: 'checkpoint', path, mustRefuse: escape === '' ? 'not a file name' : 'leaves the index' };
  }
  if (choice === 2) {
    // Hostile but in-folder: the index itself, a folder, a FIFO, a symlink loop, a link to outside (followed: the
    // Hugging Face cache is made of such links), a shard that is another index.
    const special = int(r, 6);
    const target = ['self', 'folder', 'fifo', 'loop', 'outside', 'nested-index'][special]!;
    const shardName = target === 'self' ? 'model.safetensors.index.json' : target === 'folder' ? 'sub' : `${target}.safetensors`;
    if (target === 'fifo') mkfifoSync(join(ctx.dir, shardName));
    if (target === 'loop') symlinkSync(shardName, join(ctx.dir, shardName));
    if (target === 'outside') symlinkSync(ctx.models.a, join(ctx.dir, shardName));
    if (target === 'nested-index') writeFileSync(join(ctx.dir, shardName), text);
    writeFileSync(path, JSON.stringify({ weight_map: { ...map, c: shardName } }));
    return { kind: 'checkpoint', path };
  }
  // Replace one JSON string with something hostile.
  const strings = [...text.matchAll(/"[^"]*"/g)];
  const m = pick(r, strings);
  const hostile = pick(r, ['"../x.safetensors"', '"/etc/passwd"', '{}', '[]', 'null', '""', '"model.safetensors.index.json"', '1e309', `"${'a'.repeat(10_000)}"`]);
  writeFileSync(path, text.slice(0, m.index) + hostile + text.slice(m.index + m[0].length));
  return { kind: 'checkpoint', path };
}

/** A Hugging Face-style folder with its weights replaced by links, loops, pipes or folders. */
function folderCase(r: Rand, ctx: FuzzContext): FuzzTarget {
  const folder = join(ctx.dir, 'model');
  mkdirSync(folder);
  writeFileSync(join(folder, 'config.json'), '{"model_type": "fuzz"}');
  const weights = join(folder, pick(r, ['model.safetensors', 'model.safetensors.index.json', 'pytorch_model.bin', 'diffusion_pytorch_model.safetensors']));
  switch (int(r, 8)) {
    case 0:
      symlinkSync(weights, weights); // a link to itself
      break;
    case 1:
      symlinkSync(`${weights}.b`, weights);
      symlinkSync(weights, `${weights}.b`); // a two-link loop
      break;
    case 2:
      symlinkSync(join(folder, 'missing.safetensors'), weights); // dangling
      break;
    case 3:
      mkfifoSync(weights); // a named pipe: opening it for reading must not block
      break;
    case 4:
      mkdirSync(weights); // a folder under the weights' name
      break;
    case 5:
      symlinkSync(folder, join(folder, 'loop')); // a folder containing a link to itself
      symlinkSync('/dev/zero', weights);
      break;
    case 6:
      // Several single-file candidates (no standard name): ambiguous, refused.
      writeFileSync(join(folder, 'x.safetensors'), SAFETENSORS_SEED);
      writeFileSync(join(folder, 'y.safetensors'), SAFETENSORS_SEED);
      break;
    default:
      // The folder's weights link to the folder itself.
      symlinkSync(folder, weights);
  }
  return { kind: 'checkpoint', path: folder };
}

/** A merge config: mutated, hostile YAML, or paths the rules forbid (out_path over an input). */
function configCase(r: Rand, ctx: FuzzContext): FuzzTarget {
  const { base, a, b, folder } = ctx.models;
  const good = [
    'merge_method: ties',
    `base_model: ${base}`,
    'models:',
    `  - model: ${a}`,
    '    parameters: { weight: 1.0, density: 0.5 }',
    `  - model: ${b}`,
    'parameters: { lambda: 0.7 }',
    'awd: { iterations: 3 }',
    `out_path: ${join(ctx.dir, 'out', 'merged.safetensors')}`,
    '',
  ].join('\n');
  const yaml = r() < 0.5;
  const file = join(ctx.dir, yaml ? 'fuzz.merge.yaml' : 'fuzz.merge.json');
  if (r() < 0.05) {
    // The config itself a named pipe: reading it must not block.
    mkfifoSync(file);
    return { kind: 'config', path: file };
  }
  const choice = int(r, 5);
  if (choice === 0) {
    writeFileSync(file, mutate(new TextEncoder().encode(good), r));
    return { kind: 'config', path: file };
  }
  if (choice === 1) {
    // out_path onto an input (directly, through a symlinked folder, or as the record of an input): refused.
    const linkedFolder = join(ctx.dir, 'linked');
    symlinkSync(folder, linkedFolder);
    const target = pick(r, [base, a, join(linkedFolder, 'b.safetensors'), join(folder, 'sub', '..', 'a.safetensors')]);
    writeFileSync(file, good.replace(/^out_path: .*$/m, `out_path: ${target}`));
    return { kind: 'config', path: file, mustRefuse: 'overwrite' };
  }
  if (choice === 2) {
    // Paths anywhere readable are allowed, but must be checkpoints: system files, folders, devices, escapes.
    const path = pick(r, ['/etc/passwd', '/', '/dev/zero', '/proc/self/mem', '../../../../../../etc/hostname', '~/.ssh/id_rsa', '\u0000', 'C:\\Windows\\system32', join(ctx.dir, 'nope.safetensors')]);
    writeFileSync(file, good.replace(`model: ${b}`, `model: ${JSON.stringify(path)}`));
    return { kind: 'config', path: file };
  }
  if (choice === 3) {
    // YAML abuse: alias bombs, deep nesting, huge scalars, tags, duplicate keys.
    const bombs = [
      `a: &a ["x","x","x","x","x","x","x","x","x","x"]\n${Array.from({ length: 12 }, (_, i) => `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${Array(10).fill(`*${String.fromCharCode(97 + i)}`).join(',')}]`).join('\n')}\nmerge_method: *m\n`,
      `${'['.repeat(1 + int(r, 20_000))}${']'.repeat(1 + int(r, 20_000))}`,
      `merge_method: ties\nmodels: !!js/function "function(){return 1}"\n`,
      `merge_method: ties\nmerge_method: linear\nmodels: []\n`,
      `merge_method: ${'x'.repeat(1 + int(r, 1 << 20))}\n`,
      `models: [{model: a, parameters: {weight: ${nastyNumber(r)}}}]\nmerge_method: linear\n`,
      `? [a, b]\n: c\nmerge_method: linear\n`,
      `merge_method: !!binary aGVsbG8=\n`,
      `<<: {merge_method: linear}\nmodels: [{model: "${a}"}]\n`,
    ];
    writeFileSync(file, pick(r, bombs));
    return { kind: 'config', path: file };
  }
  // Key/value swaps in JSON form.
  const obj = {
    merge_method: pick(r, ['ties', 'linear', 'dare_ties', 'task_arithmetic', 'TIES', 'x']),
    base_model: pick(r, [base, a, folder, '']),
    models: [{ model: a, parameters: { weight: Number(nastyNumber(r)) || 1, density: r() } }, { model: pick(r, [b, base, a]) }],
    parameters: { lambda: pick(r, [1, -1, 0, 1e308, Number.MIN_VALUE]), trim_scope: pick(r, ['model', 'tensor', 'x']) },
    out_path: join(ctx.dir, 'out', 'merged.safetensors'),
    out_shard_size: pick(r, ['1B', '0', '5GB', 1, -1, '1e9']),
    random_seed: pick(r, [0, -1, 2 ** 32, 1.5]),
  };
  writeFileSync(file, JSON.stringify(obj));
  return { kind: 'config', path: file };
}

/** The model set the config cases point at (F32 [4, 3] and [3]; a and b differ from base). */
export function writeModelSet(folder: string): FuzzContext['models'] {
  mkdirSync(join(folder, 'sub'), { recursive: true });
  const model = (shift: number): Uint8Array =>
    buildSafetensors([
      { name: 'w', dtype: 'F32', shape: [4, 3], data: bytesOf(Float32Array.from({ length: 12 }, (_, i) => i / 7 + shift)) },
      { name: 'b', dtype: 'F32', shape: [3], data: bytesOf(Float32Array.from({ length: 3 }, (_, i) => i - shift)) },
    ]);
  const paths = { folder, base: join(folder, 'base.safetensors'), a: join(folder, 'a.safetensors'), b: join(folder, 'b.safetensors') };
  writeFileSync(paths.base, model(0));
  writeFileSync(paths.a, model(0.25));
  writeFileSync(paths.b, model(-0.5));
  return paths;
}

/** Bytes of a small well-formed torch.save zip (for the pickle-in-zip cases' sanity check). */
export function wellFormedTorchZip(): Uint8Array {
  const data = f32(6);
  return writeZip([
    ['archive/data.pkl', statePickle([{ name: 'w', storageType: 'FloatStorage', key: '0', numel: 6, offset: 0, shape: [2, 3], stride: [3, 1] }])],
    ['archive/data/0', data],
    ['archive/version', new TextEncoder().encode('3\n')],
  ]);
}
