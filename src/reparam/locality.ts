/**
 * RepMLPNet's locality injection (Ding et al., "RepMLPNet: Hierarchical Vision MLP with
 * Re-parameterized Locality", CVPR 2022, arXiv 2112.11081, Sec. 3.3; repmlpnet.md
 * "Locality injection"). A RepMLPBlock's fc3 is a grouped 1x1 conv with S groups over
 * `S*h*w` channels: one (h*w) x (h*w) matrix per share-set s, shared by every channel
 * c with c mod S = s and by every partition. Its fc3_bn is a BatchNorm2d over the S sets,
 * and each repconv{k} is a k x k conv with S groups (one input channel per group) plus a
 * BatchNorm2d(S), applied to each h x w patch alone.
 *
 * That is the 2021 RepMLP's structure with O = S output "channels", C/g = 1 input channel
 * per group and g = S groups, so the existing steps apply unchanged: fuseBn per branch,
 * padKernel to the largest k, and mergeFc3 (conv -> FC band plus fc3 scaled by its BN).
 * What is RepMLPNet's own is only that fc3_bn has S entries where fc3 has S*h*w rows
 * (the release's fuse_bn repeats them h*w times per set). Everything is float64 and
 * rounded once into the stored dtype.
 */
import type { DType, TypedArray } from '../dtype.js';
import { bnScaleShift, fuseBn, type BatchNorm } from './fuse_bn.js';
import { padKernel } from './pad_kernel.js';
import { mergeFc3, type LocalPerceptron } from './conv_to_fc.js';
import { ReparamError, type FloatArray } from './numeric.js';

/** One RepMLPNet block's sizes: S share-sets, h x w patches. */
export interface SharedFcGeometry {
  S: number;
  h: number;
  w: number;
}

/** One local-perceptron branch: `repconv{k}.conv.weight` [S, 1, k, k] and its BN over S. */
export interface RepconvBranch {
  k: number;
  kernel: FloatArray;
  bn: BatchNorm;
}

/**
 * fc3_bn (BatchNorm2d over the S sets) as the affine map of fc3's S*h*w rows: row
 * s*h*w + p gets set s's scale and shift (the release's repeat_interleave in fuse_bn).
 */
export function fc3BnPerRow(bn: BatchNorm, g: SharedFcGeometry): { scale: Float64Array; shift: Float64Array } {
  if (bn.weight.length !== g.S) throw new ReparamError(`fc3_bn has ${bn.weight.length} channels, expected S = ${g.S} share-sets`);
  const set = bnScaleShift(bn);
  const hw = g.h * g.w;
  const scale = new Float64Array(g.S * hw);
  const shift = new Float64Array(g.S * hw);
  for (let s = 0; s < g.S; s++) {
    scale.fill(set.scale[s]!, s * hw, (s + 1) * hw);
    shift.fill(set.shift[s]!, s * hw, (s + 1) * hw);
  }
  return { scale, shift };
}

/**
 * The local perceptron as one conv: each repconv{k} fused with its BN (fuseBn), padded
 * to the largest k (padKernel) and summed, kernel [S, 1, K, K] and bias [S]; its
 * geometry is the one conv->FC needs ({O: S, Cg: 1, K, h, w}). Null without branches.
 */
export function sumRepconvs(branches: readonly RepconvBranch[], g: SharedFcGeometry): LocalPerceptron | null {
  if (branches.length === 0) return null;
  const K = Math.max(...branches.map((b) => b.k));
  const kernel = new Float64Array(g.S * K * K);
  const bias = new Float64Array(g.S);
  for (const b of branches) {
    if (b.k % 2 !== 1) throw new ReparamError(`repconv${b.k}: kernel size ${b.k} is even; only odd sizes (padding k//2) are centred`);
    if (b.kernel.length !== g.S * b.k * b.k) throw new ReparamError(`repconv${b.k}.conv.weight: ${b.kernel.length} elements, expected [${g.S}, 1, ${b.k}, ${b.k}]`);
    if (b.bn.weight.length !== g.S) throw new ReparamError(`repconv${b.k}.bn: ${b.bn.weight.length} channels, expected S = ${g.S}`);
    const fused = fuseBn(b.kernel, b.bn);
    const padded = padKernel(fused.weight, [g.S, 1, b.k, b.k], K);
    for (let i = 0; i < kernel.length; i++) kernel[i]! += padded[i]!;
    for (let s = 0; s < g.S; s++) bias[s]! += fused.bias[s]!;
  }
  return { kernel, bias, geometry: { O: g.S, Cg: 1, K, h: g.h, w: g.w } };
}

/**
 * The deploy fc3 of one RepMLPNet block: fc3 [S*h*w, h*w, 1, 1] with fc3_bn folded in,
 * plus the summed local perceptron turned into each set's (h*w) x (h*w) matrix (mergeFc3
 * = convToFc's band, added in the same pass), and bias [S*h*w]. `dtype` is fc3's.
 */
export function injectLocality(
  fc3: FloatArray,
  fc3Bn: BatchNorm,
  branches: readonly RepconvBranch[],
  g: SharedFcGeometry,
  dtype: DType,
): { weight: TypedArray; bias: TypedArray } {
  const hw = g.h * g.w;
  if (fc3.length !== g.S * hw * hw) throw new ReparamError(`fc3.weight: ${fc3.length} elements, expected [${g.S * hw}, ${hw}, 1, 1]`);
  return mergeFc3(fc3, fc3BnPerRow(fc3Bn, g), sumRepconvs(branches, g), dtype);
}
