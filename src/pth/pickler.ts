/**
 * A protocol-2 pickle writer for checkpoints, using only opcodes torch's weights_only
 * unpickler accepts (no FRAME, MEMOIZE, BINBYTES, STACK_GLOBAL, SHORT_BINUNICODE or
 * LONG4), so what it writes loads with `torch.load(f, weights_only=True)`.
 *
 * Tensors become `torch._utils._rebuild_tensor_v2(persistent_id(('storage',
 * torch.<Type>Storage, key, 'cpu', numel)), offset, size, stride, requires_grad,
 * OrderedDict())`, exactly as torch.save writes them; parameters are wrapped in
 * `torch._utils._rebuild_parameter`. Storages are keyed '0', '1', ... in order of first
 * appearance; a Storage object met twice keeps its key, so shared storages stay shared.
 * Locations are written as 'cpu' so the file loads on any machine.
 */
import { RepmlpError } from '../errors.js';
import { dtypeInfo } from '../dtype.js';
import { Storage, Tensor } from '../tensor.js';
import { PyDict, PyObject, PyOther, PyTuple, type PyKey, type PyValue } from './pyobj.js';

export class PicklerError extends RepmlpError {
  override name = 'PicklerError';
}

/** The opcodes this writer emits (pickletools names). */
export const WOP = {
  PROTO: 0x80, STOP: 0x2e, MARK: 0x28,
  GLOBAL: 0x63, REDUCE: 0x52, NEWOBJ: 0x81, BUILD: 0x62, BINPERSID: 0x51,
  NONE: 0x4e, NEWTRUE: 0x88, NEWFALSE: 0x89,
  BININT: 0x4a, BININT1: 0x4b, BININT2: 0x4d, LONG1: 0x8a, BINFLOAT: 0x47,
  BINUNICODE: 0x58,
  EMPTY_TUPLE: 0x29, TUPLE1: 0x85, TUPLE2: 0x86, TUPLE3: 0x87, TUPLE: 0x74,
  EMPTY_LIST: 0x5d, APPEND: 0x61, APPENDS: 0x65,
  EMPTY_DICT: 0x7d, SETITEM: 0x73, SETITEMS: 0x75,
  BINPUT: 0x71, LONG_BINPUT: 0x72, BINGET: 0x68, LONG_BINGET: 0x6a,
} as const;

/** Python's pickler batches APPENDS / SETITEMS by this many items. */
const BATCH = 1000;
/** Python's own recursion limit: torch could not load anything deeper either. */
const MAX_DEPTH = 1000;
const PROTOCOL = 2;

/** A growable byte buffer. */
export class ByteWriter {
  private buf = new Uint8Array(1 << 12);
  private view = new DataView(this.buf.buffer);
  length = 0;

  private reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.length + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
  u8(v: number): this {
    this.reserve(1);
    this.buf[this.length++] = v;
    return this;
  }
  u16(v: number): this {
    this.reserve(2);
    this.view.setUint16(this.length, v, true);
    this.length += 2;
    return this;
  }
  u32(v: number): this {
    this.reserve(4);
    this.view.setUint32(this.length, v, true);
    this.length += 4;
    return this;
  }
  i32(v: number): this {
    this.reserve(4);
    this.view.setInt32(this.length, v, true);
    this.length += 4;
    return this;
  }
  u64(v: number | bigint): this {
    this.reserve(8);
    this.view.setBigUint64(this.length, BigInt(v), true);
    this.length += 8;
    return this;
  }
  f64be(v: number): this {
    this.reserve(8);
    this.view.setFloat64(this.length, v, false);
    this.length += 8;
    return this;
  }
  bytes(b: Uint8Array): this {
    this.reserve(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
    return this;
  }
  ascii(s: string): this {
    this.reserve(s.length);
    for (let i = 0; i < s.length; i++) this.buf[this.length++] = s.charCodeAt(i) & 0xff;
    return this;
  }
  result(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}

const encoder = new TextEncoder();

/** UTF-8 with Python's 'surrogatepass': lone surrogates survive the round trip. */
export function utf8SurrogatePass(s: string): Uint8Array {
  if (!/[\ud800-\udfff]/.test(s)) return encoder.encode(s);
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        i++;
      }
    }
    if (c < 0x80) out.push(c);
    else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 63));
    else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
    else out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
  }
  return Uint8Array.from(out);
}

