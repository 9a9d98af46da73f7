/**
 * A safe unpickler for torch checkpoints. Tensors and storages are rebuilt only by an
 * allow-list of torch's weights_only globals. Any other global is either refused by name
 * (the denylist of src/pth/inert.ts: posix.system, builtins.eval, ...) or kept as an
 * inert PyObject placeholder: nothing is imported or called. With `strictGlobals`, every
 * global outside the allow-list is refused, as torch.load(weights_only=True) does. Dicts
 * are Maps, so keys such as `__proto__` stay plain keys. Iterative: deep nesting cannot
 * overflow the JS stack.
 */
import { RepmlpError } from '../errors.js';
import { DTYPES, DTYPE_BY_STORAGE, type DType, isDType } from '../dtype.js';
import { Storage, Tensor, TensorError } from '../tensor.js';
import { PyDict, PyObject, PyOther, PyTuple, type PyKey, type PyValue } from './pyobj.js';
import { denied, inertAppend, inertBuild, inertCall, inertSetItem, mapGlobal } from './inert.js';

export class PickleError extends RepmlpError {
  override name = 'PickleError';
}

/** The data ended inside a pickle: the legacy reader then reads more of the file. */
export class PickleTruncatedError extends PickleError {
  override name = 'PickleTruncatedError';
}

/** Opcodes by name (pickletools); every one not listed here is refused. */
export const OP = {
  MARK: 0x28, STOP: 0x2e, POP: 0x30, POP_MARK: 0x31, DUP: 0x32,
  BININT: 0x4a, BININT1: 0x4b, BININT2: 0x4d, LONG1: 0x8a, LONG4: 0x8b,
  BINFLOAT: 0x47, NONE: 0x4e, NEWTRUE: 0x88, NEWFALSE: 0x89,
  BINSTRING: 0x54, SHORT_BINSTRING: 0x55, BINUNICODE: 0x58, SHORT_BINUNICODE: 0x8c, BINUNICODE8: 0x8d,
  BINBYTES: 0x42, SHORT_BINBYTES: 0x43, BINBYTES8: 0x8e,
  EMPTY_LIST: 0x5d, APPEND: 0x61, APPENDS: 0x65, LIST: 0x6c,
  EMPTY_TUPLE: 0x29, TUPLE: 0x74, TUPLE1: 0x85, TUPLE2: 0x86, TUPLE3: 0x87,
  EMPTY_DICT: 0x7d, DICT: 0x64, SETITEM: 0x73, SETITEMS: 0x75,
  EMPTY_SET: 0x8f, ADDITEMS: 0x90, FROZENSET: 0x91,
  GLOBAL: 0x63, STACK_GLOBAL: 0x93, REDUCE: 0x52, NEWOBJ: 0x81, BUILD: 0x62,
  BINPERSID: 0x51, BINGET: 0x68, LONG_BINGET: 0x6a, BINPUT: 0x71, LONG_BINPUT: 0x72, MEMOIZE: 0x94,
  PROTO: 0x80, FRAME: 0x95,
} as const;

const OP_NAME = new Map<number, string>(Object.entries(OP).map(([k, v]) => [v, k]));

/** Limits that keep a hostile file from exhausting memory or time. */
const MAX_STACK = 1 << 22;
const MAX_MARK_DEPTH = 1000;
/** Memo entries, dict / list / set sizes: JS Maps hold at most 2^24 entries, and a real checkpoint needs far fewer. */
export const MAX_MEMO = 1 << 22;
export const MAX_CONTAINER = 1 << 22;
/** Tensors in one pickle (a 300k-tensor checkpoint reads fine). */
export const MAX_TENSORS = 1 << 21;
/** Nested _rebuild_from_type_v2 calls (Python's own recursion limit). */
const MAX_REBUILD_NESTING = 1000;

/** A torch storage class such as torch.FloatStorage, as named in persistent ids. */
export class StorageType {
  constructor(readonly dtype: DType | 'untyped') {}
}

/** An allowed global: a function or class the file may call through REDUCE / NEWOBJ. */
class Callable {
  constructor(
    readonly qualname: string,
    readonly call: (args: Value[]) => Value,
  ) {}
}

type Mark = { readonly mark: true };
type Value = PyValue | Storage | StorageType | Callable;

