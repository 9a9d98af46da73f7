/**
 * Atomic output: every output is written aside, fsynced, checked, and only then put in
 * place, so on any failure an existing output stays untouched and writing over the
 * input file is safe.
 *
 * Temporary files are anonymous where the system allows it (Linux: `open(dir,
 * O_TMPFILE)`): until it is committed the file has no name, so a crash, SIGKILL or
 * power cut leaves nothing behind. Committing needs linkat(AT_SYMLINK_FOLLOW) on
 * /proc/self/fd/N, which Node does not bind (its link(2) returns EXDEV for /proc
 * paths); coreutils' `ln -L` makes exactly that call, from a child process (~5 ms), to a
 * hidden sibling name that is then renamed over the target. Where either is missing
 * (other systems, a filesystem without O_TMPFILE, no `ln`) the temporary file is a named
 * sibling `.OUT.tmp-PID-XXXXXXXX`, removed on failure and on SIGINT/SIGTERM, and swept
 * by the next write into that folder once its PID is gone. See docs/decisions.md.
 */
import { promises as fsp, constants as fsc } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { RepmlpError } from '../errors.js';

export class OutputError extends RepmlpError {
  override name = 'OutputError';
}

/** Named artifacts (fallback temp files, staging folders) to remove on failure or signal. */
const pending = new Set<string>();
let signalsHooked = false;

function onSignal(sig: 'SIGINT' | 'SIGTERM'): void {
  removePendingSync();
  process.stderr.write(`\nrepmlp: interrupted (${sig}); no output written\n`);
  process.exit(sig === 'SIGINT' ? 130 : 143);
}
const onSigint = (): void => onSignal('SIGINT');
const onSigterm = (): void => onSignal('SIGTERM');

/**
 * Signal handlers exist only while a named artifact does: with anonymous temporaries
 * the default action (terminate at once) is the right one, and it is honoured even in
 * the middle of long synchronous work, where a JS handler would wait for the event loop.
 */
function track(p: string): void {
  pending.add(p);
  if (!signalsHooked) {
    signalsHooked = true;
    process.on('SIGINT', onSigint);
    process.on('SIGTERM', onSigterm);
    process.on('exit', removePendingSync);
  }
}

function untrack(p: string): void {
  pending.delete(p);
  if (pending.size === 0 && signalsHooked) {
    signalsHooked = false;
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigterm);
    process.off('exit', removePendingSync);
  }
}

function removePendingSync(): void {
  for (const p of pending) fs.rmSync(p, { recursive: true, force: true });
  pending.clear();
}

const TEMP_RE = /^\..+\.tmp-(\d+)-[0-9a-f]{8}(\.old)?$/;

