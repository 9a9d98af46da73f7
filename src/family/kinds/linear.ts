import { linearEntries } from '../entries.js';
import type { KindLayout } from './types.js';

export const linearLayout: KindLayout<'linear'> = {
  kind: 'linear',
  entries: (p) => linearEntries(p.in, p.out, p.bias),
  folds: () => false,
};
