/**
 * Byte builders for the hostile corpus (tools/hostile/corpus.mjs): a pickle assembler
 * (opcode by opcode, pickletools' names), torch's zip container (STORED records) and
 * legacy container, and safetensors files. Written from the format descriptions
 * (CPython's Lib/pickletools.py opcode table, PyTorch's serialization notes, the
 * safetensors README); standalone so the generators run without a build.
 */

export const OP = {
  MARK: 0x28, STOP: 0x2e, POP: 0x30, POP_MARK: 0x31, DUP: 0x32, FLOAT: 0x46, INT: 0x49, BININT: 0x4a,
  BININT1: 0x4b, LONG: 0x4c, BININT2: 0x4d, NONE: 0x4e, PERSID: 0x50, BINPERSID: 0x51, REDUCE: 0x52,
  STRING: 0x53, BINSTRING: 0x54, SHORT_BINSTRING: 0x55, UNICODE: 0x56, BINUNICODE: 0x58, APPEND: 0x61,
  BUILD: 0x62, GLOBAL: 0x63, DICT: 0x64, EMPTY_DICT: 0x7d, APPENDS: 0x65, GET: 0x67, BINGET: 0x68,
  INST: 0x69, LONG_BINGET: 0x6a, LIST: 0x6c, EMPTY_LIST: 0x5d, OBJ: 0x6f, PUT: 0x70, BINPUT: 0x71,
  LONG_BINPUT: 0x72, SETITEM: 0x73, TUPLE: 0x74, EMPTY_TUPLE: 0x29, SETITEMS: 0x75, BINFLOAT: 0x47,
  PROTO: 0x80, NEWOBJ: 0x81, EXT1: 0x82, EXT2: 0x83, EXT4: 0x84, TUPLE1: 0x85, TUPLE2: 0x86, TUPLE3: 0x87,
  NEWTRUE: 0x88, NEWFALSE: 0x89, LONG1: 0x8a, LONG4: 0x8b, BINBYTES: 0x42, SHORT_BINBYTES: 0x43,
  SHORT_BINUNICODE: 0x8c, BINUNICODE8: 0x8d, BINBYTES8: 0x8e, EMPTY_SET: 0x8f, ADDITEMS: 0x90,
  FROZENSET: 0x91, NEWOBJ_EX: 0x92, STACK_GLOBAL: 0x93, MEMOIZE: 0x94, FRAME: 0x95, BYTEARRAY8: 0x96,
  NEXT_BUFFER: 0x97, READONLY_BUFFER: 0x98,
};

const enc = new TextEncoder();

/** A growable byte buffer. */
export class Bytes {
  constructor() {
    this.buf = new Uint8Array(1024);
    this.n = 0;
  }
  need(k) {
    if (this.n + k <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.n + k) size *= 2;
    const b = new Uint8Array(size);
    b.set(this.buf.subarray(0, this.n));
    this.buf = b;
  }
  u8(...v) {
    this.need(v.length);
    for (const x of v) this.buf[this.n++] = x & 0xff;
    return this;
  }
  bytes(b) {
    this.need(b.length);
    this.buf.set(b, this.n);
    this.n += b.length;
    return this;
  }
  u16(v) {
    return this.u8(v, v >>> 8);
  }
  u32(v) {
    return this.u8(v, v >>> 8, v >>> 16, v >>> 24);
  }
  i32(v) {
    return this.u32(v >>> 0);
  }
  u64(v) {
    let x = BigInt(v);
    for (let i = 0; i < 8; i++, x >>= 8n) this.u8(Number(x & 0xffn));
    return this;
  }
  ascii(s) {
    return this.bytes(enc.encode(s));
  }
  done() {
    return this.buf.slice(0, this.n);
  }
}

