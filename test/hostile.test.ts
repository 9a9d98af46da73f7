/**
 * Hostile pickles and containers, built by the small writers in hostile-build.ts. Every
 * case asserts its exact one-line error; nothing is ever called, and nothing leaks into
 * Object.prototype.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readCheckpoint, writeCheckpoint } from '../src/pth/index.js';
import { unpickle } from '../src/pth/pickle.js';
import { PyDict } from '../src/pth/pyobj.js';
import { WOP } from '../src/pth/pickler.js';
import { RepmlpError } from '../src/errors.js';
import { Tensor } from '../src/tensor.js';
import { findStateDict } from '../src/pth/statedict.js';
import { PickleAsm, XOP, legacyWith, zipWith } from './hostile-build.js';
import { tempDir } from './helpers/torch.js';

/** Hostile cases run in this file, printed at the end. */
let hostileCases = 0;

const P = () => new PickleAsm();
const W = 'pickle';
/** --strict-globals (torch's weights_only exactly): any global outside the allow-list. */
const refused = (q: string) => `${W}: refusing global '${q}': not in torch's weights_only allow-list`;
/** The default: globals only an attack uses are refused by name, whatever container they hide in. */
const attack = (q: string) => `${W}: refusing global '${q}': only an attack uses it (code execution, processes, files, network, imports or pickle loading); see docs/safety.md`;
const torchOnly = (q: string) => `${W}: refusing global '${q}': not in the tensor allow-list (torch globals are held to torch's weights_only set)`;

/** Globals an attack uses, as a file names them, and the name they are refused as (protocol 2's __builtin__ is builtins). */
const ATTACK_GLOBALS = [
  'posix.system', 'os.system', 'nt.system', 'os.popen', 'os.execv', 'builtins.eval', 'builtins.exec', 'builtins.getattr', 'builtins.__import__',
  'builtins.open', 'builtins.compile', 'builtins.breakpoint', 'builtins.input', '__builtin__.eval', '__builtin__.getattr', '__builtin__.apply',
  'subprocess.Popen', 'subprocess.call', 'subprocess.check_output', 'subprocess.run', 'pickle.loads', '_pickle.loads', 'functools.partial',
  'operator.attrgetter', 'operator.methodcaller', 'operator.itemgetter', 'webbrowser.open', 'shutil.rmtree', 'runpy._run_code', 'pty.spawn',
  'socket.create_connection', 'importlib.import_module', 'importlib.util.spec_from_file_location', 'sys.modules', 'ctypes.CDLL', 'code.InteractiveInterpreter',
  'pdb.run', 'timeit.timeit', 'types.CodeType', 'types.FunctionType', 'marshal.loads', 'requests.api.get', 'aiohttp.client.ClientSession',
  'numpy.f2py.crackfortran.getlincoef', 'numpy.testing._private.utils.runstring', 'numpy.load', 'dill.loads', 'joblib.load', 'asyncio.subprocess.create_subprocess_exec',
  'io.open', 'pathlib.Path', 'tempfile.mkstemp', 'copyreg.__newobj__',
  // torch's own loaders, JIT and internals
  'torch.load', 'torch.save', 'torch.hub.load', 'torch.jit.load', 'torch.serialization.load', 'torch._C._get_tracing_state', 'torch.storage._load_from_bytes',
  'torch._dynamo.guards.GuardBuilder.get', 'torch._inductor.codecache.compile_file', 'torch.utils.collect_env.run', 'torch.fx.experimental.symbolic_shapes.ShapeEnv',
].map((q): [string, string] => [q, q.startsWith('__builtin__.') ? `builtins.${q.slice(12)}` : q]);
/** Other torch globals outside the tensor allow-list: tensors and storages are rebuilt only by the allow-list. */
const TORCH_REFUSED = ['torch.Generator', 'torch._utils._rebuild_qtensor', 'torch._utils._rebuild_device_tensor_from_numpy', 'torch.Tensor._make_subclass', 'torch.complex64'];
const split = (q: string): [string, string] => {
  const i = q.lastIndexOf('.');
  return [q.slice(0, i), q.slice(i + 1)];
};
const callOf = (q: string) => P().global(...split(q)).str('echo pwned').op(WOP.TUPLE1, WOP.REDUCE).stop();

