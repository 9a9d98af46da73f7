/**
 * Random-access bytes: a whole Uint8Array, or a file read on demand (no single Buffer
 * of the whole file, so files over 2 GB work and `inspect` never touches tensor bytes).
 * Offsets are plain numbers: safe up to 2^53, far past any real file.
 */
import * as fs from 'node:fs';
import { constants as bufferConstants } from 'node:buffer';
import { RepmlpError } from '../errors.js';
import type { FileRegion, RegionSource } from '../io/copy.js';

/** The largest single Buffer Node can allocate. */
const MAX_ARRAY = bufferConstants.MAX_LENGTH;

export class SourceError extends RepmlpError {
  override name = 'SourceError';
}

export interface ByteSource {
  /** Name for messages: the file path or '<bytes>'. */
  readonly name: string;
  readonly size: number;
  /** Exactly `length` bytes at `offset`; throws SourceError past the end. */
  read(offset: number, length: number): Uint8Array;
  /**
   * The same range as a region of a file that writers can copy without holding it
   * (src/io/copy.ts), or undefined when the bytes are in memory anyway.
   */
  region(offset: number, length: number): FileRegion | undefined;
}

export class MemorySource implements ByteSource {
  readonly size: number;
  private readonly bytes: Uint8Array;
  constructor(bytes: Uint8Array, readonly name = '<bytes>') {
    // A Buffer (readFileSync's) is viewed as a plain Uint8Array: Buffer#slice shares memory.
    this.bytes = Buffer.isBuffer(bytes) ? new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) : bytes;
    this.size = bytes.byteLength;
  }
  read(offset: number, length: number): Uint8Array {
    checkRange(this, offset, length);
    return this.bytes.subarray(offset, offset + length);
  }
  region(): undefined {
    return undefined;
  }
}

// Files stay open while their storages may still be read; closed when collected.
const closer = new FinalizationRegistry<number>((fd) => {
  try {
    fs.closeSync(fd);
  } catch {
    /* already closed */
  }
});

export class FileSource implements ByteSource, RegionSource {
  readonly size: number;
  private readonly fd: number;
  constructor(readonly name: string) {
    let fd: number;
    try {
      fd = fs.openSync(name, 'r');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new SourceError(`${name}: ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a folder, not a file' : `cannot open (${code ?? (e as Error).message})`}`);
    }
    const st = fs.fstatSync(fd);
    if (!st.isFile()) {
      fs.closeSync(fd);
      throw new SourceError(`${name}: not a regular file`);
    }
    this.fd = fd;
    this.size = st.size;
    closer.register(this, fd);
  }
  read(offset: number, length: number): Uint8Array {
    checkRange(this, offset, length);
    if (length > MAX_ARRAY) throw new SourceError(`${this.name}: ${length} bytes at offset ${offset} do not fit one array (Node holds at most ${MAX_ARRAY}); tensors this large are not supported`);
    // A fresh buffer per read, 8-byte aligned (Node aligns its pool slices to 8), so
    // typed-array views need no copy; not zero-filled, since it is overwritten at once.
    const pooled = Buffer.allocUnsafe(length);
    // A plain Uint8Array over it: Buffer's slice() does not copy, which callers expect.
    const buf = new Uint8Array(pooled.buffer, pooled.byteOffset, length);
    let done = 0;
    while (done < length) {
      const n = fs.readSync(this.fd, buf, done, Math.min(length - done, 1 << 30), offset + done);
      if (n === 0) throw new SourceError(`${this.name}: file shrank while reading (offset ${offset + done})`);
      done += n;
    }
    return buf;
  }

  region(offset: number, length: number): FileRegion {
    checkRange(this, offset, length);
    return { source: this, offset, length };
  }

  /**
   * Fills `into` from `offset` on libuv's thread pool, so a copy can read ahead while
   * the previous chunk is written. Same errors as read().
   */
  async readInto(into: Uint8Array, offset: number): Promise<void> {
    checkRange(this, offset, into.byteLength);
    let done = 0;
    while (done < into.byteLength) {
      let n: number;
      try {
        n = await readAt(this.fd, into, done, into.byteLength - done, offset + done);
      } catch (e) {
        throw new SourceError(`${this.name}: cannot read at offset ${offset + done} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
      }
      if (n === 0) throw new SourceError(`${this.name}: file shrank while reading (offset ${offset + done})`);
      done += n;
    }
  }
}

function readAt(fd: number, into: Uint8Array, at: number, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => {
    fs.read(fd, into, at, Math.min(length, 1 << 30), position, (err, n) => (err ? reject(err) : resolve(n)));
  });
}

function checkRange(src: ByteSource, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > src.size) {
    throw new SourceError(`${src.name}: read of ${length} bytes at offset ${offset} is past the end of the file (${src.size} bytes)`);
  }
}