/** Little-endian two's-complement bytes of a bigint, as pickle's LONG1 wants. */
export function longBytes(n) {
  n = BigInt(n);
  if (n === 0n) return new Uint8Array(0);
  const out = [];
  let x = n;
  for (;;) {
    out.push(Number(x & 0xffn));
    x >>= 8n;
    if ((x === 0n && !(out[out.length - 1] & 0x80)) || (x === -1n && out[out.length - 1] & 0x80)) break;
  }
  return Uint8Array.from(out);
}

/** A pickle, one opcode at a time. */
export class Pickle {
  constructor(proto = 2) {
    this.w = new Bytes();
    if (proto !== null) this.w.u8(OP.PROTO, proto);
  }
  op(...codes) {
    this.w.u8(...codes);
    return this;
  }
  raw(b) {
    this.w.bytes(b);
    return this;
  }
  global(mod, name) {
    this.w.u8(OP.GLOBAL).ascii(`${mod}\n${name}\n`);
    return this;
  }
  str(s) {
    const b = enc.encode(s);
    this.w.u8(OP.BINUNICODE).u32(b.length).bytes(b);
    return this;
  }
  int(v) {
    const n = BigInt(v);
    if (n >= 0n && n < 256n) this.w.u8(OP.BININT1, Number(n));
    else if (n >= -(2n ** 31n) && n < 2n ** 31n) this.w.u8(OP.BININT).i32(Number(n));
    else {
      const b = longBytes(n);
      this.w.u8(OP.LONG1, b.length).bytes(b);
    }
    return this;
  }
  float(v) {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, v, false);
    this.w.u8(OP.BINFLOAT).bytes(b);
    return this;
  }
  /** MARK items... TUPLE */
  tuple(...items) {
    this.w.u8(OP.MARK);
    for (const f of items) f(this);
    this.w.u8(OP.TUPLE);
    return this;
  }
  /** ('storage', torch.<type>, key, location, numel) BINPERSID */
  storage(type, key, numel, location = 'cpu') {
    return this.tuple((p) => p.str('storage'), (p) => p.global('torch', type), (p) => p.str(key), (p) => p.str(location), (p) => p.int(numel)).op(OP.BINPERSID);
  }
  /** torch._utils._rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict()) */
  tensor(storage, offset, size, stride) {
    this.global('torch._utils', '_rebuild_tensor_v2');
    this.tuple(
      storage,
      (p) => p.int(offset),
      (p) => p.tuple(...size.map((d) => (q) => q.int(d))),
      (p) => p.tuple(...stride.map((d) => (q) => q.int(d))),
      (p) => p.op(OP.NEWFALSE),
      (p) => p.global('collections', 'OrderedDict').op(OP.EMPTY_TUPLE, OP.REDUCE),
    );
    return this.op(OP.REDUCE);
  }
  /** A float32 tensor of `numel` on storage `key` (contiguous, 1-D). */
  floatTensor(key, numel) {
    return this.tensor((p) => p.storage('FloatStorage', key, numel), 0, [numel], [1]);
  }
  /** OrderedDict() then MARK k v ... SETITEMS */
  orderedDict(entries) {
    this.global('collections', 'OrderedDict').op(OP.EMPTY_TUPLE, OP.REDUCE, OP.MARK);
    for (const [k, v] of entries) {
      this.str(k);
      v(this);
    }
    return this.op(OP.SETITEMS);
  }
  dict(entries) {
    this.op(OP.EMPTY_DICT, OP.MARK);
    for (const [k, v] of entries) {
      if (typeof k === 'string') this.str(k);
      else k(this);
      v(this);
    }
    return this.op(OP.SETITEMS);
  }
  stop() {
    this.w.u8(OP.STOP);
    return this.w.done();
  }
  done() {
    return this.w.done();
  }
}

// --- zip ---------------------------------------------------------------------------------

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[i] = c >>> 0;
  }
  return t;
})();

