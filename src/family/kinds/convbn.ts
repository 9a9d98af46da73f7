import { bnEntries, convEntries, withPrefix } from '../entries.js';
import type { KindLayout } from './types.js';

/** `conv` (no bias) + `bn`; folded (`fold`): one biased `conv` in deploy. */
export const convbnLayout: KindLayout<'convbn'> = {
  kind: 'convbn',
  entries(p, mode) {
    const deployConv = p.fold && mode === 'deploy';
    const conv = withPrefix('conv.', convEntries(p.in, p.out, p.k, p.groups, deployConv));
    return deployConv ? conv : [...conv, ...withPrefix('bn.', bnEntries(p.out))];
  },
  folds: (p) => p.fold,
};
