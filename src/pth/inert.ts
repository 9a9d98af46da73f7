/**
 * Globals outside the tensor allow-list: which are refused by name (the denylist), and
 * which known value types are read as values (numpy scalars, arrays and dtypes,
 * argparse.Namespace, yacs CfgNode, omegaconf DictConfig). Everything else is kept as
 * an inert PyObject: nothing a file names is ever imported or called here, so a
 * placeholder is data, never behaviour.
 */
import { DTYPES, type DType } from '../dtype.js';
import { Storage, Tensor, contiguousStrides, halfToFloat } from '../tensor.js';
import { PyDict, PyObject, PyTuple, type PyKey, type PyValue } from './pyobj.js';

/**
 * Globals only an attack uses: code execution, processes, files, network, imports and
 * pickle-loading callables. '*' refuses every name in the module and its submodules.
 * Our own table, written from the lists two scanners maintain (picklescan,
 * src/picklescan/scanner.py `_unsafe_globals`; modelscan, modelscan/settings.py
 * `unsafe_globals`), plus the loaders of other pickle formats and torch's own loaders.
 * `builtins` is handled separately: only its value types are accepted (SAFE_BUILTINS).
 */
const DENY: ReadonlyMap<string, '*' | readonly string[]> = new Map<string, '*' | readonly string[]>([
  // processes, the OS and the interpreter
  ['os', '*'], ['posix', '*'], ['nt', '*'], ['sys', '*'], ['subprocess', '*'], ['commands', '*'], ['pty', '*'],
  ['runpy', '*'], ['code', '*'], ['codeop', '*'], ['ctypes', '*'], ['_ctypes', '*'], ['multiprocessing', '*'],
  ['signal', '*'], ['_thread', '*'], ['threading', '*'], ['gc', '*'], ['inspect', '*'], ['types', '*'],
  ['marshal', '*'], ['imp', '*'], ['importlib', '*'], ['pkgutil', '*'], ['zipimport', '*'], ['site', '*'],
  ['bdb', '*'], ['pdb', '*'], ['trace', '*'], ['timeit', '*'], ['profile', '*'], ['cProfile', '*'], ['doctest', '*'],
  ['pydoc', '*'], ['idlelib', '*'], ['lib2to3', '*'], ['ensurepip', '*'], ['pip', '*'], ['venv', '*'],
  ['distutils', '*'], ['setuptools', '*'], ['asyncio', '*'],
  // files
  ['io', '*'], ['_io', '*'], ['shutil', '*'], ['tempfile', '*'], ['glob', '*'], ['fileinput', '*'], ['pathlib', '*'],
  ['posixpath', '*'], ['ntpath', '*'], ['tarfile', '*'], ['zipfile', '*'], ['shelve', '*'], ['dbm', '*'], ['linecache', '*'],
  // network
  ['socket', '*'], ['_socket', '*'], ['ssl', '*'], ['http', '*'], ['httplib', '*'], ['urllib', '*'], ['urllib2', '*'],
  ['ftplib', '*'], ['smtplib', '*'], ['telnetlib', '*'], ['xmlrpc', '*'], ['webbrowser', '*'], ['requests', '*'],
  ['aiohttp', '*'], ['socketserver', '*'],
  // pickle loaders (a pickle inside the pickle) and call forwarders
  ['pickle', '*'], ['_pickle', '*'], ['cPickle', '*'], ['dill', '*'], ['cloudpickle', '*'], ['joblib', '*'],
  ['copyreg', ['__newobj__', '__newobj_ex__', 'add_extension', 'pickle', 'constructor']],
  ['functools', ['partial', 'reduce', 'partialmethod', 'wraps', 'update_wrapper', 'singledispatch']],
  ['operator', '*'], ['_operator', '*'], ['builtins', '*'],
  ['numpy', ['load', 'loads', 'fromfile', 'loadtxt', 'genfromtxt', 'save', 'savez', 'memmap']],
  ['numpy.f2py', '*'], ['numpy.testing', '*'], ['numpy.ctypeslib', '*'], ['numpy.distutils', '*'], ['numpy.lib.npyio', '*'],
  ['numpy.lib.format', '*'], ['pandas', ['read_pickle', 'read_csv', 'eval']], ['pandas.io', '*'],
  ['sympy', ['lambdify', 'sympify', 'parse_expr']],
  // torch's own loaders, compilers and code paths (picklescan lists several)
  ['torch', ['load', 'save', 'compile', 'from_file']], ['torch.serialization', '*'], ['torch.hub', '*'],
  ['torch.jit', '*'], ['torch.package', '*'], ['torch._dynamo', '*'], ['torch._inductor', '*'], ['torch.fx', '*'],
  ['torch.utils', ['_config_module', 'bottleneck', 'collect_env', 'cpp_extension', 'data', 'model_zoo', 'checkpoint']],
  ['torch.storage', '*'], ['torch._C', '*'], ['torch._ops', '*'], ['torch.ops', '*'], ['torch.library', '*'],
]);

