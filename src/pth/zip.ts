/**
 * A lazy reader for the zip archives torch.save writes (torch >= 1.6): central directory
 * (zip64 end records included, which JSZip rejects), STORED records read on demand.
 * CRCs are not checked, like PyTorch's own reader: a mismatch is not an error there.
 */
import { RepmlpError } from '../errors.js';
import type { ByteSource } from './source.js';
import { CENTRAL_HEADER_SIZE, END_SIZE, EXTRA_ZIP64, LOCAL_HEADER_SIZE, SIG, ZIP64_END_SIZE, ZIP64_LOCATOR_SIZE } from './zip-format.js';

export class ZipError extends RepmlpError {
  override name = 'ZipError';
}

const MAX_COMMENT = 0xffff;
/** A central directory larger than this is not a checkpoint (536 tensors need ~60 KB). */
const MAX_CENTRAL_DIRECTORY = 256 * 1024 * 1024;

export interface ZipEntry {
  name: string;
  method: number;
  compressedSize: number;
  size: number;
  localHeaderOffset: number;
  /** CRC-32 the central directory records (not checked on read, like torch). */
  crc32: number;
}

/** Record names come from the file: long ones are cut in messages. */
function shown(name: string): string {
  return name.length > 120 ? `${name.slice(0, 120)}...` : name;
}

export function isZip(head: Uint8Array): boolean {
  return head.length >= 4 && head[0] === 0x50 && head[1] === 0x4b && head[2] === 0x03 && head[3] === 0x04;
}

function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