/** [case, pickle bytes, exact message] through the unpickler alone. */
const PICKLES: [string, () => Uint8Array, string][] = [
  // every attack global, as GLOBAL + REDUCE (the classic payload): refused by name
  ...ATTACK_GLOBALS.map(([q, as]): [string, () => Uint8Array, string] => [`GLOBAL ${q}`, () => callOf(q), attack(as)]),
  ...TORCH_REFUSED.map((q): [string, () => Uint8Array, string] => [`GLOBAL ${q}`, () => callOf(q), torchOnly(q)]),
  ['STACK_GLOBAL builtins.eval', () => P().str('builtins').str('eval').op(XOP.STACK_GLOBAL).stop(), attack('builtins.eval')],
  ['global name with a newline trick', () => P().raw([WOP.GLOBAL]).raw(new TextEncoder().encode('os\nsystem\n')).stop(), attack('os.system')],
  // REDUCE / NEWOBJ of things that are not callable
  ['REDUCE of a str', () => P().str('os.system').op(WOP.EMPTY_TUPLE, WOP.REDUCE).stop(), `${W}: REDUCE on str 'os.system', which is not callable (REDUCE at byte 17)`],
  ['REDUCE of an int', () => P().int(7).op(WOP.EMPTY_TUPLE, WOP.REDUCE).stop(), `${W}: REDUCE on int 7, which is not callable (REDUCE at byte 5)`],
  ['REDUCE of a dict', () => P().op(WOP.EMPTY_DICT, WOP.EMPTY_TUPLE, WOP.REDUCE).stop(), `${W}: REDUCE on dict, which is not callable (REDUCE at byte 4)`],
  ['REDUCE of a storage class', () => P().global('torch', 'FloatStorage').op(WOP.EMPTY_TUPLE, WOP.REDUCE).stop(), `${W}: REDUCE on storage type, which is not callable (REDUCE at byte 23)`],
  ['REDUCE with non-tuple args', () => P().global('collections', 'OrderedDict').op(WOP.EMPTY_LIST, WOP.REDUCE).stop(), `${W}: REDUCE arguments must be a tuple, got list (REDUCE at byte 28)`],
  ['NEWOBJ of a str', () => P().str('x').op(WOP.EMPTY_TUPLE, XOP.NEWOBJ).stop(), `${W}: NEWOBJ on str 'x', which is not callable (NEWOBJ at byte 9)`],
  ['OrderedDict with arguments', () => P().global('collections', 'OrderedDict').op(WOP.EMPTY_LIST, WOP.TUPLE1, WOP.REDUCE).stop(), `${W}: collections.OrderedDict: construction with arguments is not supported (REDUCE at byte 29)`],
  // BUILD on odd objects
  ['BUILD on a list', () => P().op(WOP.EMPTY_LIST, WOP.EMPTY_DICT, WOP.BUILD).stop(), `${W}: BUILD on list is not allowed (BUILD at byte 4)`],
  ['BUILD on a str', () => P().str('a').op(WOP.EMPTY_DICT, WOP.BUILD).stop(), `${W}: BUILD on str 'a' is not allowed (BUILD at byte 9)`],
  ['BUILD on a global', () => P().global('collections', 'OrderedDict').op(WOP.EMPTY_DICT, WOP.BUILD).stop(), `${W}: BUILD on global collections.OrderedDict is not allowed (BUILD at byte 28)`],
  ['BUILD on a dict with an int state', () => P().op(WOP.EMPTY_DICT).int(5).op(WOP.BUILD).stop(), `${W}: BUILD on a dict with state of type int 5 (BUILD at byte 5)`],
  ['BUILD with a non-string attribute', () => P().op(WOP.EMPTY_DICT, WOP.EMPTY_DICT).int(1).int(2).op(WOP.SETITEM, WOP.BUILD).stop(), `${W}: BUILD state with a non-string attribute name (BUILD at byte 9)`],
  // stack and memo abuse
  ['huge memo index never stored', () => P().op(WOP.LONG_BINGET).raw([0xff, 0xff, 0xff, 0xff]).stop(), `${W}: memo index 4294967295 was never stored (LONG_BINGET at byte 2)`],
  ['stack underflow', () => P().op(WOP.APPEND).stop(), `${W}: stack underflow (APPEND at byte 2)`],
  ['pop of a MARK', () => P().op(WOP.MARK, WOP.TUPLE1).stop(), `${W}: unexpected MARK (TUPLE1 at byte 3)`],
  ['APPENDS without MARK', () => P().op(WOP.EMPTY_LIST, WOP.APPENDS).stop(), `${W}: no MARK on the stack (APPENDS at byte 3)`],
  ['APPEND to a dict', () => P().op(WOP.EMPTY_DICT, WOP.NONE, WOP.APPEND).stop(), `${W}: APPEND(S) on dict (APPEND at byte 4)`],
  ['SETITEM on a list', () => P().op(WOP.EMPTY_LIST, WOP.NONE, WOP.NONE, WOP.SETITEM).stop(), `${W}: SETITEM(S) on list (SETITEM at byte 5)`],
  ['unhashable key', () => P().op(WOP.EMPTY_DICT, WOP.EMPTY_LIST, WOP.NONE, WOP.SETITEM).stop(), `${W}: unhashable dict key (list)`],
  ['STOP with two items', () => P().op(WOP.NONE, WOP.NONE).stop(), `${W}: STOP with 2 items on the stack (STOP at byte 4)`],
  ['MARK nesting 1001 deep', () => P().op(...new Array<number>(1001).fill(WOP.MARK)).stop(), `${W}: nesting deeper than 1000 (MARK at byte 1002)`],
  // forbidden opcodes: the text protocol and object builders
  ...(
    [['INST', XOP.INST], ['OBJ', XOP.OBJ], ['EXT1', XOP.EXT1], ['PERSID', XOP.PERSID], ['STRING', XOP.STRING], ['INT', XOP.INT], ['LONG', XOP.LONG], ['FLOAT', XOP.FLOAT], ['GET', XOP.GET], ['PUT', XOP.PUT]] as const
  ).map(([n, c]): [string, () => Uint8Array, string] => [`opcode ${n}`, () => P().op(c).raw([0x30, 0x0a]).stop(), `${W}: unsupported or forbidden opcode 0x${c.toString(16)} (at byte 2)`]),
  // lying lengths: refused before any allocation of that size
  ['BINUNICODE claiming 4 GB', () => P().op(WOP.BINUNICODE).raw([0xf0, 0xff, 0xff, 0xff]).raw([0x41]).stop(), `${W}: truncated: 4294967280 more bytes needed at byte 7, 2 left`],
  ['LONG4 of 2 GB', () => P().op(XOP.LONG4).raw([0xff, 0xff, 0xff, 0x7f]).stop(), `${W}: LONG4 of 2147483647 bytes (LONG4 at byte 2)`],
  ['invalid UTF-8', () => P().op(WOP.BINUNICODE).raw([2, 0, 0, 0, 0xc3, 0x28]).stop(), `${W}: invalid UTF-8 in a string (BINUNICODE at byte 2)`],
  ['no STOP', () => P().op(WOP.NONE).w.result(), `${W}: truncated: 1 more bytes needed at byte 3, 0 left`],
  ['persistent id without a loader', () => P().str('x').op(WOP.BINPERSID).stop(), `${W}: persistent id in a pickle that allows none (BINPERSID at byte 8)`],
];

