/**
 * torch's legacy format (torch < 1.6 or `_use_new_zipfile_serialization=False`): a
 * stream of pickles (magic number, protocol version, sys_info, the object, the sorted
 * storage keys), then per storage an int64 element count and the raw bytes.
 */
import { RepmlpError } from '../errors.js';
import { dtypeInfo, type DType } from '../dtype.js';
import { Storage } from '../tensor.js';
import { PyDict, PyObject, PyTuple, type PyValue } from './pyobj.js';
import type { ByteSource } from './source.js';
import { PickleError, PickleTruncatedError, storageDType, unpickle } from './pickle.js';

export class LegacyError extends RepmlpError {
  override name = 'LegacyError';
}

const MAGIC = 0x1950a86a20f9469cfc6cn;
const PROTOCOL = 1001n;

interface RootStorage {
  dtype: DType;
  numel: number;
  storage: Storage;
  /** File offset of the bytes, known once the key list is read. */
  dataOffset?: number;
}

/** Reads the leading pickles, growing the window until they fit (never the whole file needlessly). */
function readHeaderPickles(src: ByteSource, parse: (bytes: Uint8Array) => void): void {
  for (let len = Math.min(src.size, 1 << 20); ; len = Math.min(src.size, len * 4)) {
    try {
      parse(src.read(0, len));
      return;
    } catch (e) {
      if (!(e instanceof PickleTruncatedError) || len === src.size) throw e;
    }
  }
}

export function readLegacy(src: ByteSource, pickleOpts: { strictGlobals?: boolean; inertGlobals?: Set<string> } = {}): PyValue {
  const roots = new Map<string, RootStorage>();
  const views = new Map<string, Storage>();
  let result: PyValue = null;
  let keys: string[] = [];
  let pos = 0;
  readHeaderPickles(src, (bytes) => {
    roots.clear();
    views.clear();
    const where = (what: string) => `${src.name}: legacy ${what}`;
    const strictGlobals = pickleOpts.strictGlobals === true; // torch holds every pickle of the stream to weights_only
    const magic = unpickle(bytes, { where: where('magic number'), strictGlobals });
    if (magic.value !== MAGIC) throw new LegacyError(`${src.name}: not a PyTorch checkpoint (no zip header and no legacy magic number)`);
    const proto = unpickle(bytes, { start: magic.end, where: where('protocol version'), strictGlobals });
    if (proto.value !== PROTOCOL) throw new LegacyError(`${src.name}: legacy protocol version ${String(proto.value)} is not supported (expected 1001)`);
    const sys = unpickle(bytes, { start: proto.end, where: where('sys_info'), strictGlobals });
    checkSysInfo(sys.value, src.name);
    pickleOpts.inertGlobals?.clear(); // a retry with a larger window starts over
    const main = unpickle(bytes, { start: sys.end, where: where('data'), persistentLoad: (pid) => loadStorage(pid, roots, views, src), ...pickleOpts });
    const keyList = unpickle(bytes, { start: main.end, where: where('storage keys'), strictGlobals });
    if (!Array.isArray(keyList.value) || !keyList.value.every((k) => typeof k === 'string')) throw new LegacyError(`${src.name}: legacy storage key list is malformed`);
    result = main.value;
    keys = keyList.value as string[];
    pos = keyList.end;
  });
  for (const key of keys) {
    const root = roots.get(key);
    if (!root) throw new LegacyError(`${src.name}: storage key ${key} is listed but never used`);
    if (pos + 8 > src.size) throw new LegacyError(`${src.name}: truncated before storage ${key}'s size`);
    const head = src.read(pos, 8);
    const count = new DataView(head.buffer, head.byteOffset, 8).getBigInt64(0, true);
    if (count !== BigInt(root.numel)) throw new LegacyError(`${src.name}: storage ${key} has wrong size: expected ${root.numel} elements, file says ${count}`);
    const bytes = root.numel * dtypeInfo(root.dtype).itemSize;
    if (pos + 8 + bytes > src.size) throw new LegacyError(`${src.name}: storage ${key}: ${bytes} bytes at offset ${pos + 8} run past the end of the file (${src.size} bytes)`);
    root.dataOffset = pos + 8;
    root.storage.sourceRegion = src.region(root.dataOffset, bytes);
    pos += 8 + bytes;
  }
  for (const [key, root] of roots) if (root.dataOffset === undefined) throw new LegacyError(`${src.name}: storage ${key} has no data in the file`);
  return result;
}

function checkSysInfo(v: PyValue, file: string): void {
  if (!(v instanceof PyDict)) throw new LegacyError(`${file}: legacy sys_info is not a dict`);
  if (v.map.get('little_endian') === false) throw new LegacyError(`${file}: big-endian checkpoints are not supported`);
}

function loadStorage(pid: PyValue, roots: Map<string, RootStorage>, views: Map<string, Storage>, src: ByteSource): Storage | PyValue {
  const items = pid instanceof PyTuple ? pid.items : [];
  const [kind, type, key, location, numel, view] = items;
  // A whole pickled nn.Module (legacy format) names each module class as
  // ('module', class, source_file, source): the class, an inert global here; its source
  // text is never run.
  if (kind === 'module' && type instanceof PyObject && !type.called && items.length === 4) return type;
  if (kind !== 'storage' || typeof key !== 'string' || typeof numel !== 'bigint' || numel < 0n) {
    throw new PickleError(`${src.name}: malformed legacy storage id (expected ('storage', type, key, location, numel, view))`);
  }
  const dt = storageDType(type, `${src.name}: storage ${key}`);
  const dtype: DType = dt === 'untyped' ? 'uint8' : dt;
  // Refused before anything of that size exists: the bytes must be in the file.
  if (numel * BigInt(dtypeInfo(dtype).itemSize) > BigInt(src.size)) throw new LegacyError(`${src.name}: storage ${key}: ${numel} elements cannot fit in a file of ${src.size} bytes`);
  let root = roots.get(key);
  if (root && root.dtype !== dtype) throw new LegacyError(`${src.name}: storage ${key} is used as both ${root.dtype} and ${dtype}`);
  if (root && root.numel !== Number(numel)) throw new LegacyError(`${src.name}: storage ${key} is named with ${root.numel} and with ${numel} elements`);
  if (!root) {
    const r: RootStorage = { dtype, numel: Number(numel), storage: undefined as unknown as Storage };
    r.storage = new Storage(dtype, r.numel, () => src.read(r.dataOffset!, r.numel * dtypeInfo(dtype).itemSize), key, typeof location === 'string' ? location : 'cpu');
    roots.set(key, r);
    root = r;
  }
  if (view === null || view === undefined) return root.storage;
  // Old torch saved storage views as (view_key, offset, size) of a root storage.
  const [viewKey, offset, size] = view instanceof PyTuple ? view.items : [];
  if (typeof viewKey !== 'string' || typeof offset !== 'bigint' || typeof size !== 'bigint' || offset < 0n || size < 0n || offset + size > BigInt(root.numel)) {
    throw new PickleError(`${src.name}: malformed view of storage ${key}`);
  }
  let v = views.get(viewKey);
  if (!v) {
    const item = dtypeInfo(dtype).itemSize;
    const base = root.storage;
    v = new Storage(dtype, Number(size), () => base.bytes().subarray(Number(offset) * item, Number(offset + size) * item), viewKey);
    views.set(viewKey, v);
  }
  return v;
}
