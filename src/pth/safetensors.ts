/**
 * safetensors: an 8-byte little-endian header length, a JSON header
 * `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}}`, then
 * the data. As in the reference (Rust) implementation: the header size is bounded, every
 * size is checked, and the tensors' byte ranges must tile the data exactly (no gap, no
 * overlap, nothing left over). Tensor bytes are read lazily.
 */
import type { FileHandle } from 'node:fs/promises';
import { RepmlpError } from '../errors.js';
import { DTYPE_BY_SAFETENSORS, dtypeInfo, type DTypeInfo } from '../dtype.js';
import { Storage, Tensor } from '../tensor.js';
import { writeAll } from '../io/atomic.js';
import { type FileRegion, RegionCopier } from '../io/copy.js';
import { PyDict, type PyKey, type PyValue } from './pyobj.js';
import type { ByteSource } from './source.js';
import { EntryError, HeaderSyntaxError, jsonSyntaxError, parseSafetensorsHeader, type RawEntry } from './safetensors-header.js';

export class SafetensorsError extends RepmlpError {
  override name = 'SafetensorsError';
}

/** The reference implementation's limit (safetensors MAX_HEADER_SIZE). */
export const MAX_HEADER_SIZE = 100_000_000;
const LENGTH_BYTES = 8;
const METADATA_KEY = '__metadata__';
/** The reference writer pads the header with spaces so the data starts 8-byte aligned. */
const HEADER_ALIGN = 8;
const OPEN_BRACE = 0x7b;

/** JSON whitespace: the reference reader accepts it before the header's '{'. */
const JSON_SPACE = new Set([0x20, 0x09, 0x0a, 0x0d]);

/** How far past the length the sniff looks for the '{' of a header padded with leading whitespace. */
const SNIFF_SPACES = 4096;

/**
 * True when the file can be safetensors: '{' right after the 8-byte length (whatever the
 * length says: the reader then reports a lying one), or JSON whitespace there followed by
 * '{' within a plausible header length (the reference reader accepts leading spaces). A
 * legacy torch file has a byte of its magic number there, a zip 'PK'; a bare pickle such
 * as `80 02 63 'posix\n'` may have a '\n' at byte 8, but never a plausible length followed
 * by whitespace and '{', so it is still refused as the pickle it is.
 */
export function startsLikeSafetensors(head: Uint8Array, src?: ByteSource): boolean {
  const c = head[LENGTH_BYTES];
  if (c === OPEN_BRACE) return true;
  if (c === undefined || !JSON_SPACE.has(c) || !src) return false;
  const n = new DataView(head.buffer, head.byteOffset, head.byteLength).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_SIZE) || n + BigInt(LENGTH_BYTES) > BigInt(src.size)) return false;
  const look = src.read(LENGTH_BYTES, Math.min(Number(n), SNIFF_SPACES));
  for (const b of look) {
    if (b === OPEN_BRACE) return true;
    if (!JSON_SPACE.has(b)) return false;
  }
  return false;
}

type HeaderEntry = RawEntry<DTypeInfo>;

/**
 * Reads a safetensors file: an ordered PyDict of name -> Tensor in data order, with the
 * header's `__metadata__` (a PyDict of strings) in `attrs`.
 */
export function readSafetensors(src: ByteSource): PyDict {
  const where = src.name;
  if (src.size < LENGTH_BYTES) throw new SafetensorsError(`${where}: file of ${src.size} bytes is too short for a safetensors header`);
  const head = src.read(0, LENGTH_BYTES);
  const n = new DataView(head.buffer, head.byteOffset, LENGTH_BYTES).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_SIZE)) throw new SafetensorsError(`${where}: header length ${n} exceeds the limit of ${MAX_HEADER_SIZE} bytes`);
  const headerLen = Number(n);
  if (LENGTH_BYTES + headerLen > src.size) throw new SafetensorsError(`${where}: header length ${headerLen} runs past the end of the file (${src.size} bytes)`);
  const dataStart = LENGTH_BYTES + headerLen;
  const dataLen = src.size - dataStart;
  let { entries, metadata } = parseHeader(src.read(LENGTH_BYTES, headerLen), where);
  entries = checkLayout(entries, dataLen, where);

  const map = new Map<PyKey, PyValue>();
  for (const e of entries) {
    const numel = e.shape.reduce((a, b) => a * b, 1);
    const storage = new Storage(e.info.name, numel, () => src.read(dataStart + e.begin, e.end - e.begin), e.name);
    storage.sourceRegion = src.region(dataStart + e.begin, e.end - e.begin);
    map.set(e.name, new Tensor(storage, e.shape));
  }
  const attrs = new Map<string, PyValue>();
  if (metadata) attrs.set(METADATA_KEY, metadata);
  return new PyDict(map, true, attrs);
}

