/**
 * Writing checkpoints atomically (temp file in the target folder, fsync, rename: see
 * src/io/atomic.ts): torch's zip format (default) or safetensors.
 *
 * Zip layout, as torch.save makes it: `archive/data.pkl`, `archive/byteorder`
 * ("little"), `archive/data/<key>` per storage in key order, `archive/version` ("3\n").
 * Storages are streamed one at a time and not kept, so a checkpoint larger than memory
 * read lazily can be rewritten in bounded memory.
 */
import { type AtomicOptions, writeFileAtomic } from '../io/atomic.js';
import { RepmlpError } from '../errors.js';
import { Tensor } from '../tensor.js';
import { PyDict, type PyValue } from './pyobj.js';
import { pickleCheckpoint } from './pickler.js';
import { ZipWriter } from './zip-writer.js';
import { tensorsOf, writeSafetensors } from './safetensors.js';
import { type LayoutOptions, LayoutError, planSafetensors, planZip } from './layout.js';

export class WriteError extends RepmlpError {
  override name = 'WriteError';
}

interface WriteOptionsBase extends AtomicOptions {
  format?: 'zip' | 'safetensors';
  /** Top folder inside the zip (torch uses the file's base name, or 'archive'). */
  archiveName?: string;
  /** 'always': zip64 fields even for small files (tests of the zip64 path). */
  zip64?: 'auto' | 'always';
  /** safetensors `__metadata__` (strings); defaults to the dict's own. */
  metadata?: ReadonlyMap<string, string> | Record<string, string>;
  /** Called with (bytesDone, bytesTotal) of tensor data as it is written. */
  onProgress?: (done: number, total: number) => void;
}

/** Layout choices and bounds (src/pth/layout.ts), checked before the file is opened. */
export type WriteOptions = WriteOptionsBase & LayoutOptions;

const ZIP_VERSION = '3\n';

/** A layout refusal names the file it was about to write. */
function atPath<T>(path: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof LayoutError) throw new LayoutError(`${path}: ${e.message}`);
    throw e;
  }
}
const BYTE_ORDER = 'little';

/**
 * Writes `obj` to `path`. zip: any PyValue (what torch.save accepts: dicts, lists,
 * tensors, ...). safetensors: a dict of name -> tensor (other entries are refused).
 */
export async function writeCheckpoint(path: string, obj: PyValue, opts: WriteOptions = {}): Promise<void> {
  const format = opts.format ?? 'zip';
  if (format === 'safetensors') {
    if (!(obj instanceof PyDict)) throw new WriteError(`${path}: safetensors holds a dict of name -> tensor, not a ${obj instanceof Tensor ? 'single tensor' : typeof obj}`);
    const total = atPath(path, () => planSafetensors(tensorsOf(obj), opts));
    let done = 0;
    await writeFileAtomic(path, (fh) =>
      writeSafetensors(fh, obj, {
        ...(opts.metadata ? { metadata: opts.metadata } : {}),
        onProgress: (n) => opts.onProgress?.((done += n), total),
      }),
    opts);
    return;
  }
  if (format !== 'zip') throw new WriteError(`${path}: unknown checkpoint format '${String(format)}' (zip or safetensors)`);
  const { replace, total } = atPath(path, () => planZip(obj, opts));
  const { data, storages } = pickleCheckpoint(obj, { replace });
  const top = opts.archiveName ?? 'archive';
  await writeFileAtomic(path, async (fh) => {
    const zip = new ZipWriter(fh, { zip64: opts.zip64 ?? 'auto' });
    const enc = new TextEncoder();
    await zip.add(`${top}/data.pkl`, data);
    await zip.add(`${top}/byteorder`, enc.encode(BYTE_ORDER));
    let done = 0;
    for (let i = 0; i < storages.length; i++) {
      // Not kept: a lazily read storage is read, written and released.
      const s = storages[i]!;
      await zip.add(`${top}/data/${i}`, s.streamable(), (n) => opts.onProgress?.((done += n), total), s.sourceCrc32);
    }
    await zip.add(`${top}/version`, enc.encode(ZIP_VERSION));
    await zip.finish();
  }, opts);
}
