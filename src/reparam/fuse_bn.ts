/**
 * conv/FC + BatchNorm -> one biased conv/FC (RepMLP, arXiv 2105.01883, Sec. 3.3, Eq. 4;
 * architecture.md "Re-parameterization"): in eval mode BN is an affine map per output
 * channel, `y = (x - mean) * t + beta` with `t = gamma / sqrt(var + eps)`, so it folds
 * into the weight rows and a bias.
 */
import type { DType, TypedArray } from '../dtype.js';
import { allocFor, storeAs, ReparamError, type FloatArray } from './numeric.js';

/** Eval-mode BatchNorm parameters (BatchNorm1d/2d alike), as float64. */
export interface BatchNorm {
  weight: Float64Array;
  bias: Float64Array;
  runningMean: Float64Array;
  runningVar: Float64Array;
  /** 1e-5 in every BN of the release. */
  eps: number;
}

/** The per-channel affine map of an eval-mode BN: `bn(x) = x * scale + shift`. */
export function bnScaleShift(bn: BatchNorm): { scale: Float64Array; shift: Float64Array } {
  const n = bn.weight.length;
  const scale = new Float64Array(n);
  const shift = new Float64Array(n);
  for (let c = 0; c < n; c++) {
    const t = bn.weight[c]! / Math.sqrt(bn.runningVar[c]! + bn.eps);
    scale[c] = t;
    shift[c] = bn.bias[c]! - bn.runningMean[c]! * t;
  }
  return { scale, shift };
}

/**
 * Fuses BN into the preceding conv or FC. `weight` is any `[out, ...]` array (row-major,
 * one row per BN channel); `bias` the layer's own bias if it has one. Returns new arrays:
 * `weight * t` per row and `beta - mean * t + t * bias`.
 */
export function fuseBn(weight: FloatArray, bn: BatchNorm, bias?: FloatArray): { weight: Float64Array; bias: Float64Array } {
  const r = fuseBnAs(weight, bn, bias, 'float64');
  return { weight: r.weight as Float64Array, bias: r.bias };
}

/**
 * fuseBn writing the weight straight into `dtype` (each value `w * t` computed in float64
 * and rounded once): the converter's path for the large ResNet convs, with no float64
 * copy of the weight.
 */
export function fuseBnAs(weight: FloatArray, bn: BatchNorm, bias: FloatArray | undefined, dtype: DType): { weight: TypedArray; bias: Float64Array } {
  const rows = bn.weight.length;
  if (rows === 0 || weight.length % rows !== 0) {
    throw new ReparamError(`fuseBn: a weight of ${weight.length} elements does not split into ${rows} BN channels`);
  }
  if (bias && bias.length !== rows) throw new ReparamError(`fuseBn: bias has ${bias.length} elements, BN has ${rows} channels`);
  const { scale, shift } = bnScaleShift(bn);
  const b = new Float64Array(rows);
  for (let r = 0; r < rows; r++) b[r] = shift[r]! + (bias ? bias[r]! * scale[r]! : 0);
  return { weight: scaleRows(weight, scale, dtype), bias: b };
}

/** `weight` row r times `scale[r]`, as a new array of `dtype`. */
export function scaleRows(weight: FloatArray, scale: Float64Array, dtype: DType): TypedArray {
  const rows = scale.length;
  const rowSize = weight.length / rows;
  const out = allocFor(dtype, weight.length);
  if (out instanceof Float32Array || out instanceof Float64Array) {
    for (let r = 0; r < rows; r++) {
      const t = scale[r]!;
      for (let i = r * rowSize, end = i + rowSize; i < end; i++) out[i] = weight[i]! * t;
    }
  } else {
    for (let i = 0; i < weight.length; i++) storeAs(dtype, out, i, weight[i]! * scale[Math.floor(i / rowSize)]!);
  }
  return out;
}
