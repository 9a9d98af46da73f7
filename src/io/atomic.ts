/**
 * Atomic output: write to a temporary file in the target folder, fsync, rename into
 * place. On any failure (or SIGINT) the temporary file is removed and an existing output
 * stays untouched, so writing over the input file is safe.
 */
import { promises as fsp, constants as fsc } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { RepmlpError } from '../errors.js';

export class OutputError extends RepmlpError {
  override name = 'OutputError';
}

const pending = new Set<string>();
let signalsHooked = false;

function hookSignals(): void {
  if (signalsHooked) return;
  signalsHooked = true;
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      removePendingSync();
      process.stderr.write(`\nrepmlp: interrupted (${sig}); no output written\n`);
      process.exit(sig === 'SIGINT' ? 130 : 143);
    });
  }
  process.once('exit', removePendingSync);
}

function removePendingSync(): void {
  for (const p of pending) fs.rmSync(p, { recursive: true, force: true });
  pending.clear();
}

function tempName(target: string): string {
  return path.join(path.dirname(target), `.${path.basename(target)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
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

export interface AtomicOptions {
  /**
   * Checks the written temporary file (by its path) before it replaces `target`; runs
   * while the file is being flushed to disk. A throw leaves `target` as it was.
   */
  verify?: (tmpPath: string) => Promise<void>;
}

/**
 * Writes `target` atomically. `write` gets an open file handle on the temporary file and
 * writes the contents (sequentially, streamed: never needs the whole file in memory);
 * `opts.verify` then reads it back while fsync runs, and only then is it renamed into
 * place, so a file that fails its check never replaces anything.
 */
export async function writeFileAtomic(target: string, write: (fh: FileHandle) => Promise<void>, opts: AtomicOptions = {}): Promise<void> {
  await checkFolder(target);
  hookSignals();
  const tmp = tempName(target);
  pending.add(tmp);
  try {
    const fh = await fsp.open(tmp, 'wx', 0o644);
    try {
      await write(fh);
      const synced = fh.sync();
      try {
        await opts.verify?.(tmp);
      } finally {
        await synced;
      }
    } finally {
      await fh.close();
    }
    await fsp.rename(tmp, target);
  } catch (e) {
    await fsp.rm(tmp, { force: true });
    throw e instanceof RepmlpError ? e : new OutputError(`${target}: cannot write: ${(e as Error).message}`, { cause: e });
  } finally {
    pending.delete(tmp);
  }
}

/** Writes bytes (or a list of chunks) to `target` atomically. */
export async function writeBytesAtomic(target: string, data: Uint8Array | Uint8Array[]): Promise<void> {
  await writeFileAtomic(target, async (fh) => {
    for (const chunk of Array.isArray(data) ? data : [data]) await writeAll(fh, chunk);
  });
}

/** fh.write may write less than asked for large buffers; loop until done. */
export async function writeAll(fh: FileHandle, chunk: Uint8Array): Promise<void> {
  let off = 0;
  while (off < chunk.byteLength) {
    const { bytesWritten } = await fh.write(chunk, off, Math.min(chunk.byteLength - off, 1 << 30));
    off += bytesWritten;
  }
}

/**
 * Writes a folder atomically: `fill` populates a temporary sibling folder, which then
 * replaces `target` (an existing target is moved aside first and removed after).
 */
export async function writeDirAtomic(target: string, fill: (dir: string) => Promise<void>): Promise<void> {
  await checkFolder(target);
  hookSignals();
  const tmp = tempName(target);
  pending.add(tmp);
  try {
    await fsp.mkdir(tmp);
    await fill(tmp);
    let old: string | undefined;
    if (fs.existsSync(target)) {
      old = tempName(target) + '.old';
      await fsp.rename(target, old);
    }
    try {
      await fsp.rename(tmp, target);
    } catch (e) {
      if (old) await fsp.rename(old, target);
      throw e;
    }
    if (old) await fsp.rm(old, { recursive: true, force: true });
  } catch (e) {
    await fsp.rm(tmp, { recursive: true, force: true });
    throw e instanceof RepmlpError ? e : new OutputError(`${target}: cannot write: ${(e as Error).message}`, { cause: e });
  } finally {
    pending.delete(tmp);
  }
}