export interface UnpickleOptions {
  /** Resolves a BINPERSID id (the zip/legacy storage tuple) to a Storage. */
  persistentLoad?: (pid: PyValue) => Storage | PyValue;
  /** Where in `bytes` this pickle starts (legacy files hold several). */
  start?: number;
  /** For messages, e.g. 'model.pth: data.pkl'. */
  where?: string;
  /** Refuse every global outside torch's weights_only allow-list (no inert placeholders). */
  strictGlobals?: boolean;
  /** Collects the qualified names of the globals kept inert (outside the allow-list). */
  inertGlobals?: Set<string>;
  /** Lower limits than the defaults (tests). */
  limits?: { memo?: number; container?: number; tensors?: number };
}

export interface UnpickleResult {
  value: PyValue;
  /** Offset just after STOP. */
  end: number;
}

// ---------------------------------------------------------------------------
// The allow-list: torch's weights_only globals, each with what it builds here. How it
// differs from torch 1.13's and 2.x's, name by name: docs/safety.md ("The allow-list
// against torch's, per torch version"). Names outside it: src/pth/inert.ts.

function toInt(v: Value, what: string): number {
  if (typeof v !== 'bigint' || v < 0n || v > BigInt(Number.MAX_SAFE_INTEGER)) throw new PickleError(`${what}: expected a non-negative int, got ${describe(v)}`);
  return Number(v);
}

function intTuple(v: Value, what: string): number[] {
  if (!(v instanceof PyTuple)) throw new PickleError(`${what}: expected a tuple of ints, got ${describe(v)}`);
  return v.items.map((x, i) => toInt(x, `${what}[${i}]`));
}

/**
 * An untyped storage read as `dtype` (_rebuild_tensor_v3), one per (storage, dtype): the
 * tensors sharing an UntypedStorage share the result, so a write keeps them shared.
 */
const retyped = new WeakMap<Storage, Map<DType, Storage>>();

function retype(storage: Storage, dtype: DType, name: string): Storage {
  let byType = retyped.get(storage);
  if (!byType) retyped.set(storage, (byType = new Map()));
  let st = byType.get(dtype);
  if (!st) {
    const item = DTYPES.get(dtype)!.itemSize;
    if (storage.byteLength % item) throw new PickleError(`${name}: storage of ${storage.byteLength} bytes cannot hold ${dtype}`);
    st = new Storage(dtype, storage.byteLength / item, () => storage.bytes(), storage.key, storage.device);
    // The same bytes: a writer may still copy them from the file, CRC and all.
    if (storage.sourceRegion) st.sourceRegion = storage.sourceRegion;
    if (storage.sourceCrc32 !== undefined) st.sourceCrc32 = storage.sourceCrc32;
    byType.set(dtype, st);
  }
  return st;
}

function rebuildTensor(args: Value[], name: string, dtypeOverride?: DType): Tensor {
  const [storage, offset, size, stride, requiresGrad] = args;
  if (!(storage instanceof Storage)) throw new PickleError(`${name}: first argument must be a storage, got ${describe(storage)}`);
  const st = dtypeOverride && dtypeOverride !== storage.dtype ? retype(storage, dtypeOverride, name) : storage;
  const shape = intTuple(size ?? null, `${name} size`);
  const strides = stride === undefined ? undefined : intTuple(stride, `${name} stride`);
  checkView(shape, strides, name);
  let t: Tensor;
  try {
    t = new Tensor(st, shape, strides, toInt(offset ?? null, `${name} offset`));
  } catch (e) {
    if (e instanceof TensorError) throw new PickleError(`${name}: ${e.message}`);
    throw e;
  }
  t.requiresGrad = requiresGrad === true;
  return t;
}

/**
 * Products of dims checked exactly (BigInt): a hostile size such as [2^40, 2^40] with
 * stride 0 must not pass as a small number, nor the furthest element overflow.
 */
function checkView(shape: number[], stride: number[] | undefined, name: string): void {
  let numel = 1n;
  let span = 0n;
  shape.forEach((d, i) => {
    numel *= BigInt(d);
    if (stride && d > 0) span += BigInt(d - 1) * BigInt(stride[i] ?? 0);
  });
  const max = BigInt(Number.MAX_SAFE_INTEGER);
  if (numel > max || span > max) throw new PickleError(`${name}: size [${shape.join(', ')}] has ${numel} elements, more than any tensor can hold`);
}

function asTensor(v: Value, what: string): Tensor {
  if (!(v instanceof Tensor)) throw new PickleError(`${what}: expected a tensor, got ${describe(v)}`);
  return v;
}