function parseHeader(bytes: Uint8Array, where: string): { entries: HeaderEntry[]; metadata: PyDict | undefined } {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch (e) {
    throw new SafetensorsError(`${where}: header is not valid UTF-8 JSON (${(e as Error).message.split('\n')[0]})`);
  }
  let raw;
  try {
    raw = parseSafetensorsHeader(text);
  } catch (e) {
    if (e instanceof HeaderSyntaxError) throw new SafetensorsError(e.json ? `${where}: header is not valid UTF-8 JSON (${e.message})` : `${where}: ${e.message}`);
    if (e instanceof EntryError) {
      // The reference reads the whole object before it types any entry (serde's
      // flatten), so a syntax error anywhere is reported before a wrong field.
      const syntax = jsonSyntaxError(text);
      throw new SafetensorsError(syntax ? `${where}: header is not valid UTF-8 JSON (${syntax})` : `${where}: ${e.message}`);
    }
    throw e;
  }
  const entries = raw.entries as HeaderEntry[];
  for (const e of entries) checkEntry(e, where);
  const metadata = raw.metadata ? new PyDict(new Map<PyKey, PyValue>(raw.metadata), true) : undefined;
  return { entries, metadata };
}

function checkEntry(r: HeaderEntry, where: string): void {
  const at = `${where}: tensor '${r.name}'`;
  const info = DTYPE_BY_SAFETENSORS.get(r.dtype);
  if (!info) throw new SafetensorsError(`${at}: unsupported dtype '${r.dtype.slice(0, 20)}' (supported: ${[...DTYPE_BY_SAFETENSORS.keys()].join(' ')})`);
  r.info = info;
  const { begin, end, shape } = r;
  if (end < begin) throw new SafetensorsError(`${at}: data_offsets [${begin}, ${end}] end before they begin`);
  let n = info.itemSize;
  for (const d of shape) n *= d;
  if (n !== end - begin) {
    // As BigInt for the message: a hostile shape must not overflow into a small number.
    let bytes = BigInt(info.itemSize);
    for (const d of shape) bytes *= BigInt(d);
    if (bytes !== BigInt(end - begin)) {
      throw new SafetensorsError(`${at}: shape [${shape.join(', ')}] of ${r.dtype} needs ${bytes} bytes, data_offsets [${begin}, ${end}] hold ${end - begin}`);
    }
  }
}

/**
 * The layout rules, as the reference applies them: a repeated name keeps its last entry
 * (a HashMap insert), then the byte ranges must tile the data. Names are only collected
 * into a Set once the ranges tile (or when the overlapping tensor's name repeats), so a
 * hostile header of a million overlapping entries is refused after one sort, O(n log n).
 */
function checkLayout(entries: HeaderEntry[], dataLen: number, where: string): HeaderEntry[] {
  try {
    checkTiling(entries, dataLen, where);
  } catch (e) {
    const culprit = e instanceof OverlapError ? e.names : [];
    if (!culprit.some((n) => entries.filter((x) => x.name === n).length > 1)) throw e;
    const unique = lastWins(entries);
    checkTiling(unique, dataLen, where);
    return unique;
  }
  const names = new Set<string>();
  for (const e of entries) names.add(e.name);
  if (names.size === entries.length) return entries;
  const unique = lastWins(entries);
  checkTiling(unique, dataLen, where);
  return unique;
}

function lastWins(entries: HeaderEntry[]): HeaderEntry[] {
  const last = new Map<string, HeaderEntry>();
  for (const e of entries) if (!last.has(e.name) || last.get(e.name)!.index < e.index) last.set(e.name, e);
  return entries.filter((e) => last.get(e.name) === e);
}

class OverlapError extends SafetensorsError {
  constructor(message: string, readonly names: string[]) {
    super(message);
  }
}

const inDataOrder = (a: HeaderEntry, b: HeaderEntry) => a.begin - b.begin || a.end - b.end || a.index - b.index;

/**
 * The byte ranges must cover [0, dataLen) exactly once. Sorts `entries` into data order
 * (O(n log n); skipped when the header is in data order already, as writers make it).
 */
function checkTiling(entries: HeaderEntry[], dataLen: number, where: string): void {
  let sorted = true;
  for (let i = 1; i < entries.length && sorted; i++) sorted = inDataOrder(entries[i - 1]!, entries[i]!) <= 0;
  if (!sorted) entries.sort(inDataOrder);
  let at = 0;
  let prev = '';
  for (const e of entries) {
    if (e.begin < at) throw new OverlapError(`${where}: tensor '${e.name}' data_offsets [${e.begin}, ${e.end}] overlap the previous tensor (which ends at ${at})`, [e.name, prev]);
    if (e.begin > at) throw new SafetensorsError(`${where}: gap in the data before tensor '${e.name}': bytes ${at}..${e.begin} belong to no tensor`);
    at = e.end;
    prev = e.name;
  }
  if (at !== dataLen) {
    throw new SafetensorsError(`${where}: tensors cover ${at} bytes of data but the file holds ${dataLen} after the header${at > dataLen ? ' (truncated?)' : ''}`);
  }
}

// ---------------------------------------------------------------------------
// Writing

