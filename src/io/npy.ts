/**
 * NumPy .npy files (format versions 1.0, 2.0, 3.0): little-endian, C order, dtypes
 * float32 / float64 / int64 / int32 / uint8. Anything else is refused with an NpyError
 * that names the file and what was found.
 * Spec: numpy.lib.format (magic `\x93NUMPY`, version, header length, a Python dict literal
 * `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }` padded to 64 bytes).
 */
import { readFile } from 'node:fs/promises';
import { RepmlpError } from '../errors.js';
import { writeBytesAtomic } from './atomic.js';

export class NpyError extends RepmlpError {
  override name = 'NpyError';
}

export type NpyDType = 'float32' | 'float64' | 'int64' | 'int32' | 'uint8';
export type NpyData = Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array;

export interface NpyArray {
  dtype: NpyDType;
  shape: number[];
  data: NpyData;
}

const DESCR: Record<string, NpyDType> = { '<f4': 'float32', '<f8': 'float64', '<i8': 'int64', '<i4': 'int32', '|u1': 'uint8', '<u1': 'uint8' };
const DESCR_OF: Record<NpyDType, string> = { float32: '<f4', float64: '<f8', int64: '<i8', int32: '<i4', uint8: '|u1' };
const CTOR = { float32: Float32Array, float64: Float64Array, int64: BigInt64Array, int32: Int32Array, uint8: Uint8Array } as const;
const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

function dtypeOf(data: NpyData): NpyDType {
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof Float64Array) return 'float64';
  if (data instanceof BigInt64Array) return 'int64';
  if (data instanceof Int32Array) return 'int32';
  return 'uint8';
}

/** Reads 'descr', 'fortran_order' and 'shape' from the header dict literal. */
function parseHeader(text: string, where: string): { descr: string; fortran: boolean; shape: number[] } {
  const t = text.trim();
  if (!t.startsWith('{') || !t.endsWith('}')) throw new NpyError(`${where}: header is not a Python dict literal: ${JSON.stringify(t.slice(0, 80))}`);
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(t)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(t)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(t)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) {
    throw new NpyError(`${where}: header lacks 'descr', 'fortran_order' or 'shape': ${JSON.stringify(t.slice(0, 120))}`);
  }
  const dims = shapeText.split(',').map((s) => s.trim()).filter((s) => s.length);
  const shape = dims.map((d) => {
    if (!/^\d+L?$/.test(d)) throw new NpyError(`${where}: bad dimension '${d}' in shape (${shapeText})`);
    const n = Number.parseInt(d, 10);
    if (!Number.isSafeInteger(n)) throw new NpyError(`${where}: dimension ${d} is too large`);
    return n;
  });
  return { descr, fortran: fortran === 'True', shape };
}

/** Parses .npy bytes. The data is copied into a fresh, aligned typed array. */
export function parseNpy(bytes: Uint8Array, where = 'npy'): NpyArray {
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) throw new NpyError(`${where}: not a .npy file (no \\x93NUMPY magic)`);
  const major = bytes[6]!;
  if (major < 1 || major > 3) throw new NpyError(`${where}: unsupported .npy format version ${major}.${bytes[7]}`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lenSize = major === 1 ? 2 : 4;
  if (bytes.length < 8 + lenSize) throw new NpyError(`${where}: truncated header`);
  const headerLen = major === 1 ? dv.getUint16(8, true) : dv.getUint32(8, true);
  const start = 8 + lenSize + headerLen;
  if (start > bytes.length) throw new NpyError(`${where}: header of ${headerLen} bytes runs past the end of the file (${bytes.length} bytes)`);
  const text = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(bytes.subarray(8 + lenSize, start));
  const { descr, fortran, shape } = parseHeader(text, where);
  if (fortran) throw new NpyError(`${where}: Fortran-order arrays are not supported (save with np.ascontiguousarray)`);
  if (descr.startsWith('>')) throw new NpyError(`${where}: big-endian dtype '${descr}' is not supported (little-endian only)`);
  const key = descr.replace(/^=/, '<');
  const dtype = Object.hasOwn(DESCR, key) ? DESCR[key] : undefined; // 'constructor' is no dtype
  if (!dtype) throw new NpyError(`${where}: dtype '${descr}' is not supported (float32, float64, int64, int32, uint8)`);
  const numel = shape.reduce((a, b) => a * b, 1);
  const item = CTOR[dtype].BYTES_PER_ELEMENT;
  if (!Number.isSafeInteger(numel * item) || numel * item !== bytes.length - start) {
    throw new NpyError(`${where}: shape (${shape.join(', ')}) x ${dtype} needs ${numel * item} data bytes, file has ${bytes.length - start}`);
  }
  // A fresh copy: Buffer#slice would be a view into Node's shared pool, misaligned.
  const copy = new Uint8Array(numel * item);
  copy.set(bytes.subarray(start));
  return { dtype, shape, data: new CTOR[dtype](copy.buffer, 0, numel) };
}

/** Encodes as format version 1.0 (2.0 when the header would not fit 65535 bytes). */
export function encodeNpy(arr: { shape: readonly number[]; data: NpyData }): Uint8Array {
  const dtype = dtypeOf(arr.data);
  const numel = arr.shape.reduce((a, b) => a * b, 1);
  if (numel !== arr.data.length) throw new NpyError(`npy: ${arr.data.length} values do not fit shape (${arr.shape.join(', ')})`);
  const shape = arr.shape.length === 1 ? `(${arr.shape[0]},)` : `(${arr.shape.join(', ')})`;
  let dict = `{'descr': '${DESCR_OF[dtype]}', 'fortran_order': False, 'shape': ${shape}, }`;
  const v1 = dict.length + 11 < 65536;
  const pre = v1 ? 10 : 12;
  const total = Math.ceil((pre + dict.length + 1) / 64) * 64;
  dict = dict.padEnd(total - pre - 1, ' ') + '\n';
  const out = new Uint8Array(total + arr.data.byteLength);
  out.set(MAGIC);
  out[6] = v1 ? 1 : 2;
  out[7] = 0;
  const dv = new DataView(out.buffer);
  if (v1) dv.setUint16(8, dict.length, true);
  else dv.setUint32(8, dict.length, true);
  out.set(new TextEncoder().encode(dict), pre);
  out.set(new Uint8Array(arr.data.buffer, arr.data.byteOffset, arr.data.byteLength), total);
  return out;
}

export async function readNpy(path: string): Promise<NpyArray> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw new NpyError(`${path}: cannot read: ${(e as Error).message}`);
  }
  return parseNpy(bytes, path);
}

/** Writes atomically (temporary file + rename). */
export async function writeNpy(path: string, arr: { shape: readonly number[]; data: NpyData }): Promise<void> {
  await writeBytesAtomic(path, encodeNpy(arr));
}

/** Values as float32 (float64/int types converted; int64 via Number). */
export function npyToFloat32(a: NpyArray): Float32Array {
  if (a.data instanceof Float32Array) return a.data;
  if (a.data instanceof BigInt64Array) return Float32Array.from(a.data, (v) => Number(v));
  return Float32Array.from(a.data as ArrayLike<number>);
}
