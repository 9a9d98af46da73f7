/**
 * State-dict layouts as data. They are derived from the family descriptions
 * (family/layout.ts, family/kinds/); re-exported here for the model's users.
 */
export type { Entry } from '../family/types.js';
export { bnEntries, convEntries, linearEntries, numelOfShape, withPrefix } from '../family/entries.js';
export { fc1Features, hasGlobalPerceptron, repmlpEntries } from '../family/kinds/repmlp2021.js';
export { blockChildren } from '../family/repmlp_resnet/describe.js';
export { networkEntries } from '../family/repmlp_resnet/detect.js';
export { descEntries, unitEntries } from '../family/layout.js';
import { convbnLayout } from '../family/kinds/convbn.js';
import type { Entry } from '../family/types.js';

/** The 2021 ConvBN / ConvBNReLU: `conv` (no bias) + `bn` in training; one biased `conv` in deploy. */
export function convBNEntries(inC: number, outC: number, k: number, groups: number, deploy: boolean): Entry[] {
  const params = { in: inC, out: outC, k, stride: 1, pad: 0, groups, relu: false, fold: true };
  return convbnLayout.entries(params, deploy ? 'deploy' : 'train');
}