function makeParameter(data: Value, requiresGrad: Value): Tensor {
  const t = asTensor(data, 'Parameter');
  t.isParameter = true;
  t.requiresGrad = requiresGrad !== false;
  return t;
}

const TORCH_DTYPE_NAMES: Record<string, DType> = {
  float32: 'float32', float: 'float32', float64: 'float64', double: 'float64', float16: 'float16', half: 'float16',
  bfloat16: 'bfloat16', int64: 'int64', long: 'int64', int32: 'int32', int: 'int32', int16: 'int16', short: 'int16',
  int8: 'int8', uint8: 'uint8', bool: 'bool',
};

function buildAllowList(): Map<string, Value> {
  const m = new Map<string, Value>();
  const fn = (q: string, f: (a: Value[]) => Value) => m.set(q, new Callable(q, f));
  fn('collections.OrderedDict', (a) => {
    if (a.length) throw new PickleError('collections.OrderedDict: construction with arguments is not supported');
    return new PyDict(new Map(), true);
  });
  fn('torch._utils._rebuild_tensor', (a) => rebuildTensor(a, '_rebuild_tensor'));
  fn('torch._utils._rebuild_tensor_v2', (a) => rebuildTensor(a, '_rebuild_tensor_v2'));
  fn('torch._utils._rebuild_tensor_v3', (a) => {
    const dt = a[6];
    if (!(dt instanceof PyOther) || dt.kind !== 'torch.dtype' || typeof dt.value !== 'string' || !isDType(dt.value)) {
      throw new PickleError(`_rebuild_tensor_v3: unsupported dtype ${describe(dt ?? null)}`);
    }
    return rebuildTensor(a, '_rebuild_tensor_v3', dt.value);
  });
  fn('torch._utils._rebuild_parameter', (a) => makeParameter(a[0] ?? null, a[1] ?? null));
  fn('torch._utils._rebuild_parameter_with_state', (a) => makeParameter(a[0] ?? null, a[1] ?? null));
  fn('torch.nn.parameter.Parameter', (a) => makeParameter(a[0] ?? null, a[1] ?? true));
  fn('torch._tensor._rebuild_from_type_v2', (a) => {
    // _rebuild_from_type_v2(func, type, args, state) calls func(*args); func may be this
    // function again: unwrapped in a loop, not by recursion.
    let items = a;
    for (let depth = 0; ; depth++) {
      const [func, , args] = items;
      if (!(func instanceof Callable) || !(args instanceof PyTuple)) throw new PickleError('_rebuild_from_type_v2: malformed arguments');
      if (func.qualname !== 'torch._tensor._rebuild_from_type_v2') return func.call(args.items as Value[]);
      if (depth >= MAX_REBUILD_NESTING) throw new PickleError(`_rebuild_from_type_v2 nested deeper than ${MAX_REBUILD_NESTING} (the nesting depth limit)`);
      items = args.items as Value[];
    }
  });
  // torch >= 2 names the tensor class as the 2nd argument of _rebuild_from_type_v2;
  // here it is only a marker: calling it is refused.
  fn('torch.Tensor', () => {
    throw new PickleError('torch.Tensor cannot be constructed directly');
  });
  fn('torch.Size', (a) => {
    const t = a[0];
    if (!(t instanceof PyTuple)) throw new PickleError(`torch.Size: expected a tuple, got ${describe(t ?? null)}`);
    return new PyTuple(t.items);
  });
  fn('torch.device', (a) => new PyOther('torch.device', torchDevice(a)));
  fn('_codecs.encode', (a) => {
    const [s, enc] = a;
    if (typeof s !== 'string' || (enc !== 'latin1' && enc !== 'latin-1')) throw new PickleError(`_codecs.encode: only latin1 strings are supported, got ${describe(s ?? null)}`);
    const out = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      // As Python refuses it: a latin-1 byte string holds code points < 256 only.
      if (c > 0xff) throw new PickleError(`_codecs.encode: UnicodeEncodeError: 'latin-1' codec can't encode character '\\u${c.toString(16).padStart(4, '0')}' in position ${i}: ordinal not in range(256)`);
      out[i] = c;
    }
    return out;
  });
  fn('collections.Counter', (a) => {
    const src = a[0];
    if (a.length > 1 || (src !== undefined && !(src instanceof PyDict))) throw new PickleError('collections.Counter: expected a dict argument');
    return new PyDict(new Map(src instanceof PyDict ? src.map : []));
  });
  // set([...]) / frozenset([...]) as protocol 2 pickles them (a list, or a tuple); the
  // items are kept as a list.
  const items = (q: string, v: Value | undefined): PyValue[] => {
    if (v === undefined) return [];
    if (Array.isArray(v)) return v;
    if (v instanceof PyTuple) return [...v.items];
    throw new PickleError(`${q}: expected a list of items, got ${describe(v)}`);
  };
  fn('builtins.set', (a) => new PyOther('set', items('builtins.set', a[0])));
  fn('builtins.frozenset', (a) => new PyOther('frozenset', items('builtins.frozenset', a[0])));
  fn('builtins.bytearray', (a) => {
    const [v, enc] = a;
    if (v === undefined) return new PyOther('bytearray', new Uint8Array());
    if (v instanceof Uint8Array) return new PyOther('bytearray', v);
    // bytearray(str, 'latin-1'), as Python 2 style reducers write it
    if (typeof v === 'string' && (enc === 'latin-1' || enc === 'latin1')) return new PyOther('bytearray', (ALLOWED.get('_codecs.encode') as Callable).call([v, 'latin1']) as Uint8Array);
    throw new PickleError(`builtins.bytearray: expected bytes, got ${describe(v)}`);
  });
  fn('builtins.complex', (a) => new PyOther('complex', new PyTuple(a as PyValue[])));
  fn('torch.serialization._get_layout', (a) => new PyOther('torch.dtype', `layout:${String(a[0])}`));
  for (const info of DTYPES.values()) m.set(`torch.${info.storage}`, new StorageType(info.name));
  m.set('torch.UntypedStorage', new StorageType('untyped'));
  for (const [name, dt] of Object.entries(TORCH_DTYPE_NAMES)) m.set(`torch.${name}`, new PyOther('torch.dtype', dt));
  return m;
}

