/**
 * The hostile corpus: malformed and malicious checkpoints, regenerated from the
 * descriptions of other projects' test suites (none of their files is copied; each group
 * cites where its idea comes from):
 *
 *   picklescan   github.com/mmaitre314/picklescan  tests/test_scanner.py: a pickle per
 *                dangerous global (eval/exec, os/posix/nt.system, subprocess, runpy,
 *                webbrowser, shutil.rmtree, pickle.loads, torch.hub, numpy, bdb/pdb, ...),
 *                by GLOBAL and by STACK_GLOBAL, plain and inside torch's zip and legacy
 *                containers, and broken pickles (truncated, bad opcode).
 *   modelscan    github.com/protectai/modelscan  notebooks/utils/pickle_codeinjection.py:
 *                a payload injected before or after the real object in the same stream.
 *   fickling     github.com/trailofbits/fickling  test/test_bypasses.py, test_pytorch.py:
 *                every protocol (0-5), INST/OBJ/NEWOBJ_EX/EXT opcodes, BUILD with state,
 *                a payload injected into a PyTorch zip's data.pkl, polyglot files.
 *   safetensors  github.com/huggingface/safetensors  safetensors/src/tensor.rs tests and
 *                attacks/: header length past the file or absurd, invalid JSON / UTF-8,
 *                overlapping or out-of-range offsets, shape/size mismatch, bad dtype,
 *                float numbers, deep nesting, leading spaces, huge entry counts.
 *   pickletester CPython Lib/test/pickletester.py AbstractUnpickleTests: bad stack,
 *                bad mark, truncated data at every opcode, huge lengths, unknown memo
 *                keys, negative puts, FRAME lies, recursive structures, deep nesting.
 *   torch        github.com/pytorch/pytorch  test/test_serialization.py: weights_only
 *                unpickler cases, storages shared by views, lying numel, byteorder, zip
 *                records missing or compressed, legacy counts.
 *
 * Deterministic: the same bytes every run. `cases({big})` returns [{name, source, ext,
 * bytes}]; `big` adds the multi-hundred-MB cases (16.8M memo entries, a 20M-key dict,
 * 1.46M overlapping safetensors entries), left out of CI for their size.
 */
import { OP, Pickle, Bytes, torchZip, legacy, safetensors, zip, crc32 } from './bytes.mjs';

const f32 = (n, seed = 1) => {
  const b = new Uint8Array(n * 4);
  const v = new Float32Array(b.buffer);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) v[i] = ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32) - 0.5;
  return b;
};

/** A small valid state dict: {'module.conv.weight': [2,3], 'module.bn.weight': [2]} on storages 0 and 1. */
function validStateDict(p, prefix = 'module.') {
  return p.orderedDict([
    [`${prefix}conv.weight`, (q) => q.tensor((r) => r.storage('FloatStorage', '0', 6), 0, [2, 3], [3, 1])],
    [`${prefix}bn.weight`, (q) => q.floatTensor('1', 2)],
  ]);
}
const VALID_STORAGES = { 0: f32(6), 1: f32(2, 7) };

/** The valid checkpoint's pickle, in protocol `proto`. */
function validPickle(proto = 2) {
  return validStateDict(new Pickle(proto)).stop();
}

// Globals refused by torch's weights_only unpickler, from the scanners' test suites.
const ATTACK_GLOBALS = [
  ['builtins', 'eval'], ['builtins', 'exec'], ['builtins', 'compile'], ['builtins', 'getattr'], ['builtins', '__import__'],
  ['builtins', 'open'], ['builtins', 'apply'], ['builtins', 'breakpoint'], ['__builtin__', 'eval'], ['__builtin__', 'execfile'],
  ['os', 'system'], ['posix', 'system'], ['nt', 'system'], ['os', 'popen'], ['os', 'execv'], ['os', 'remove'],
  ['subprocess', 'Popen'], ['subprocess', 'run'], ['subprocess', 'call'], ['subprocess', 'check_output'],
  ['runpy', '_run_code'], ['runpy', 'run_path'], ['webbrowser', 'open'], ['shutil', 'rmtree'], ['pty', 'spawn'],
  ['socket', 'create_connection'], ['pickle', 'loads'], ['_pickle', 'loads'], ['marshal', 'loads'], ['torch', 'load'],
  ['torch.hub', 'load'], ['torch.hub', 'load_state_dict_from_url'], ['torch.serialization', 'load'], ['torch', 'Tensor.__reduce_ex__'],
  ['numpy.core.multiarray', '_reconstruct'], ['numpy', 'load'], ['numpy.testing._private.utils', 'runstring'],
  ['functools', 'partial'], ['operator', 'attrgetter'], ['operator', 'methodcaller'], ['operator', 'getitem'],
  ['code', 'InteractiveInterpreter.runcode'], ['bdb', 'Bdb.run'], ['pdb', 'Pdb.run'], ['timeit', 'timeit'], ['cProfile', 'run'],
  ['asyncio.unix_events', '_UnixSubprocessTransport._start'], ['ctypes', 'CDLL'], ['importlib', 'import_module'],
  ['sys', 'modules'], ['types', 'FunctionType'], ['copyreg', '_reconstructor'], ['collections', 'OrderedDict.__setitem__'],
  ['torch._utils', '_rebuild_tensor_v2.__globals__'], ['torch', 'FloatStorage.from_file'], ['torch.nn', 'Module'],
];