/** The builtins that are plain value types; any other builtin (eval, getattr, open, ...) is refused. */
const SAFE_BUILTINS = new Set(['set', 'frozenset', 'bytearray', 'complex', 'slice', 'range', 'int', 'float', 'str', 'bytes', 'bool', 'dict', 'list', 'tuple', 'object', 'Ellipsis', 'NotImplemented']);

/**
 * torch names outside the allow-list that are not tensors or storages: module classes
 * (a pickled nn.Module) and references to functional ops. Kept inert. Every other torch
 * global is held to the exact allow-list (tensors and storages are rebuilt only by it).
 */
const TORCH_INERT = ['torch.nn.modules.', 'torch.nn.parallel.', 'torch.nn.functional.', 'torch.nn.utils.', 'torch.nn.init.', 'torch.optim.', 'torch.ao.nn.', 'torch.cuda.amp.grad_scaler.', 'torch.amp.grad_scaler.'];
/** Exact torch names kept inert although their module is denied: torch.compile's wrapper module. */
const TORCH_INERT_NAMES = new Set(['torch._dynamo.eval_frame.OptimizedModule']);

/** Python 2 names that pickle protocol <= 2 writes, mapped as Python's unpickler (and torch's) map them. */
const IMPORT_MAPPING = new Map([['__builtin__', 'builtins'], ['copy_reg', 'copyreg'], ['exceptions', 'builtins'], ['UserDict', 'collections'], ['cPickle', 'pickle']]);
const NAME_MAPPING = new Map([['__builtin__.xrange', 'builtins.range'], ['__builtin__.unicode', 'builtins.str'], ['__builtin__.long', 'builtins.int'], ['__builtin__.basestring', 'builtins.str'], ['__builtin__.reduce', 'functools.reduce'], ['__builtin__.intern', 'sys.intern'], ['UserDict.UserDict', 'collections.UserDict']]);

/** `module.name` as Python 3 reads a protocol-2 GLOBAL (`__builtin__.set` -> `builtins.set`). */
export function mapGlobal(module: string, name: string): string {
  const q = `${module}.${name}`;
  const n = NAME_MAPPING.get(q);
  if (n !== undefined) return n;
  const m = IMPORT_MAPPING.get(module);
  return m !== undefined ? `${m}.${name}` : q;
}

/** Why `q` is refused outright (whatever the mode), or null when it may be kept inert. */
export function denied(q: string): string | null {
  if (TORCH_INERT_NAMES.has(q)) return null;
  const parts = q.split('.');
  for (let i = parts.length - 1; i >= 1; i--) {
    const mod = parts.slice(0, i).join('.');
    const rule = DENY.get(mod);
    if (rule === undefined) continue;
    const name = parts.slice(i).join('.');
    if (mod === 'builtins' && SAFE_BUILTINS.has(name)) return null;
    if (rule === '*' || rule.includes(name) || rule.includes(parts[i]!)) return 'only an attack uses it (code execution, processes, files, network, imports or pickle loading); see docs/safety.md';
  }
  if (q.startsWith('torch.') && !TORCH_INERT.some((p) => q.startsWith(p))) return "not in the tensor allow-list (torch globals are held to torch's weights_only set)";
  return null;
}

