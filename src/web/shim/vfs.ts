/**
 * The browser build's `node:fs`: a small in-memory file system, so the library's own
 * readers and writers (FileSource, writeFileAtomic, ZipWriter, writeTfjs, ...) run in a
 * page unchanged, with the same code paths as the CLI.
 *
 * - Inputs are mounted as Blobs (a File from an <input>): reads are `Blob.slice` of just
 *   the bytes asked for, synchronously through FileReaderSync in a worker. Where there
 *   is no FileReaderSync (a page's main thread) `mount` reads the Blob into one buffer
 *   first: held once, never twice.
 * - Outputs are written as lists of chunks (positional writes patch them, as zip-writer
 *   does for CRCs); `take` hands a written file back as one Uint8Array, or a Blob of
 *   its chunks with no concatenation.
 *
 * Only what the bundled modules call is implemented; anything else throws an error that
 * names the call, which the browser tests would see.
 */

interface FileNode {
  kind: 'file';
  /** A mounted input: read through slices. */
  blob?: Blob;
  /** Written (or mounted in-memory) contents, in order. */
  chunks: Uint8Array[];
  size: number;
}
interface DirNode {
  kind: 'dir';
}
type Node = FileNode | DirNode;

const nodes = new Map<string, Node>([['/', { kind: 'dir' }]]);

declare const FileReaderSync: { new (): { readAsArrayBuffer(b: Blob): ArrayBuffer } } | undefined;
const syncReader = typeof FileReaderSync === 'function' ? new FileReaderSync() : null;

function norm(p: string): string {
  const parts: string[] = [];
  for (const s of String(p).split('/')) {
    if (s === '' || s === '.') continue;
    if (s === '..') parts.pop();
    else parts.push(s);
  }
  return '/' + parts.join('/');
}

function parentOf(p: string): string {
  const i = p.lastIndexOf('/');
  return i <= 0 ? '/' : p.slice(0, i);
}

function fsError(code: string, syscall: string, p: string): Error {
  const e = new Error(`${code}: ${syscall} '${p}'`) as Error & { code: string; syscall: string; path: string };
  e.code = code;
  e.syscall = syscall;
  e.path = p;
  return e;
}

function get(p: string, syscall: string): Node {
  const n = nodes.get(norm(p));
  if (!n) throw fsError('ENOENT', syscall, p);
  return n;
}

function fileOf(p: string, syscall: string): FileNode {
  const n = get(p, syscall);
  if (n.kind !== 'file') throw fsError('EISDIR', syscall, p);
  return n;
}

function mkdirp(p: string): void {
  const n = norm(p);
  if (nodes.has(n)) return;
  mkdirp(parentOf(n));
  nodes.set(n, { kind: 'dir' });
}

// ---------------------------------------------------------------------------------------
// The web layer's side: mount inputs, take outputs.

/** Makes `bytes` readable at `path` (folders created). A Blob is read lazily where possible. */
export async function mount(path: string, data: Blob | ArrayBuffer | Uint8Array): Promise<void> {
  const p = norm(path);
  mkdirp(parentOf(p));
  if (data instanceof Blob) {
    if (syncReader) {
      nodes.set(p, { kind: 'file', blob: data, chunks: [], size: data.size });
      return;
    }
    data = await data.arrayBuffer();
  }
  const bytes = data instanceof Uint8Array ? data : new Uint8Array(data);
  nodes.set(p, { kind: 'file', chunks: [bytes], size: bytes.byteLength });
}

