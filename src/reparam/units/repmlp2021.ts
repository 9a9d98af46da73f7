import { repmlpBlockAt } from '../../family/blocks2021/find.js';
import { ReparamError } from '../numeric.js';
import { repmlpJob, type Job } from '../convert.js';
import type { StateDict } from '../../pth/pyobj.js';
import { inferGeometry } from '../geometry.js';
import type { ReparamContext, ReparamUnit } from './types.js';

/** A 2021 RepMLP: local perceptron and fc3_bn into fc3, avg.bn into fc1 (geometry checked against the keys). */
function fold(sd: StateDict, path: string, ctx: ReparamContext): Job {
  const p = path === '' ? '' : `${path}.`;
  const block = repmlpBlockAt(sd, p);
  if (!block) throw new ReparamError(`${p}fc3_bn.running_var: missing (RepMLP ${path || '(root)'})`);
  return repmlpJob(sd, block, inferGeometry(sd, block, ctx.hint), ctx.eps);
}

/** The described unit's params reach the fold as its hint (merged with the user's by the pipeline). */
export const repmlp2021Reparam: ReparamUnit<'repmlp2021'> = {
  kind: 'repmlp2021',
  job: (sd, { path }, ctx) => fold(sd, path, ctx),
  jobFromKeys: fold,
  hint: ({ params: p }) => ({ fc3Groups: p.fc3Groups, h: p.h, w: p.w }),
};