// ---------------------------------------------------------------------------------------
// Known value types: what REDUCE / NEWOBJ and BUILD make of them.

const NUMPY_SCALAR = new Set(['numpy.core.multiarray.scalar', 'numpy._core.multiarray.scalar']);
const NUMPY_RECONSTRUCT = new Set(['numpy.core.multiarray._reconstruct', 'numpy._core.multiarray._reconstruct']);

/** numpy dtype codes ('f8', '<f4', 'b1') -> ours, with numpy's type name. */
const NUMPY_DTYPES = new Map<string, { dtype: DType | null; name: string; size: number }>([
  ['f8', { dtype: 'float64', name: 'float64', size: 8 }], ['f4', { dtype: 'float32', name: 'float32', size: 4 }],
  ['f2', { dtype: 'float16', name: 'float16', size: 2 }], ['i8', { dtype: 'int64', name: 'int64', size: 8 }],
  ['i4', { dtype: 'int32', name: 'int32', size: 4 }], ['i2', { dtype: 'int16', name: 'int16', size: 2 }],
  ['i1', { dtype: 'int8', name: 'int8', size: 1 }], ['u1', { dtype: 'uint8', name: 'uint8', size: 1 }],
  ['b1', { dtype: 'bool', name: 'bool_', size: 1 }], ['u2', { dtype: null, name: 'uint16', size: 2 }],
  ['u4', { dtype: null, name: 'uint32', size: 4 }], ['u8', { dtype: null, name: 'uint64', size: 8 }],
]);

/** A numpy.dtype placeholder: `value` is numpy's name ('float64'); `bigEndian` from its BUILD state. */
class NumpyDType extends PyObject {
  code = '';
  bigEndian = false;
}

/** dict subclasses training scripts pickle (configs): read as their dict, even when empty. */
const DICT_TYPES = new Set([
  'yacs.config.CfgNode', 'collections.defaultdict', 'easydict.EasyDict', 'addict.addict.Dict', 'addict.Dict',
  'mmcv.utils.config.ConfigDict', 'mmengine.config.config.ConfigDict', 'lightning_fabric.utilities.data.AttributeDict',
  'pytorch_lightning.utilities.parsing.AttributeDict', 'lightning.fabric.utilities.data.AttributeDict',
]);

/** REDUCE / NEWOBJ of an inert global: a placeholder, or a known value type's value. */
export function inertCall(q: string, args: PyValue[]): PyObject {
  if (q === 'numpy.dtype') {
    const o = new NumpyDType(q, true, args);
    const code = typeof args[0] === 'string' ? args[0] : '';
    o.code = code.replace(/^[<>=|]/, '');
    o.bigEndian = code.startsWith('>');
    o.type = 'numpy.dtype';
    const info = NUMPY_DTYPES.get(o.code);
    if (info) o.value = info.name;
    return o;
  }
  const o = new PyObject(q, true, args);
  if (NUMPY_SCALAR.has(q)) numpyScalar(o, args);
  else if (NUMPY_RECONSTRUCT.has(q)) o.type = 'numpy.ndarray';
  else if (q === 'copyreg._reconstructor' && args[0] instanceof PyObject) o.type = args[0].global;
  if (DICT_TYPES.has(o.type)) o.value = o.dictItems = new PyDict();
  return o;
}

function numpyScalar(o: PyObject, args: PyValue[]): void {
  const [dt, data] = args;
  if (!(dt instanceof NumpyDType) || !(data instanceof Uint8Array)) return;
  const info = NUMPY_DTYPES.get(dt.code);
  if (!info) return;
  o.type = `numpy.${info.name}`;
  if (data.length !== info.size) return;
  const b = dt.bigEndian ? data.slice().reverse() : data;
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  switch (dt.code) {
    case 'f8': o.value = v.getFloat64(0, true); break;
    case 'f4': o.value = v.getFloat32(0, true); break;
    case 'f2': o.value = halfToFloat(v.getUint16(0, true)); break;
    case 'i8': o.value = v.getBigInt64(0, true); break;
    case 'u8': o.value = v.getBigUint64(0, true); break;
    case 'i4': o.value = BigInt(v.getInt32(0, true)); break;
    case 'u4': o.value = BigInt(v.getUint32(0, true)); break;
    case 'i2': o.value = BigInt(v.getInt16(0, true)); break;
    case 'u2': o.value = BigInt(v.getUint16(0, true)); break;
    case 'i1': o.value = BigInt(v.getInt8(0)); break;
    case 'u1': o.value = BigInt(v.getUint8(0)); break;
    case 'b1': o.value = v.getUint8(0) !== 0; break;
  }
}