/** Device types torch accepts at the start of a device string (c10/core/Device.cpp). */
const DEVICE_TYPES = ['cpu', 'cuda', 'ipu', 'xpu', 'mkldnn', 'opengl', 'opencl', 'ideep', 'hip', 've', 'fpga', 'maia', 'xla', 'lazy', 'vulkan', 'mps', 'meta', 'hpu', 'mtia', 'privateuseone'];

/** torch.device(str) or torch.device(type, index), checked as torch checks device strings. */
function torchDevice(a: Value[]): string {
  const [t, index] = a;
  if (typeof t !== 'string' || a.length > 2) throw new PickleError(`torch.device: expected a device string, got ${describe(t)}`);
  const m = /^([a-z_]+)(?::(0|[1-9][0-9]{0,8}))?$/.exec(t);
  if (!m || !DEVICE_TYPES.includes(m[1]!)) {
    throw new PickleError(`torch.device: invalid device string '${t.length > 40 ? t.slice(0, 40) + '...' : t}' (expected one of ${DEVICE_TYPES.join(', ')}, optionally followed by ':N')`);
  }
  if (index === undefined || index === null) return t;
  if (m[2] !== undefined || typeof index !== 'bigint' || index < 0n || index > 0xffffffn) throw new PickleError(`torch.device: invalid device index ${describe(index)} for '${t}'`);
  return `${t}:${index}`;
}

const ALLOWED = buildAllowList();

/**
 * A GLOBAL: an allowed builder; else refused (denylisted, or any global in strict mode);
 * else an inert placeholder for the name, recorded in `inert`.
 */
export function resolveGlobal(module: string, name: string, where: string, strict = false, inert?: Set<string>): Value {
  const q = mapGlobal(module, name);
  const v = ALLOWED.get(q);
  if (v !== undefined) return v;
  if (strict) throw new PickleError(`${where}: refusing global '${q}': not in torch's weights_only allow-list`);
  const why = denied(q);
  if (why !== null) throw new PickleError(`${where}: refusing global '${q}': ${why}`);
  inert?.add(q);
  return new PyObject(q, false);
}

/** Storage class (torch.FloatStorage) for a persistent id; exported for the legacy reader. */
export function storageDType(t: unknown, where: string): DType | 'untyped' {
  if (t instanceof StorageType) return t.dtype;
  throw new PickleError(`${where}: persistent id names ${describe(t as Value)} instead of a storage type`);
}

export { DTYPE_BY_STORAGE };

