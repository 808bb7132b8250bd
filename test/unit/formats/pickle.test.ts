// The safe pickle interpreter: Python-made pickles of every protocol decode to the same data; any GLOBAL outside
// the allow-list is refused by name; malformed, truncated, oversized and hostile pickles give AwdErrors.
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { AwdError } from '../../../src/core/errors';
import {
  PickleDict,
  PickleFloat,
  PickleList,
  PickleSet,
  PickleTruncatedError,
  PickleTuple,
  unpickle,
  type PickleOptions,
  type PickleValue,
} from '../../../src/core/formats/pickle';
import { TorchPersistentLoader, TorchTensor, flattenTorchObject, pythonRepr, resolveTorchGlobal } from '../../../src/core/formats/torchPickle';

const TORCH: PickleOptions = { resolveGlobal: resolveTorchGlobal };

// pickle.dumps(obj, protocol=p).hex() from CPython 3.11 for
//   shared = [3]
//   obj = {'int': 1, 'neg': -70000, 'big': 2**70, 'negbig': -2**63, 'float': 1.5, 'str': 'h\u00e9llo \u2603',
//          'list': [1, 2, shared], 'again': shared, 'tuple': (1,), 't2': (1, 2), 't3': (1, 2, 3), 't4': (1, 2, 3, 4),
//          'none': None, 'yes': True, 'no': False, 'od': OrderedDict([('a', 1)]), 7: 'intkey', 'set': {5},
//          'bytes': b'\x00\xff'}
const PYTHON_PICKLES: readonly string[] = [
  '286470300a56696e740a70310a49310a73566e65670a70320a492d37303030300a73566269670a70330a4c313138303539313632303731373431313330333432344c0a73566e65676269670a70340a4c2d393232333337323033363835343737353830384c0a7356666c6f61740a70350a46312e350a73567374720a70360a5668e96c6c6f205c75323630330a70370a73566c6973740a70380a286c70390a49310a6149320a61286c7031300a49330a61617356616761696e0a7031310a6731300a73567475706c650a7031320a2849310a747031330a735674320a7031340a2849310a49320a747031350a735674330a7031360a2849310a49320a49330a747031370a735674340a7031380a2849310a49320a49330a49340a747031390a73566e6f6e650a7032300a4e73567965730a7032310a4930310a73566e6f0a7032320a4930300a73566f640a7032330a63636f6c6c656374696f6e730a4f726465726564446963740a7032340a2874527032350a56610a7032360a49310a737349370a56696e746b65790a7032370a73567365740a7032380a635f5f6275696c74696e5f5f0a7365740a7032390a28286c7033300a49350a61747033310a527033320a735662797465730a7033330a635f636f646563730a656e636f64650a7033340a28565c7530303030ff0a7033350a566c6174696e310a7033360a747033370a527033380a732e',
  '7d7100285803000000696e7471014b0158030000006e656771024a90eefeff580300000062696771034c313138303539313632303731373431313330333432344c0a58060000006e656762696771044c2d393232333337323033363835343737353830384c0a5805000000666c6f61747105473ff800000000000058030000007374727106580a00000068c3a96c6c6f20e29883710758040000006c69737471085d7109284b014b025d710a4b0361655805000000616761696e710b680a58050000007475706c65710c284b0174710d58020000007432710e284b014b0274710f580200000074337110284b014b024b03747111580200000074347112284b014b024b034b0474711358040000006e6f6e6571144e580300000079657371154930310a58020000006e6f71164930300a58020000006f64711763636f6c6c656374696f6e730a4f726465726564446963740a711829527119580100000061711a4b01734b075806000000696e746b6579711b5803000000736574711c635f5f6275696c74696e5f5f0a7365740a711d285d711e4b056174711f527120580500000062797465737121635f636f646563730a656e636f64650a712228580300000000c3bf712358060000006c6174696e317124747125527126752e',
  '80027d7100285803000000696e7471014b0158030000006e656771024a90eefeff580300000062696771038a0900000000000000004058060000006e656762696771048a0800000000000000805805000000666c6f61747105473ff800000000000058030000007374727106580a00000068c3a96c6c6f20e29883710758040000006c69737471085d7109284b014b025d710a4b0361655805000000616761696e710b680a58050000007475706c65710c4b0185710d58020000007432710e4b014b0286710f5802000000743371104b014b024b03877111580200000074347112284b014b024b034b0474711358040000006e6f6e6571144e580300000079657371158858020000006e6f71168958020000006f64711763636f6c6c656374696f6e730a4f726465726564446963740a711829527119580100000061711a4b01734b075806000000696e746b6579711b5803000000736574711c635f5f6275696c74696e5f5f0a7365740a711d5d711e4b056185711f527120580500000062797465737121635f636f646563730a656e636f64650a7122580300000000c3bf712358060000006c6174696e317124867125527126752e',
  '80037d7100285803000000696e7471014b0158030000006e656771024a90eefeff580300000062696771038a0900000000000000004058060000006e656762696771048a0800000000000000805805000000666c6f61747105473ff800000000000058030000007374727106580a00000068c3a96c6c6f20e29883710758040000006c69737471085d7109284b014b025d710a4b0361655805000000616761696e710b680a58050000007475706c65710c4b0185710d58020000007432710e4b014b0286710f5802000000743371104b014b024b03877111580200000074347112284b014b024b034b0474711358040000006e6f6e6571144e580300000079657371158858020000006e6f71168958020000006f64711763636f6c6c656374696f6e730a4f726465726564446963740a711829527119580100000061711a4b01734b075806000000696e746b6579711b5803000000736574711c636275696c74696e730a7365740a711d5d711e4b056185711f527120580500000062797465737121430200ff7122752e',
  '80049518010000000000007d94288c03696e74944b018c036e6567944a90eefeff8c03626967948a090000000000000000408c066e6567626967948a0800000000000000808c05666c6f617494473ff80000000000008c03737472948c0a68c3a96c6c6f20e29883948c046c697374945d94284b014b025d944b0361658c05616761696e94680a8c057475706c65944b0185948c027432944b014b0286948c027433944b014b024b0387948c02743494284b014b024b034b0474948c046e6f6e65944e8c0379657394888c026e6f94898c026f64948c0b636f6c6c656374696f6e73948c0b4f726465726564446963749493942952948c0161944b01734b078c06696e746b6579948c03736574948f94284b05908c05627974657394430200ff94752e',
  '80059518010000000000007d94288c03696e74944b018c036e6567944a90eefeff8c03626967948a090000000000000000408c066e6567626967948a0800000000000000808c05666c6f617494473ff80000000000008c03737472948c0a68c3a96c6c6f20e29883948c046c697374945d94284b014b025d944b0361658c05616761696e94680a8c057475706c65944b0185948c027432944b014b0286948c027433944b014b024b0387948c02743494284b014b024b034b0474948c046e6f6e65944e8c0379657394888c026e6f94898c026f64948c0b636f6c6c656374696f6e73948c0b4f726465726564446963749493942952948c0161944b01734b078c06696e746b6579948c03736574948f94284b05908c05627974657394430200ff94752e',
];