function u64(dv: DataView, off: number, what: string): number {
  const v = dv.getBigUint64(off, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new ZipError(`${what} ${v} is not a usable 64-bit size`);
  return Number(v);
}

export class ZipReader {
  readonly entries: Map<string, ZipEntry>;
  /** Names in central-directory order. */
  readonly names: string[];

  constructor(private readonly src: ByteSource) {
    const list = readCentralDirectory(src);
    this.names = list.map((e) => e.name);
    this.entries = new Map(list.map((e) => [e.name, e]));
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  private readonly starts = new Map<string, number>();

  /** Where a record's data starts (after its local header), bounds-checked; read once. */
  dataOffset(name: string): number {
    const known = this.starts.get(name);
    if (known !== undefined) return known;
    const e = this.entry(name);
    if (e.localHeaderOffset + LOCAL_HEADER_SIZE > this.src.size) throw new ZipError(`${this.src.name}: record ${shown(name)}: local header at ${e.localHeaderOffset} is past the end of the file`);
    const dv = view(this.src.read(e.localHeaderOffset, LOCAL_HEADER_SIZE));
    if (dv.getUint32(0, true) !== SIG.LOCAL) throw new ZipError(`${this.src.name}: record ${shown(name)}: no local header at offset ${e.localHeaderOffset}`);
    const start = e.localHeaderOffset + LOCAL_HEADER_SIZE + dv.getUint16(26, true) + dv.getUint16(28, true);
    if (start + e.size > this.src.size) throw new ZipError(`${this.src.name}: record ${shown(name)}: ${e.size} bytes at offset ${start} run past the end of the file (${this.src.size} bytes)`);
    this.starts.set(name, start);
    return start;
  }

  /** The bytes of a STORED record. */
  read(name: string): Uint8Array {
    const e = this.entry(name);
    return this.src.read(this.dataOffset(name), e.size);
  }

  entry(name: string): ZipEntry {
    const e = this.entries.get(name);
    if (!e) throw new ZipError(`${this.src.name}: record ${shown(name)} is missing from the archive`);
    if (e.method !== 0) throw new ZipError(`${this.src.name}: record ${shown(name)} is compressed (method ${e.method}); torch writes STORED records only`);
    if (e.compressedSize !== e.size) throw new ZipError(`${this.src.name}: record ${shown(name)}: stored size ${e.compressedSize} differs from size ${e.size}`);
    return e;
  }
}

interface DirectoryLocation {
  count: number;
  offset: number;
  size: number;
}

function findEnd(src: ByteSource): { at: number; dv: DataView } {
  if (src.size < END_SIZE) throw new ZipError(`${src.name}: too short to be a zip archive (${src.size} bytes)`);
  const tailLen = Math.min(src.size, END_SIZE + MAX_COMMENT);
  const tail = src.read(src.size - tailLen, tailLen);
  const dv = view(tail);
  for (let i = tailLen - END_SIZE; i >= 0; i--) {
    if (dv.getUint32(i, true) === SIG.END && i + END_SIZE + dv.getUint16(i + 20, true) === tailLen) {
      return { at: src.size - tailLen + i, dv: new DataView(tail.buffer, tail.byteOffset + i, END_SIZE) };
    }
  }
  throw new ZipError(`${src.name}: no end-of-central-directory record (truncated or not a zip archive)`);
}

function locateDirectory(src: ByteSource): DirectoryLocation {
  const { at, dv } = findEnd(src);
  let loc: DirectoryLocation = { count: dv.getUint16(10, true), size: dv.getUint32(12, true), offset: dv.getUint32(16, true) };
  // torch always writes the zip64 records; their values win when present.
  if (at >= ZIP64_LOCATOR_SIZE) {
    const ldv = view(src.read(at - ZIP64_LOCATOR_SIZE, ZIP64_LOCATOR_SIZE));
    if (ldv.getUint32(0, true) === SIG.ZIP64_LOCATOR) {
      const end64At = u64(ldv, 8, 'zip64 end record offset');
      if (end64At + ZIP64_END_SIZE > at - ZIP64_LOCATOR_SIZE) throw new ZipError(`${src.name}: zip64 end record offset ${end64At} is out of range`);
      const edv = view(src.read(end64At, ZIP64_END_SIZE));
      if (edv.getUint32(0, true) !== SIG.ZIP64_END) throw new ZipError(`${src.name}: no zip64 end record at offset ${end64At}`);
      loc = { count: u64(edv, 32, 'zip64 entry count'), size: u64(edv, 40, 'zip64 directory size'), offset: u64(edv, 48, 'zip64 directory offset') };
    }
  }
  if (loc.size > MAX_CENTRAL_DIRECTORY || loc.offset + loc.size > at) {
    throw new ZipError(`${src.name}: central directory (${loc.size} bytes at offset ${loc.offset}) does not fit before the end record at ${at}`);
  }
  if (loc.count * CENTRAL_HEADER_SIZE > loc.size) throw new ZipError(`${src.name}: ${loc.count} entries cannot fit in a ${loc.size}-byte central directory`);
  return loc;
}

function readCentralDirectory(src: ByteSource): ZipEntry[] {
  const loc = locateDirectory(src);
  const cd = src.read(loc.offset, loc.size);
  const dv = view(cd);
  const decoder = new TextDecoder('utf-8', { fatal: false });
  const out: ZipEntry[] = [];
  let p = 0;
  for (let i = 0; i < loc.count; i++) {
    if (p + CENTRAL_HEADER_SIZE > cd.length || dv.getUint32(p, true) !== SIG.CENTRAL) {
      throw new ZipError(`${src.name}: central directory entry ${i} of ${loc.count} is malformed (offset ${loc.offset + p})`);
    }
    const nameLen = dv.getUint16(p + 28, true);
    const extraLen = dv.getUint16(p + 30, true);
    const commentLen = dv.getUint16(p + 32, true);
    const end = p + CENTRAL_HEADER_SIZE + nameLen + extraLen + commentLen;
    if (end > cd.length) throw new ZipError(`${src.name}: central directory entry ${i} runs past the directory`);
    const name = decoder.decode(cd.subarray(p + CENTRAL_HEADER_SIZE, p + CENTRAL_HEADER_SIZE + nameLen));
    const e: ZipEntry = {
      name,
      method: dv.getUint16(p + 10, true),
      crc32: dv.getUint32(p + 16, true),
      compressedSize: dv.getUint32(p + 20, true),
      size: dv.getUint32(p + 24, true),
      localHeaderOffset: dv.getUint32(p + 42, true),
    };
    applyZip64Extra(e, cd.subarray(p + CENTRAL_HEADER_SIZE + nameLen, p + CENTRAL_HEADER_SIZE + nameLen + extraLen), src.name);
    if (e.localHeaderOffset + e.size > src.size) throw new ZipError(`${src.name}: record ${shown(name)}: ${e.size} bytes at offset ${e.localHeaderOffset} exceed the file (${src.size} bytes)`);
    out.push(e);
    p = end;
  }
  return out;
}

/** Values saturated at 0xFFFFFFFF live in the zip64 extra field, in a fixed order. */
function applyZip64Extra(e: ZipEntry, extra: Uint8Array, file: string): void {
  const FULL = 0xffffffff;
  if (e.size !== FULL && e.compressedSize !== FULL && e.localHeaderOffset !== FULL) return;
  const dv = view(extra);
  for (let q = 0; q + 4 <= extra.length; ) {
    const id = dv.getUint16(q, true);
    const len = dv.getUint16(q + 2, true);
    if (q + 4 + len > extra.length) break;
    if (id === EXTRA_ZIP64) {
      let r = q + 4;
      const next = (what: string): number => {
        if (r + 8 > q + 4 + len) throw new ZipError(`${file}: record ${shown(e.name)}: zip64 extra field too short for ${what}`);
        const v = u64(dv, r, `record ${shown(e.name)} ${what}`);
        r += 8;
        return v;
      };
      if (e.size === FULL) e.size = next('size');
      if (e.compressedSize === FULL) e.compressedSize = next('compressed size');
      if (e.localHeaderOffset === FULL) e.localHeaderOffset = next('offset');
      return;
    }
    q += 4 + len;
  }
  throw new ZipError(`${file}: record ${shown(e.name)}: sizes need a zip64 extra field, none found`);
}