function describe(v: Value | Mark | undefined): string {
  if (v === null) return 'None';
  if (v === undefined) return 'nothing';
  if (typeof v === 'bigint') return `int ${v}`;
  if (typeof v === 'number') return `float ${v}`;
  if (typeof v === 'string') return `str '${v.length > 40 ? v.slice(0, 40) + '...' : v}'`;
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  if (Array.isArray(v)) return 'list';
  if (v instanceof PyTuple) return 'tuple';
  if (v instanceof PyDict) return v.ordered ? 'OrderedDict' : 'dict';
  if (v instanceof Tensor) return 'tensor';
  if (v instanceof Storage) return 'storage';
  if (v instanceof Callable) return `global ${v.qualname}`;
  if (v instanceof StorageType) return 'storage type';
  if (v instanceof Uint8Array) return 'bytes';
  if (v instanceof PyOther) return v.kind;
  if (v instanceof PyObject) return v.called ? `<pickled ${v.type}>` : `global ${v.global}`;
  return 'mark';
}

// ---------------------------------------------------------------------------
// The machine.

const MARK: Mark = { mark: true };

function hashable(k: Value, where: string): PyKey {
  // A numpy scalar key hashes as its number does in Python.
  if (k instanceof PyObject && k.value !== undefined && (typeof k.value !== 'object' || k.value === null)) return k.value as PyKey;
  if (k === null || typeof k === 'string' || typeof k === 'bigint' || typeof k === 'number' || typeof k === 'boolean' || k instanceof PyTuple) return k;
  throw new PickleError(`${where}: unhashable dict key (${describe(k)})`);
}