test('--strict-globals: every global outside the allow-list is refused as torch.load(weights_only=True) refuses it', () => {
  hostileCases++;
  const names = [...ATTACK_GLOBALS.map(([, as]) => as), ...TORCH_REFUSED, 'argparse.Namespace', 'numpy.core.multiarray._reconstruct', 'numpy.dtype', 'yacs.config.CfgNode', 'repmlp_resnet.RepMLPResNet', 'torch.nn.modules.conv.Conv2d'];
  for (const q of names) assert.throws(() => unpickle(callOf(q), { strictGlobals: true }), { name: 'PickleError', message: refused(q) }, q);
});

for (const [name, make, message] of PICKLES) {
  test(`hostile pickle: ${name}`, () => {
    hostileCases++;
    assert.throws(() => unpickle(make()), (e: unknown) => {
      assert.ok(e instanceof RepmlpError, `not a RepmlpError: ${String(e)}`);
      assert.equal(e.message, message);
      assert.ok(!e.message.includes('\n'));
      return true;
    });
  });
}

test('hostile pickle: nothing leaks into Object.prototype; __proto__ and constructor stay plain keys', () => {
  hostileCases++;
  const bytes = P().op(WOP.EMPTY_DICT, WOP.MARK).str('__proto__').op(WOP.EMPTY_DICT).str('polluted').int(1).op(WOP.SETITEM)
    .str('constructor').op(WOP.EMPTY_DICT).str('prototype').op(WOP.EMPTY_DICT).op(WOP.SETITEM).str('toString').int(3).op(WOP.SETITEMS).stop();
  const v = unpickle(bytes).value as PyDict;
  assert.ok(v instanceof PyDict);
  assert.deepEqual([...v.map.keys()], ['__proto__', 'constructor', 'toString']);
  assert.equal((({}) as Record<string, unknown>).polluted, undefined);
  assert.equal(Object.getPrototypeOf(v.map.get('__proto__')), PyDict.prototype);
});

