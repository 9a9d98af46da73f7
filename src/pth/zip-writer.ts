/**
 * Writes zip archives the way torch's reader (miniz) wants them: STORED records whose
 * data starts at a multiple of 64 bytes (padding in an `FB` extra field, as torch's
 * writer does), CRC-32 computed, zip64 fields and end records only where a value does
 * not fit 32 bits (so small files stay readable by every zip tool, JSZip included).
 *
 * Streaming: each record goes straight to the file handle in order; only the central
 * directory (a few dozen bytes per record) is kept in memory.
 */
import { crc32 } from '../util/crc32.js';
import type { FileHandle } from 'node:fs/promises';
import { RepmlpError } from '../errors.js';
import { writeAll } from '../io/atomic.js';
import { type FileRegion, RegionCopier } from '../io/copy.js';
import { ByteWriter } from './pickler.js';
import { EXTRA_ZIP64, LOCAL_HEADER_SIZE, SIG, U16_MAX, U32_MAX } from './zip-format.js';

export class ZipWriteError extends RepmlpError {
  override name = 'ZipWriteError';
}

/** 'FB': the padding extra field torch's writer uses for alignment. */
const EXTRA_FB = 0x4246;
const FLAG_UTF8 = 0x0800;
const METHOD_STORED = 0;
const VERSION_DEFAULT = 20;
const VERSION_ZIP64 = 45;
/** 1980-01-01 00:00 in DOS date/time: the earliest valid stamp (reproducible output). */
const DOS_DATE = 0x0021;
const DOS_TIME = 0;
export const DATA_ALIGNMENT = 64;
/** Records up to this size are written while the next is prepared. */
const PIPELINE_MAX = 128 << 20;
/** Bytes between background datasync calls. */
const FLUSH_EVERY = 16 << 20;
/** One writev for header + data below this size (larger ones are written in parts). */
const WRITEV_MAX = 1 << 30;

export interface ZipWriterOptions {
  /** 'always' writes zip64 fields and end records even for small files (for tests). */
  zip64?: 'auto' | 'always';
}

/** A record's bytes: in memory (one or more chunks), or a region of a source file to copy. */
export type RecordData = Uint8Array | readonly Uint8Array[] | FileRegion;

function isRegion(d: RecordData): d is FileRegion {
  return !(d instanceof Uint8Array) && !Array.isArray(d);
}

/** Offset of the CRC-32 in a local header. */
const LOCAL_CRC_AT = 14;

interface CentralEntry {
  name: Uint8Array;
  crc: number;
  size: number;
  offset: number;
}

export class ZipWriter {
  private pos = 0;
  private readonly entries: CentralEntry[] = [];
  private readonly names = new Set<string>();
  private finished = false;
  private readonly always: boolean;
  private inFlight: Promise<void> = Promise.resolve();
  private written = 0;
  private flushedAt = 0;
  private readonly flushes: Promise<unknown>[] = [];
  private readonly copier = new RegionCopier();

  constructor(private readonly fh: FileHandle, opts: ZipWriterOptions = {}) {
    this.always = opts.zip64 === 'always';
  }

  /** Bytes written so far. */
  get position(): number {
    return this.pos;
  }

  /**
   * Adds a STORED record. `data` may be several chunks (a record larger than one
   * Uint8Array can hold) or a region of another file, copied without being held;
   * `onChunk` reports progress in bytes; `knownCrc32`, when the bytes are a source zip
   * record unchanged, is its recorded CRC (else it is computed).
   */
  async add(name: string, data: RecordData, onChunk?: (bytes: number) => void, knownCrc32?: number): Promise<void> {
    if (this.finished) throw new ZipWriteError(`${name}: archive already finished`);
    if (this.names.has(name)) throw new ZipWriteError(`${name}: duplicate record name`);
    this.names.add(name);
    const region = isRegion(data) ? data : undefined;
    const chunks = region ? [] : data instanceof Uint8Array ? [data] : (data as readonly Uint8Array[]);
    let size = region?.length ?? 0;
    let crc = 0;
    for (const c of chunks) {
      size += c.byteLength;
      if (knownCrc32 === undefined) crc = crc32(c, crc);
    }
    // A copied region's CRC, when unknown, is computed on the way and patched in after.
    if (knownCrc32 !== undefined) crc = knownCrc32 >>> 0;
    const nameBytes = new TextEncoder().encode(name);
    if (nameBytes.length > U16_MAX) throw new ZipWriteError(`${name}: record name too long`);
    const zip64 = this.always || size >= U32_MAX;
    const header = new ByteWriter();
    header.u32(SIG.LOCAL).u16(zip64 ? VERSION_ZIP64 : VERSION_DEFAULT).u16(FLAG_UTF8).u16(METHOD_STORED)
      .u16(DOS_TIME).u16(DOS_DATE).u32(crc).u32(zip64 ? U32_MAX : size).u32(zip64 ? U32_MAX : size);
    const zip64Extra = zip64 ? 4 + 16 : 0;
    const before = this.pos + LOCAL_HEADER_SIZE + nameBytes.length + zip64Extra + 4;
    const pad = (DATA_ALIGNMENT - (before % DATA_ALIGNMENT)) % DATA_ALIGNMENT;
    header.u16(nameBytes.length).u16(zip64Extra + 4 + pad).bytes(nameBytes);
    if (zip64) header.u16(EXTRA_ZIP64).u16(16).u64(size).u64(size);
    header.u16(EXTRA_FB).u16(pad);
    for (let i = 0; i < pad; i++) header.u8(0x5a); // 'Z', as torch pads
    const h = header.result();
    const entry: CentralEntry = { name: nameBytes, crc, size, offset: this.pos };
    this.entries.push(entry);
    this.pos += h.byteLength + size;
    // Pipelined: this record is written while the caller reads and checksums the next
    // one (at most one record in flight, so memory stays bounded).
    await this.inFlight;
    this.inFlight = region ? this.copyRecord(h, region, entry, knownCrc32 === undefined, onChunk) : this.writeRecord(h, chunks, onChunk);
    this.inFlight.catch(() => undefined); // handled where awaited (next add or finish)
    // A large record is written before the caller reads the next one: one big storage
    // in memory at a time keeps a multi-GB rewrite within bounded memory.
    if (size >= PIPELINE_MAX && !region) await this.inFlight;
  }