/** Two's-complement little-endian bytes, as short as Python's encode_long makes them. */
export function encodeLong(v: bigint): Uint8Array {
  if (v === 0n) return new Uint8Array(0);
  const out: number[] = [];
  let x = v;
  for (;;) {
    out.push(Number(x & 0xffn));
    x >>= 8n;
    const signBit = (out[out.length - 1]! & 0x80) !== 0;
    if ((x === 0n && !signBit) || (x === -1n && signBit)) break;
  }
  return Uint8Array.from(out);
}

export interface PickledCheckpoint {
  /** The pickle (data.pkl). */
  data: Uint8Array;
  /** Storages in key order: key i is `storages[i]`. */
  storages: Storage[];
}

export interface PickleOptions {
  /** Tensors written in place of others (compacted storages, src/pth/layout.ts). */
  replace?: ReadonlyMap<Tensor, Tensor>;
}

/** Pickles `obj` the way torch.save does (zip format). */
export function pickleCheckpoint(obj: PyValue, opts: PickleOptions = {}): PickledCheckpoint {
  const p = new Pickler(opts.replace);
  p.dump(obj);
  return { data: p.out.result(), storages: p.storages };
}

class Pickler {
  readonly out = new ByteWriter();
  readonly storages: Storage[] = [];
  private readonly storageKeys = new Map<Storage, string>();
  private readonly memo = new Map<object | string, number>();
  private depth = 0;

  constructor(private readonly replace?: ReadonlyMap<Tensor, Tensor>) {}

  dump(obj: PyValue): void {
    this.out.u8(WOP.PROTO).u8(PROTOCOL);
    this.save(obj);
    this.out.u8(WOP.STOP);
  }

  private put(key: object | string): void {
    const i = this.memo.size;
    this.memo.set(key, i);
    if (i < 256) this.out.u8(WOP.BINPUT).u8(i);
    else this.out.u8(WOP.LONG_BINPUT).u32(i);
  }

  /** Emits BINGET when `key` was memoized; returns whether it did. */
  private get(key: object | string): boolean {
    const i = this.memo.get(key);
    if (i === undefined) return false;
    if (i < 256) this.out.u8(WOP.BINGET).u8(i);
    else this.out.u8(WOP.LONG_BINGET).u32(i);
    return true;
  }

  private global(module: string, name: string): void {
    const key = `\0global:${module}.${name}`;
    if (this.get(key)) return;
    this.out.u8(WOP.GLOBAL).ascii(`${module}\n${name}\n`);
    this.put(key);
  }

  private save(v: PyValue): void {
    if (++this.depth > MAX_DEPTH) throw new PicklerError(`object nested deeper than ${MAX_DEPTH} levels`);
    try {
      this.saveValue(v);
    } finally {
      this.depth--;
    }
  }

  private saveValue(v: PyValue): void {
    const o = this.out;
    if (v === null) o.u8(WOP.NONE);
    else if (v === true) o.u8(WOP.NEWTRUE);
    else if (v === false) o.u8(WOP.NEWFALSE);
    else if (typeof v === 'bigint') this.saveInt(v);
    else if (typeof v === 'number') o.u8(WOP.BINFLOAT).f64be(v);
    else if (typeof v === 'string') this.saveStr(v);
    else if (typeof v !== 'object') throw new PicklerError(`cannot pickle a JavaScript ${typeof v}`);
    else if (this.get(v)) return;
    else if (v instanceof Uint8Array) this.saveBytes(v);
    else if (Array.isArray(v)) this.saveList(v);
    else if (v instanceof PyTuple) this.saveTuple(v);
    else if (v instanceof PyDict) this.saveDict(v);
    else if (v instanceof Tensor) this.saveTensor(v);
    else if (v instanceof PyOther) this.saveOther(v);
    else if (v instanceof PyObject) this.saveObject(v);
    else throw new PicklerError(`cannot pickle a ${(v as object).constructor?.name ?? 'value'}`);
  }

