import { repmlpBlockAt } from '../../family/blocks2021/find.js';
import { ReparamError } from '../numeric.js';
import { repmlpJob } from '../convert.js';
import { inferGeometry } from '../geometry.js';
import type { ReparamUnit } from './types.js';

/** A 2021 RepMLP: local perceptron and fc3_bn into fc3, avg.bn into fc1 (geometry checked against the keys). */
export const repmlp2021Reparam: ReparamUnit<'repmlp2021'> = {
  kind: 'repmlp2021',
  job(sd, { path }, ctx) {
    const p = path === '' ? '' : `${path}.`;
    const block = repmlpBlockAt(sd, p);
    if (!block) throw new ReparamError(`${p}fc3_bn.running_var: missing (RepMLP ${path || '(root)'})`);
    return repmlpJob(sd, block, inferGeometry(sd, block, ctx.hint), ctx.eps);
  },
  hint: ({ params: p }) => ({ fc3Groups: p.fc3Groups, h: p.h, w: p.w }),
};
