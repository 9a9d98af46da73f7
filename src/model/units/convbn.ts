import { ConvBN } from '../convbn.js';
import type { ModelUnit } from './types.js';

/** ConvBN(ReLU): folded in deploy when the family's deploy model folds it; else conv + BN as in training. */
export const convbnUnit: ModelUnit<'convbn'> = {
  kind: 'convbn',
  create({ params: p }, mode) {
    const m = new ConvBN(p.in, p.out, p.k, p.stride, p.pad, p.fold && mode === 'deploy', p.relu, p.groups);
    return m;
  },
};
