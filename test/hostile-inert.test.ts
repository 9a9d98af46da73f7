/**
 * Hostile inputs against the inert-object model (issue 13) and the internal errors of
 * issue 14: payloads hidden inside harmless containers are still refused by name,
 * placeholders never become callable, limits are named before the work, and no file
 * makes a raw JS exception or puts a control character on a terminal. Built by the
 * small writers in hostile-build.ts; every case asserts its exact one-line error.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { readCheckpoint } from '../src/pth/index.js';
import { MAX_MEMO, OP, unpickle } from '../src/pth/pickle.js';
import { PyDict, PyObject, PyOther } from '../src/pth/pyobj.js';
import { WOP } from '../src/pth/pickler.js';
import { RepmlpError } from '../src/errors.js';
import { Storage, Tensor } from '../src/tensor.js';
import { findStateDict } from '../src/pth/statedict.js';
import { formatReport, inspectFile, summarize } from '../src/cli/inspect.js';
import { jsonText } from '../src/cli/command.js';
import { PickleAsm, XOP, legacyWith, zipWith } from './hostile-build.js';
import { tempDir } from './helpers/torch.js';

const P = () => new PickleAsm();
const W = 'pickle';
const attack = (q: string) => `${W}: refusing global '${q}': only an attack uses it (code execution, processes, files, network, imports or pickle loading); see docs/safety.md`;
const NEWOBJ = XOP.NEWOBJ;

function refuses(bytes: Uint8Array, message: string | RegExp, opts: Parameters<typeof unpickle>[1] = {}): void {
  assert.throws(() => unpickle(bytes, opts), (e: unknown) => {
    assert.ok(e instanceof RepmlpError, `not a RepmlpError: ${String(e)}`);
    if (typeof message === 'string') assert.equal(e.message, message);
    else assert.match(e.message, message);
    assert.ok(!e.message.includes('\n'));
    return true;
  });
}

/** argparse.Namespace() with BUILD state {key: <value written by `value`>} */
const namespace = (key: string, value: (a: PickleAsm) => void) => {
  const a = P().global('argparse', 'Namespace').op(WOP.EMPTY_TUPLE, NEWOBJ, WOP.EMPTY_DICT).str(key);
  value(a);
  return a.op(WOP.SETITEM, WOP.BUILD).stop();
};

test('hostile inert: a Namespace whose field is an os.system call is refused by name', () => {
  refuses(namespace('cmd', (a) => a.global('os', 'system').str('id').op(WOP.TUPLE1, WOP.REDUCE)), attack('os.system'));
  // the same through STACK_GLOBAL with memoized strings
  refuses(namespace('cmd', (a) => a.str('posix').op(WOP.BINPUT, 0).str('system').op(XOP.STACK_GLOBAL).str('id').op(WOP.TUPLE1, WOP.REDUCE)), attack('posix.system'));
});

test('hostile inert: numpy _reconstruct whose argument is a REDUCE of eval is refused by name', () => {
  refuses(P().global('numpy.core.multiarray', '_reconstruct').global('builtins', 'eval').str('1+1').op(WOP.TUPLE1, WOP.REDUCE, WOP.TUPLE1, WOP.REDUCE).stop(), attack('builtins.eval'));
  refuses(P().global('numpy.core.multiarray', 'scalar').global('__builtin__', 'getattr').op(WOP.TUPLE1, WOP.REDUCE).stop(), attack('builtins.getattr'));
  // a CfgNode holding a subprocess call among its items
  refuses(P().global('yacs.config', 'CfgNode').op(WOP.EMPTY_TUPLE, NEWOBJ).str('x').global('subprocess', 'check_output').op(WOP.SETITEM).stop(), attack('subprocess.check_output'));
});