export function crc32(b) {
  let c = 0xffffffff;
  for (let i = 0; i < b.length; i++) c = CRC_TABLE[(c ^ b[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/**
 * A zip of STORED records, as torch writes them (names, order), with knobs for lies:
 * `method` (compression method field), `size` (a size field unlike the data), `crc`.
 */
export function zip(records, opts = {}) {
  const w = new Bytes();
  const central = [];
  for (const r of records) {
    const name = enc.encode(r.name);
    const data = r.data instanceof Uint8Array ? r.data : enc.encode(r.data);
    const offset = w.n;
    const crc = r.crc ?? crc32(data);
    const size = r.size ?? data.length;
    const method = r.method ?? 0;
    w.u32(0x04034b50).u16(20).u16(0).u16(method).u16(0).u16(0).u32(crc).u32(size).u32(size).u16(name.length).u16(0).bytes(name).bytes(data);
    central.push({ name, crc, size, method, offset });
  }
  const cdStart = w.n;
  for (const c of central) {
    w.u32(0x02014b50).u16(20).u16(20).u16(0).u16(c.method).u16(0).u16(0).u32(c.crc).u32(c.size).u32(c.size)
      .u16(c.name.length).u16(0).u16(0).u16(0).u16(0).u32(0).u32(c.offset).bytes(c.name);
  }
  const cdSize = w.n - cdStart;
  const count = opts.count ?? central.length;
  w.u32(0x06054b50).u16(0).u16(0).u16(count).u16(count).u32(opts.cdSize ?? cdSize).u32(opts.cdOffset ?? cdStart);
  const comment = opts.comment ? enc.encode(opts.comment) : new Uint8Array(0);
  w.u16(comment.length).bytes(comment);
  return w.done();
}

/** torch's zip layout around a data.pkl and storages {key: bytes}. */
export function torchZip(pkl, storages = {}, opts = {}) {
  const top = opts.top ?? 'archive';
  const recs = [{ name: `${top}/data.pkl`, data: pkl }, { name: `${top}/byteorder`, data: opts.byteorder ?? 'little' }];
  for (const [k, v] of Object.entries(storages)) recs.push({ name: `${top}/data/${k}`, data: v, ...(opts.record?.[k] ?? {}) });
  recs.push({ name: `${top}/version`, data: opts.version ?? '3\n' });
  return zip(recs, opts.zip);
}

// --- legacy (torch < 1.6, _use_new_zipfile_serialization=False) ----------------------------

/**
 * Five pickles then the raw storages: magic number, protocol version 1001, sys_info,
 * the object, the list of storage keys; each storage as int64 numel + bytes.
 */
export function legacy(objPickle, storages = [], opts = {}) {
  const w = new Bytes();
  const magic = new Pickle(2).int(opts.magic ?? 0x1950a86a20f9469cfc6cn).stop();
  const proto = new Pickle(2).int(opts.protocol ?? 1001).stop();
  const sys = new Pickle(2).dict([
    ['protocol_version', (p) => p.int(1001)],
    ['little_endian', (p) => p.op(opts.bigEndian ? OP.NEWFALSE : OP.NEWTRUE)],
    ['type_sizes', (p) => p.dict([['short', (q) => q.int(2)], ['int', (q) => q.int(4)], ['long', (q) => q.int(4)]])],
  ]).stop();
  const keys = new Pickle(2).op(OP.EMPTY_LIST, OP.MARK);
  for (const s of storages) keys.str(s.key);
  const keyList = keys.op(OP.APPENDS).stop();
  w.bytes(magic).bytes(proto).bytes(sys).bytes(objPickle).bytes(keyList);
  for (const s of storages) {
    w.u64(s.numel ?? s.data.length / 4);
    w.bytes(s.data);
  }
  return w.done();
}

// --- safetensors -------------------------------------------------------------------------

/** 8-byte little-endian header length, the header text (as given, not re-serialized), data. */
export function safetensors(headerText, data = new Uint8Array(0), opts = {}) {
  const h = enc.encode(headerText);
  const w = new Bytes();
  w.u64(opts.length ?? h.length).bytes(h).bytes(data);
  return w.done();
}
