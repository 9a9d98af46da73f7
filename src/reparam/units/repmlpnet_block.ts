/**
 * RepMLPNet's locality injection as a converter job (arXiv 2112.11081, Sec. 3.3; the
 * math in ../locality.ts): fc3_bn and every repconv{k} folded into fc3, which gains a
 * bias. gp.fc1 / gp.fc2 pass through untouched; the outputs take fc3.weight's place,
 * which is where the repository's re-registered fc3 lands (right after gp).
 */
import type { StateDict } from '../../pth/pyobj.js';
import { Tensor } from '../../tensor.js';
import { readBn, type Job } from '../convert.js';
import { bnKeys, expectShape, get, type BnKeys } from '../find.js';
import { injectLocality, type RepconvBranch } from '../locality.js';
import { readFloat, ReparamError } from '../numeric.js';
import type { ReparamUnit } from './types.js';

function bnKeyList(k: BnKeys): string[] {
  return [k.weight, k.bias, k.runningMean, k.runningVar, ...(k.numBatchesTracked ? [k.numBatchesTracked] : [])];
}

function mustBn(sd: StateDict, p: string, what: string): BnKeys {
  const k = bnKeys(sd, p);
  if (!k) throw new ReparamError(`${p}running_var: missing (${what})`);
  return k;
}

export const repmlpnetBlockReparam: ReparamUnit<'repmlpnet_block'> = {
  kind: 'repmlpnet_block',
  job(sd, { path, params: g }, ctx) {
    const p = `${path}.`;
    const hw = g.h * g.w;
    const fc3Key = `${p}fc3.weight`;
    const fc3 = get(sd, fc3Key);
    expectShape(sd, fc3Key, [g.S * hw, hw, 1, 1], `fc3 (${g.S} share-sets of ${g.h}x${g.w})`);
    const fc3Bn = mustBn(sd, `${p}fc3_bn.`, `fc3_bn of RepMLPBlock ${path}`);
    for (const k of [fc3Bn.weight, fc3Bn.bias, fc3Bn.runningMean, fc3Bn.runningVar]) expectShape(sd, k, [g.S], `fc3_bn over the ${g.S} share-sets`);
    const branches = g.reparamConvK.map((k) => {
      const conv = `${p}repconv${k}.conv.weight`;
      expectShape(sd, conv, [g.S, 1, k, k], `repconv${k} (${g.S} groups)`);
      return { k, conv, bn: mustBn(sd, `${p}repconv${k}.bn.`, `repconv${k} of RepMLPBlock ${path}`) };
    });
    return {
      kind: 'repmlp',
      report: { unit: { kind: 'repmlpnet_block', path, detail: `S=${g.S}, partition ${g.h}x${g.w}${g.reparamConvK.length ? `, local k=${g.reparamConvK.join(',')}` : ''}` } },
      specs: [
        { at: fc3Key, key: fc3Key, shape: fc3.shape, dtype: fc3.dtype },
        { at: fc3Key, key: `${p}fc3.bias`, shape: [g.S * hw], dtype: fc3.dtype },
      ],
      size: fc3.numel,
      inputs: [fc3Key, ...bnKeyList(fc3Bn), ...branches.flatMap((b) => [b.conv, ...bnKeyList(b.bn)])],
      run() {
        const rep: RepconvBranch[] = branches.map((b) => ({ k: b.k, kernel: readFloat(get(sd, b.conv), b.conv), bn: readBn(sd, b.bn, ctx.eps) }));
        const r = injectLocality(readFloat(fc3, fc3Key), readBn(sd, fc3Bn, ctx.eps), rep, g, fc3.dtype);
        return [Tensor.fromArray(r.weight, fc3.shape, fc3.dtype), Tensor.fromArray(r.bias, [g.S * hw], fc3.dtype)];
      },
    };
  },
};
