/**
 * Number plumbing for the re-parameterization: reading any float tensor as float64 (the
 * math accumulates in float64), and writing results back in the input's float dtype
 * (float32 in every released checkpoint). Conversions round to nearest even, as torch's
 * `.to(dtype)` does.
 */
import type { DType, TypedArray } from '../dtype.js';
import { Tensor, floatToBfloat16, floatToHalf } from '../tensor.js';
import { ReparamError } from '../family/errors.js';

export { ReparamError };

/** A float array the math reads: float32 kept as a view (fc3 is large), else float64. */
export type FloatArray = Float32Array | Float64Array;

/**
 * Values of a float tensor, without copying float32 (the big fc3 weights). A storage not
 * yet loaded is read without being cached on the Storage: the converter reads each
 * training tensor once, so a lazily read checkpoint is not kept in memory next to the
 * converted one.
 */
export function readFloat(t: Tensor, key: string): FloatArray {
  if (!isFloatDType(t.dtype)) throw new ReparamError(`${key}: expected a floating-point tensor, found ${t.dtype}`);
  if (t.dtype !== 'float32') return t.toFloat64();
  if (t.storage.loaded || !t.isContiguous() || t.numel === 0) return t.toFloat32();
  // Its own range only: a view of a flat buffer does not read (or keep) the whole buffer.
  let bytes = t.storage.bytesInRange(t.offset * 4, t.numel * 4);
  if (bytes.byteOffset % 4 !== 0) bytes = bytes.slice();
  return new Float32Array(bytes.buffer, bytes.byteOffset, t.numel);
}

/** Values of a float tensor as float64 (small tensors: BN statistics, kernels, biases). */
export function readFloat64(t: Tensor, key: string): Float64Array {
  if (!isFloatDType(t.dtype)) throw new ReparamError(`${key}: expected a floating-point tensor, found ${t.dtype}`);
  return t.toFloat64();
}

export function isFloatDType(d: DType): boolean {
  return d === 'float32' || d === 'float64' || d === 'float16' || d === 'bfloat16';
}

/** An empty array able to hold `n` values of `dtype` (Uint16Array for the 16-bit floats). */
export function allocFor(dtype: DType, n: number): TypedArray {
  switch (dtype) {
    case 'float32': return new Float32Array(n);
    case 'float64': return new Float64Array(n);
    case 'float16': case 'bfloat16': return new Uint16Array(n);
    default: throw new ReparamError(`cannot write re-parameterized values as ${dtype}`);
  }
}

/** Stores `v` at `i` of an array made by allocFor(dtype). */
export function storeAs(dtype: DType, out: TypedArray, i: number, v: number): void {
  if (dtype === 'float16') out[i] = floatToHalf(v);
  else if (dtype === 'bfloat16') out[i] = floatToBfloat16(v);
  else out[i] = v;
}

/** A new tensor of `dtype` holding the float64 values `data`. */
export function tensorFrom(data: ArrayLike<number>, shape: readonly number[], dtype: DType): Tensor {
  // The typed-array constructors convert in bulk; `.from` would go element by element.
  if (dtype === 'float64') return Tensor.fromArray(data instanceof Float64Array ? data : new Float64Array(data), shape, 'float64');
  if (dtype === 'float32') return Tensor.fromArray(new Float32Array(data), shape, 'float32');
  const out = allocFor(dtype, data.length);
  for (let i = 0; i < data.length; i++) storeAs(dtype, out, i, data[i]!);
  return Tensor.fromArray(out, shape, dtype);
}

// The half / bfloat16 encoders live beside halfToFloat (tensor.ts); re-exported for callers of this module.
export { floatToBfloat16, floatToHalf };
