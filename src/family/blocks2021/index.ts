/**
 * The 2021 release's building blocks, as users put them into their own models (RepMLP
 * and ConvBN / ConvBNReLU anywhere; what `repmlp_model_convert` converts): claimed by
 * their keys. Everything unclaimed is kept as it is (plain BatchNorms, Linears, convs
 * without BN), except patterns known to be other re-parameterizable blocks, which are
 * refused rather than fused piecewise by a guess.
 */
import type { StateDict } from '../../pth/pyobj.js';
import type { BlockFamily, Claim } from '../types.js';
import { blockKeys, findConvBnPairs, findRepmlpBlocks, pairKeys, type ConvBnPair } from './find.js';
import { unresolvedRepMLPNetBlocks } from '../repmlpnet/refuse.js';

export const BLOCKS2021_NAME = 'RepMLP building blocks (2021: RepMLP, ConvBN)';

const RBR = /(^|\.)rbr_(dense|1x1|identity|reparam)\.$/;

/** The parent module path of a unit prefix ('a.b.' -> 'a.'), '' at the root. */
function parentOf(prefix: string): string {
  const i = prefix.slice(0, -1).lastIndexOf('.');
  return i < 0 ? '' : prefix.slice(0, i + 1);
}

/**
 * Multi-branch blocks of structural re-parameterization (RepVGG: `rbr_dense`, `rbr_1x1`,
 * `rbr_identity`; any module with parallel conv+BN branches C -> C of different kernel
 * sizes beside a bare BatchNorm(C), the identity branch): their branches must be summed
 * into one conv, which no family here describes. Folding each pair alone would write a
 * file no deploy model loads.
 */
export function refusedPatterns(sd: StateDict, pairs: readonly ConvBnPair[]): Claim['refused'] {
  // RepMLPNet blocks reach here only when their network could not be resolved.
  const refused: Claim['refused'] = unresolvedRepMLPNetBlocks(sd);
  const byParent = new Map<string, ConvBnPair[]>();
  for (const p of pairs) {
    const parent = parentOf(p.prefix);
    byParent.set(parent, [...(byParent.get(parent) ?? []), p]);
  }
  const keysUnder = (parent: string) => [...sd.keys()].filter((k) => k.startsWith(parent));
  const seen = new Set<string>();
  const refuse = (parent: string, pattern: string) => {
    if (seen.has(parent)) return;
    seen.add(parent);
    refused.push({ path: parent === '' ? '(root)' : parent.slice(0, -1), pattern, keys: keysUnder(parent) });
  };
  for (const [parent, list] of byParent) {
    if (list.some((p) => RBR.test(p.prefix)) || sd.has(parent + 'rbr_identity.running_var')) {
      refuse(parent, 'RepVGG block (rbr_dense / rbr_1x1 conv+BN branches, rbr_identity BatchNorm)');
      continue;
    }
    // Bare BatchNorm children of the parent (no conv of their own).
    for (const k of sd.keys()) {
      if (!k.startsWith(parent) || !k.endsWith('.running_var')) continue;
      const child = k.slice(parent.length, -'.running_var'.length);
      if (child.includes('.') || child === 'bn' || sd.has(`${parent}${child}.weight`) === false) continue;
      const C = sd.get(k)!.shape[0];
      const square = list.filter((p) => {
        const s = sd.get(p.convWeight)!.shape;
        return s[0] === C && s[1] === C;
      });
      if (new Set(square.map((p) => sd.get(p.convWeight)!.shape[2])).size >= 2) {
        refuse(parent, `parallel conv+BN branches ${square.map((p) => p.prefix.slice(parent.length, -1)).join(', ')} beside an identity BatchNorm ${child} (a multi-branch re-parameterizable block)`);
      }
    }
  }
  return refused;
}

export const blocks2021: BlockFamily = {
  kind: 'blocks',
  name: BLOCKS2021_NAME,
  claim(sd: StateDict): Claim {
    const blocks = findRepmlpBlocks(sd);
    const pairs = findConvBnPairs(sd, blocks);
    return {
      units: [
        ...blocks.map((b) => ({ kind: 'repmlp2021' as const, path: b.prefix.slice(0, -1), keys: blockKeys(b) })),
        ...pairs.map((p) => ({ kind: 'convbn' as const, path: p.prefix.slice(0, -1), keys: pairKeys(p) })),
      ],
      refused: refusedPatterns(sd, pairs),
    };
  },
};

export * from './find.js';