test('hostile inert: a placeholder is data: not callable, not buildable as a class, not a storage', () => {
  refuses(P().global('argparse', 'Namespace').op(WOP.EMPTY_TUPLE, NEWOBJ, WOP.EMPTY_TUPLE, WOP.REDUCE).stop(), `${W}: REDUCE on <pickled argparse.Namespace>, which is not callable (REDUCE at byte 25)`);
  refuses(P().global('argparse', 'Namespace').op(WOP.EMPTY_DICT, WOP.BUILD).stop(), `${W}: BUILD on global argparse.Namespace is not allowed (BUILD at byte 23)`);
  const asStorage = P().global('torch._utils', '_rebuild_tensor_v2').tuple((a) => a.global('argparse', 'Namespace').op(WOP.EMPTY_TUPLE, NEWOBJ), (a) => a.int(0), (a) => a.int(1).op(WOP.TUPLE1), (a) => a.int(1).op(WOP.TUPLE1), (a) => a.op(WOP.NEWFALSE)).op(WOP.REDUCE).stop();
  refuses(asStorage, /^pickle: _rebuild_tensor_v2: first argument must be a storage, got <pickled argparse\.Namespace> \(REDUCE at byte \d+\)$/);
  // names and state keys from the file reach no property of ours
  const v = unpickle(P().global('__proto__', 'constructor').op(WOP.EMPTY_TUPLE, NEWOBJ, WOP.EMPTY_DICT).str('__proto__').op(WOP.EMPTY_DICT).str('polluted').int(1).op(WOP.SETITEM, WOP.SETITEM, WOP.BUILD).stop()).value as PyObject;
  assert.ok(v instanceof PyObject);
  assert.equal(v.global, '__proto__.constructor');
  assert.equal(Object.getPrototypeOf(v), PyObject.prototype);
  assert.ok((v.state as PyDict).map.get('__proto__') instanceof PyDict);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
});

test('hostile inert: --strict-globals refuses the container before its payload is looked at', () => {
  refuses(namespace('cmd', (a) => a.global('os', 'system')), `${W}: refusing global 'argparse.Namespace': not in torch's weights_only allow-list`, { strictGlobals: true });
});

test('hostile 14: a bare storage and uncalled globals as wrapper values read as data', async () => {
  const pkl = P().op(WOP.EMPTY_DICT, WOP.MARK)
    .str('storage').storage('FloatStorage', '0', 4)
    .str('fn').global('repmlp_resnet', 'helper')
    .str('builder').global('torch._utils', '_rebuild_tensor_v2')
    .str('storage_class').global('torch', 'FloatStorage')
    .str('w').tensor('FloatStorage', '0', 4, 0, [4], [1])
    .op(WOP.SETITEMS).stop();
  const bytes = await zipWith(pkl, { '0': new Uint8Array(new Float32Array([1, 2, 3, 4]).buffer) });
  const root = (await readCheckpoint(bytes)).root as PyDict;
  assert.deepEqual(['storage', 'fn', 'builder', 'storage_class', 'w'].map((k) => summarize(root.map.get(k)!)), [
    'torch.FloatStorage(4)', '<global repmlp_resnet.helper>', '<global torch._utils._rebuild_tensor_v2>', '<global torch.FloatStorage>', 'tensor float32 [4]',
  ]);
  assert.deepEqual([...((root.map.get('storage') as PyObject).value as Tensor).toFloat32()], [1, 2, 3, 4]);
  const st = root.map.get('storage') as PyObject;
  assert.equal(st.storage, (root.map.get('w') as Tensor).storage, 'the placeholder keeps the storage itself (a writer puts back its persistent id)');
  const { dir, cleanup } = tempDir();
  try {
    const f = path.join(dir, 'odd.pth');
    writeFileSync(f, bytes);
    const r = await inspectFile(f);
    // no state dict (the globals are not tensors): every tensor in the object, the storage's 1-D view too
    assert.equal(r.wrapper, null);
    assert.deepEqual(r.entries.map((e) => e.name), ['storage', 'w']);
    assert.match(formatReport(r), /no state dict found; 2 tensor\(s\) in the object/);
    assert.deepEqual(r.inertGlobals, ['repmlp_resnet.helper']);
  } finally {
    cleanup();
  }
});

