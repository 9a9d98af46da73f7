import { bnEntries } from '../entries.js';
import type { KindLayout } from './types.js';

export const bnLayout: KindLayout<'bn'> = {
  kind: 'bn',
  entries: (p) => bnEntries(p.C),
  folds: () => false,
};
