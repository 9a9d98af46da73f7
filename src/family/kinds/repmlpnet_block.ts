/**
 * RepMLPNet's RepMLPBlock (CVPR 2022, arXiv 2112.11081): gp.fc1 / gp.fc2 (1x1 convs with
 * bias: the global perceptron's gate), fc3 (grouped 1x1 conv, S groups over S*h*w
 * channels; + bias in deploy), and in training fc3_bn (BatchNorm2d over the S sets) and
 * repconv{k}.conv / .bn (k x k, S groups, S -> S). Deploy = after locality_injection():
 * the module re-registers fc3, so its keys follow gp's, as here.
 */
import { bnEntries, convEntries, withPrefix } from '../entries.js';
import type { Entry } from '../types.js';
import type { RepMLPNetBlockParams } from '../repmlpnet/config.js';
import type { KindLayout } from './types.js';

export function repmlpnetBlockEntries(p: RepMLPNetBlockParams, deploy: boolean): Entry[] {
  const hw = p.h * p.w;
  const out = [
    ...withPrefix('gp.fc1.', convEntries(p.C, p.inner, 1, 1, true)),
    ...withPrefix('gp.fc2.', convEntries(p.inner, p.C, 1, 1, true)),
    ...withPrefix('fc3.', convEntries(p.S * hw, p.S * hw, 1, p.S, deploy)),
  ];
  if (deploy) return out;
  out.push(...withPrefix('fc3_bn.', bnEntries(p.S)));
  for (const k of p.reparamConvK) {
    out.push(...withPrefix(`repconv${k}.conv.`, convEntries(p.S, p.S, k, p.S, false)), ...withPrefix(`repconv${k}.bn.`, bnEntries(p.S)));
  }
  return out;
}

export const repmlpnetBlockLayout: KindLayout<'repmlpnet_block'> = {
  kind: 'repmlpnet_block',
  entries: (p, mode) => repmlpnetBlockEntries(p, mode === 'deploy'),
  folds: () => true,
};