  private saveInt(v: bigint): void {
    const o = this.out;
    if (v >= 0n && v < 0x100n) o.u8(WOP.BININT1).u8(Number(v));
    else if (v >= 0n && v < 0x10000n) o.u8(WOP.BININT2).u16(Number(v));
    else if (v >= -(2n ** 31n) && v < 2n ** 31n) o.u8(WOP.BININT).i32(Number(v));
    else {
      const b = encodeLong(v);
      // LONG4 is not in torch's weights_only set: ints beyond 255 bytes are refused.
      if (b.length > 255) throw new PicklerError(`int of ${b.length} bytes is too large to write (LONG1 holds 255)`);
      o.u8(WOP.LONG1).u8(b.length).bytes(b);
    }
  }

  private saveStr(s: string): void {
    const b = utf8SurrogatePass(s);
    if (b.length > 0xffffffff) throw new PicklerError(`string of ${b.length} bytes is too long for BINUNICODE`);
    this.out.u8(WOP.BINUNICODE).u32(b.length).bytes(b);
  }

  /** Protocol 2 has no bytes opcode torch accepts: Python writes _codecs.encode(latin1 str, 'latin1'). */
  private saveBytes(b: Uint8Array): void {
    this.global('_codecs', 'encode');
    let s = '';
    for (let i = 0; i < b.length; i += 8192) s += String.fromCharCode(...b.subarray(i, i + 8192));
    this.saveStr(s);
    this.saveStr('latin1');
    this.out.u8(WOP.TUPLE2).u8(WOP.REDUCE);
    this.put(b);
  }

  private saveList(v: PyValue[]): void {
    this.out.u8(WOP.EMPTY_LIST);
    this.put(v);
    for (let i = 0; i < v.length; i += BATCH) {
      const batch = v.slice(i, i + BATCH);
      if (batch.length === 1) {
        this.save(batch[0]!);
        this.out.u8(WOP.APPEND);
        continue;
      }
      this.out.u8(WOP.MARK);
      for (const x of batch) this.save(x);
      this.out.u8(WOP.APPENDS);
    }
  }

  private saveTupleItems(items: readonly PyValue[]): void {
    const o = this.out;
    if (items.length === 0) return void o.u8(WOP.EMPTY_TUPLE);
    if (items.length > 3) o.u8(WOP.MARK);
    for (const x of items) this.save(x);
    o.u8(items.length === 1 ? WOP.TUPLE1 : items.length === 2 ? WOP.TUPLE2 : items.length === 3 ? WOP.TUPLE3 : WOP.TUPLE);
  }

  private saveTuple(t: PyTuple): void {
    this.saveTupleItems(t.items);
    if (t.items.length) this.put(t);
  }

  private saveDict(d: PyDict): void {
    if (d.ordered) {
      this.global('collections', 'OrderedDict');
      this.out.u8(WOP.EMPTY_TUPLE).u8(WOP.REDUCE);
    } else this.out.u8(WOP.EMPTY_DICT);
    this.put(d);
    this.saveItems(d.map);
    if (d.attrs.size) {
      if (!d.ordered) throw new PicklerError('instance attributes (such as _metadata) can only be written on an OrderedDict');
      // BUILD with a dict state: OrderedDict.__dict__.update(state), as torch.save writes _metadata.
      this.out.u8(WOP.EMPTY_DICT);
      this.saveItems(d.attrs);
      this.out.u8(WOP.BUILD);
    }
  }

  private saveItems(map: ReadonlyMap<PyKey, PyValue>): void {
    const entries = [...map];
    for (let i = 0; i < entries.length; i += BATCH) {
      const batch = entries.slice(i, i + BATCH);
      if (batch.length === 1) {
        this.save(batch[0]![0]);
        this.save(batch[0]![1]);
        this.out.u8(WOP.SETITEM);
        continue;
      }
      this.out.u8(WOP.MARK);
      for (const [k, x] of batch) {
        this.save(k);
        this.save(x);
      }
      this.out.u8(WOP.SETITEMS);
    }
  }

  private storageKey(s: Storage): string {
    let key = this.storageKeys.get(s);
    if (key === undefined) {
      key = String(this.storages.length);
      this.storageKeys.set(s, key);
      this.storages.push(s);
    }
    return key;
  }

  private saveTensor(original: Tensor): void {
    const t = this.replace?.get(original) ?? original;
    if (t.isParameter) {
      this.global('torch._utils', '_rebuild_parameter');
      this.out.u8(WOP.MARK);
      this.saveRebuildTensor(t, false);
      this.save(t.requiresGrad);
      this.emptyOrderedDict();
      this.out.u8(WOP.TUPLE).u8(WOP.REDUCE);
    } else this.saveRebuildTensor(t, t.requiresGrad);
    this.put(original);
  }