test('hostile 14: ADDITEMS and APPENDS of 1M items (no push(...spread))', () => {
  const n = 1_000_000;
  const set = P().op(XOP.FRAME).raw(new Uint8Array(8)).op(OP.EMPTY_SET, WOP.MARK).raw(new Uint8Array(n).fill(WOP.NONE)).op(OP.ADDITEMS).stop();
  const s = unpickle(set).value as PyOther;
  assert.equal((s.value as unknown[]).length, n);
  const list = P().op(WOP.EMPTY_LIST, WOP.MARK).raw(new Uint8Array(n).fill(WOP.NEWTRUE)).op(WOP.APPENDS).stop();
  assert.equal((unpickle(list).value as unknown[]).length, n);
});

test('hostile 14: _rebuild_from_type_v2 nested 20k deep is refused at the nesting depth limit, without recursion', () => {
  const n = 20_000;
  const a = P().global('torch._tensor', '_rebuild_from_type_v2').op(WOP.BINPUT, 0).global('torch', 'Tensor').op(WOP.BINPUT, 1, XOP.POP);
  // rft(*T_n), T_k = (rft, Tensor, T_{k-1}), T_0 = (OrderedDict, Tensor, ())
  for (let i = 0; i < n; i++) a.op(WOP.BINGET, 0, WOP.BINGET, 1);
  a.global('collections', 'OrderedDict').op(WOP.BINGET, 1, WOP.EMPTY_TUPLE, WOP.TUPLE3);
  a.raw(new Uint8Array(n).fill(WOP.TUPLE3)).op(WOP.REDUCE);
  refuses(a.stop(), /^pickle: _rebuild_from_type_v2 nested deeper than 1000 \(the nesting depth limit\) \(REDUCE at byte \d+\)$/);
  // 100 deep is fine
  const b = P().global('torch._tensor', '_rebuild_from_type_v2').op(WOP.BINPUT, 0).global('torch', 'Tensor').op(WOP.BINPUT, 1, XOP.POP);
  for (let i = 0; i < 100; i++) b.op(WOP.BINGET, 0, WOP.BINGET, 1);
  b.global('collections', 'OrderedDict').op(WOP.BINGET, 1, WOP.EMPTY_TUPLE, WOP.TUPLE3).raw(new Uint8Array(100).fill(WOP.TUPLE3)).op(WOP.REDUCE);
  assert.ok(unpickle(b.stop()).value instanceof PyDict);
});

test('hostile 14: memo entries are refused at the memo size limit, below the JS Map limit of 2^24', () => {
  assert.ok(MAX_MEMO < 2 ** 24);
  const bytes = P().op(WOP.NONE).raw(new Uint8Array(1001).fill(XOP.MEMOIZE)).stop();
  refuses(bytes, `${W}: memo of more than 1000 entries (the memo size limit) (MEMOIZE at byte 1003)`, { limits: { memo: 1000 } });
  const put = P().op(WOP.NONE);
  for (let i = 0; i <= 1000; i++) put.op(WOP.LONG_BINPUT).raw([i & 0xff, i >> 8, 0, 0]);
  refuses(put.stop(), `${W}: memo of more than 1000 entries (the memo size limit) (LONG_BINPUT at byte 5003)`, { limits: { memo: 1000 } });
});