/** One case list, built in a fixed order. */
export function cases(opts = {}) {
  const out = [];
  const add = (name, source, bytes, ext = 'pth') => out.push({ name, source, ext, bytes });
  const attack = (mod, name, arg = 'echo pwned') => (p) => p.global(mod, name).str(arg).op(OP.TUPLE1, OP.REDUCE);

  // --- picklescan / fickling: each attack global, several placements ---------------------
  for (const [k, [mod, fn]] of ATTACK_GLOBALS.entries()) {
    const id = `${mod}.${fn}`.replace(/[^\w.]/g, '_');
    // (1) the whole data.pkl is the call (picklescan's malicious pickles)
    add(`attack-root-${id}`, 'picklescan tests: one pickle per dangerous global', torchZip(attack(mod, fn)(new Pickle(2)).op(OP.STOP).done()));
    // (the placements below are the same refusal for every global: a sample of them)
    if (k >= 10) continue;
    // (2) modelscan's code injection: payload, POP, then the real state dict
    const inj = new Pickle(2);
    attack(mod, fn)(inj);
    inj.op(OP.POP);
    add(`attack-injected-${id}`, 'modelscan pickle_codeinjection: payload before the real object', torchZip(validStateDict(inj).stop(), VALID_STORAGES));
    // (3) a wrapper value: {'state_dict': sd, 'epoch': <call>}
    const wrap = new Pickle(2).dict([['state_dict', (p) => validStateDict(p)], ['epoch', attack(mod, fn)]]).stop();
    add(`attack-wrapper-${id}`, 'fickling test_pytorch: payload injected into a PyTorch zip data.pkl', torchZip(wrap, VALID_STORAGES));
  }
  // STACK_GLOBAL (protocol 4) and an uncalled global as a value
  for (const [mod, fn] of ATTACK_GLOBALS.slice(0, 8)) {
    const id = `${mod}.${fn}`;
    const p = new Pickle(4);
    p.op(OP.SHORT_BINUNICODE, mod.length).raw(new TextEncoder().encode(mod)).op(OP.MEMOIZE);
    p.op(OP.SHORT_BINUNICODE, fn.length).raw(new TextEncoder().encode(fn)).op(OP.MEMOIZE, OP.STACK_GLOBAL);
    p.str('id').op(OP.TUPLE1, OP.REDUCE, OP.STOP);
    add(`attack-stackglobal-${id}`, 'picklescan tests: STACK_GLOBAL variants (protocol 4)', torchZip(p.done()));
    const un = new Pickle(2).dict([['state_dict', (q) => validStateDict(q)], ['hook', (q) => q.global(mod, fn)]]).stop();
    add(`attack-uncalled-${id}`, 'fickling test_bypasses: a global named but never called', torchZip(un, VALID_STORAGES));
  }
  // the same payloads in the legacy container, and as a bare pickle (not a zip)
  for (const [mod, fn] of ATTACK_GLOBALS.slice(0, 5)) {
    add(`attack-legacy-${mod}.${fn}`, 'picklescan tests: legacy torch.save files', legacy(attack(mod, fn)(new Pickle(2)).op(OP.STOP).done()));
    add(`attack-barepickle-${mod}.${fn}`, 'picklescan tests: plain .pkl files', attack(mod, fn)(new Pickle(2)).op(OP.STOP).done(), 'pkl');
  }
  // protocol 0/1 object-building opcodes (fickling: every protocol)
  {
    const inst = new Bytes().u8(OP.MARK).ascii('S\'echo\'\n').u8(OP.INST).ascii('os\nsystem\n').u8(OP.STOP).done();
    add('opcode-INST-os.system', 'fickling: protocol 0 INST', torchZip(inst));
    const obj = new Pickle(1).op(OP.MARK).global('os', 'system').str('id').op(OP.OBJ, OP.STOP).done();
    add('opcode-OBJ-os.system', 'fickling: protocol 1 OBJ', torchZip(obj));
    const nex = new Pickle(4).global('subprocess', 'Popen').op(OP.EMPTY_TUPLE, OP.EMPTY_DICT, OP.NEWOBJ_EX, OP.STOP).done();
    add('opcode-NEWOBJ_EX-Popen', 'fickling: NEWOBJ_EX', torchZip(nex));
    const newobj = new Pickle(2).global('torch', 'FloatStorage').op(OP.EMPTY_TUPLE, OP.NEWOBJ, OP.STOP).done();
    add('opcode-NEWOBJ-storage-class', 'fickling: NEWOBJ on an allowed class', torchZip(newobj));
    for (const [name, code, n] of [['EXT1', OP.EXT1, 1], ['EXT2', OP.EXT2, 2], ['EXT4', OP.EXT4, 4]]) {
      add(`opcode-${name}`, 'pickletester: extension registry opcodes', torchZip(new Pickle(2).op(code, ...new Array(n).fill(1), OP.STOP).done()));
    }
    add('opcode-PERSID-text', 'pickletester: text persistent id', torchZip(new Bytes().u8(OP.PERSID).ascii('0\n').u8(OP.STOP).done()));
    const build = new Pickle(2).global('collections', 'OrderedDict').op(OP.EMPTY_TUPLE, OP.REDUCE).dict([['__class__', (p) => p.global('os', 'system')]]).op(OP.BUILD, OP.STOP).done();
    add('opcode-BUILD-class-state', 'fickling test_bypasses: BUILD setting __class__', torchZip(build));
    const buildT = new Pickle(2).floatTensor('0', 2).dict([['__reduce__', (p) => p.global('os', 'system')]]).op(OP.BUILD, OP.STOP).done();
    add('opcode-BUILD-tensor-state', 'fickling test_bypasses: BUILD with state on a tensor', torchZip(buildT, { 0: f32(2) }));
    add('opcode-NEXT_BUFFER', 'pickletester: protocol 5 out-of-band buffer', torchZip(new Pickle(5).op(OP.NEXT_BUFFER, OP.STOP).done()));
    add('opcode-READONLY_BUFFER', 'pickletester: protocol 5 readonly buffer', torchZip(new Pickle(5).op(OP.SHORT_BINBYTES, 1, 0, OP.READONLY_BUFFER, OP.STOP).done()));
    add('opcode-unknown-0xff', 'pickletester: unknown opcode', torchZip(new Pickle(2).op(0xff, OP.STOP).done()));
    add('protocol-6', 'pickletester: unsupported protocol', torchZip(new Pickle(6).op(OP.NONE, OP.STOP).done()));
    for (const [name, text] of [['INT', 'I12\n'], ['LONG', 'L12L\n'], ['FLOAT', 'F1.5\n'], ['STRING', "S'a'\n"], ['UNICODE', 'Vab\n'], ['GET', 'g0\n'], ['PUT', 'p0\n']]) {
      add(`opcode-text-${name}`, 'pickletester: protocol 0 text opcodes', torchZip(new Bytes().ascii(text).u8(OP.STOP).done()));
    }
  }

  // --- valid files in every protocol (must load) -------------------------------------------
  for (const proto of [2, 3, 4, 5]) add(`valid-protocol-${proto}`, 'fickling: every protocol', torchZip(validPickle(proto), VALID_STORAGES));
  add('valid-legacy', 'torch test_serialization: legacy format', legacy(validStateDict(new Pickle(2)).stop(), [{ key: '0', data: VALID_STORAGES[0] }, { key: '1', data: VALID_STORAGES[1] }]));

  // --- pickletester: broken streams ----------------------------------------------------------
  const good = validPickle(2);
  for (let cut = 1; cut < good.length; cut += Math.max(1, Math.floor(good.length / 25))) {
    add(`truncated-pickle-at-${String(cut).padStart(4, '0')}`, 'pickletester test_truncated_data', torchZip(good.subarray(0, cut), VALID_STORAGES));
  }
  const small = (name, src, build) => add(name, src, torchZip(build(new Pickle(2)).done()));
  small('stack-pop-empty', 'pickletester test_bad_stack', (p) => p.op(OP.POP, OP.STOP));
  small('stack-stop-empty', 'pickletester test_bad_stack', (p) => p.op(OP.STOP));
  small('stack-stop-two', 'pickletester test_bad_stack', (p) => p.op(OP.NONE, OP.NONE, OP.STOP));
  small('stack-tuple1-empty', 'pickletester test_bad_stack', (p) => p.op(OP.TUPLE1, OP.STOP));
  small('stack-reduce-empty', 'pickletester test_bad_stack', (p) => p.op(OP.REDUCE, OP.STOP));
  small('mark-unclosed', 'pickletester test_bad_mark', (p) => p.op(OP.MARK, OP.NONE, OP.STOP));
  small('mark-popmark-nomark', 'pickletester test_bad_mark', (p) => p.op(OP.NONE, OP.POP_MARK, OP.STOP));
  small('mark-tuple-nomark', 'pickletester test_bad_mark', (p) => p.op(OP.NONE, OP.TUPLE, OP.STOP));
  small('setitems-odd', 'pickletester test_bad_stack', (p) => p.op(OP.EMPTY_DICT, OP.MARK, OP.NONE, OP.SETITEMS, OP.STOP));
  small('setitem-on-tuple', 'pickletester test_bad_stack', (p) => p.op(OP.EMPTY_TUPLE, OP.NONE, OP.NONE, OP.SETITEM, OP.STOP));
  small('append-on-dict', 'pickletester test_bad_stack', (p) => p.op(OP.EMPTY_DICT, OP.NONE, OP.APPEND, OP.STOP));
  small('appends-on-int', 'pickletester test_bad_stack', (p) => p.int(3).op(OP.MARK, OP.NONE, OP.APPENDS, OP.STOP));
  small('additems-on-list', 'pickletester test_bad_stack', (p) => p.op(OP.EMPTY_LIST, OP.MARK, OP.NONE, OP.ADDITEMS, OP.STOP));
  small('binget-unknown', 'pickletester test_get_unknown', (p) => p.op(OP.BINGET, 7, OP.STOP));
  small('long-binget-huge', 'pickletester test_get_unknown', (p) => p.op(OP.LONG_BINGET, 0xff, 0xff, 0xff, 0xff, OP.STOP));
  small('long-binput-huge', 'pickletester test_negative_put', (p) => p.op(OP.NONE, OP.LONG_BINPUT, 0xff, 0xff, 0xff, 0xff, OP.STOP));
  small('binput-empty-stack', 'pickletester test_bad_stack', (p) => p.op(OP.BINPUT, 0, OP.STOP));
  small('memoize-empty-stack', 'pickletester test_bad_stack', (p) => p.op(OP.MEMOIZE, OP.STOP));
  small('frame-longer-than-file', 'pickletester test_frame_readline / FRAME lies', (p) => p.op(OP.FRAME).raw(new Bytes().u64(1n << 40n).done()).op(OP.NONE, OP.STOP));
  small('binunicode-past-end', 'pickletester test_truncated_data', (p) => p.op(OP.BINUNICODE).raw(new Bytes().u32(1000).done()).op(0x41));
  small('binunicode-bad-utf8', 'pickletester test_badly_escaped_string', (p) => p.op(OP.BINUNICODE).raw(new Bytes().u32(2).done()).op(0xc3, 0x28, OP.STOP));
  small('binunicode8-huge', 'pickletester test_large_32b_binunicode8', (p) => p.op(OP.BINUNICODE8).raw(new Bytes().u64((1n << 63n) - 1n).done()).op(OP.STOP));
  small('binbytes8-huge', 'pickletester test_large_32b_binbytes8', (p) => p.op(OP.BINBYTES8).raw(new Bytes().u64(1n << 62n).done()).op(OP.STOP));
  small('bytearray8-huge', 'pickletester test_large_32b_bytearray8', (p) => p.op(OP.BYTEARRAY8).raw(new Bytes().u64(1n << 62n).done()).op(OP.STOP));
  small('long4-huge', 'pickletester test_bad_long', (p) => p.op(OP.LONG4).raw(new Bytes().u32(0x7fffffff).done()).op(OP.STOP));
  small('long4-100-bytes', 'pickletester test_bad_long', (p) => p.op(OP.LONG4).raw(new Bytes().u32(100).done()).raw(new Uint8Array(100).fill(0xff)).op(OP.STOP));
  small('long1-negative', 'pickletester test_long', (p) => p.op(OP.LONG1, 2, 0x00, 0x80, OP.STOP));
  small('binfloat-nan', 'pickletester test_float', (p) => p.float(NaN).op(OP.STOP));
  small('global-no-newline', 'pickletester test_bad_newline', (p) => p.op(OP.GLOBAL).raw(new TextEncoder().encode('torch')).op(OP.STOP));
  small('global-4k-name', 'pickletester: long names', (p) => p.global('torch', 'x'.repeat(4096)).op(OP.STOP));
  small('empty-file', 'pickletester test_truncated_data', (p) => p);
  small('recursive-list', 'pickletester test_recursive_list', (p) => p.op(OP.EMPTY_LIST, OP.BINPUT, 0, OP.BINGET, 0, OP.APPEND, OP.STOP));
  small('recursive-dict', 'pickletester test_recursive_dict', (p) => p.op(OP.EMPTY_DICT, OP.BINPUT, 0).str('self').op(OP.BINGET, 0, OP.SETITEM, OP.STOP));
  small('reduce-on-string', 'torch weights_only: REDUCE of a non-callable', (p) => p.str('os.system').op(OP.EMPTY_TUPLE, OP.REDUCE, OP.STOP));
  small('reduce-on-int', 'torch weights_only: REDUCE of a non-callable', (p) => p.int(5).op(OP.EMPTY_TUPLE, OP.REDUCE, OP.STOP));
  small('proto-keys', 'prototype pollution keys', (p) => p.dict([['__proto__', (q) => q.int(1)], ['constructor', (q) => q.int(2)], ['toString', (q) => q.int(3)]]).op(OP.STOP));
  // deep nesting (iterative parsers must survive; writers refuse past Python's limit)
  for (const depth of [1000, 100_000]) {
    small(`nested-lists-${depth}`, 'pickletester test_deep_nesting', (p) => {
      for (let i = 0; i < depth; i++) p.op(OP.EMPTY_LIST);
      for (let i = 0; i < depth; i++) p.op(OP.APPEND);
      return p.op(OP.STOP);
    });
    small(`nested-marks-${depth}`, 'pickletester test_bad_mark (nested marks)', (p) => {
      for (let i = 0; i < depth; i++) p.op(OP.MARK);
      for (let i = 0; i < depth; i++) p.op(OP.TUPLE);
      return p.op(OP.STOP);
    });
  }
  small('nested-dicts-1100-wrapper', 'pickletester test_deep_nesting (dicts)', (p) => {
    p.op(OP.EMPTY_DICT, OP.MARK).str('state_dict');
    validStateDict(p);
    p.str('cfg');
    for (let i = 0; i < 1100; i++) p.op(OP.EMPTY_DICT, OP.MARK).str('k');
    p.int(1);
    for (let i = 0; i < 1100; i++) p.op(OP.SETITEMS);
    return p.op(OP.SETITEMS, OP.STOP);
  });
  // counts: ADDITEMS of 1M items, a 1M-item tuple, a 2M-entry memo, a 1M-key dict
  small('additems-1M', 'issue 14: ADDITEMS of 1M items (spread into push)', (p) => {
    p.op(OP.EMPTY_SET, OP.MARK);
    for (let i = 0; i < 1_000_000; i++) p.op(OP.BININT).raw(new Bytes().i32(i).done());
    return p.op(OP.ADDITEMS, OP.STOP);
  });
  small('tuple-1M', 'pickletester: large tuple', (p) => {
    p.op(OP.MARK);
    for (let i = 0; i < 1_000_000; i++) p.op(OP.NONE);
    return p.op(OP.TUPLE, OP.STOP);
  });
  small('memo-2M', 'issue 14: many memo entries', (p) => {
    for (let i = 0; i < 2_000_000; i++) p.op(OP.NONE, OP.LONG_BINPUT).raw(new Bytes().u32(i).done()).op(OP.POP);
    return p.op(OP.NONE, OP.STOP);
  });
  small('dict-1M-keys', 'issue 14: a huge dict', (p) => {
    p.op(OP.EMPTY_DICT, OP.MARK);
    for (let i = 0; i < 1_000_000; i++) p.op(OP.BININT).raw(new Bytes().i32(i).done()).op(OP.NONE);
    return p.op(OP.SETITEMS, OP.STOP);
  });

  // --- torch: tensors, storages, rebuild functions (test_serialization, weights_only) ---------
  const tz = (name, src, build, storages = {}) => add(name, src, torchZip(build(new Pickle(2)).op(OP.STOP).done(), storages));
  tz('storage-numel-lies-big', 'torch test_serialization: numel larger than the record', (p) => p.orderedDict([['w', (q) => q.floatTensor('0', 1 << 30)]]), { 0: f32(4) });
  tz('storage-numel-lies-small', 'torch test_serialization: numel smaller than the record', (p) => p.orderedDict([['w', (q) => q.floatTensor('0', 2)]]), { 0: f32(4) });
  tz('storage-missing-record', 'torch test_serialization: record missing', (p) => p.orderedDict([['w', (q) => q.floatTensor('9', 4)]]), { 0: f32(4) });
  tz('storage-unknown-type', 'torch weights_only: storage class not allowed', (p) => p.orderedDict([['w', (q) => q.tensor((r) => r.storage('EvilStorage', '0', 4), 0, [4], [1])]]), { 0: f32(4) });
  tz('storage-two-dtypes', 'torch: one key, two dtypes', (p) => p.orderedDict([['a', (q) => q.floatTensor('0', 4)], ['b', (q) => q.tensor((r) => r.storage('IntStorage', '0', 4), 0, [4], [1])]]), { 0: f32(4) });
  tz('view-past-storage', 'torch: a view beyond its storage', (p) => p.orderedDict([['w', (q) => q.tensor((r) => r.storage('FloatStorage', '0', 4), 3, [4], [1])]]), { 0: f32(4) });
  tz('view-negative-stride', 'torch: negative stride', (p) => p.orderedDict([['w', (q) => q.tensor((r) => r.storage('FloatStorage', '0', 4), 3, [4], [-1])]]), { 0: f32(4) });
  tz('view-negative-offset', 'torch: negative offset', (p) => p.orderedDict([['w', (q) => q.tensor((r) => r.storage('FloatStorage', '0', 4), -1, [2], [1])]]), { 0: f32(4) });
  tz('view-negative-size', 'torch: negative size', (p) => p.orderedDict([['w', (q) => q.tensor((r) => r.storage('FloatStorage', '0', 4), 0, [-4], [1])]]), { 0: f32(4) });
  tz('view-size-2^62', 'torch: size overflow', (p) => p.orderedDict([['w', (q) => q.tensor((r) => r.storage('FloatStorage', '0', 4), 0, [2 ** 31, 2 ** 31], [1, 1])]]), { 0: f32(4) });
  tz('expand-2^30', 'issue 14: torch.zeros(1).expand(2**30), 627 bytes that expand to 4 GiB', (p) => p.orderedDict([['w', (q) => q.tensor((r) => r.storage('FloatStorage', '0', 1), 0, [2 ** 30], [0])]]), { 0: f32(1) });
  tz('expand-2^20', 'torch: an expanded view (stride 0)', (p) => p.orderedDict([['w', (q) => q.tensor((r) => r.storage('FloatStorage', '0', 1), 0, [1 << 20], [0])]]), { 0: f32(1) });
  tz('size-not-tuple', 'torch weights_only: _rebuild_tensor_v2 argument types', (p) => p.orderedDict([['w', (q) => {
    q.global('torch._utils', '_rebuild_tensor_v2').tuple((r) => r.storage('FloatStorage', '0', 4), (r) => r.int(0), (r) => r.str('4'), (r) => r.tuple((s) => s.int(1)), (r) => r.op(OP.NEWFALSE), (r) => r.op(OP.NONE)).op(OP.REDUCE);
  }]]), { 0: f32(4) });
  tz('rebuild-no-args', 'torch weights_only: wrong argument count', (p) => p.orderedDict([['w', (q) => q.global('torch._utils', '_rebuild_tensor_v2').op(OP.EMPTY_TUPLE, OP.REDUCE)]]));
  tz('rebuild-tensor-hooks', 'torch: backward hooks in _rebuild_tensor_v2', (p) => p.orderedDict([['w', (q) => {
    q.global('torch._utils', '_rebuild_tensor_v2').tuple((r) => r.storage('FloatStorage', '0', 4), (r) => r.int(0), (r) => r.tuple((s) => s.int(4)), (r) => r.tuple((s) => s.int(1)), (r) => r.op(OP.NEWTRUE),
      (r) => r.global('collections', 'OrderedDict').op(OP.EMPTY_TUPLE, OP.REDUCE).int(1).global('os', 'system').op(OP.SETITEM)).op(OP.REDUCE);
  }]]), { 0: f32(4) });
  tz('parameter-of-string', 'torch weights_only: Parameter of a non-tensor', (p) => p.orderedDict([['w', (q) => q.global('torch._utils', '_rebuild_parameter').tuple((r) => r.str('x'), (r) => r.op(OP.NEWTRUE), (r) => r.global('collections', 'OrderedDict').op(OP.EMPTY_TUPLE, OP.REDUCE)).op(OP.REDUCE)]]));
  tz('device-evil', "issue 14: torch.device('evil')", (p) => p.dict([['state_dict', (q) => validStateDict(q)], ['device', (q) => q.global('torch', 'device').str('evil').op(OP.TUPLE1, OP.REDUCE)]]), VALID_STORAGES);
  tz('codecs-encode-u0100', "issue 14: _codecs.encode('\\u0100', 'latin1')", (p) => p.dict([['state_dict', (q) => validStateDict(q)], ['b', (q) => q.global('_codecs', 'encode').str('\u0100').str('latin1').op(OP.TUPLE2, OP.REDUCE)]]), VALID_STORAGES);
  tz('codecs-encode-evil-codec', 'torch weights_only: _codecs.encode with another codec', (p) => p.dict([['b', (q) => q.global('_codecs', 'encode').str('x').str('rot13').op(OP.TUPLE2, OP.REDUCE)]]));
  tz('bare-storage-value', 'issue 14: a bare storage as a wrapper value', (p) => p.dict([['state_dict', (q) => validStateDict(q)], ['s', (q) => q.storage('FloatStorage', '0', 6)]]), VALID_STORAGES);
  tz('uncalled-storage-class', 'issue 14: an uncalled global as a wrapper value', (p) => p.dict([['state_dict', (q) => validStateDict(q)], ['cls', (q) => q.global('torch', 'FloatStorage')]]), VALID_STORAGES);
  tz('rebuild-from-type-nested-20k', 'issue 14: _rebuild_from_type_v2 nested 20k deep', (p) => {
    const n = 20_000;
    p.op(OP.EMPTY_DICT, OP.MARK).str('w');
    for (let i = 0; i < n; i++) p.global('torch._tensor', '_rebuild_from_type_v2').op(OP.MARK);
    p.floatTensor('0', 2);
    for (let i = 0; i < n; i++) p.global('torch', 'Tensor').op(OP.EMPTY_TUPLE, OP.EMPTY_DICT, OP.TUPLE, OP.REDUCE);
    return p.op(OP.SETITEMS);
  }, { 0: f32(2) });
  tz('views-300k', 'issue 14: text inspect of 300k tensors (Math.max spread)', (p) => {
    p.global('collections', 'OrderedDict').op(OP.EMPTY_TUPLE, OP.REDUCE, OP.MARK);
    p.storage('FloatStorage', '0', 4).op(OP.BINPUT, 0, OP.POP);
    for (let i = 0; i < 300_000; i++) {
      p.str(`t${i}`).tensor((q) => q.op(OP.BINGET, 0), 0, [4], [1]);
      if (i % 1000 === 999) p.op(OP.SETITEMS, OP.MARK);
    }
    return p.op(OP.SETITEMS);
  }, { 0: f32(4) });
  for (const [label, key] of [['esc', 'conv.\x1b[2J\x1b[Hweight'], ['c1', 'conv.\u009b2Jweight'], ['newline', 'a\nrepmlp: forged row'], ['bidi', 'x\u202eevil'], ['nul', 'a\u0000b']]) {
    tz(`name-${label}`, 'issue 14: control characters in tensor names', (p) => p.orderedDict([[key, (q) => q.floatTensor('0', 2)]]), { 0: f32(2) });
    tz(`wrapper-key-${label}`, 'issue 14: control characters in wrapper keys', (p) => p.dict([['state_dict', (q) => validStateDict(q)], [key, (q) => q.int(1)]]), VALID_STORAGES);
  }
  tz('prefix-only-keys', 'torch: keys that are just the prefix', (p) => p.orderedDict([['module.', (q) => q.floatTensor('0', 2)]]), { 0: f32(2) });
  tz('duplicate-keys', 'torch: the same key twice', (p) => p.orderedDict([['w', (q) => q.floatTensor('0', 2)], ['w', (q) => q.floatTensor('1', 2)]]), { 0: f32(2), 1: f32(2) });
  tz('non-string-keys', 'torch: int and tuple keys in the state dict', (p) => p.dict([[(q) => q.int(1), (q) => q.floatTensor('0', 2)], [(q) => q.tuple((r) => r.int(1)), (q) => q.floatTensor('1', 2)]]), { 0: f32(2), 1: f32(2) });
  tz('no-tensors', 'torch: a dict without tensors', (p) => p.dict([['epoch', (q) => q.int(3)]]));
  tz('list-root', 'torch: a list as the root', (p) => p.op(OP.EMPTY_LIST, OP.MARK).floatTensor('0', 2).op(OP.APPENDS), { 0: f32(2) });
  tz('tensor-root', 'torch: a bare tensor as the root', (p) => p.floatTensor('0', 2), { 0: f32(2) });

  // --- zip containers (torch test_serialization, fickling polyglots) ------------------------
  const pkl = validPickle(2);
  add('zip-missing-data-pkl', 'torch: zip without data.pkl', zip([{ name: 'archive/version', data: '3\n' }]));
  add('zip-two-top-folders', 'torch: records under two top folders', zip([{ name: 'a/data.pkl', data: pkl }, { name: 'b/data/0', data: VALID_STORAGES[0] }, { name: 'a/version', data: '3\n' }]));
  add('zip-deflated-record', 'torch: compressed record', torchZip(pkl, VALID_STORAGES, { record: { 0: { method: 8 } } }));
  add('zip-size-lies', 'torch: record size unlike its data', torchZip(pkl, VALID_STORAGES, { record: { 0: { size: 1 << 30 } } }));
  add('zip-crc-wrong', 'torch: wrong CRC (not checked on read, like torch)', torchZip(pkl, VALID_STORAGES, { record: { 0: { crc: 1 } } }));
  add('zip-byteorder-big', 'torch test_serialization: big-endian byteorder record', torchZip(pkl, VALID_STORAGES, { byteorder: 'big' }));
  add('zip-version-99', 'torch: unknown archive version', torchZip(pkl, VALID_STORAGES, { version: '99\n' }));
  add('zip-cd-offset-past-end', 'zip: central directory offset beyond the file', torchZip(pkl, VALID_STORAGES, { zip: { cdOffset: 0x7fffffff } }));
  add('zip-count-lies', 'zip: entry count larger than the directory', torchZip(pkl, VALID_STORAGES, { zip: { count: 60000 } }));
  add('zip-cd-size-lies', 'zip: directory size past the file', torchZip(pkl, VALID_STORAGES, { zip: { cdSize: 0x7fffffff } }));
  add('zip-dotdot-names', 'zip slip: ../ in record names', zip([{ name: 'archive/data.pkl', data: pkl }, { name: 'archive/data/../../../etc/0', data: VALID_STORAGES[0] }, { name: 'archive/version', data: '3\n' }]));
  add('zip-duplicate-names', 'zip: the same record twice', zip([{ name: 'archive/data.pkl', data: pkl }, { name: 'archive/data.pkl', data: new Pickle(2).global('os', 'system').stop() }, { name: 'archive/version', data: '3\n' }]));
  add('zip-comment-64k', 'zip: maximal comment', torchZip(pkl, VALID_STORAGES, { zip: { comment: 'x'.repeat(65535) } }));
  const z = torchZip(pkl, VALID_STORAGES);
  for (let i = 1; i <= 12; i++) {
    const cut = Math.floor((z.length * i) / 13);
    add(`zip-truncated-${String(i).padStart(2, '0')}`, 'torch test_serialization: truncated files', z.subarray(0, cut));
  }
  add('polyglot-legacy-magic-then-zip', 'fickling polyglot: a pickle that is also a zip', new Bytes().bytes(new Pickle(2).int(0x1950a86a20f9469cfc6cn).stop()).bytes(z).done());
  add('polyglot-zip-inside-pickle', 'fickling polyglot: zip bytes inside a BINBYTES', new Pickle(3).op(OP.BINBYTES).raw(new Bytes().u32(z.length).done()).raw(z).op(OP.STOP).done());
  add('not-a-checkpoint-text', 'fuzz: plain text', new TextEncoder().encode('hello, this is not a checkpoint\n'), 'pth');
  add('not-a-checkpoint-zeros', 'fuzz: zeros', new Uint8Array(4096), 'pth');

  // --- legacy container ----------------------------------------------------------------------
  add('legacy-magic-wrong', 'torch: legacy magic number', legacy(pkl, [], { magic: 12345 }));
  add('legacy-protocol-wrong', 'torch: legacy protocol version', legacy(pkl, [], { protocol: 1000 }));
  add('legacy-big-endian', 'torch: legacy sys_info big-endian', legacy(pkl, [], { bigEndian: true }));
  add('legacy-count-huge', 'issue 12/14: a lying legacy int64 count', legacy(validStateDict(new Pickle(2)).stop(), [{ key: '0', data: VALID_STORAGES[0], numel: 4254413747647032608n }, { key: '1', data: VALID_STORAGES[1] }]));
  add('legacy-missing-storage', 'torch: legacy storage key listed, bytes missing', legacy(validStateDict(new Pickle(2)).stop(), [{ key: '0', data: VALID_STORAGES[0] }]));
  add('legacy-truncated', 'torch: legacy truncated', legacy(validStateDict(new Pickle(2)).stop(), [{ key: '0', data: VALID_STORAGES[0] }, { key: '1', data: VALID_STORAGES[1] }]).subarray(0, 300));

  // --- safetensors (tensor.rs tests, attacks/) ----------------------------------------------
  const st = (name, src, header, data = new Uint8Array(0), o = {}) => add(name, src, safetensors(header, data, o), 'safetensors');
  const T = (entries, meta) => JSON.stringify({ ...(meta ? { __metadata__: meta } : {}), ...entries });
  const d16 = f32(4);
  st('st-valid', 'safetensors: a valid file', T({ a: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 16] } }), d16);
  st('st-header-past-file', 'safetensors attacks/safetensors_abuse_attempt_1: header length past the file', T({ a: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 16] } }), d16, { length: 1000 });
  st('st-header-2^64-1', 'safetensors: absurd header length', '{}', new Uint8Array(0), { length: (1n << 64n) - 1n });
  st('st-header-zero', 'safetensors: empty header', '', new Uint8Array(0), { length: 0 });
  st('st-header-not-json', 'safetensors tests: invalid JSON', '{"a": ');
  st('st-header-array', 'safetensors tests: JSON array header', '[1, 2]');
  st('st-header-not-utf8', 'safetensors tests: invalid UTF-8', '{"\udc80": 1}');
  st('st-dtype-unknown', 'safetensors tests: unknown dtype', T({ a: { dtype: 'F99', shape: [4], data_offsets: [0, 16] } }), d16);
  st('st-dtype-lowercase', 'safetensors tests: dtype case', T({ a: { dtype: 'f32', shape: [4], data_offsets: [0, 16] } }), d16);
  st('st-shape-negative', 'safetensors tests: negative shape', T({ a: { dtype: 'F32', shape: [-4], data_offsets: [0, 16] } }), d16);
  st('st-shape-float', 'issue 14 parity: shape written as 2.0', '{"a": {"dtype": "F32", "shape": [2.0, 2], "data_offsets": [0, 16]}}', d16);
  st('st-offsets-float', 'issue 14 parity: offsets written as 16.0', '{"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16.0]}}', d16);
  st('st-offsets-reversed', 'safetensors tests: InvalidOffset', T({ a: { dtype: 'F32', shape: [4], data_offsets: [16, 0] } }), d16);
  st('st-offsets-overlap', 'safetensors tests: InvalidOffset (overlap)', T({ a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] }, b: { dtype: 'F32', shape: [2], data_offsets: [8, 16] } }), d16);
  st('st-offsets-gap', 'safetensors tests: InvalidOffset (gap)', T({ a: { dtype: 'F32', shape: [2], data_offsets: [8, 16] } }), d16);
  st('st-offsets-past-data', 'safetensors tests: offsets past the buffer', T({ a: { dtype: 'F32', shape: [4], data_offsets: [0, 1 << 30] } }), d16);
  st('st-trailing-bytes', 'safetensors tests: data longer than the tensors', T({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }), d16);
  st('st-size-mismatch', 'safetensors tests: TensorInvalidInfo', T({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 16] } }), d16);
  st('st-shape-overflow', 'safetensors tests: ValidationOverflow', T({ a: { dtype: 'F32', shape: [2 ** 40, 2 ** 40], data_offsets: [0, 16] } }), d16);
  st('st-metadata-not-string', 'safetensors tests: metadata values must be strings', T({ a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, { epoch: 3 }), d16);
  st('st-metadata-nested-200', 'issue 14 parity: JSON nested past depth 128', `{"__metadata__": {"x": "y"}, "a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16], "z": ${'['.repeat(200)}${']'.repeat(200)}}}`, d16);
  st('st-leading-spaces', 'issue 14 parity: header padded with leading spaces (the reference accepts)', '   ' + T({ a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }), d16);
  st('st-trailing-spaces', 'safetensors: header padded with trailing spaces (8-byte alignment)', T({ a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }) + '      ', d16);
  st('st-duplicate-keys', 'safetensors tests: the same name twice', '{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "a": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}}', d16);
  st('st-proto-name', 'prototype pollution: __proto__ as a tensor name', '{"__proto__": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}', d16);
  st('st-name-esc', 'issue 14: ESC in a tensor name', T({ 'a\u001b[2J': { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }), d16);
  st('st-name-c1', 'issue 14: C1 CSI in a tensor name', T({ 'a\u009b2J': { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }), d16);
  st('st-zero-size', 'safetensors tests: zero-sized tensors', T({ a: { dtype: 'F32', shape: [0, 4], data_offsets: [0, 0] }, b: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }), d16);
  st('st-extra-field', 'safetensors tests: unknown field in an entry', T({ a: { dtype: 'F32', shape: [4], data_offsets: [0, 16], evil: 'x' } }), d16);
  {
    const n = 200_000;
    const parts = [];
    for (let i = 0; i < n; i++) parts.push(`"t${i}": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}`);
    st('st-overlapping-200k', 'issue 14: a header of many overlapping entries (safetensors attacks/, scaled down)', `{${parts.join(', ')}}`, d16);
  }

  // --- big tier (REPMLP_HOSTILE_BIG=1 / --big): the sizes issue 14 measured ----------------
  if (opts.big) {
    small('memo-16.8M', 'issue 14: 16.8M memo entries (Map maximum size)', (p) => {
      for (let i = 0; i < 16_800_000; i++) p.op(OP.NONE, OP.LONG_BINPUT).raw(new Bytes().u32(i).done()).op(OP.POP);
      return p.op(OP.NONE, OP.STOP);
    });
    small('dict-20M-keys', 'issue 14: a 20M-key dict (Map maximum size)', (p) => {
      p.op(OP.EMPTY_DICT, OP.MARK);
      for (let i = 0; i < 20_000_000; i++) p.op(OP.BININT).raw(new Bytes().i32(i).done()).op(OP.NONE);
      return p.op(OP.SETITEMS, OP.STOP);
    });
    const n = 1_460_000;
    const parts = [];
    for (let i = 0; i < n; i++) parts.push(`"t${i}": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}`);
    st('st-overlapping-1.46M', 'issue 14: 1.46M overlapping safetensors entries', `{${parts.join(', ')}}`, d16);
  }
  return out;
}

export { crc32 };
