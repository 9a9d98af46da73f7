/**
 * RepMLPNet blocks the converter must not guess at: a RepMLPBlock (fc3 [S*h*w, h*w, 1, 1]
 * with fc3_bn over the S share-sets) whose network could not be told from the shapes
 * (only h*w is stored: a non-square partition needs the configuration). Folding it as a
 * 2021 RepMLP would misread fc3_bn; it is refused, naming the flag that resolves it.
 */
import type { StateDict } from '../../pth/pyobj.js';
import type { Claim } from '../types.js';

const FC3_BN = /^(.*\.)?repmlp_block\.fc3_bn\.running_var$/;

export function unresolvedRepMLPNetBlocks(sd: StateDict): Claim['refused'] {
  const out: Claim['refused'] = [];
  for (const [k, t] of sd) {
    const m = FC3_BN.exec(k);
    if (!m) continue;
    const p = k.slice(0, -'fc3_bn.running_var'.length);
    const fc3 = sd.get(p + 'fc3.weight')?.shape;
    const S = t.shape[0] ?? 0;
    if (!fc3 || fc3.length !== 4 || fc3[0] === S || fc3[0] !== S * fc3[1]!) continue;
    // Two reasons the network was not resolved: the partition is not square (only h*w is
    // stored), or the keys around the block are not a RepMLPNet's layout.
    const side = Math.round(Math.sqrt(fc3[1]!));
    const why = side * side === fc3[1]
      ? `in a state dict whose other keys are not a RepMLPNet's layout (no RepMLPNet configuration fits them)`
      : `whose partition cannot be read from the shapes (h*w = ${fc3[1]} is not a square)`;
    out.push({
      path: p.slice(0, -1),
      pattern: `a RepMLPNet RepMLPBlock (fc3 [${fc3[0]}, ${fc3[1]}, 1, 1] over S = ${S} share-sets, fc3_bn over the sets) ${why}: give --arch CONFIG.json (RepMLPNet's arguments with "family": "RepMLPNet") or a RepMLPNet preset`,
      keys: [...sd.keys()].filter((x) => x.startsWith(p)),
    });
  }
  return out;
}