test('hostile 14: dict, list and set sizes and the tensor count are limited, each refusal naming its limit', () => {
  const limits = { container: 1000, tensors: 10 };
  const dict = P().op(WOP.EMPTY_DICT);
  for (let i = 0; i <= 1000; i++) dict.int(i).op(WOP.NONE, WOP.SETITEM);
  refuses(dict.stop(), /^pickle: dict of more than 1000 items \(the dict size limit\) \(SETITEM at byte \d+\)$/, { limits });
  refuses(P().op(WOP.EMPTY_LIST, WOP.MARK).raw(new Uint8Array(1001).fill(WOP.NONE)).op(WOP.APPENDS).stop(), `${W}: list of more than 1000 items (the list size limit) (APPENDS at byte 1005)`, { limits });
  refuses(P().op(OP.EMPTY_SET, WOP.MARK).raw(new Uint8Array(1001).fill(WOP.NONE)).op(OP.ADDITEMS).stop(), `${W}: set of more than 1000 items (the set size limit) (ADDITEMS at byte 1005)`, { limits });
  const many = P().op(WOP.EMPTY_LIST, WOP.MARK);
  for (let i = 0; i < 11; i++) many.tensor('FloatStorage', '0', 1, 0, [1], [1]);
  const storage = new Storage('float32', 1, new Uint8Array(4), '0');
  refuses(many.op(WOP.APPENDS).stop(), /^pickle: more than 10 tensors \(the tensor count limit\) \(REDUCE at byte \d+\)$/, { limits, persistentLoad: () => storage });
});

test('hostile 14: text inspect of 300k tensors (no Math.max(...spread))', async () => {
  const n = 300_000;
  // one storage, one OrderedDict and one size tuple, shared through the memo
  const b = P().op(WOP.EMPTY_DICT);
  b.global('torch._utils', '_rebuild_tensor_v2').op(WOP.BINPUT, 0, XOP.POP);
  b.storage('FloatStorage', '0', 1).op(WOP.BINPUT, 1, XOP.POP);
  b.int(1).op(WOP.TUPLE1, WOP.BINPUT, 2, XOP.POP);
  b.global('collections', 'OrderedDict').op(WOP.EMPTY_TUPLE, WOP.REDUCE, WOP.BINPUT, 3, XOP.POP);
  for (let chunk = 0; chunk < n; chunk += 1000) {
    b.op(WOP.MARK);
    for (let i = chunk; i < chunk + 1000; i++) {
      b.str(`layer${i}.weight`).op(WOP.BINGET, 0, WOP.MARK, WOP.BINGET, 1).int(0).op(WOP.BINGET, 2, WOP.BINGET, 2, WOP.NEWFALSE, WOP.BINGET, 3, WOP.TUPLE, WOP.REDUCE);
    }
    b.op(WOP.SETITEMS);
  }
  const bytes = await zipWith(b.stop(), { '0': new Uint8Array(4) });
  const { dir, cleanup } = tempDir();
  try {
    const f = path.join(dir, 'many.pth');
    writeFileSync(f, bytes);
    const r = await inspectFile(f);
    assert.equal(r.tensors, n);
    const text = formatReport(r);
    assert.ok(text.endsWith(`  layer${n - 1}.weight  float32   [1]`));
  } finally {
    cleanup();
  }
});