  private saveRebuildTensor(t: Tensor, requiresGrad: boolean): void {
    const o = this.out;
    this.global('torch._utils', '_rebuild_tensor_v2');
    o.u8(WOP.MARK);
    this.savePersistentStorage(t.storage);
    this.saveInt(BigInt(t.offset));
    this.saveTupleItems(t.shape.map((d) => BigInt(d)));
    this.saveTupleItems(t.stride.map((d) => BigInt(d)));
    this.save(requiresGrad);
    this.emptyOrderedDict();
    o.u8(WOP.TUPLE).u8(WOP.REDUCE);
  }

  /** The persistent id ('storage', torch.<Type>Storage, key, location, numel), as torch writes it. */
  private savePersistentStorage(s: Storage): void {
    const o = this.out;
    o.u8(WOP.MARK);
    this.saveStr('storage');
    this.global('torch', dtypeInfo(s.dtype).storage);
    this.saveStr(this.storageKey(s));
    this.saveStr('cpu');
    this.saveInt(BigInt(s.numel));
    o.u8(WOP.TUPLE).u8(WOP.BINPERSID);
  }

  private emptyOrderedDict(): void {
    this.global('collections', 'OrderedDict');
    this.out.u8(WOP.EMPTY_TUPLE).u8(WOP.REDUCE);
  }

  /**
   * An inert object read from a file (argparse.Namespace, a numpy scalar, a pickled
   * module...) is written back as the file built it: GLOBAL, then REDUCE or NEWOBJ of its
   * arguments, its list and dict items, and BUILD with its state, as Python's pickler
   * orders them. Such a file loads with torch.load(weights_only=False), as the original
   * did; weights_only=True refuses it, as it refused the original.
   */
  private saveObject(v: PyObject): void {
    if (v.storage) {
      // A bare storage (`torch.save({'s': t.storage()})`): its persistent id alone, the
      // same record as the tensors viewing it (a storage referenced bare is never
      // compacted, src/pth/layout.ts).
      this.savePersistentStorage(v.storage);
      return;
    }
    const dot = v.global.lastIndexOf('.');
    const module = dot > 0 ? v.global.slice(0, dot) : 'builtins';
    const name = dot > 0 ? v.global.slice(dot + 1) : v.global;
    if (/[\n\r]/.test(v.global)) throw new PicklerError(`cannot write global '${JSON.stringify(v.global)}'`);
    this.global(module, name);
    if (!v.called) return;
    this.saveTupleItems(v.args);
    this.out.u8(v.newobj ? WOP.NEWOBJ : WOP.REDUCE);
    this.put(v);
    const list = v.listItems ?? [];
    for (let i = 0; i < list.length; i += BATCH) {
      this.out.u8(WOP.MARK);
      for (const x of list.slice(i, i + BATCH)) this.save(x);
      this.out.u8(WOP.APPENDS);
    }
    if (v.dictItems && v.dictItems.map.size) this.saveItems(v.dictItems.map);
    if (v.state !== undefined) {
      this.save(v.state);
      this.out.u8(WOP.BUILD);
    }
  }

  private saveOther(v: PyOther): void {
    switch (v.kind) {
      case 'torch.dtype':
        if (typeof v.value !== 'string' || v.value.startsWith('layout:')) throw new PicklerError(`cannot write torch dtype ${String(v.value)}`);
        this.global('torch', v.value);
        return;
      case 'torch.device':
        this.global('torch', 'device');
        this.saveTupleItems([String(v.value)]);
        break;
      case 'set':
      case 'frozenset':
        this.global('builtins', v.kind);
        this.saveTupleItems([Array.isArray(v.value) ? v.value : []]);
        break;
      case 'bytearray':
        this.global('builtins', 'bytearray');
        this.saveTupleItems([v.value]);
        break;
      case 'complex':
        this.global('builtins', 'complex');
        this.saveTupleItems(v.value instanceof PyTuple ? v.value.items : []);
        break;
    }
    this.out.u8(WOP.REDUCE);
    this.put(v);
  }
}
