/**
 * safetensors: an 8-byte little-endian header length, a JSON header
 * `{name: {dtype, shape, data_offsets}, __metadata__}`, then the data. Offsets must
 * tile the data exactly (no gaps, no overlap), as the reference implementation demands.
 */
import { RepmlpError } from '../errors.js';
import { DTYPE_BY_SAFETENSORS } from '../dtype.js';
import { Storage, Tensor } from '../tensor.js';
import { PyDict, type PyKey, type PyValue } from './pyobj.js';
import type { ByteSource } from './source.js';

export class SafetensorsError extends RepmlpError {
  override name = 'SafetensorsError';
}

/** Like the reference implementation's limit. */
export const MAX_HEADER = 100_000_000;

export function isSafetensors(src: ByteSource): boolean {
  if (src.size < 10) return false;
  const head = src.read(0, 9);
  const n = new DataView(head.buffer, head.byteOffset, 9).getBigUint64(0, true);
  return head[8] === 0x7b /* '{' */ && n <= BigInt(Math.min(MAX_HEADER, src.size - 8));
}

interface Entry {
  name: string;
  dtype: string;
  shape: number[];
  begin: number;
  end: number;
}

export function readSafetensors(src: ByteSource): PyDict {
  const n = Number(new DataView(src.read(0, 8).buffer).getBigUint64(0, true));
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(src.read(8, n)));
  } catch (e) {
    throw new SafetensorsError(`${src.name}: safetensors header is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw new SafetensorsError(`${src.name}: safetensors header is not a JSON object`);
  const dataStart = 8 + n;
  const dataLen = src.size - dataStart;
  const entries: Entry[] = [];
  const attrs = new Map<string, PyValue>();
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      attrs.set('__metadata__', parseMetadata(raw, src.name));
      continue;
    }
    entries.push(parseEntry(name, raw, src.name));
  }
  checkTiling(entries, dataLen, src.name);
  const map = new Map<PyKey, PyValue>();
  for (const e of entries) {
    const info = DTYPE_BY_SAFETENSORS.get(e.dtype)!;
    const storage = new Storage(info.name, (e.end - e.begin) / info.itemSize, () => src.read(dataStart + e.begin, e.end - e.begin), e.name);
    map.set(e.name, new Tensor(storage, e.shape));
  }
  return new PyDict(map, true, attrs);
}

function parseEntry(name: string, raw: unknown, file: string): Entry {
  const bad = (msg: string): never => {
    throw new SafetensorsError(`${file}: tensor '${name}': ${msg}`);
  };
  if (typeof raw !== 'object' || raw === null) bad('header entry is not an object');
  const { dtype, shape, data_offsets } = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
  if (typeof dtype !== 'string' || !DTYPE_BY_SAFETENSORS.has(dtype)) bad(`unsupported dtype ${JSON.stringify(dtype)}`);
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) bad('shape must be a list of non-negative integers');
  if (!Array.isArray(data_offsets) || data_offsets.length !== 2 || !data_offsets.every((d) => Number.isSafeInteger(d) && d >= 0)) bad('data_offsets must be [begin, end]');
  const [begin, end] = data_offsets as [number, number];
  let numel = 1n;
  for (const d of shape as number[]) numel *= BigInt(d);
  const item = DTYPE_BY_SAFETENSORS.get(dtype as string)!.itemSize;
  if (end < begin || BigInt(end - begin) !== numel * BigInt(item)) bad(`data_offsets [${begin}, ${end}] do not hold shape [${shape}] of ${dtype}`);
  return { name, dtype: dtype as string, shape: shape as number[], begin, end };
}

function parseMetadata(raw: unknown, file: string): PyDict {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new SafetensorsError(`${file}: __metadata__ must be an object of strings`);
  const m = new Map<PyKey, PyValue>();
  for (const [k, v] of Object.entries(raw)) {
    if (typeof v !== 'string') throw new SafetensorsError(`${file}: __metadata__ value for '${k}' is not a string`);
    m.set(k, v);
  }
  return new PyDict(m);
}

function checkTiling(entries: Entry[], dataLen: number, file: string): void {
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = 0;
  for (const e of sorted) {
    if (e.begin !== at) throw new SafetensorsError(`${file}: tensor '${e.name}' starts at ${e.begin}, expected ${at} (offsets must tile the data with no gap or overlap)`);
    at = e.end;
  }
  if (at !== dataLen) throw new SafetensorsError(`${file}: tensors cover ${at} bytes but the data section holds ${dataLen}`);
}
