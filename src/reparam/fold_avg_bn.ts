/**
 * avg.bn folded into fc1 (RepMLP, arXiv 2105.01883, Sec. 3.3; architecture.md
 * "avg.bn into fc1"). The global perceptron computes `fc1(bn(avgpool(x)))`; the BN is a
 * per-channel affine `s * v + beta`, and fc1 reads the pooled map in (c, hp, wp) order, so
 * input column i belongs to channel `floor(i / (hp*wp))`:
 *   fc1.weight'[:, i] = fc1.weight[:, i] * s[c(i)]
 *   fc1.bias'         = fc1.bias + fc1.weight @ beta[c(i)]
 */
import type { FloatArray } from './numeric.js';
import { ReparamError } from './numeric.js';
import { bnScaleShift, type BatchNorm } from './fuse_bn.js';

/** `fc1Weight` is `[I, C*hp*wp]`, `fc1Bias` `[I]`; returns new float64 arrays. */
export function foldAvgBn(fc1Weight: FloatArray, fc1Bias: FloatArray, avgBn: BatchNorm): { weight: Float64Array; bias: Float64Array } {
  const I = fc1Bias.length;
  const C = avgBn.weight.length;
  if (I === 0 || fc1Weight.length % I !== 0) throw new ReparamError(`foldAvgBn: fc1 weight of ${fc1Weight.length} elements does not have ${I} rows`);
  const n = fc1Weight.length / I;
  if (n % C !== 0) throw new ReparamError(`foldAvgBn: fc1 has ${n} inputs, not a multiple of avg.bn's ${C} channels`);
  const parts = n / C;
  const { scale, shift } = bnScaleShift(avgBn);
  const weight = new Float64Array(fc1Weight.length);
  const bias = new Float64Array(I);
  // Channel by channel: column i = c * parts + k, so no division per element.
  for (let r = 0; r < I; r++) {
    let acc = 0;
    for (let c = 0, i = r * n; c < C; c++) {
      const s = scale[c]!;
      const b = shift[c]!;
      for (const end = i + parts; i < end; i++) {
        const v = fc1Weight[i]!;
        weight[i] = v * s;
        acc += v * b;
      }
    }
    bias[r] = fc1Bias[r]! + acc;
  }
  return { weight, bias };
}
