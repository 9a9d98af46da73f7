/** Format detection and the one entry point for reading any checkpoint. */
import { RepmlpError } from '../errors.js';
import { dtypeInfo } from '../dtype.js';
import { Storage } from '../tensor.js';
import { PyTuple, type PyValue, type StateDict } from './pyobj.js';
import { type ByteSource, FileSource, MemorySource } from './source.js';
import { ZipReader, isZip } from './zip.js';
import { PickleError, storageDType, unpickle } from './pickle.js';
import { readLegacy } from './legacy.js';
import { readSafetensors, startsLikeSafetensors } from './safetensors.js';
import { findStateDict, stripKnownPrefixes, toStateDict } from './statedict.js';

const PICKLE_PROTO = 0x80;

export class CheckpointError extends RepmlpError {
  override name = 'CheckpointError';
}

export type CheckpointFormat = 'zip' | 'legacy' | 'safetensors';

export interface Checkpoint {
  format: CheckpointFormat;
  /** The unpickled object (safetensors: an ordered PyDict of tensors; metadata in attrs). */
  root: PyValue;
  /**
   * Globals outside torch's weights_only allow-list that the file names, kept as inert
   * placeholders (or read as known values: numpy scalars, ...), sorted. Empty when
   * torch.load(weights_only=True) would accept every global in it.
   */
  inertGlobals: string[];
}

/** How a checkpoint is read. */
export interface ReadOptions {
  /** Refuse every global outside torch's weights_only allow-list, as torch.load(weights_only=True) does. */
  strictGlobals?: boolean;
}

/** How the state dict is chosen, on top of ReadOptions. */
export interface LoadOptions extends ReadOptions {
  /** Dotted key path to the state dict inside the wrapper ('state_dict_ema', 'model.ema'); default: searched. */
  entry?: string;
}

export interface LoadedStateDict {
  format: CheckpointFormat;
  stateDict: StateDict;
  /** Key path from the root to the state dict, e.g. ['state_dict'], or []. */
  wrapper: string[];
  /** The leading wrapper prefix that was stripped ('module.', '_orig_mod.', 'module._orig_mod.'), or null. */
  prefix: string | null;
  checkpoint: Checkpoint;
}

/**
 * Reads a checkpoint: zip when it starts with `PK\x03\x04` (as torch.load decides),
 * safetensors when its header says so, legacy otherwise. Tensor bytes are read lazily.
 */
export async function readCheckpoint(src: string | Uint8Array, opts: ReadOptions = {}): Promise<Checkpoint> {
  return readCheckpointSync(src, opts);
}

export function readCheckpointSync(src: string | Uint8Array, opts: ReadOptions = {}): Checkpoint {
  const source: ByteSource = typeof src === 'string' ? new FileSource(src) : new MemorySource(src);
  if (source.size === 0) throw new CheckpointError(`${source.name}: file is empty`);
  const head = source.read(0, Math.min(16, source.size));
  const inert = new Set<string>();
  const pickleOpts = { strictGlobals: opts.strictGlobals === true, inertGlobals: inert };
  const done = (format: CheckpointFormat, root: PyValue): Checkpoint => ({ format, root, inertGlobals: [...inert].sort() });
  if (isZip(head)) return done('zip', readZip(source, pickleOpts));
  // safetensors has a '{' (or JSON whitespace) after its 8-byte length; a legacy file starts with the magic
  // number's pickle (80 02 8a 0a 6c fc 9c 46 f9 ...: never '{' there, whatever the
  // protocol). Sniffed by shape only, so the reader itself reports a lying length.
  if (startsLikeSafetensors(head, source)) return done('safetensors', readSafetensors(source));
  if (head[0] !== PICKLE_PROTO) {
    const hex = [...head.subarray(0, 8)].map((b) => b.toString(16).padStart(2, '0')).join(' ');
    throw new CheckpointError(`${source.name}: not a checkpoint: neither a torch zip (PK\\x03\\x04), a legacy torch file (pickle, 0x80 0x02) nor safetensors (length + '{'); it starts with ${hex}`);
  }
  return done('legacy', readLegacy(source, pickleOpts));
}

/**
 * Reads a file, finds the state dict inside wrappers (or at `opts.entry`), strips every
 * known wrapper prefix (`module.`, `_orig_mod.`) found on all its keys.
 */
export async function loadStateDictFile(path: string, opts: LoadOptions = {}): Promise<LoadedStateDict> {
  const checkpoint = readCheckpointSync(path, opts);
  try {
    const found = findStateDict(checkpoint.root, opts.entry);
    const { dict, prefix } = stripKnownPrefixes(found.dict);
    return { format: checkpoint.format, stateDict: toStateDict(dict), wrapper: found.path, prefix, checkpoint };
  } catch (e) {
    if (e instanceof RepmlpError) throw new CheckpointError(`${path}: ${e.message}`);
    throw e;
  }
}

/** torch's zip layout: `<top>/data.pkl`, `<top>/byteorder`, `<top>/data/<key>` per storage. */
function readZip(src: ByteSource, pickleOpts: { strictGlobals: boolean; inertGlobals: Set<string> }): PyValue {
  const zip = new ZipReader(src);
  const pkl = zip.names.find((n) => /^[^/]+\/data\.pkl$/.test(n));
  if (!pkl) throw new CheckpointError(`${src.name}: zip archive without a <folder>/data.pkl record: not a torch checkpoint`);
  const top = pkl.slice(0, -'data.pkl'.length);
  if (zip.has(`${top}byteorder`)) {
    const order = new TextDecoder().decode(zip.read(`${top}byteorder`));
    if (order !== 'little') throw new CheckpointError(`${src.name}: byteorder '${order}' is not supported (little-endian only)`);
  }
  const where = `${src.name}: ${pkl}`;
  const storages = new Map<string, Storage>();
  const persistentLoad = (pid: PyValue): Storage => {
    const [kind, type, key, location, numel] = pid instanceof PyTuple ? pid.items : [];
    if (kind !== 'storage' || typeof key !== 'string' || typeof numel !== 'bigint') {
      throw new PickleError(`${where}: malformed storage id (expected ('storage', type, key, location, numel))`);
    }
    const dt = storageDType(type, where);
    const dtype = dt === 'untyped' ? 'uint8' : dt;
    const cached = storages.get(key);
    if (cached) {
      if (cached.dtype !== dtype) throw new CheckpointError(`${src.name}: storage ${key} is used as both ${cached.dtype} and ${dtype}`);
      return cached;
    }
    const record = `${top}data/${key}`;
    const entry = zip.entry(record);
    const bytes = BigInt(dtypeInfo(dtype).itemSize) * numel;
    if (numel < 0n || bytes !== BigInt(entry.size)) {
      throw new CheckpointError(`${src.name}: storage ${key}: ${numel} x ${dtype} needs ${bytes} bytes, record ${record} holds ${entry.size}`);
    }
    const at = zip.dataOffset(record); // bounds-checked now, read later
    const s = new Storage(dtype, Number(numel), () => zip.read(record), key, typeof location === 'string' ? location : 'cpu');
    s.sourceCrc32 = entry.crc32;
    s.sourceRegion = src.region(at, entry.size);
    storages.set(key, s);
    return s;
  };
  return unpickle(zip.read(pkl), { persistentLoad, where, ...pickleOpts }).value;
}
