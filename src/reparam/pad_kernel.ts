/**
 * Zero-padding a k x k kernel to K x K, centred (RepMLP, arXiv 2105.01883, Sec. 3.3; as
 * in RepVGG/ACNet): with padding k//2 and K//2 and odd sizes, a k x k conv equals the K x K
 * conv whose kernel has the k x k one in its middle and zeros around it.
 */
import type { FloatArray } from './numeric.js';
import { ReparamError } from './numeric.js';

/** `kernel` is `[O, Cg, k, k]`; returns a new `[O, Cg, K, K]` float64 array. */
export function padKernel(kernel: FloatArray, shape: readonly [number, number, number, number], K: number): Float64Array {
  const [O, Cg, k, kw] = shape;
  if (k !== kw) throw new ReparamError(`padKernel: kernel ${k}x${kw} is not square`);
  if (kernel.length !== O * Cg * k * k) throw new ReparamError(`padKernel: ${kernel.length} elements do not fit [${shape}]`);
  if (K < k || (K - k) % 2 !== 0) throw new ReparamError(`padKernel: cannot centre a ${k}x${k} kernel in ${K}x${K}`);
  const p = (K - k) / 2;
  const out = new Float64Array(O * Cg * K * K);
  for (let oc = 0; oc < O * Cg; oc++) {
    for (let y = 0; y < k; y++) {
      for (let x = 0; x < k; x++) out[oc * K * K + (y + p) * K + x + p] = kernel[oc * k * k + y * k + x]!;
    }
  }
  return out;
}
