import { convBnPairAt } from '../../family/blocks2021/find.js';
import { ReparamError } from '../numeric.js';
import { convBnJob, type Job } from '../convert.js';
import type { StateDict } from '../../pth/pyobj.js';
import type { ReparamContext, ReparamUnit } from './types.js';

/** A ConvBN the family's deploy model folds: one biased conv (only units with fold: true get here). */
function fold(sd: StateDict, path: string, ctx: ReparamContext): Job {
  const pair = convBnPairAt(sd, path === '' ? '' : `${path}.`);
  if (!pair) throw new ReparamError(`${path}.bn.running_var: missing (ConvBN ${path})`);
  return convBnJob(sd, pair, ctx.eps);
}

export const convbnReparam: ReparamUnit<'convbn'> = {
  kind: 'convbn',
  job: (sd, { path }, ctx) => fold(sd, path, ctx),
  jobFromKeys: fold,
};