/** BUILD on a placeholder: keeps the state; known value types compute their value from it. */
export function inertBuild(o: PyObject, state: PyValue): void {
  o.state = state;
  if (o instanceof NumpyDType) {
    // (version, byteorder, subarray, names, fields, elsize, alignment, flags)
    if (state instanceof PyTuple && typeof state.items[1] === 'string') o.bigEndian = state.items[1] === '>';
    return;
  }
  if (o.type === 'numpy.ndarray') return numpyArray(o, state);
  if (o.global === 'argparse.Namespace' && state instanceof PyDict) o.value = state;
  else if (o.global.startsWith('omegaconf.') && state instanceof PyDict) omegaconfValue(o, state);
}

let arrayCount = 0;

/** ndarray BUILD state (version, shape, dtype, is_fortran, data): a Tensor when the dtype is one of ours. */
function numpyArray(o: PyObject, state: PyValue): void {
  if (!(state instanceof PyTuple) || state.items.length !== 5) return;
  const [, shapeV, dt, fortran, data] = state.items;
  if (!(shapeV instanceof PyTuple) || !(dt instanceof NumpyDType) || !(data instanceof Uint8Array)) return;
  const info = NUMPY_DTYPES.get(dt.code);
  o.type = 'numpy.ndarray';
  if (!info?.dtype) return;
  const shape: number[] = [];
  let numel = 1;
  for (const d of shapeV.items) {
    if (typeof d !== 'bigint' || d < 0n || d > 0xffffffffn) return;
    shape.push(Number(d));
    numel *= Number(d);
  }
  if (numel * info.size !== data.length) return;
  let bytes = data;
  if (dt.bigEndian && info.size > 1) {
    bytes = data.slice();
    for (let i = 0; i < bytes.length; i += info.size) bytes.subarray(i, i + info.size).reverse();
  }
  // Fortran order: the same bytes, column-major strides.
  const strides = fortran === true ? contiguousStrides([...shape].reverse()).reverse() : contiguousStrides(shape);
  const storage = new Storage(info.dtype, numel, bytes, `numpy${arrayCount++}`);
  o.value = new Tensor(storage, shape, strides, 0);
}

/** omegaconf's DictConfig / ListConfig keep their content in `_content`, each value in a node's `_val`. */
function omegaconfValue(o: PyObject, state: PyDict): void {
  const content = state.map.get('_content');
  const val = (v: PyValue): PyValue => {
    if (v instanceof PyObject && v.global.startsWith('omegaconf.nodes.') && v.state instanceof PyDict) return v.state.map.get('_val') ?? null;
    return v;
  };
  if (content instanceof PyDict) {
    const m = new Map<PyKey, PyValue>();
    for (const [k, v] of content.map) m.set(k, val(v));
    o.value = new PyDict(m);
  } else if (Array.isArray(content)) o.value = content.map(val);
}

/** SETITEM(S) on a placeholder (a dict subclass such as CfgNode): its dict, which is also its value. */
export function inertSetItem(o: PyObject, k: PyKey, v: PyValue): void {
  if (!o.dictItems) {
    o.dictItems = new PyDict();
    if (o.value === undefined) o.value = o.dictItems;
  }
  o.dictItems.map.set(k, v);
}

/** APPEND(S) on a placeholder (a list subclass). */
export function inertAppend(o: PyObject, v: PyValue): void {
  if (!o.listItems) {
    o.listItems = [];
    if (o.value === undefined) o.value = o.listItems;
  }
  o.listItems.push(v);
}

export { DTYPES };
