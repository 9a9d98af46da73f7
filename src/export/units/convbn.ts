import { BN_EPS } from '../../family/entries.js';
import type { ExportUnit } from './types.js';

/**
 * A deploy ConvBN: folded by the converter (`conv.weight`, `conv.bias`), or kept as
 * conv + BN by the family's deploy model, folded here (exports fold BN wherever they can).
 */
export const convbnExport: ExportUnit<'convbn'> = {
  kind: 'convbn',
  lower(b, { path, params: p }, input, output, relu) {
    const opts = { stride: p.stride, pad: p.pad, groups: p.groups, relu: p.relu || relu, output };
    if (p.fold) return b.conv(path, input, b.weight(`${path}.conv.weight`), b.weight(`${path}.conv.bias`), opts);
    const w = b.values32(`${path}.conv.weight`);
    const g = (k: string) => b.values32(`${path}.bn.${k}`);
    const [gamma, beta, mean, variance] = [g('weight'), g('bias'), g('running_mean'), g('running_var')];
    const per = w.length / p.out;
    const fw = new Float32Array(w.length);
    const fb = new Float32Array(p.out);
    for (let o = 0; o < p.out; o++) {
      const t = gamma[o]! / Math.sqrt(variance[o]! + BN_EPS);
      for (let i = 0; i < per; i++) fw[o * per + i] = w[o * per + i]! * t;
      fb[o] = beta[o]! - mean[o]! * t;
    }
    const shape = b.sd.get(`${path}.conv.weight`)!.shape;
    return b.conv(path, input, b.constant(`${path}.conv.weight`, shape, fw), b.constant(`${path}.conv.bias`, [p.out], fb), opts);
  },
};
