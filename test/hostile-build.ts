/**
 * Small writers for hostile inputs: a pickle assembler (opcode by opcode, names from the
 * writer's table), in-memory zip and legacy containers around a pickle.
 */
import type { FileHandle } from 'node:fs/promises';
import { ByteWriter, WOP, encodeLong } from '../src/pth/pickler.js';
import { ZipWriter } from '../src/pth/zip-writer.js';

/** Opcodes the writer never emits but hostile files do (pickletools names). */
export const XOP = {
  STACK_GLOBAL: 0x93, SHORT_BINUNICODE: 0x8c, BINBYTES: 0x42, SHORT_BINBYTES: 0x43, MEMOIZE: 0x94, FRAME: 0x95,
  NEWOBJ: 0x81, INST: 0x69, OBJ: 0x6f, EXT1: 0x82, PERSID: 0x50, STRING: 0x53, INT: 0x49, LONG: 0x4c,
  FLOAT: 0x46, GET: 0x67, PUT: 0x70, DUP: 0x32, POP: 0x30, LONG4: 0x8b, DICT: 0x64, LIST: 0x6c,
} as const;

export class PickleAsm {
  readonly w = new ByteWriter();
  constructor(proto = true) {
    if (proto) this.w.u8(WOP.PROTO).u8(2);
  }
  op(...codes: number[]): this {
    for (const c of codes) this.w.u8(c);
    return this;
  }
  raw(bytes: Uint8Array | number[]): this {
    this.w.bytes(bytes instanceof Uint8Array ? bytes : Uint8Array.from(bytes));
    return this;
  }
  global(module: string, name: string): this {
    this.w.u8(WOP.GLOBAL).ascii(`${module}\n${name}\n`);
    return this;
  }
  str(s: string): this {
    const b = new TextEncoder().encode(s);
    this.w.u8(WOP.BINUNICODE).u32(b.length).bytes(b);
    return this;
  }
  int(v: number | bigint): this {
    const n = BigInt(v);
    if (n >= 0n && n < 256n) this.w.u8(WOP.BININT1).u8(Number(n));
    else if (n >= -(2n ** 31n) && n < 2n ** 31n) this.w.u8(WOP.BININT).i32(Number(n));
    else {
      const b = encodeLong(n);
      this.w.u8(WOP.LONG1).u8(b.length).bytes(b);
    }
    return this;
  }
  float(v: number): this {
    this.w.u8(WOP.BINFLOAT).f64be(v);
    return this;
  }
  tuple(...items: ((a: this) => void)[]): this {
    this.w.u8(WOP.MARK);
    for (const f of items) f(this);
    this.w.u8(WOP.TUPLE);
    return this;
  }
  /** A persistent storage id tuple followed by BINPERSID. */
  storage(type: string, key: string, numel: number | bigint, location = 'cpu'): this {
    return this.tuple((a) => a.str('storage'), (a) => a.global('torch', type), (a) => a.str(key), (a) => a.str(location), (a) => a.int(numel)).op(WOP.BINPERSID);
  }
  /** _rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict()) */
  tensor(type: string, key: string, numel: number, offset: number, size: number[], stride: number[]): this {
    this.global('torch._utils', '_rebuild_tensor_v2');
    this.tuple(
      (a) => a.storage(type, key, numel),
      (a) => a.int(offset),
      (a) => a.tuple(...size.map((d) => (b: this) => void b.int(d))),
      (a) => a.tuple(...stride.map((d) => (b: this) => void b.int(d))),
      (a) => a.op(WOP.NEWFALSE),
      (a) => a.global('collections', 'OrderedDict').op(WOP.EMPTY_TUPLE, WOP.REDUCE),
    );
    return this.op(WOP.REDUCE);
  }
  stop(): Uint8Array {
    this.w.u8(WOP.STOP);
    return this.w.result();
  }
}

/** A FileHandle look-alike that collects what is written (for in-memory zips). */
export function memoryHandle(): { fh: FileHandle; bytes: () => Uint8Array } {
  const chunks: Uint8Array[] = [];
  const fh = {
    async write(buf: Uint8Array, off = 0, len = buf.byteLength - off) {
      chunks.push(buf.slice(off, off + len));
      return { bytesWritten: len, buffer: buf };
    },
    async writev(bufs: Uint8Array[]) {
      let n = 0;
      for (const b of bufs) {
        chunks.push(b.slice());
        n += b.byteLength;
      }
      return { bytesWritten: n, buffers: bufs };
    },
    async datasync() {},
    async sync() {},
  } as unknown as FileHandle;
  return { fh, bytes: () => Buffer.concat(chunks) };
}

/** A torch-layout zip holding `pkl` as archive/data.pkl plus the given storages. */
export async function zipWith(pkl: Uint8Array, storages: Record<string, Uint8Array> = {}, extra: Record<string, Uint8Array> = {}): Promise<Uint8Array> {
  const { fh, bytes } = memoryHandle();
  const z = new ZipWriter(fh);
  await z.add('archive/data.pkl', pkl);
  await z.add('archive/byteorder', new TextEncoder().encode('little'));
  for (const [k, v] of Object.entries(storages)) await z.add(`archive/data/${k}`, v);
  for (const [k, v] of Object.entries(extra)) await z.add(`archive/${k}`, v);
  await z.add('archive/version', new TextEncoder().encode('3\n'));
  await z.finish();
  return bytes();
}

const MAGIC = 0x1950a86a20f9469cfc6cn;

/** A legacy stream: magic, 1001, sys_info, `main`, the key list, then count + bytes per key. */
export function legacyWith(main: Uint8Array, storages: [string, bigint, Uint8Array][] = [], opts: { littleEndian?: boolean; magic?: bigint; protocol?: number } = {}): Uint8Array {
  const w = new ByteWriter();
  w.bytes(new PickleAsm().int(opts.magic ?? MAGIC).stop());
  w.bytes(new PickleAsm().op(WOP.BININT2).raw([(opts.protocol ?? 1001) & 0xff, (opts.protocol ?? 1001) >> 8]).stop());
  const sys = new PickleAsm().op(WOP.EMPTY_DICT, WOP.MARK).str('protocol_version').int(1001).str('little_endian').op(opts.littleEndian === false ? WOP.NEWFALSE : WOP.NEWTRUE)
    .str('type_sizes').op(WOP.EMPTY_DICT).op(WOP.MARK).str('short').int(2).str('int').int(4).str('long').int(4).op(WOP.SETITEMS).op(WOP.SETITEMS).stop();
  w.bytes(sys);
  w.bytes(main);
  const keys = new PickleAsm().op(WOP.EMPTY_LIST);
  if (storages.length) {
    keys.op(WOP.MARK);
    for (const [k] of storages) keys.str(k);
    keys.op(WOP.APPENDS);
  }
  w.bytes(keys.stop());
  for (const [, count, data] of storages) w.u64(BigInt.asUintN(64, count)).bytes(data);
  return w.result();
}
