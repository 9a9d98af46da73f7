import { bnEntries, convEntries, linearEntries, withPrefix } from '../entries.js';
import type { Entry, RepMLP2021Params } from '../types.js';
import type { KindLayout } from './types.js';

export function hasGlobalPerceptron(p: RepMLP2021Params): boolean {
  return p.H !== p.h || p.W !== p.w;
}

/** fc1's output count: floor(C*hp*wp / reduction), as `int(n // r)` in the release. */
export function fc1Features(p: RepMLP2021Params): { n: number; inner: number } {
  const n = p.C * (p.H / p.h) * (p.W / p.w);
  return { n, inner: Math.floor(n / p.fc1fc2Reduction) };
}

/** RepMLP: fc1_fc2.*, avg.bn.* (training), fc3.weight (+bias in deploy), fc3_bn.*, repconv{k}.*. */
export function repmlpEntries(p: RepMLP2021Params, deploy: boolean): Entry[] {
  const out: Entry[] = [];
  const hw = p.h * p.w;
  if (hasGlobalPerceptron(p)) {
    const { n, inner } = fc1Features(p);
    out.push(...withPrefix('fc1_fc2.fc1.', linearEntries(n, inner)), ...withPrefix('fc1_fc2.fc2.', linearEntries(inner, n)));
    if (!deploy) out.push(...withPrefix('avg.bn.', bnEntries(p.C)));
  }
  out.push(...withPrefix('fc3.', convEntries(p.C * hw, p.O * hw, 1, p.fc3Groups, deploy)));
  if (!deploy) {
    out.push(...withPrefix('fc3_bn.', bnEntries(p.O * hw)));
    for (const k of p.reparamConvK) {
      out.push(...withPrefix(`repconv${k}.conv.`, convEntries(p.C, p.O, k, p.fc3Groups, false)));
      out.push(...withPrefix(`repconv${k}.bn.`, bnEntries(p.O)));
    }
  }
  return out;
}

export const repmlp2021Layout: KindLayout<'repmlp2021'> = {
  kind: 'repmlp2021',
  entries: (p, mode) => repmlpEntries(p, mode === 'deploy'),
  folds: () => true,
};