function tempName(target: string): string {
  return path.join(path.dirname(target), `.${path.basename(target)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
}

/** Whether process `pid` exists (signal 0; EPERM = exists, not ours). Also used by scratch.ts. */
export function pidAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes named temporaries (`.NAME.tmp-PID-XXXXXXXX`) in `dir` whose process is gone:
 * what a killed run of the fallback path left. Only our own pattern, only dead PIDs.
 */
export function sweepStaleTemps(dir: string): string[] {
  const removed: string[] = [];
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return removed;
  }
  for (const name of names) {
    const m = TEMP_RE.exec(name);
    if (!m || pidAlive(Number(m[1]))) continue;
    try {
      fs.rmSync(path.join(dir, name), { recursive: true, force: true });
      removed.push(name);
    } catch {
      // not ours to fight over: leave it
    }
  }
  return removed;
}

async function checkFolder(target: string): Promise<void> {
  const dir = path.dirname(path.resolve(target));
  let st: fs.Stats;
  try {
    st = await fsp.stat(dir);
  } catch {
    throw new OutputError(`${target}: folder ${dir} does not exist`);
  }
  if (!st.isDirectory()) throw new OutputError(`${target}: ${dir} is not a folder`);
  try {
    await fsp.access(dir, fsc.W_OK);
  } catch {
    throw new OutputError(`${target}: folder ${dir} is not writable`);
  }
}

/** Same file (device and inode), or the same resolved path when either does not exist. */
export function sameFile(a: string, b: string): boolean {
  if (path.resolve(a) === path.resolve(b)) return true;
  try {
    const x = fs.statSync(a);
    const y = fs.statSync(b);
    return x.dev === y.dev && x.ino === y.ino;
  } catch {
    return false;
  }
}

// --- anonymous temporary files ---------------------------------------------------------

/** O_TMPFILE is __O_TMPFILE | O_DIRECTORY; __O_TMPFILE is 0o20000000 on x86-64 and arm64 (not in fs.constants). */
const O_TMPFILE = 0o20000000 | (fsc.O_DIRECTORY ?? 0);
let lnWorks: boolean | undefined;

function canAnonymous(): boolean {
  if (process.platform !== 'linux' || process.env.REPMLP_NAMED_TEMPS === '1') return false;
  if (process.arch !== 'x64' && process.arch !== 'arm64') return false;
  return lnWorks !== false;
}

/** For tests: make the next commit find `ln` failing (then the copy fallback is used). */
export function _breakLinkForTest(): void {
  lnWorks = undefined;
  brokenLn = true;
}
let brokenLn = false;

function run(cmd: string, args: string[]): Promise<void> {
  if (brokenLn) {
    brokenLn = false;
    return Promise.reject(new Error('ln: broken for a test'));
  }
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: 30_000 }, (err, _out, stderr) => (err ? reject(new Error(String(stderr).trim() || err.message)) : resolve()));
  });
}

/** One temporary output file: written through `fh`, readable by `path` until committed. */
export interface TempFile {
  readonly target: string;
  readonly fh: FileHandle;
  /** A path that opens the temporary file (/proc/self/fd/N when anonymous). */
  readonly path: string;
  readonly anonymous: boolean;
}

/** Opens a temporary file for `target` (anonymous where possible), in `dir` (default: target's folder). */
export async function openTemp(target: string, dir = path.dirname(path.resolve(target))): Promise<TempFile> {
  if (canAnonymous()) {
    try {
      const fh = await fsp.open(dir, O_TMPFILE | fsc.O_RDWR, 0o644);
      return { target, fh, path: `/proc/self/fd/${fh.fd}`, anonymous: true };
    } catch {
      // filesystem without O_TMPFILE (EOPNOTSUPP, EISDIR on old kernels): named below
    }
  }
  const name = tempName(path.join(dir, path.basename(target)));
  track(name);
  try {
    const fh = await fsp.open(name, 'wx', 0o644);
    return { target, fh, path: name, anonymous: false };
  } catch (e) {
    untrack(name);
    throw e;
  }
}

/**
 * Gives an anonymous temp file a hidden name in `dir` (linkat via `ln -L`), or returns
 * the named temp. Should `ln` fail (no coreutils, /proc hidden), the bytes are copied
 * through the open handle into a named temp instead, and later writes go named.
 */
async function nameTemp(t: TempFile, dir: string): Promise<string> {
  if (!t.anonymous) return t.path;
  const name = tempName(path.join(dir, path.basename(t.target)));
  track(name);
  if (lnWorks !== false) {
    try {
      await run('ln', ['-L', `/proc/${process.pid}/fd/${t.fh.fd}`, name]);
      lnWorks = true;
      return name;
    } catch {
      lnWorks = false;
      await fsp.rm(name, { force: true });
    }
  }
  try {
    await copyOut(t.fh, name);
  } catch (e) {
    await fsp.rm(name, { force: true });
    untrack(name);
    throw new OutputError(`${t.target}: cannot put the temporary file in place: ${(e as Error).message}`, { cause: e });
  }
  return name;
}

/** Copies an open file's bytes into a new file `dest` (fsynced). */
async function copyOut(src: FileHandle, dest: string): Promise<void> {
  const out = await fsp.open(dest, 'wx', 0o644);
  try {
    const buf = Buffer.allocUnsafe(8 << 20);
    for (let pos = 0; ;) {
      const { bytesRead } = await src.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) break;
      await writeAll(out, buf.subarray(0, bytesRead));
      pos += bytesRead;
    }
    await out.sync();
  } finally {
    await out.close();
  }
}

/** Closes and forgets a temp file (a named one is removed). */
export async function discardTemp(t: TempFile): Promise<void> {
  await t.fh.close().catch(() => {});
  if (!t.anonymous) {
    await fsp.rm(t.path, { force: true });
    untrack(t.path);
  }
}

/** Puts a synced, checked temp file in place at `dest` (default its target) and closes it. */
export async function commitTemp(t: TempFile, dest = t.target): Promise<void> {
  const named = await nameTemp(t, path.dirname(path.resolve(dest)));
  try {
    await fsp.rename(named, dest);
  } catch (e) {
    await fsp.rm(named, { force: true });
    throw e;
  } finally {
    untrack(named);
    if (!t.anonymous) untrack(t.path);
    await t.fh.close().catch(() => {});
  }
}

// --- single files ----------------------------------------------------------------------

export interface AtomicOptions {
  /**
   * Checks the written temporary file (by a path that opens it) before it replaces
   * `target`; runs while the file is being flushed to disk. A throw leaves `target` as
   * it was.
   */
  verify?: (tmpPath: string) => Promise<void>;
}

function wrapError(target: string, e: unknown): RepmlpError {
  return e instanceof RepmlpError ? e : new OutputError(`${target}: cannot write: ${(e as Error).message}`, { cause: e });
}

/** Writes the contents through `write`, fsyncs, runs `verify` during the fsync. */
async function fill(t: TempFile, write: (fh: FileHandle) => Promise<void>, verify?: (p: string) => Promise<void>): Promise<void> {
  await write(t.fh);
  const synced = t.fh.sync();
  try {
    await verify?.(t.path);
  } finally {
    await synced;
  }
}

/**
 * Writes `target` atomically. `write` gets an open file handle on the temporary file and
 * writes the contents (sequentially, streamed: never needs the whole file in memory);
 * `opts.verify` then reads it back while fsync runs, and only then is it put in place,
 * so a file that fails its check never replaces anything.
 */
export async function writeFileAtomic(target: string, write: (fh: FileHandle) => Promise<void>, opts: AtomicOptions = {}): Promise<void> {
  await checkFolder(target);
  sweepStaleTemps(path.dirname(path.resolve(target)));
  let t: TempFile | undefined;
  try {
    if (fs.existsSync(target) && fs.statSync(target).isDirectory()) throw new OutputError(`${target}: is a folder, not a file; give a file name`);
    t = await openTemp(target);
    await fill(t, write, opts.verify);
    const done = t;
    t = undefined;
    await commitTemp(done);
  } catch (e) {
    if (t) await discardTemp(t);
    throw wrapError(target, e);
  }
}

/** Writes bytes (or a list of chunks) to `target` atomically. */
export async function writeBytesAtomic(target: string, data: Uint8Array | Uint8Array[], opts: AtomicOptions = {}): Promise<void> {
  await writeFileAtomic(target, (fh) => writeChunks(fh, data), opts);
}

async function writeChunks(fh: FileHandle, data: Uint8Array | Uint8Array[]): Promise<void> {
  for (const chunk of Array.isArray(data) ? data : [data]) await writeAll(fh, chunk);
}

/** fh.write may write less than asked for large buffers; loop until done. */
export async function writeAll(fh: FileHandle, chunk: Uint8Array): Promise<void> {
  let off = 0;
  while (off < chunk.byteLength) {
    const { bytesWritten } = await fh.write(chunk, off, Math.min(chunk.byteLength - off, 1 << 30));
    off += bytesWritten;
  }
}

// --- several files, committed together ----------------------------------------------------

/**
 * Several outputs written aside, checked together, then committed together: an export
 * writes its ONNX file and the TF.js model.json + shards, runs its check on the
 * temporaries, and only then replaces anything. Files inside a folder that does not
 * exist yet go into a hidden staging folder that is renamed into place as a whole.
 */
export class OutputSet {
  private readonly files: TempFile[] = [];
  /** Folders to create at commit (target folder -> its parent's hidden staging name). */
  private readonly fresh = new Map<string, string | null>();
  private readonly removeAfter: string[] = [];
  private done = false;

  /** Declares a folder that does not exist yet; files under it are staged and it appears at commit. */
  async freshFolder(dir: string): Promise<void> {
    await checkFolder(dir);
    sweepStaleTemps(path.dirname(path.resolve(dir)));
    this.fresh.set(path.resolve(dir), null);
  }

  /** Writes one output aside; returns a path that opens the temporary file (for checks). */
  async file(target: string, write: (fh: FileHandle) => Promise<void>): Promise<string> {
    const abs = path.resolve(target);
    const parent = path.dirname(abs);
    // Inside a fresh folder the temp lives in that folder's parent (same filesystem).
    const inFresh = this.fresh.has(parent);
    if (!inFresh) {
      await checkFolder(target);
      sweepStaleTemps(parent);
      if (fs.existsSync(abs) && fs.statSync(abs).isDirectory()) throw new OutputError(`${target}: is a folder, not a file`);
    }
    const t = await openTemp(target, inFresh ? path.dirname(parent) : parent);
    this.files.push(t);
    try {
      await fill(t, write);
    } catch (e) {
      throw wrapError(target, e);
    }
    return t.path;
  }

  /** Bytes as one output. */
  bytes(target: string, data: Uint8Array | Uint8Array[]): Promise<string> {
    return this.file(target, (fh) => writeChunks(fh, data));
  }

  /** A file to delete after a successful commit (e.g. a shard the old model.json named and the new one does not). */
  removeOnCommit(file: string): void {
    this.removeAfter.push(file);
  }

  /** Puts every file in place (fresh folders appear whole); then removes the obsolete files. */
  async commit(): Promise<void> {
    if (this.done) throw new OutputError('output set already committed or discarded');
    this.done = true;
    const staged: [string, string][] = [];
    try {
      for (const dir of this.fresh.keys()) {
        const stage = tempName(dir);
        track(stage);
        await fsp.mkdir(stage);
        this.fresh.set(dir, stage);
        staged.push([stage, dir]);
      }
      // Files in existing folders last-but-not-least: model.json is added last by its writer.
      for (const t of this.files.splice(0)) {
        const abs = path.resolve(t.target);
        const stage = this.fresh.get(path.dirname(abs));
        await commitTemp(t, stage ? path.join(stage, path.basename(abs)) : abs);
      }
      for (const [stage, dir] of staged) {
        await fsp.rename(stage, dir);
        untrack(stage);
      }
    } catch (e) {
      await this.discardFiles();
      for (const [stage] of staged) {
        await fsp.rm(stage, { recursive: true, force: true });
        untrack(stage);
      }
      throw wrapError([...this.fresh.keys()][0] ?? 'output', e);
    }
    for (const f of this.removeAfter) await fsp.rm(f, { force: true });
  }

  /** Drops every temporary (nothing is put in place). Safe to call twice. */
  async discard(): Promise<void> {
    this.done = true;
    await this.discardFiles();
  }

  private async discardFiles(): Promise<void> {
    for (const t of this.files.splice(0)) await discardTemp(t);
  }
}

/**
 * A folder of symlinks with the given names pointing at temporary files, so that a
 * reader that resolves siblings by name (ONNX external data) sees the set as it will be
 * once committed. Removed by the returned function.
 */
export function linkView(files: Map<string, string>, tmpRoot: string): { dir: string; remove: () => void } {
  const dir = tempName(path.join(tmpRoot, 'repmlp-view'));
  track(dir);
  fs.mkdirSync(dir);
  for (const [name, target] of files) fs.symlinkSync(target.startsWith('/proc/self/') ? target.replace('/proc/self/', `/proc/${process.pid}/`) : path.resolve(target), path.join(dir, name));
  return {
    dir,
    remove: () => {
      fs.rmSync(dir, { recursive: true, force: true });
      untrack(dir);
    },
  };
}
