import { convBnPairAt } from '../../family/blocks2021/find.js';
import { ReparamError } from '../numeric.js';
import { convBnJob } from '../convert.js';
import type { ReparamUnit } from './types.js';

/** A ConvBN the family's deploy model folds: one biased conv (only units with fold: true get here). */
export const convbnReparam: ReparamUnit<'convbn'> = {
  kind: 'convbn',
  job(sd, { path }, ctx) {
    const pair = convBnPairAt(sd, `${path}.`);
    if (!pair) throw new ReparamError(`${path}.bn.running_var: missing (ConvBN ${path})`);
    return convBnJob(sd, pair, ctx.eps);
  },
};
