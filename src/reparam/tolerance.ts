/**
 * How far a correct conversion's logits may differ from the training model's, given the
 * dtype the checkpoint stores its weights in. The conversion computes in float64 and
 * rounds each fused weight once to the stored dtype (as torch's `.to(dtype)` does; tested
 * bit for bit against torch in test/pth-formats.test.ts), so each fused layer's weights
 * carry a relative error up to the unit roundoff u of that dtype. Through L fused layers
 * in series these errors add up roughly like a random walk, ~u * sqrt(L) relative at the
 * logits; measured on a 23-layer net: 2.1 u (float16), 2.2 u (bfloat16). The bound is
 * 2 u sqrt(L) (4x that measurement there; 7.5e-3 for float16 and 6.0e-2 for bfloat16 at
 * ResNet-50's ~60 fused layers), and never below the float32 default 1e-4.
 */
import type { DType } from '../dtype.js';
import type { StateDict } from '../pth/pyobj.js';

/** The float32 default: logits relative error (the project's tolerance). */
export const DEFAULT_TOLERANCE = 1e-4;

/** Unit roundoff (half an ulp of 1) of each float dtype. */
export const UNIT_ROUNDOFF: Readonly<Partial<Record<DType, number>>> = {
  float64: 2 ** -53,
  float32: 2 ** -24,
  float16: 2 ** -11,
  bfloat16: 2 ** -8,
};

export interface DtypeTolerance {
  tolerance: number;
  /** The least precise float dtype of the converted tensors. */
  dtype: DType | null;
  unitRoundoff: number;
  /** Fused layers in the model (RepMLP blocks + conv+BN pairs). */
  layers: number;
  /** True when the dtype, not the float32 default, set the tolerance. */
  fromDtype: boolean;
}

/** The least precise float dtype among the tensors of `sd`, or null when none is a float. */
export function coarsestFloatDtype(sd: StateDict): DType | null {
  let worst: DType | null = null;
  for (const t of sd.values()) {
    const u = UNIT_ROUNDOFF[t.dtype];
    if (u !== undefined && (worst === null || u > UNIT_ROUNDOFF[worst]!)) worst = t.dtype;
  }
  return worst;
}

/** 2 u sqrt(L), at least DEFAULT_TOLERANCE. */
export function dtypeTolerance(converted: StateDict, layers: number): DtypeTolerance {
  const dtype = coarsestFloatDtype(converted);
  const u = dtype ? UNIT_ROUNDOFF[dtype]! : 0;
  const fromU = 2 * u * Math.sqrt(Math.max(1, layers));
  return { tolerance: Math.max(DEFAULT_TOLERANCE, fromU), dtype, unitRoundoff: u, layers, fromDtype: fromU > DEFAULT_TOLERANCE };
}

/** One line saying why the tolerance is what it is. */
export function describeTolerance(t: DtypeTolerance): string {
  if (!t.fromDtype) return `tolerance ${t.tolerance} (default${t.dtype ? ` for ${t.dtype} weights` : ''})`;
  return `tolerance ${t.tolerance.toExponential(1)} because the weights are ${t.dtype}: the converted tensors are rounded once to ${t.dtype} (unit roundoff u = ${t.unitRoundoff.toExponential(1)}) over ${t.layers} fused layers, 2 u sqrt(${t.layers}); give --tolerance T to override`;
}
