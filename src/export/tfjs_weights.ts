/**
 * TF.js weight encoding for the graph export: optional quantization (TF.js's own, which
 * stock `tf.loadGraphModel` dequantizes on load) and the shard layout.
 *
 * - float16: manifest `dtype: 'float32', quantization: {dtype: 'float16'}`, IEEE half
 *   bits (round to nearest even), half the bytes.
 * - uint8: per weight `quantization: {dtype: 'uint8', min, scale}`, value = q * scale +
 *   min (affine over the weight's [min, max]), a quarter of the bytes.
 * int32 constants (shapes, permutations) are never quantized.
 *
 * Shards: every shard but the last has the same size (the loader's rule). The default
 * is max(4 MiB, ceil(total / 6)): at most 6 shard files, because Chromium stalls stock
 * `tf.loadGraphModel` when more than 6 shard requests to one HTTP/1.1 origin are in
 * flight with `Cache-Control: no-store` (measured: README, test/web-shards.test.ts);
 * small models keep the converter's 4 MiB.
 */
import { RepmlpError } from '../errors.js';
import { floatToHalf } from '../tensor.js';

export type WeightEncoding = 'float32' | 'float16' | 'uint8';
export const WEIGHT_ENCODINGS: readonly WeightEncoding[] = ['float32', 'float16', 'uint8'];

/** The tfjs converter's shard size, and the smallest default shard here. */
export const SHARD_BYTES = 4 * 1024 * 1024;
/** Shard files per model at most, by default (see above). */
export const MAX_DEFAULT_SHARDS = 6;

export interface WeightOptions {
  /** Bytes per shard (every shard but the last); default: see defaultShardBytes. */
  shardBytes?: number;
  weights?: WeightEncoding;
}

export interface RawWeight {
  name: string;
  shape: number[];
  dtype: 'float32' | 'int32';
  data: Float32Array | Int32Array;
}

export interface ManifestWeight {
  name: string;
  shape: number[];
  dtype: string;
  quantization?: { dtype: 'float16' } | { dtype: 'uint8'; min: number; scale: number };
}

export class TfjsWeightsError extends RepmlpError {
  override name = 'TfjsWeightsError';
}

export function defaultShardBytes(total: number): number {
  return Math.max(SHARD_BYTES, Math.ceil(total / MAX_DEFAULT_SHARDS));
}

/** float32 -> IEEE 754 half bits, round to nearest even (one encoder: tensor.ts's, also used by the converter). */
export const toHalf = floatToHalf;

function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** One weight's stored bytes and manifest entry under `enc`. */
export function encodeWeight(w: RawWeight, enc: WeightEncoding): { bytes: Uint8Array; entry: ManifestWeight } {
  const entry: ManifestWeight = { name: w.name, shape: w.shape, dtype: w.dtype };
  if (w.dtype !== 'float32' || enc === 'float32') return { bytes: bytesOf(w.data), entry };
  const data = w.data as Float32Array;
  if (enc === 'float16') {
    const h = new Uint16Array(data.length);
    for (let i = 0; i < data.length; i++) h[i] = toHalf(data[i]!);
    return { bytes: bytesOf(h), entry: { ...entry, quantization: { dtype: 'float16' } } };
  }
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  if (!Number.isFinite(min) || !Number.isFinite(max)) {
    if (data.length) throw new TfjsWeightsError(`${w.name}: holds non-finite values; it cannot be quantized to uint8`);
    min = max = 0;
  }
  const scale = max > min ? (max - min) / 255 : 1;
  const q = new Uint8Array(data.length);
  for (let i = 0; i < data.length; i++) q[i] = Math.max(0, Math.min(255, Math.round((data[i]! - min) / scale)));
  return { bytes: q, entry: { ...entry, quantization: { dtype: 'uint8', min, scale } } };
}

/** Encodes every weight and cuts the concatenation into equal shards (the last shorter). */
export function packWeights(weights: readonly RawWeight[], opts: WeightOptions = {}): { shards: Uint8Array[]; entries: ManifestWeight[] } {
  const enc = opts.weights ?? 'float32';
  if (!WEIGHT_ENCODINGS.includes(enc)) throw new TfjsWeightsError(`weights '${String(enc)}': expected ${WEIGHT_ENCODINGS.join(', ')}`);
  const encoded = weights.map((w) => encodeWeight(w, enc));
  const total = encoded.reduce((s, e) => s + e.bytes.byteLength, 0);
  const size = opts.shardBytes ?? defaultShardBytes(total);
  if (!Number.isSafeInteger(size) || size < 1) throw new TfjsWeightsError(`shard size ${size}: expected a positive number of bytes`);
  const shards: Uint8Array[] = [];
  let cur = new Uint8Array(Math.min(size, total));
  let used = 0;
  let left = total;
  for (const { bytes: all } of encoded) {
    let bytes = all;
    while (bytes.byteLength) {
      const n = Math.min(bytes.byteLength, cur.byteLength - used);
      cur.set(bytes.subarray(0, n), used);
      used += n;
      bytes = bytes.subarray(n);
      if (used === cur.byteLength) {
        shards.push(cur);
        left -= used;
        cur = new Uint8Array(Math.min(size, left));
        used = 0;
      }
    }
  }
  return { shards, entries: encoded.map((e) => e.entry) };
}