/** PickleValue → plain JS that assert.deepEqual can compare (dicts become Maps, tuples and floats are tagged). */
function plain(v: PickleValue): unknown {
  if (v instanceof PickleDict) return new Map([...v.items()].map(([k, x]) => [plain(k), plain(x)]));
  if (v instanceof PickleList) return v.items.map(plain);
  if (v instanceof PickleTuple) return { tuple: v.items.map(plain) };
  if (v instanceof PickleSet) return { set: v.items.map(plain) };
  if (v instanceof PickleFloat) return { float: v.value };
  return v;
}

const EXPECTED = new Map<unknown, unknown>([
  ['int', 1],
  ['neg', -70000],
  ['big', 2n ** 70n],
  ['negbig', -(2n ** 63n)],
  ['float', { float: 1.5 }],
  ['str', 'h\u00e9llo \u2603'],
  ['list', [1, 2, [3]]],
  ['again', [3]],
  ['tuple', { tuple: [1] }],
  ['t2', { tuple: [1, 2] }],
  ['t3', { tuple: [1, 2, 3] }],
  ['t4', { tuple: [1, 2, 3, 4] }],
  ['none', null],
  ['yes', true],
  ['no', false],
  ['od', new Map([['a', 1]])],
  [7, 'intkey'],
  ['set', { set: [5] }],
  ['bytes', new Uint8Array([0, 255])],
]);

const bytes = (hex: string) => new Uint8Array(Buffer.from(hex, 'hex'));
const ascii = (text: string) => new Uint8Array(Buffer.from(text, 'latin1'));
const concat = (...parts: Uint8Array[]) => new Uint8Array(Buffer.concat(parts));

function throwsAwdError(fn: () => unknown, pattern: RegExp): AwdError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof AwdError, `expected an AwdError, got ${String(caught)}`);
  assert.match(caught.message, pattern);
  return caught;
}

