import { convEntries } from '../entries.js';
import type { KindLayout } from './types.js';

export const convLayout: KindLayout<'conv'> = {
  kind: 'conv',
  entries: (p) => convEntries(p.in, p.out, p.k, p.groups, p.bias),
  folds: () => false,
};
