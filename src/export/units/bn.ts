/**
 * A BatchNorm the deploy model keeps (RepMLPNet's prebn1/prebn2/head_norm) as a
 * per-channel affine node; export/fold.ts folds it into a neighbouring conv or linear
 * wherever that is exact. Scale and shift in float64, rounded once.
 */
import { bnScaleShift } from '../../reparam/fuse_bn.js';
import { BN_EPS } from '../../family/entries.js';
import type { ExportUnit } from './types.js';

export const bnExport: ExportUnit<'bn'> = {
  kind: 'bn',
  lower(b, { path }, input, output, relu) {
    const f64 = (k: string) => Float64Array.from(b.values32(`${path}.${k}`));
    const { scale, shift } = bnScaleShift({ weight: f64('weight'), bias: f64('bias'), runningMean: f64('running_mean'), runningVar: f64('running_var'), eps: BN_EPS });
    const C = scale.length;
    const s = b.constant(`${path}.scale`, [C], Float32Array.from(scale));
    const t = b.constant(`${path}.shift`, [C], Float32Array.from(shift));
    const shape = b.values.get(input)!;
    const y = b.add({ op: 'affine', name: path, input, output: relu ? `${path}.affine` : output, scale: s, shift: t }, shape);
    return relu ? b.add({ op: 'relu', name: output, input: y, output }, shape) : y;
  },
};