test("hostile 14: _codecs.encode and torch.device are checked as Python and torch check them", () => {
  const encode = (s: string) => P().global('_codecs', 'encode').str(s).str('latin1').op(WOP.TUPLE2, WOP.REDUCE).stop();
  refuses(encode('ab\u0100'), /^pickle: _codecs\.encode: UnicodeEncodeError: 'latin-1' codec can't encode character '\\u0100' in position 2: ordinal not in range\(256\) \(REDUCE at byte \d+\)$/);
  assert.deepEqual([...(unpickle(encode('\u00ff\u0000A')).value as Uint8Array)], [255, 0, 65]);
  const device = (...args: ((a: PickleAsm) => void)[]) => P().global('torch', 'device').tuple(...args).op(WOP.REDUCE).stop();
  refuses(device((a) => a.str('evil')), /^pickle: torch\.device: invalid device string 'evil' \(expected one of cpu, cuda, .*, optionally followed by ':N'\) \(REDUCE at byte \d+\)$/);
  refuses(device((a) => a.str('cuda:-1')), /invalid device string 'cuda:-1'/);
  refuses(device((a) => a.str('cuda:0'), (a) => a.int(1)), /^pickle: torch\.device: invalid device index int 1 for 'cuda:0' \(REDUCE at byte \d+\)$/);
  assert.equal((unpickle(device((a) => a.str('cuda:1'))).value as PyOther).value, 'cuda:1');
  assert.equal((unpickle(device((a) => a.str('cuda'), (a) => a.int(2))).value as PyOther).value, 'cuda:2');
  assert.equal((unpickle(device((a) => a.str('cpu'))).value as PyOther).value, 'cpu');
});

test('hostile 14: control characters in names, keys and values are escaped in text and --json', async () => {
  const evil = 'x\u001b[2J\u009b31m\u007f\u0085';
  const pkl = P().op(WOP.EMPTY_DICT, WOP.MARK)
    .str('state_dict').global('collections', 'OrderedDict').op(WOP.EMPTY_TUPLE, WOP.REDUCE).str(`conv.${evil}`).tensor('FloatStorage', '0', 1, 0, [1], [1]).op(WOP.SETITEM)
    .str(`note${evil}`).str(evil)
    .op(WOP.SETITEMS).stop();
  const { dir, cleanup } = tempDir();
  try {
    const f = path.join(dir, 'esc.pth');
    writeFileSync(f, await zipWith(pkl, { '0': new Uint8Array(4) }));
    const r = await inspectFile(f);
    const text = formatReport(r);
    assert.ok(!/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/.test(text), 'raw control character in text output');
    assert.ok(text.includes('conv.x\\x1b[2J\\x9b31m\\x7f\\x85'));
    const json = jsonText(r);
    assert.ok(!/[\u0000-\u001f\u007f-\u009f]/.test(json.replace(/\n/g, '')), 'raw control character in --json output');
    assert.equal(JSON.parse(json).entries[0].name, `conv.${evil}`);
    assert.ok(json.includes('\\u009b'));
    assert.deepEqual(findStateDict((await readCheckpoint(f)).root).path, ['state_dict']);
  } finally {
    cleanup();
  }
});

test('hostile 14: user input never reaches a plain-object lookup (constructor, toString, __proto__)', async () => {
  const { parseNpy } = await import('../src/io/npy.js');
  const { presetConfig, resolveArch } = await import('../src/model/config.js');
  const npy = (descr: string) => {
    const header = `{'descr': '${descr}', 'fortran_order': False, 'shape': (1,), }`.padEnd(118, ' ') + '\n';
    return new Uint8Array([0x93, ...Buffer.from('NUMPY'), 1, 0, header.length & 0xff, header.length >> 8, ...Buffer.from(header, 'latin1'), 0, 0, 0, 0]);
  };
  for (const name of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) {
    assert.throws(() => parseNpy(npy(name)), { name: 'NpyError', message: `npy: dtype '${name}' is not supported (float32, float64, int64, int32, uint8)` });
    assert.throws(() => presetConfig(name), (e: unknown) => e instanceof RepmlpError && e.message.startsWith(`unknown preset '${name}' (`));
    assert.throws(() => resolveArch(name), (e: unknown) => e instanceof RepmlpError && e.message.startsWith(`--arch ${name}: not a preset (`));
  }
  const { spawnSync } = await import('node:child_process');
  const { ROOT } = await import('./helpers/torch.js');
  const r = spawnSync(process.execPath, [path.join(ROOT, 'dist/src/cli/main.js'), 'constructor'], { encoding: 'utf8' });
  assert.equal(r.status, 1);
  assert.equal(r.stderr, "repmlp: error: unknown command 'constructor' (try repmlp --help)\n");
});

test('hostile inert: random programs over placeholders, numpy, modules and tensors load or fail with a RepmlpError', async () => {
  const { mulberry32 } = await import('../src/util/random.js');
  const { listStateDicts } = await import('../src/pth/statedict.js');
  const r = mulberry32(Number(process.env.REPMLP_INERT_SEED ?? 1313));
  const pick = <T>(a: readonly T[]): T => a[Math.floor(r() * a.length)]!;
  const globals: [string, string][] = [
    ['argparse', 'Namespace'], ['numpy', 'dtype'], ['numpy.core.multiarray', 'scalar'], ['numpy.core.multiarray', '_reconstruct'], ['numpy', 'ndarray'],
    ['yacs.config', 'CfgNode'], ['omegaconf.dictconfig', 'DictConfig'], ['omegaconf.nodes', 'AnyNode'], ['collections', 'OrderedDict'],
    ['torch._utils', '_rebuild_tensor_v2'], ['torch._utils', '_rebuild_parameter'], ['torch._tensor', '_rebuild_from_type_v2'], ['torch', 'Tensor'],
    ['torch.nn.modules.conv', 'Conv2d'], ['repmlp_resnet', 'Net'], ['__builtin__', 'set'], ['builtins', 'frozenset'], ['_codecs', 'encode'],
    ['torch', 'device'], ['torch', 'FloatStorage'], ['copyreg', '_reconstructor'], ['collections', 'Counter'],
  ];
  const strs = ['_parameters', '_buffers', '_modules', '_non_persistent_buffers_set', '_content', '_val', 'f8', '<i4', 'b1', 'latin1', 'cpu', 'w', ''];
  const atoms: ((a: PickleAsm) => void)[] = [
    (a) => a.op(WOP.NONE), (a) => a.int(Math.floor(r() * 300) - 20), (a) => a.str(pick(strs)), (a) => a.float(r()), (a) => a.op(WOP.NEWTRUE),
    (a) => a.op(WOP.EMPTY_DICT), (a) => a.op(WOP.EMPTY_LIST), (a) => a.op(WOP.EMPTY_TUPLE), (a) => a.global(...pick(globals)),
    (a) => a.op(XOP.SHORT_BINBYTES, 8).raw(Array.from({ length: 8 }, () => Math.floor(r() * 256))), (a) => a.storage('FloatStorage', '0', 4),
    (a) => a.op(WOP.BINGET, Math.floor(r() * 4)), (a) => a.op(WOP.BINPUT, Math.floor(r() * 4)),
  ];
  const ops = [WOP.TUPLE1, WOP.TUPLE2, WOP.TUPLE3, WOP.REDUCE, NEWOBJ, WOP.BUILD, WOP.SETITEM, WOP.APPEND, WOP.MARK, WOP.TUPLE, WOP.SETITEMS, WOP.APPENDS, XOP.LIST, OP.ADDITEMS, XOP.DUP, XOP.POP];
  const data = new Uint8Array(new Float32Array([1, 2, 3, 4]).buffer);
  let loaded = 0;
  let refused = 0;
  for (let i = 0, n = Number(process.env.REPMLP_INERT_CASES ?? 3000); i < n; i++) {
    // inside one outer MARK, closing every MARK opened, so that most programs end with one value
    const a = P().op(WOP.MARK);
    let marks = 1;
    const closing = new Set<number>([WOP.TUPLE, WOP.SETITEMS, WOP.APPENDS, XOP.LIST, OP.ADDITEMS]);
    for (let k = 0, n = 2 + Math.floor(r() * 40); k < n; k++) {
      if (r() < 0.55) {
        pick(atoms)(a);
        continue;
      }
      const op = pick(ops);
      if (closing.has(op) && marks <= 1) continue;
      if (op === WOP.MARK) marks++;
      if (closing.has(op)) marks--;
      a.op(op);
    }
    for (; marks > 0; marks--) a.op(WOP.TUPLE);
    const pkl = a.stop();
    const storage = new Storage('float32', 4, data, '0');
    try {
      const root = unpickle(pkl, { persistentLoad: () => storage }).value;
      loaded++;
      summarize(root);
      listStateDicts(root);
      try {
        findStateDict(root);
      } catch (e) {
        if (!(e instanceof RepmlpError)) throw e;
      }
    } catch (e) {
      if (!(e instanceof RepmlpError)) assert.fail(`case ${i}: ${(e as Error).name}: ${(e as Error).message}\n${Buffer.from(pkl).toString('hex')}`);
      assert.ok(!e.message.includes('\n'));
      refused++;
    }
  }
  console.log(`inert programs: ${loaded} loaded, ${refused} refused`);
  assert.ok(loaded > 50 && refused > 50, `loaded ${loaded}, refused ${refused}`);
});

test('protocol 2 builtins: __builtin__.set / frozenset of a list or tuple, bytearray of bytes or of a latin-1 str', () => {
  const set = unpickle(P().global('__builtin__', 'set').int(1).int(2).op(WOP.TUPLE2, WOP.TUPLE1, WOP.REDUCE).stop()).value;
  assert.equal(summarize(set), 'set({1, 2})');
  const fs = unpickle(P().global('__builtin__', 'frozenset').op(WOP.EMPTY_LIST).str('a').op(WOP.APPEND, WOP.TUPLE1, WOP.REDUCE).stop()).value;
  assert.equal(summarize(fs), "frozenset({'a'})");
  const ba = unpickle(P().global('__builtin__', 'bytearray').str('ab\u00ff').str('latin-1').op(WOP.TUPLE2, WOP.REDUCE).stop()).value as PyOther;
  assert.deepEqual([...(ba.value as Uint8Array)], [0x61, 0x62, 0xff]);
  refuses(P().global('__builtin__', 'set').int(1).op(WOP.TUPLE1, WOP.REDUCE).stop(), `${W}: builtins.set: expected a list of items, got int 1 (REDUCE at byte 22)`);
  refuses(P().global('__builtin__', 'bytearray').int(1).op(WOP.TUPLE1, WOP.REDUCE).stop(), `${W}: builtins.bytearray: expected bytes, got int 1 (REDUCE at byte 28)`);
});

test('hostile inert: every pickle of a legacy stream is held to --strict-globals; a placeholder is never the magic number', async () => {
  const ns = P().global('argparse', 'Namespace').op(WOP.EMPTY_TUPLE, NEWOBJ).stop();
  const bytes = new Uint8Array([...ns, ...legacyWith(P().op(WOP.NONE).stop())]);
  await assert.rejects(readCheckpoint(bytes, { strictGlobals: true }), { name: 'PickleError', message: "<bytes>: legacy magic number: refusing global 'argparse.Namespace': not in torch's weights_only allow-list" });
  await assert.rejects(readCheckpoint(bytes), { name: 'LegacyError', message: '<bytes>: not a PyTorch checkpoint (no zip header and no legacy magic number)' });
});

test('inert dict subclasses (CfgNode, defaultdict, EasyDict, ...) read as their dict, even when empty', () => {
  assert.equal(summarize(unpickle(P().global('yacs.config', 'CfgNode').op(WOP.EMPTY_TUPLE, NEWOBJ).stop()).value), 'yacs.config.CfgNode({})');
  const dd = unpickle(P().global('collections', 'defaultdict').global('builtins', 'list').op(WOP.TUPLE1, WOP.REDUCE).str('a').int(1).op(WOP.SETITEM).stop()).value as PyObject;
  assert.equal(summarize(dd), "collections.defaultdict({'a': 1})");
  assert.deepEqual([...(dd.value as PyDict).map], [['a', 1n]]);
});

test('inert: a placeholder records whether NEWOBJ or REDUCE built it (a writer must keep it)', () => {
  const n = unpickle(P().global('argparse', 'Namespace').op(WOP.EMPTY_TUPLE, NEWOBJ).stop()).value as PyObject;
  const r = unpickle(P().global('argparse', 'Namespace').op(WOP.EMPTY_TUPLE, WOP.REDUCE).stop()).value as PyObject;
  assert.deepEqual([n.newobj, r.newobj], [true, false]);
});
