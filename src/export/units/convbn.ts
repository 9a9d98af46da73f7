import { BN_EPS } from '../../family/entries.js';
import { fuseBn } from '../../reparam/fuse_bn.js';
import type { ExportUnit } from './types.js';

/**
 * A deploy ConvBN: folded by the converter (`conv.weight`, `conv.bias`), or kept as
 * conv + BN by the family's deploy model, folded here (exports fold BN wherever they can;
 * the converter's float64 fuse, rounded once to float32).
 */
export const convbnExport: ExportUnit<'convbn'> = {
  kind: 'convbn',
  lower(b, { path, params: p }, input, output, relu) {
    const opts = { stride: p.stride, pad: p.pad, groups: p.groups, relu: p.relu || relu, output };
    if (p.fold) return b.conv(path, input, b.weight(`${path}.conv.weight`), b.weight(`${path}.conv.bias`), opts);
    const f64 = (k: string) => Float64Array.from(b.values32(`${path}.bn.${k}`));
    const bn = { weight: f64('weight'), bias: f64('bias'), runningMean: f64('running_mean'), runningVar: f64('running_var'), eps: BN_EPS };
    const fused = fuseBn(b.values32(`${path}.conv.weight`), bn);
    const shape = b.sd.get(`${path}.conv.weight`)!.shape;
    const weight = b.constant(`${path}.conv.weight`, shape, Float32Array.from(fused.weight));
    return b.conv(path, input, weight, b.constant(`${path}.conv.bias`, [p.out], Float32Array.from(fused.bias)), opts);
  },
};