/** A written file's contents: one array (chunks concatenated once) or a Blob of the chunks. */
export function take(path: string, as: 'bytes' | 'blob' = 'bytes'): Uint8Array | Blob {
  const f = fileOf(path, 'take');
  nodes.delete(norm(path));
  if (as === 'blob') return f.blob ?? new Blob(f.chunks as BlobPart[]);
  if (f.blob) return new Uint8Array(readBlob(f.blob, 0, f.size));
  if (f.chunks.length === 1 && f.chunks[0]!.byteLength === f.size) return f.chunks[0]!;
  const out = new Uint8Array(f.size);
  let at = 0;
  for (const c of f.chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

/** Files under `dir` (relative names), for exports that write a folder. */
export function list(dir: string): string[] {
  const d = norm(dir) + '/';
  return [...nodes.keys()].filter((k) => k.startsWith(d) && nodes.get(k)!.kind === 'file').map((k) => k.slice(d.length)).sort();
}

/** Removes `path` and everything under it. */
export function remove(path: string): void {
  const p = norm(path);
  for (const k of [...nodes.keys()]) if (k === p || k.startsWith(p + '/')) nodes.delete(k);
}

// ---------------------------------------------------------------------------------------
// Reading and writing bytes.

function readBlob(blob: Blob, offset: number, length: number): ArrayBuffer {
  if (!syncReader) throw new Error('internal: synchronous Blob read outside a worker');
  return syncReader.readAsArrayBuffer(blob.slice(offset, offset + length));
}

function readInto(f: FileNode, into: Uint8Array, at: number, length: number, position: number): number {
  const n = Math.max(0, Math.min(length, f.size - position));
  if (n === 0) return 0;
  if (f.blob) {
    into.set(new Uint8Array(readBlob(f.blob, position, n)), at);
    return n;
  }
  let start = 0;
  let done = 0;
  for (const c of f.chunks) {
    const end = start + c.byteLength;
    if (end > position + done && start < position + n) {
      const from = position + done - start;
      const k = Math.min(c.byteLength - from, n - done);
      into.set(c.subarray(from, from + k), at + done);
      done += k;
      if (done === n) break;
    }
    start = end;
  }
  return done;
}

/** Writes a copy of `data` at `position` (the caller may reuse its buffer at once). */
function writeAt(f: FileNode, data: Uint8Array, position: number): void {
  if (f.blob) throw fsError('EBADF', 'write', '(mounted input)');
  let rest = data;
  let pos = position;
  // Overwrite what exists (zip-writer patches a CRC into a local header)...
  if (pos < f.size) {
    let start = 0;
    for (const c of f.chunks) {
      const end = start + c.byteLength;
      if (end > pos && rest.byteLength) {
        const from = pos - start;
        const k = Math.min(c.byteLength - from, rest.byteLength);
        c.set(rest.subarray(0, k), from);
        rest = rest.subarray(k);
        pos += k;
      }
      start = end;
      if (!rest.byteLength) break;
    }
  }
  if (!rest.byteLength) return;
  if (pos > f.size) {
    f.chunks.push(new Uint8Array(pos - f.size));
    f.size = pos;
  }
  f.chunks.push(rest.slice());
  f.size += rest.byteLength;
}

// ---------------------------------------------------------------------------------------
// node:fs, the parts the bundled modules use.

const fds = new Map<number, { path: string; pos: number }>();
let nextFd = 3;

function fdFile(fd: number, syscall: string): FileNode {
  const e = fds.get(fd);
  if (!e) throw fsError('EBADF', syscall, String(fd));
  return fileOf(e.path, syscall);
}

class Stats {
  constructor(private readonly n: Node) {}
  get size(): number {
    return this.n.kind === 'file' ? this.n.size : 0;
  }
  isFile(): boolean {
    return this.n.kind === 'file';
  }
  isDirectory(): boolean {
    return this.n.kind === 'dir';
  }
}

export const constants = { R_OK: 4, W_OK: 2, F_OK: 0, X_OK: 1 };

export function existsSync(p: string): boolean {
  return nodes.has(norm(p));
}
export function statSync(p: string): Stats {
  return new Stats(get(p, 'stat'));
}
export function accessSync(p: string): void {
  get(p, 'access');
}
export function openSync(p: string, flags: string = 'r'): number {
  const n = norm(p);
  if (flags.startsWith('w')) {
    if (flags.includes('x') && nodes.has(n)) throw fsError('EEXIST', 'open', p);
    if (!nodes.has(parentOf(n))) throw fsError('ENOENT', 'open', p);
    nodes.set(n, { kind: 'file', chunks: [], size: 0 });
  } else get(p, 'open');
  const fd = nextFd++;
  fds.set(fd, { path: n, pos: 0 });
  return fd;
}
export function closeSync(fd: number): void {
  fds.delete(fd);
}
export function fstatSync(fd: number): Stats {
  return new Stats(fdFile(fd, 'fstat'));
}
export function readSync(fd: number, buf: Uint8Array, at: number, length: number, position: number | null): number {
  const e = fds.get(fd);
  const f = fdFile(fd, 'read');
  const pos = position ?? e!.pos;
  const n = readInto(f, buf, at, length, pos);
  if (position === null) e!.pos += n;
  return n;
}
export function read(fd: number, buf: Uint8Array, at: number, length: number, position: number, cb: (err: Error | null, n: number) => void): void {
  let n = 0;
  let err: Error | null = null;
  try {
    n = readSync(fd, buf, at, length, position);
  } catch (e) {
    err = e as Error;
  }
  queueMicrotask(() => cb(err, n));
}
export function readFileSync(p: string, enc?: string | { encoding?: string }): Uint8Array | string {
  const f = fileOf(p, 'open');
  const out = new Uint8Array(f.size);
  readInto(f, out, 0, f.size, 0);
  const e = typeof enc === 'string' ? enc : enc?.encoding;
  return e ? new TextDecoder().decode(out) : out;
}
export function writeFileSync(p: string, data: Uint8Array | string): void {
  const fd = openSync(p, 'w');
  writeAt(fdFile(fd, 'write'), typeof data === 'string' ? new TextEncoder().encode(data) : data, 0);
  closeSync(fd);
}
export function rmSync(p: string): void {
  remove(p);
}
export function mkdirSync(p: string, opts?: { recursive?: boolean }): void {
  if (opts?.recursive) return mkdirp(p);
  if (!nodes.has(parentOf(norm(p)))) throw fsError('ENOENT', 'mkdir', p);
  nodes.set(norm(p), { kind: 'dir' });
}
export function readdirSync(p: string): string[] {
  const d = norm(p) === '/' ? '/' : norm(p) + '/';
  return [...nodes.keys()].filter((k) => k !== d && k.startsWith(d) && !k.slice(d.length).includes('/')).map((k) => k.slice(d.length)).sort();
}

/** node:fs/promises FileHandle: what atomic.ts, zip-writer.ts, sink.ts and copy.ts use. */
class FileHandle {
  private pos = 0;
  constructor(readonly fd: number, private readonly path: string) {}
  private file(): FileNode {
    return fileOf(this.path, 'write');
  }
  async write(buf: Uint8Array, off = 0, len = buf.byteLength - off, position: number | null = null): Promise<{ bytesWritten: number; buffer: Uint8Array }> {
    const at = position ?? this.pos;
    writeAt(this.file(), buf.subarray(off, off + len), at);
    if (position === null || position === undefined) this.pos = at + len;
    return { bytesWritten: len, buffer: buf };
  }
  async writev(bufs: Uint8Array[], position: number | null = null): Promise<{ bytesWritten: number; buffers: Uint8Array[] }> {
    let at = position ?? this.pos;
    let n = 0;
    for (const b of bufs) {
      writeAt(this.file(), b, at);
      at += b.byteLength;
      n += b.byteLength;
    }
    if (position === null || position === undefined) this.pos = at;
    return { bytesWritten: n, buffers: bufs };
  }
  async read(buf: Uint8Array, off: number, len: number, position: number): Promise<{ bytesRead: number; buffer: Uint8Array }> {
    return { bytesRead: readInto(fileOf(this.path, 'read'), buf, off, len, position), buffer: buf };
  }
  async stat(): Promise<Stats> {
    return statSync(this.path);
  }
  async sync(): Promise<void> {}
  async datasync(): Promise<void> {}
  async close(): Promise<void> {
    fds.delete(this.fd);
  }
}

export const promises = {
  async stat(p: string) {
    return statSync(p);
  },
  async access(p: string) {
    accessSync(p);
  },
  async open(p: string, flags = 'r') {
    const fd = openSync(p, flags);
    return new FileHandle(fd, norm(p));
  },
  async rename(from: string, to: string) {
    const a = norm(from);
    const b = norm(to);
    get(a, 'rename');
    for (const k of [...nodes.keys()]) {
      if (k === a || k.startsWith(a + '/')) {
        nodes.set(b + k.slice(a.length), nodes.get(k)!);
        nodes.delete(k);
      }
    }
  },
  async rm(p: string) {
    remove(p);
  },
  async unlink(p: string) {
    fileOf(p, 'unlink');
    remove(p);
  },
  async mkdir(p: string, opts?: { recursive?: boolean }) {
    mkdirSync(p, opts);
  },
  async readFile(p: string, enc?: string | { encoding?: string }) {
    return readFileSync(p, enc);
  },
  async writeFile(p: string, data: Uint8Array | string) {
    writeFileSync(p, data);
  },
  async readdir(p: string) {
    return readdirSync(p);
  },
};

export default { constants, existsSync, statSync, accessSync, openSync, closeSync, fstatSync, readSync, read, readFileSync, writeFileSync, rmSync, mkdirSync, readdirSync, promises };