test('hostile pickle: BUILD state __proto__ lands in attrs, not on the object', () => {
  hostileCases++;
  const bytes = P().global('collections', 'OrderedDict').op(WOP.EMPTY_TUPLE, WOP.REDUCE, WOP.EMPTY_DICT).str('__proto__').op(WOP.EMPTY_DICT).op(WOP.SETITEM, WOP.BUILD).stop();
  const v = unpickle(bytes).value as PyDict;
  assert.ok(v.attrs.get('__proto__') instanceof PyDict);
  assert.equal(Object.getPrototypeOf(v), PyDict.prototype);
});

test('hostile pickle: 100k-deep nesting loads iteratively and is refused by the writer', async () => {
  hostileCases++;
  const n = 100_000;
  const bytes = P().op(WOP.NONE).raw(new Uint8Array(n).fill(WOP.TUPLE1)).stop();
  const v = unpickle(bytes).value;
  const { dir, cleanup } = tempDir();
  try {
    await assert.rejects(writeCheckpoint(`${dir}/deep.pth`, v), { name: 'PicklerError', message: 'object nested deeper than 1000 levels' });
    // lists nested through the stack: 100k EMPTY_LISTs then 100k APPENDs
    const lists = P().raw(new Uint8Array(n).fill(WOP.EMPTY_LIST)).raw(new Uint8Array(n - 1).fill(WOP.APPEND)).stop();
    assert.ok(Array.isArray(unpickle(lists).value));
  } finally {
    cleanup();
  }
});

test('hostile pickle: a dict DAG that would explode when walked is searched once per node', () => {
  hostileCases++;
  // d0 = {k0..k999: d1}, d1 = {k0..k999: d2}, ... : 1000^4 paths, 4 nodes
  const a = P();
  a.op(WOP.EMPTY_DICT, WOP.BINPUT, 0, XOP.POP);
  for (let level = 1; level < 5; level++) {
    a.op(WOP.EMPTY_DICT, WOP.MARK);
    for (let i = 0; i < 1000; i++) a.str(`k${i}`).op(WOP.BINGET, level - 1);
    a.op(WOP.SETITEMS, WOP.BINPUT, level, XOP.POP);
  }
  a.op(WOP.BINGET, 4);
  const root = unpickle(a.stop()).value;
  const t0 = performance.now();
  assert.throws(() => findStateDict(root), { name: 'StateDictError' });
  assert.ok(performance.now() - t0 < 2000, 'findStateDict walked shared dicts repeatedly');
});

