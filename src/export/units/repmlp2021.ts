import { fc1Features, hasGlobalPerceptron } from '../../family/kinds/repmlp2021.js';
import type { ExportUnit } from './types.js';

/** RepMLP (deploy): global perceptron when there is more than one partition, then fc3. */
export const repmlp2021Export: ExportUnit<'repmlp2021'> = {
  kind: 'repmlp2021',
  lower(b, { path: prefix, params: r }, x, output, relu) {
    const hp = r.H / r.h;
    const wp = r.W / r.w;
    let addend: string | null = null;
    if (hasGlobalPerceptron(r)) {
      const { n, inner } = fc1Features(r);
      const pooled = b.add({ op: 'avgpool', name: `${prefix}.avg`, input: x, output: `${prefix}.avg`, kernel: [r.h, r.w] }, { kind: 'map', C: r.C, H: hp, W: wp });
      const flat = b.add({ op: 'flatten', name: `${prefix}.flatten`, input: pooled, output: `${prefix}.flatten` }, { kind: 'vector', F: n });
      const fc1 = `${prefix}.fc1_fc2.fc1`;
      const mid = b.add({ op: 'linear', name: fc1, input: flat, output: fc1, weight: b.weight(`${fc1}.weight`), bias: b.weight(`${fc1}.bias`), relu: true }, { kind: 'vector', F: inner });
      const fc2 = `${prefix}.fc1_fc2.fc2`;
      addend = b.add({ op: 'linear', name: fc2, input: mid, output: fc2, weight: b.weight(`${fc2}.weight`), bias: b.weight(`${fc2}.bias`), relu: false }, { kind: 'vector', F: n });
    }
    const fc3 = `${prefix}.fc3`;
    return b.add(
      {
        op: 'partitionfc', name: fc3, input: x, output, addend, weight: b.weight(`${fc3}.weight`), bias: b.weight(`${fc3}.bias`),
        h: r.h, w: r.w, groups: r.fc3Groups, outChannels: r.O, relu,
      },
      { kind: 'map', C: r.O, H: r.H, W: r.W },
    );
  },
};
