import { RepMLP } from '../repmlp.js';
import type { ModelUnit } from './types.js';

export const repmlp2021Unit: ModelUnit<'repmlp2021'> = {
  kind: 'repmlp2021',
  create: ({ params }, mode) => new RepMLP(params, mode === 'deploy'),
};