// ---------------------------------------------------------------------------------------
// Whole files: the same payloads inside zip and legacy containers, and bad storages.

const posix = () => P().global('posix', 'system').str('touch /tmp/pwned').op(WOP.TUPLE1, WOP.REDUCE).stop();

test('hostile zip: data.pkl calling posix.system', async () => {
  hostileCases++;
  await assert.rejects(readCheckpoint(await zipWith(posix())), { name: 'PickleError', message: attack('posix.system').replace(`${W}:`, '<bytes>: archive/data.pkl:') });
  await assert.rejects(readCheckpoint(await zipWith(posix()), { strictGlobals: true }), { name: 'PickleError', message: refused('posix.system').replace(`${W}:`, '<bytes>: archive/data.pkl:') });
});

test('hostile legacy: payload in the magic-number pickle and in the main pickle', async () => {
  hostileCases++;
  const legit = legacyWith(P().op(WOP.NONE).stop());
  const magicEvil = new Uint8Array([...posix(), ...legit]);
  await assert.rejects(readCheckpoint(magicEvil), { name: 'PickleError', message: attack('posix.system').replace(`${W}:`, '<bytes>: legacy magic number:') });
  await assert.rejects(readCheckpoint(legacyWith(posix())), { name: 'PickleError', message: attack('posix.system').replace(`${W}:`, '<bytes>: legacy data:') });
});