  private async copyRecord(header: Uint8Array, region: FileRegion, entry: CentralEntry, computeCrc: boolean, onChunk?: (bytes: number) => void): Promise<void> {
    const crc = await this.copier.copy(region, this.fh, {
      head: header, crc: computeCrc,
      onChunk: (n) => {
        this.wrote(n);
        onChunk?.(n);
      },
    });
    if (!computeCrc) return;
    entry.crc = crc;
    const at = new ByteWriter().u32(crc).result();
    await this.fh.write(at, 0, at.byteLength, entry.offset + LOCAL_CRC_AT); // positional: the append position stays
  }

  private async writeRecord(header: Uint8Array, chunks: readonly Uint8Array[], onChunk?: (bytes: number) => void): Promise<void> {
    if (chunks.length === 1 && chunks[0]!.byteLength < WRITEV_MAX) {
      // header and data in one system call; a short write finishes the usual way
      const data = chunks[0]!;
      const { bytesWritten } = await this.fh.writev([header, data]);
      if (bytesWritten < header.byteLength) await writeAll(this.fh, header.subarray(bytesWritten));
      await writeAll(this.fh, data.subarray(Math.max(0, bytesWritten - header.byteLength)));
      this.wrote(data.byteLength);
      onChunk?.(data.byteLength);
    } else {
      await writeAll(this.fh, header);
      for (const c of chunks) {
        await writeAll(this.fh, c);
        this.wrote(c.byteLength);
        onChunk?.(c.byteLength);
      }
    }
  }

  /**
   * Counts data written and starts flushing it to disk in the background as we go, so
   * the final fsync of the atomic write has little left to wait for.
   */
  private wrote(bytes: number): void {
    this.written += bytes;
    if (this.written - this.flushedAt >= FLUSH_EVERY) {
      this.flushedAt = this.written;
      this.flushes.push(this.fh.datasync().catch(() => undefined));
    }
  }

  /** Writes the central directory and end records. */
  async finish(): Promise<void> {
    if (this.finished) return;
    this.finished = true;
    await this.inFlight;
    const cdStart = this.pos;
    const cd = new ByteWriter();
    for (const e of this.entries) this.central(cd, e);
    const cdSize = cd.length;
    const count = this.entries.length;
    const needZip64 = this.always || count >= U16_MAX || cdStart >= U32_MAX || cdSize >= U32_MAX;
    if (needZip64) {
      const zip64End = cdStart + cdSize;
      cd.u32(SIG.ZIP64_END).u64(44).u16(VERSION_ZIP64).u16(VERSION_ZIP64).u32(0).u32(0)
        .u64(count).u64(count).u64(cdSize).u64(cdStart);
      cd.u32(SIG.ZIP64_LOCATOR).u32(0).u64(zip64End).u32(1);
    }
    const c16 = needZip64 && (this.always || count >= U16_MAX) ? U16_MAX : count;
    cd.u32(SIG.END).u16(0).u16(0).u16(c16).u16(c16)
      .u32(needZip64 && (this.always || cdSize >= U32_MAX) ? U32_MAX : cdSize)
      .u32(needZip64 && (this.always || cdStart >= U32_MAX) ? U32_MAX : cdStart)
      .u16(0);
    const tail = cd.result();
    await writeAll(this.fh, tail);
    this.pos += tail.byteLength;
    await Promise.all(this.flushes);
  }

  private central(cd: ByteWriter, e: CentralEntry): void {
    const bigSize = this.always || e.size >= U32_MAX;
    const bigOffset = this.always || e.offset >= U32_MAX;
    const extraLen = bigSize || bigOffset ? 4 + (bigSize ? 16 : 0) + (bigOffset ? 8 : 0) : 0;
    const version = extraLen ? VERSION_ZIP64 : VERSION_DEFAULT;
    cd.u32(SIG.CENTRAL).u16(version).u16(version).u16(FLAG_UTF8).u16(METHOD_STORED).u16(DOS_TIME).u16(DOS_DATE)
      .u32(e.crc).u32(bigSize ? U32_MAX : e.size).u32(bigSize ? U32_MAX : e.size)
      .u16(e.name.length).u16(extraLen).u16(0).u16(0).u16(0).u32(0)
      .u32(bigOffset ? U32_MAX : e.offset).bytes(e.name);
    if (extraLen) {
      cd.u16(EXTRA_ZIP64).u16(extraLen - 4);
      if (bigSize) cd.u64(e.size).u64(e.size);
      if (bigOffset) cd.u64(e.offset);
    }
  }

}