export function unpickle(bytes: Uint8Array, opts: UnpickleOptions = {}): UnpickleResult {
  const where = opts.where ?? 'pickle';
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const stack: (Value | Mark)[] = [];
  const marks: number[] = [];
  const memo = new Map<number, Value>();
  const strict = opts.strictGlobals === true;
  const maxMemo = Math.min(MAX_MEMO, opts.limits?.memo ?? MAX_MEMO);
  const maxContainer = Math.min(MAX_CONTAINER, opts.limits?.container ?? MAX_CONTAINER);
  const maxTensors = Math.min(MAX_TENSORS, opts.limits?.tensors ?? MAX_TENSORS);
  let tensors = 0;
  let pos = opts.start ?? 0;

  /** Where the opcode being run starts: errors name the opcode and its offset. */
  let at = opts.start ?? 0;
  const fail = (msg: string): never => {
    const op = bytes[at];
    throw new PickleError(`${where}: ${msg} (${op !== undefined && OP_NAME.has(op) ? `${OP_NAME.get(op)} ` : ''}at byte ${at})`);
  };
  const need = (n: number): void => {
    if (pos + n > bytes.length) throw new PickleTruncatedError(`${where}: truncated: ${n} more bytes needed at byte ${pos}, ${bytes.length - pos} left`);
  };
  const u8 = () => (need(1), bytes[pos++]!);
  const u16 = () => (need(2), (pos += 2), dv.getUint16(pos - 2, true));
  const u32 = () => (need(4), (pos += 4), dv.getUint32(pos - 4, true));
  const i32 = () => (need(4), (pos += 4), dv.getInt32(pos - 4, true));
  const u64 = () => {
    need(8);
    const v = dv.getBigUint64(pos, true);
    pos += 8;
    if (v > BigInt(bytes.length)) fail(`length ${v} exceeds the data`);
    return Number(v);
  };
  const take = (n: number) => (need(n), (pos += n), bytes.subarray(pos - n, pos));
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  const text = (n: number): string => {
    const b = take(n);
    try {
      return utf8.decode(b);
    } catch {
      return fail('invalid UTF-8 in a string');
    }
  };
  const latin1 = (n: number): string => String.fromCharCode(...take(n));
  const line = (): string => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0 || end - pos > 1024) fail('unterminated GLOBAL name');
    const s = latin1(end - pos);
    pos++;
    return s;
  };

  const push = (v: Value | Mark): void => {
    if (stack.length >= MAX_STACK) fail(`stack deeper than ${MAX_STACK}`);
    stack.push(v);
  };
  const pop = (): Value => {
    const v = stack.pop();
    if (v === undefined) return fail('stack underflow');
    if (v === MARK) return fail('unexpected MARK');
    if (marks.length && stack.length < marks[marks.length - 1]!) fail('stack underflow past a MARK');
    return v as Value;
  };
  const top = (): Value => {
    const v = stack[stack.length - 1];
    if (v === undefined || v === MARK) return fail('stack underflow');
    return v as Value;
  };
  const popMark = (): Value[] => {
    const m = marks.pop();
    if (m === undefined) return fail('no MARK on the stack');
    const items = stack.splice(m) as Value[];
    stack.pop(); // the MARK itself
    return items;
  };
  const callValue = (f: Value, args: Value, opName: string): Value => {
    if (f instanceof PyObject && !f.called) {
      if (!(args instanceof PyTuple)) return fail(`${opName} arguments must be a tuple, got ${describe(args)}`);
      // Not called: recorded (the arguments become plain data at STOP).
      const o = inertCall(f.global, args.items);
      if (opName === 'NEWOBJ') o.newobj = true;
      return o;
    }
    if (!(f instanceof Callable)) return fail(`${opName} on ${describe(f)}, which is not callable`);
    if (!(args instanceof PyTuple)) return fail(`${opName} arguments must be a tuple, got ${describe(args)}`);
    try {
      const r = f.call(args.items as Value[]);
      if (r instanceof Tensor && ++tensors > maxTensors) fail(`more than ${maxTensors} tensors (the tensor count limit)`);
      return r;
    } catch (e) {
      // An allowed global refusing its arguments: say where in which file.
      if (e instanceof RepmlpError && !(e instanceof PickleTruncatedError) && !e.message.startsWith(`${where}: `)) fail(e.message);
      throw e;
    }
  };
  const memoGet = (i: number): Value => {
    const v = memo.get(i);
    if (v === undefined) return fail(`memo index ${i} was never stored`);
    return v;
  };
  const sizeCheck = (size: number, adding: number, what: string): void => {
    if (size + adding > maxContainer) fail(`${what} of more than ${maxContainer} items (the ${what} size limit)`);
  };
  const setItems = (d: Value, items: Value[]): void => {
    if (items.length % 2) fail('SETITEMS with an odd number of items');
    if (d instanceof PyObject && d.called) {
      sizeCheck(d.dictItems?.map.size ?? 0, items.length / 2, 'dict');
      for (let i = 0; i < items.length; i += 2) inertSetItem(d, hashable(items[i]!, where), items[i + 1] as PyValue);
      return;
    }
    if (!(d instanceof PyDict)) fail(`SETITEM(S) on ${describe(d)}`);
    const map = (d as PyDict).map;
    sizeCheck(map.size, items.length / 2, 'dict');
    for (let i = 0; i < items.length; i += 2) map.set(hashable(items[i]!, where), items[i + 1] as PyValue);
  };
  const appendItems = (l: Value, items: Value[]): void => {
    if (l instanceof PyObject && l.called) {
      sizeCheck(l.listItems?.length ?? 0, items.length, 'list');
      for (const it of items) inertAppend(l, it as PyValue);
      return;
    }
    if (!Array.isArray(l)) fail(`APPEND(S) on ${describe(l)}`);
    sizeCheck((l as PyValue[]).length, items.length, 'list');
    for (const it of items) (l as PyValue[]).push(it as PyValue);
  };
  const memoSet = (i: number, v: Value): void => {
    if (memo.size >= maxMemo && !memo.has(i)) fail(`memo of more than ${maxMemo} entries (the memo size limit)`);
    memo.set(i, v);
  };
  const pyValue = (v: Value, what: string): PyValue => {
    if (v instanceof Storage || v instanceof StorageType || v instanceof Callable) fail(`${what}: a bare ${describe(v)} cannot be a value`);
    return v as PyValue;
  };

  for (;;) {
    at = pos;
    const op = u8();
    switch (op) {
      case OP.PROTO: {
        const p = u8();
        if (p > 5) fail(`unsupported pickle protocol ${p}`);
        break;
      }
      case OP.FRAME: take(8); break;
      case OP.STOP: {
        if (stack.length !== 1 || marks.length) fail(`STOP with ${stack.length} items on the stack`);
        return { value: plainData(pyValue(pop(), 'result')), end: pos };
      }
      case OP.MARK:
        if (marks.length >= MAX_MARK_DEPTH) fail(`nesting deeper than ${MAX_MARK_DEPTH}`);
        marks.push(stack.length + 1);
        push(MARK);
        break;
      case OP.POP: pop(); break;
      case OP.POP_MARK: popMark(); break;
      case OP.DUP: push(top()); break;
      case OP.NONE: push(null); break;
      case OP.NEWTRUE: push(true); break;
      case OP.NEWFALSE: push(false); break;
      case OP.BININT: push(BigInt(i32())); break;
      case OP.BININT1: push(BigInt(u8())); break;
      case OP.BININT2: push(BigInt(u16())); break;
      case OP.LONG1: push(decodeLong(take(u8()))); break;
      case OP.LONG4: {
        const n = i32();
        if (n < 0 || n > 64) fail(`LONG4 of ${n} bytes`);
        push(decodeLong(take(n)));
        break;
      }
      case OP.BINFLOAT: need(8); push(dv.getFloat64(pos, false)); pos += 8; break;
      case OP.SHORT_BINSTRING: push(latin1(u8())); break;
      case OP.BINSTRING: {
        const n = i32();
        if (n < 0) fail('negative string length');
        push(latin1Chunked(take(n)));
        break;
      }
      case OP.SHORT_BINUNICODE: push(text(u8())); break;
      case OP.BINUNICODE: push(text(u32())); break;
      case OP.BINUNICODE8: push(text(u64())); break;
      case OP.SHORT_BINBYTES: push(new Uint8Array(take(u8()))); break;
      case OP.BINBYTES: push(new Uint8Array(take(u32()))); break;
      case OP.BINBYTES8: push(new Uint8Array(take(u64()))); break;
      case OP.EMPTY_LIST: push([]); break;
      case OP.EMPTY_TUPLE: push(new PyTuple([])); break;
      case OP.EMPTY_DICT: push(new PyDict()); break;
      case OP.EMPTY_SET: push(new PyOther('set', [])); break;
      case OP.LIST: push(popMark() as PyValue[]); break;
      case OP.TUPLE: push(new PyTuple(popMark() as PyValue[])); break;
      case OP.FROZENSET: push(new PyOther('frozenset', popMark() as PyValue[])); break;
      case OP.TUPLE1: { const a = pop(); push(new PyTuple([a as PyValue])); break; }
      case OP.TUPLE2: { const b = pop(); const a = pop(); push(new PyTuple([a, b] as PyValue[])); break; }
      case OP.TUPLE3: { const c = pop(); const b = pop(); const a = pop(); push(new PyTuple([a, b, c] as PyValue[])); break; }
      case OP.DICT: { const items = popMark(); const d = new PyDict(); setItems(d, items); push(d); break; }
      case OP.APPEND: { const v = pop(); appendItems(top(), [v]); break; }
      case OP.APPENDS: { const items = popMark(); appendItems(top(), items); break; }
      case OP.SETITEM: { const v = pop(); const k = pop(); setItems(top(), [k, v]); break; }
      case OP.SETITEMS: { const items = popMark(); setItems(top(), items); break; }
      case OP.ADDITEMS: {
        const items = popMark();
        const s = top();
        if (!(s instanceof PyOther) || s.kind !== 'set' || !Array.isArray(s.value)) fail(`ADDITEMS on ${describe(s)}`);
        const set = (s as PyOther).value as PyValue[];
        sizeCheck(set.length, items.length, 'set');
        for (const it of items) set.push(it as PyValue); // no push(...items): 1M items overflow the call stack
        break;
      }
      case OP.GLOBAL: { const mod = line(); const name = line(); push(resolveGlobal(mod, name, where, strict, opts.inertGlobals)); break; }
      case OP.STACK_GLOBAL: {
        const name = pop();
        const mod = pop();
        if (typeof mod !== 'string' || typeof name !== 'string') fail('STACK_GLOBAL needs two strings');
        push(resolveGlobal(mod as string, name as string, where, strict, opts.inertGlobals));
        break;
      }
      case OP.REDUCE: { const args = pop(); const f = pop(); push(callValue(f, args, 'REDUCE')); break; }
      case OP.NEWOBJ: { const args = pop(); const cls = pop(); push(callValue(cls, args, 'NEWOBJ')); break; }
      case OP.BUILD: {
        const state = pop();
        const inst = top();
        build(inst, state, fail);
        break;
      }
      case OP.BINPERSID: {
        const pid = pop();
        if (!opts.persistentLoad) fail('persistent id in a pickle that allows none');
        push(opts.persistentLoad!(pid as PyValue));
        break;
      }
      case OP.BINGET: push(memoGet(u8())); break;
      case OP.LONG_BINGET: push(memoGet(u32())); break;
      case OP.BINPUT: memoSet(u8(), top()); break;
      case OP.LONG_BINPUT: memoSet(u32(), top()); break;
      case OP.MEMOIZE: memoSet(memo.size, top()); break;
      default:
        fail(`unsupported or forbidden opcode 0x${op.toString(16).padStart(2, '0')}`);
    }
  }
}