test('hostile storages: lying sizes, foreign keys, mixed types', async () => {
  hostileCases++;
  const t = (key: string, numel: number, size = [numel], type = 'FloatStorage') => P().tensor(type, key, numel, 0, size, [1]).stop();
  const four = new Uint8Array(16);
  const cases: [string, Promise<unknown>, RegExp | string][] = [
    ['zip numel larger than the record', readCheckpoint(await zipWith(t('0', 1000), { '0': four })), '<bytes>: storage 0: 1000 x float32 needs 4000 bytes, record archive/data/0 holds 16'],
    ['zip key outside data/', readCheckpoint(await zipWith(t('../../etc/passwd', 4), { '0': four })), '<bytes>: record archive/data/../../etc/passwd is missing from the archive'],
    ['zip view past its storage', readCheckpoint(await zipWith(P().tensor('FloatStorage', '0', 4, 2, [4], [1]).stop(), { '0': four })), '<bytes>: archive/data.pkl: _rebuild_tensor_v2: view [4] stride [1] offset 2 exceeds its storage of 4 elements (REDUCE at byte 126)'],
    ['zip BUILD with attributes on a tensor', readCheckpoint(await zipWith(P().tensor('FloatStorage', '0', 4, 0, [4], [1]).op(WOP.EMPTY_DICT).str('evil').int(1).op(WOP.SETITEM, WOP.BUILD).stop(), { '0': four })), '<bytes>: archive/data.pkl: BUILD with attributes on a tensor is not allowed (BUILD at byte 140)'],
    ['zip negative size', readCheckpoint(await zipWith(P().tensor('FloatStorage', '0', 4, 0, [-1], [1]).stop(), { '0': four })), '<bytes>: archive/data.pkl: _rebuild_tensor_v2 size[0]: expected a non-negative int, got int -1 (REDUCE at byte 129)'],
    ['zip storage type is not allowed', readCheckpoint(await zipWith(P().tensor('Generator', '0', 4, 0, [4], [1]).stop(), { '0': four })), torchOnly('torch.Generator').replace(`${W}:`, '<bytes>: archive/data.pkl:')],
    ['zip storage type is not a storage', readCheckpoint(await zipWith(P().tensor('Size', '0', 4, 0, [4], [1]).stop(), { '0': four })), '<bytes>: archive/data.pkl: persistent id names global torch.Size instead of a storage type'],
    ['legacy absurd count', readCheckpoint(legacyWith(t('1', 4), [['1', 4254413747647032608n, four]])), '<bytes>: storage 1 has wrong size: expected 4 elements, file says 4254413747647032608'],
    ['legacy count right, bytes missing', readCheckpoint(legacyWith(t('1', 4), [['1', 4n, four.subarray(0, 8)]])), '<bytes>: storage 1: 16 bytes at offset 271 run past the end of the file (279 bytes)'],
    ['legacy numel beyond the file', readCheckpoint(legacyWith(t('1', 1e12), [['1', 4n, four]])), '<bytes>: storage 1: 1000000000000 elements cannot fit in a file of 299 bytes'],
    ['legacy big-endian', readCheckpoint(legacyWith(t('1', 4), [['1', 4n, four]], { littleEndian: false })), '<bytes>: big-endian checkpoints are not supported'],
    ['legacy wrong protocol', readCheckpoint(legacyWith(t('1', 4), [['1', 4n, four]], { protocol: 1000 })), '<bytes>: legacy protocol version 1000 is not supported (expected 1001)'],
    ['legacy wrong magic', readCheckpoint(legacyWith(t('1', 4), [['1', 4n, four]], { magic: 12345n })), '<bytes>: not a PyTorch checkpoint (no zip header and no legacy magic number)'],
    ['legacy key listed, never used', readCheckpoint(legacyWith(t('1', 4), [['1', 4n, four], ['2', 4n, four]])), '<bytes>: storage key 2 is listed but never used'],
    ['legacy one key, two storage types', readCheckpoint(legacyWith(P().op(WOP.MARK).raw(t('1', 4).subarray(2, -1)).raw(t('1', 2, [2], 'LongStorage').subarray(2, -1)).op(WOP.TUPLE).stop(), [['1', 4n, four]])), '<bytes>: storage 1 is used as both float32 and int64'],
  ];
  for (const [name, p, message] of cases) {
    await assert.rejects(p, (e: unknown) => {
      assert.ok(e instanceof RepmlpError, `${name}: not a RepmlpError: ${String(e)}`);
      if (typeof message === 'string') assert.equal(e.message, message, name);
      else assert.match(e.message, message, name);
      return true;
    });
  }
});