export interface SafetensorsWriteOptions {
  /** `__metadata__` (strings only); defaults to the dict's own, read from a file. */
  metadata?: ReadonlyMap<string, string> | Record<string, string>;
  onProgress?: (bytes: number) => void;
}

/** Name -> tensor pairs of a state dict; anything else is refused by name. */
export function tensorsOf(dict: PyDict | ReadonlyMap<string, Tensor>): [string, Tensor][] {
  const map: ReadonlyMap<PyKey, PyValue> = dict instanceof PyDict ? dict.map : dict;
  const out: [string, Tensor][] = [];
  for (const [k, v] of map) {
    if (typeof k !== 'string') throw new SafetensorsError(`key ${String(k)} is not a string: safetensors names tensors by strings`);
    if (!(v instanceof Tensor)) {
      throw new SafetensorsError(`entry '${k}' is not a tensor: safetensors holds only tensors (write a .pth to keep other entries)`);
    }
    out.push([k, v]);
  }
  return out;
}

function metadataOf(dict: PyDict | ReadonlyMap<string, Tensor>, opt: SafetensorsWriteOptions['metadata']): [string, string][] | undefined {
  if (opt) return opt instanceof Map ? [...opt] : Object.entries(opt);
  const m = dict instanceof PyDict ? dict.attrs.get(METADATA_KEY) : undefined;
  if (!(m instanceof PyDict)) return undefined;
  return [...m.map].map(([k, v]) => {
    if (typeof k !== 'string' || typeof v !== 'string') throw new SafetensorsError(`${METADATA_KEY} entries must be strings`);
    return [k, v];
  });
}

/** The header bytes (padded to 8) for these tensors, data laid out in the given order. */
export function safetensorsHeader(tensors: readonly [string, Tensor][], metadata?: readonly [string, string][]): Uint8Array {
  // Built by hand, not through an object: a tensor called '__proto__' stays a key.
  const parts: string[] = [];
  if (metadata) parts.push(`${JSON.stringify(METADATA_KEY)}:{${metadata.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(',')}}`);
  let off = 0;
  for (const [name, t] of tensors) {
    if (name === METADATA_KEY) throw new SafetensorsError(`a tensor cannot be named ${METADATA_KEY}`);
    const info = dtypeInfo(t.dtype);
    const len = t.numel * info.itemSize;
    parts.push(`${JSON.stringify(name)}:{"dtype":"${info.safetensors}","shape":[${t.shape.join(',')}],"data_offsets":[${off},${off + len}]}`);
    off += len;
  }
  let json = `{${parts.join(',')}}`;
  const bytes = new TextEncoder().encode(json);
  const pad = (HEADER_ALIGN - (bytes.length % HEADER_ALIGN)) % HEADER_ALIGN;
  json += ' '.repeat(pad);
  const header = new TextEncoder().encode(json);
  if (header.length > MAX_HEADER_SIZE) throw new SafetensorsError(`header of ${header.length} bytes exceeds the limit of ${MAX_HEADER_SIZE}`);
  const out = new Uint8Array(LENGTH_BYTES + header.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(header.length), true);
  out.set(header, LENGTH_BYTES);
  return out;
}

/** Views of a large storage not in memory are copied from their range of the file. */
const STREAM_MIN = 1 << 20;

/**
 * What the writer takes for one tensor: the storage's own streamable form when the
 * tensor is all of it, the file range of a large contiguous view of a storage not yet
 * read (a tensor of a flat buffer: copied without loading the buffer), else its bytes.
 */
function streamableView(t: Tensor): Uint8Array | FileRegion | Iterable<Uint8Array> {
  if (!t.isContiguous()) return t.contiguousChunks();
  if (t.storage.numel === t.numel && t.offset === 0) return t.storage.streamable();
  const item = dtypeInfo(t.dtype).itemSize;
  const region = t.storage.region();
  const length = t.numel * item;
  if (region && length >= STREAM_MIN) return { source: region.source, offset: region.offset + t.offset * item, length };
  return t.contiguousBytes();
}

/**
 * Writes a state dict (PyDict or Map of name -> tensor) as safetensors, streamed.
 * Non-tensor entries are refused (safetensors holds tensors only); views are written
 * contiguous, and tensors sharing a storage each get their own bytes.
 */
export async function writeSafetensors(fh: FileHandle, dict: PyDict | ReadonlyMap<string, Tensor>, opts: SafetensorsWriteOptions = {}): Promise<void> {
  const tensors = tensorsOf(dict);
  await writeAll(fh, safetensorsHeader(tensors, metadataOf(dict, opts.metadata)));
  const copier = new RegionCopier();
  for (const [, t] of tensors) {
    const data = streamableView(t);
    if (data instanceof Uint8Array) {
      await writeAll(fh, data);
      opts.onProgress?.(data.byteLength);
    } else if (Symbol.iterator in data) {
      for (const piece of data) {
        await writeAll(fh, piece);
        opts.onProgress?.(piece.byteLength);
      }
    } else await copier.copy(data, fh, { ...(opts.onProgress ? { onChunk: opts.onProgress } : {}) });
  }
}