void describe('pickle interpreter', () => {
  PYTHON_PICKLES.forEach((hex, protocol) => {
    void it(`decodes CPython's protocol ${protocol} pickle of every plain type`, () => {
      const data = bytes(hex);
      const { value, end } = unpickle(data, TORCH);
      assert.equal(end, data.length);
      assert.deepEqual(plain(value), EXPECTED);
      // The memo shares objects as Python does: 'again' is the same list as list[2].
      const dict = value as PickleDict;
      assert.equal(dict.get('again'), (dict.get('list') as PickleList).items[2]);
    });
  });

  void it('refuses every global outside the allow-list, by name, through GLOBAL, STACK_GLOBAL and INST', () => {
    const refused = [
      'os.system', 'posix.system', 'subprocess.Popen', 'subprocess.check_output', 'builtins.eval', 'builtins.exec',
      'builtins.getattr', 'builtins.__import__', '__builtin__.eval', 'torch.load', 'torch.serialization.load',
      'numpy.load', 'torch.nn.modules.linear.Linear', 'collections.namedtuple', 'torch._utils._rebuild_device_tensor_from_numpy',
    ];
    for (const qualified of refused) {
      const dot = qualified.lastIndexOf('.');
      const [module, name] = [qualified.slice(0, dot), qualified.slice(dot + 1)];
      const pattern = new RegExp(`refusing to load: the pickle references ${qualified.replace(/\./g, '\\.')}, which could run code`);
      throwsAwdError(() => unpickle(ascii(`\x80\x02c${module}\n${name}\nX\x01\x00\x00\x00x\x85R.`), TORCH), pattern);
      const stackGlobal = concat(
        bytes('8004'),
        new Uint8Array([0x8c, module.length]), ascii(module),
        new Uint8Array([0x8c, name.length]), ascii(name),
        ascii('\x93)R.'),
      );
      throwsAwdError(() => unpickle(stackGlobal, TORCH), pattern);
      throwsAwdError(() => unpickle(ascii(`(S'echo hi'\ni${module}\n${name}\n.`), TORCH), pattern);
    }
  });

  void it('refuses extension-registry codes and calls on values that are not allowed callables', () => {
    throwsAwdError(() => unpickle(bytes('80028201292e'), TORCH), /refusing to load: the pickle references an extension-registry code/);
    throwsAwdError(() => unpickle(ascii('\x80\x02ctorch\nfloat32\n)R.'), TORCH), /torch\.float32, which is not callable/);
    throwsAwdError(() => unpickle(ascii('\x80\x02K\x01)R.'), TORCH), /not callable/);
    throwsAwdError(() => unpickle(ascii('(K\x01o.'), TORCH), /not callable/);
    throwsAwdError(() => unpickle(ascii('\x80\x02ctorch\nFloatStorage\n)\x81.'), TORCH), /not callable/);
    assert.equal(unpickle(ascii('\x80\x02ctorch\ndevice\nX\x04\x00\x00\x00cudaK\x01\x86R.'), TORCH).value, 'cuda:1');
    // numpy scalars decode from their bytes; a dtype that is not a plain number (objects, strings) is refused.
    throwsAwdError(() => unpickle(ascii('\x80\x02cnumpy\ndtype\nX\x02\x00\x00\x00O8\x89\x88\x87R.'), TORCH), /not a plain number type/);
  });

  void it('reports malformed pickles: unknown opcode, empty stack, wrong container, missing memo, odd SETITEMS', () => {
    const cases: [string, RegExp][] = [
      ['\x80\x02\xff.', /unknown opcode 0xff/],
      ['0.', /stack is empty/],
      ['\x80\x02}K\x01a.', /APPEND to a dict/],
      ['\x80\x02]K\x01K\x02s.', /SETITEM on a list/],
      ['\x80\x02h\x05.', /memo entry 5 was never stored/],
      ['\x80\x02}(K\x01u.', /odd number/],
      ['\x80\x02t.', /MARK that is not there/],
      ['\x80\x09.', /unsupported pickle protocol/],
      ['\x80\x02K\x01b.', /stack is empty/],
      ['\x80\x02K\x01K\x02b.', /BUILD on a int/],
      ['\x80\x02X\x02\x00\x00\x00\xff\xfe.', /malformed/],
    ];
    for (const [text, pattern] of cases) throwsAwdError(() => unpickle(ascii(text), TORCH), pattern);
  });

  void it('gives a truncation error for every prefix of a pickle, and for lengths that run past the end', () => {
    const data = bytes(PYTHON_PICKLES[4]!);
    for (let n = 0; n < data.length; n++) {
      assert.throws(() => unpickle(data.subarray(0, n), TORCH), PickleTruncatedError);
    }
    // BINUNICODE8 / BINBYTES8 / LONG4 claiming huge lengths: refused before any allocation.
    throwsAwdError(() => unpickle(bytes('80048d00000000000000105a2e'), TORCH), /cut short/);
    throwsAwdError(() => unpickle(bytes('80048effffffffffffff7f2e'), TORCH), /cut short/);
    throwsAwdError(() => unpickle(bytes('80028bffffff7f2e'), TORCH), /larger than the 1024 allowed/);
  });

  void it('enforces the stack, memo and container limits', () => {
    const limits = { maxStack: 10, maxMemo: 3, maxContainer: 5, maxLongBytes: 16 };
    const options: PickleOptions = { ...TORCH, limits };
    throwsAwdError(() => unpickle(ascii(`(${'K\x01'.repeat(11)}t.`), options), /too large to read safely: more than 10 values/);
    throwsAwdError(() => unpickle(ascii('K\x01q\x00q\x01q\x02q\x03.'), options), /more than 3 memo entries/);
    throwsAwdError(() => unpickle(ascii(`](${'K\x01'.repeat(6)}e.`), options), /a container of more than 5 items/);
    throwsAwdError(() => unpickle(ascii(`](K\x01K\x01K\x01e(K\x01K\x01K\x01e.`), options), /a container of more than 5 items/);
    throwsAwdError(() => unpickle(concat(bytes('8a11'), new Uint8Array(17), ascii('.')), options), /larger than the 16 allowed/);
    // The same pickles pass under the default limits.
    assert.ok(unpickle(ascii(`(${'K\x01'.repeat(11)}t.`), TORCH).value instanceof PickleTuple);
  });

  void it('builds 50000 nested lists without recursion; flattening refuses the depth, repr shortens it', () => {
    const n = 50_000;
    const data = ascii(`${']'.repeat(n)}${'a'.repeat(n - 1)}.`);
    const { value } = unpickle(data, TORCH);
    assert.ok(value instanceof PickleList);
    throwsAwdError(() => flattenTorchObject(value), /nested more than 1000 levels/);
    assert.match(pythonRepr(value), /^\[\[\[\[\[\[\[\[\[\.\.\.\]\]\]\]\]\]\]\]\]$/);
  });

  void it('refuses a list that contains itself and a graph that would flatten to billions of names', () => {
    const cycle = unpickle(ascii('\x80\x02]q\x00h\x00a.'), TORCH).value;
    throwsAwdError(() => flattenTorchObject(cycle), /contains itself/);
    // l0 = [[], []]; l(k+1) = [lk, lk]: 40 levels is 2^40 paths through shared lists.
    let text = '\x80\x02](]]eq\x00';
    for (let k = 1; k < 40; k++) text += `](h\x00h\x00eq\x00`;
    // Bounded by CPU time, not wall time: the machine running the tests may be busy.
    const started = process.cpuUsage();
    throwsAwdError(() => flattenTorchObject(unpickle(ascii(`${text}.`), TORCH).value), /more than (1000000 parts|100000 plain values)/);
    const used = process.cpuUsage(started);
    assert.ok(used.user + used.system < 5e6, `took ${(used.user + used.system) / 1e3} ms of CPU`);
  });

  void it('turns torch rebuild calls into tensor descriptors and checks views against their storage', () => {
    const loader = new TorchPersistentLoader();
    const options: PickleOptions = { ...TORCH, persistentLoad: loader.load };
    const tensor = (offset: number, size: string, stride: string) =>
      ascii(
        '\x80\x02ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nHalfStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x06tQ' +
          `K${String.fromCharCode(offset)}${size}${stride}\x89ccollections\nOrderedDict\n)RtR.`,
      );
    const t = unpickle(tensor(1, 'K\x02K\x02\x86', 'K\x01K\x02\x86'), options).value;
    assert.ok(t instanceof TorchTensor);
    assert.deepEqual([t.dtype, t.offset, t.shape, t.stride, t.storage.numel, t.storage.key], ['F16', 1, [2, 2], [1, 2], 6, '0']);
    // offset 1 + (2−1)·1 + (2−1)·3 = 5 is the last of 6 elements; stride 4 would reach element 6.
    assert.ok(unpickle(tensor(1, 'K\x02K\x02\x86', 'K\x01K\x03\x86'), { ...TORCH, persistentLoad: new TorchPersistentLoader().load }).value instanceof TorchTensor);
    throwsAwdError(
      () => unpickle(tensor(1, 'K\x02K\x02\x86', 'K\x01K\x04\x86'), { ...TORCH, persistentLoad: new TorchPersistentLoader().load }),
      /reaches past its storage of 12 bytes/,
    );
    throwsAwdError(
      () => unpickle(tensor(0, 'K\x02\x85', 'K\x01K\x01\x86'), { ...TORCH, persistentLoad: new TorchPersistentLoader().load }),
      /size and stride differ/,
    );
    throwsAwdError(() => unpickle(tensor(0, 'J\xff\xff\xff\xff\x85', 'K\x01\x85'), options), /not a non-negative integer/);
    throwsAwdError(() => unpickle(ascii('\x80\x02K\x01Q.'), options), /not a torch storage/);
  });
});