/** BUILD: only OrderedDict/dict instance state (torch's `_metadata`) and tensor no-ops. */
function build(inst: Value, state: Value, fail: (m: string) => never): void {
  if (inst instanceof PyDict) {
    if (state === null) return;
    let attrs: PyDict | undefined;
    if (state instanceof PyDict) attrs = state;
    else if (state instanceof PyTuple && state.items.length === 2 && (state.items[0] === null || state.items[0] instanceof PyDict) && state.items[1] instanceof PyDict) {
      attrs = (state.items[1] as PyDict);
    } else fail(`BUILD on a dict with state of type ${describe(state)}`);
    for (const [k, v] of attrs!.map) {
      if (typeof k !== 'string') fail('BUILD state with a non-string attribute name');
      inst.attrs.set(k as string, v);
    }
    return;
  }
  if (inst instanceof PyObject) {
    if (!inst.called) fail(`BUILD on global ${inst.global} is not allowed`);
    return inertBuild(inst, state as PyValue);
  }
  if (inst instanceof Tensor) {
    // _rebuild_parameter_with_state / tensor subclasses carry python attrs; torch
    // allows an empty state only in weights_only mode.
    if (state === null || (state instanceof PyDict && state.map.size === 0) || (state instanceof PyTuple && state.items.every((x) => x === null || (x instanceof PyDict && x.map.size === 0)))) return;
    fail('BUILD with attributes on a tensor is not allowed');
  }
  fail(`BUILD on ${describe(inst)} is not allowed`);
}