test('hostile safetensors: headers and offsets that lie', async () => {
  hostileCases++;
  const st = (header: unknown, data = new Uint8Array(0), lenOverride?: bigint) => {
    const h = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
    const out = new Uint8Array(8 + h.length + data.length);
    new DataView(out.buffer).setBigUint64(0, lenOverride ?? BigInt(h.length), true);
    out.set(h, 8);
    out.set(data, 8 + h.length);
    return out;
  };
  const f32 = (shape: number[], offsets: [number, number]) => ({ dtype: 'F32', shape, data_offsets: offsets });
  const cases: [string, Uint8Array, string][] = [
    ['header longer than the file', st({ a: f32([1], [0, 4]) }, new Uint8Array(4), 1000n), '<bytes>: header length 1000 runs past the end of the file (66 bytes)'],
    ['header over the 100 MB limit', st({ a: f32([1], [0, 4]) }, new Uint8Array(4), 2n ** 40n), '<bytes>: header length 1099511627776 exceeds the limit of 100000000 bytes'],
    ['header not JSON', st('{"a": '), '<bytes>: header is not valid UTF-8 JSON (Unexpected end of JSON input)'],
    ['header a list', st('[1,2]'), "<bytes>: not a checkpoint: neither a torch zip (PK\\x03\\x04), a legacy torch file (pickle, 0x80 0x02) nor safetensors (length + '{'); it starts with 05 00 00 00 00 00 00 00"],
    ['header an object then junk', st('{"a": 1} x'), '<bytes>: header is not valid UTF-8 JSON (Unexpected non-whitespace character after JSON at position 9)'],
    ['header entry not an object', st({ a: 1 }), "<bytes>: tensor 'a': expected {dtype, shape, data_offsets}, found number"],
    ['unknown dtype', st({ a: { dtype: 'F8_E4M3', shape: [1], data_offsets: [0, 1] } }, new Uint8Array(1)), "<bytes>: tensor 'a': unsupported dtype 'F8_E4M3' (supported: F32 F64 F16 BF16 I64 I32 I16 I8 U8 BOOL)"],
    ['negative dim', st({ a: f32([-1], [0, 4]) }, new Uint8Array(4)), "<bytes>: tensor 'a': shape must be a list of non-negative integers, found [-1]"],
    ['shape product overflow', st({ a: f32([2 ** 40, 2 ** 40, 0x10], [0, 0]) }), "<bytes>: tensor 'a': shape [1099511627776, 1099511627776, 16] of F32 needs 77371252455336267181195264 bytes, data_offsets [0, 0] hold 0"],
    ['offsets backwards', st({ a: f32([1], [4, 0]) }, new Uint8Array(4)), "<bytes>: tensor 'a': data_offsets [4, 0] end before they begin"],
    ['overlap', st({ a: f32([2], [0, 8]), b: f32([1], [4, 8]) }, new Uint8Array(8)), "<bytes>: tensor 'b' data_offsets [4, 8] overlap the previous tensor (which ends at 8)"],
    ['gap', st({ a: f32([1], [0, 4]), b: f32([1], [8, 12]) }, new Uint8Array(12)), "<bytes>: gap in the data before tensor 'b': bytes 4..8 belong to no tensor"],
    ['trailing bytes', st({ a: f32([1], [0, 4]) }, new Uint8Array(8)), '<bytes>: tensors cover 4 bytes of data but the file holds 8 after the header'],
    ['truncated data', st({ a: f32([4], [0, 16]) }, new Uint8Array(8)), '<bytes>: tensors cover 16 bytes of data but the file holds 8 after the header (truncated?)'],
    ['metadata not strings', st({ __metadata__: { a: 1 } }), "<bytes>: __metadata__['a'] must be a string, found number"],
  ];
  for (const [name, bytes, message] of cases) {
    await assert.rejects(readCheckpoint(bytes), (e: unknown) => {
      assert.ok(e instanceof RepmlpError, `${name}: not a RepmlpError: ${String(e)}`);
      assert.equal(e.message, message, name);
      return true;
    });
  }
  // '__proto__' as a tensor name is a plain key, read and written back as one
  const header = '{"__proto__":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"constructor":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}';
  const ck = await readCheckpoint(st(header, new Uint8Array(8)));
  assert.deepEqual([...(ck.root as PyDict).map.keys()], ['__proto__', 'constructor']);
  assert.ok((ck.root as PyDict).map.get('__proto__') instanceof Tensor);
  const { dir, cleanup } = tempDir();
  try {
    await writeCheckpoint(`${dir}/p.safetensors`, ck.root, { format: 'safetensors' });
    await writeCheckpoint(`${dir}/p.pth`, ck.root);
    for (const f of ['p.safetensors', 'p.pth']) assert.deepEqual([...((await readCheckpoint(`${dir}/${f}`)).root as PyDict).map.keys()], ['__proto__', 'constructor'], f);
  } finally {
    cleanup();
  }
  assert.equal((({}) as Record<string, unknown>).dtype, undefined);
});

test('hostile: every error above is one line (CLI prints it as such)', () => {
  hostileCases++;
  for (const [, make] of PICKLES) {
    try {
      unpickle(make());
    } catch (e) {
      assert.ok(!(e as Error).message.includes('\n'));
    }
  }
});

// CI's log shows how many hostile cases ran (issue 7), not only that the file passed.
after(() => console.log(`hostile: ${hostileCases} tests ran, each asserting exact errors (${PICKLES.length} hand-built pickles among them)`));