/**
 * What the result may hold besides plain data, made plain (in place, iteratively, each
 * object once): a bare storage becomes a placeholder whose value is its 1-D tensor, an
 * allowed builder or storage class named but not called becomes an uncalled global.
 */
function plainData(root: PyValue): PyValue {
  const fix = (v: unknown): PyValue => {
    if (v instanceof Storage) {
      const o = new PyObject(`torch.${DTYPES.get(v.dtype)!.storage}`, true);
      o.value = new Tensor(v, [v.numel]);
      o.storage = v;
      return o;
    }
    if (v instanceof Callable) return new PyObject(v.qualname, false);
    if (v instanceof StorageType) return new PyObject(v.dtype === 'untyped' ? 'torch.UntypedStorage' : `torch.${DTYPES.get(v.dtype)!.storage}`, false);
    return v as PyValue;
  };
  const seen = new Set<object>();
  const todo: PyValue[] = [root];
  const visit = (v: PyValue): void => {
    if (v !== null && typeof v === 'object' && !(v instanceof Uint8Array) && !(v instanceof Tensor) && !seen.has(v)) {
      seen.add(v);
      todo.push(v);
    }
  };
  const fixArray = (a: PyValue[]): void => {
    for (let i = 0; i < a.length; i++) visit((a[i] = fix(a[i])));
  };
  const out = fix(root);
  todo[0] = out;
  while (todo.length) {
    const v = todo.pop()!;
    if (Array.isArray(v)) fixArray(v);
    else if (v instanceof PyTuple) fixArray(v.items);
    else if (v instanceof PyDict) {
      for (const [k, x] of v.map) {
        const y = fix(x);
        if (y !== x) v.map.set(k, y);
        visit(y);
        if (k instanceof PyTuple) visit(k);
      }
      for (const [k, x] of v.attrs) {
        const y = fix(x);
        if (y !== x) v.attrs.set(k, y);
        visit(y);
      }
    } else if (v instanceof PyOther) {
      if (Array.isArray(v.value) || v.value instanceof PyTuple) visit(v.value);
    } else if (v instanceof PyObject) {
      fixArray(v.args);
      if (v.state !== undefined) visit((v.state = fix(v.state)));
      if (v.listItems) visit(v.listItems);
      if (v.dictItems) visit(v.dictItems);
      if (v.value !== undefined) visit(v.value);
    }
  }
  return out;
}

function decodeLong(b: Uint8Array): bigint {
  if (b.length === 0) return 0n;
  let v = 0n;
  for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
  if (b[b.length - 1]! & 0x80) v -= 1n << BigInt(8 * b.length);
  return v;
}

function latin1Chunked(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i += 8192) s += String.fromCharCode(...b.subarray(i, i + 8192));
  return s;
}
