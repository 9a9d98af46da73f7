import type { ExportUnit } from './types.js';

export const linearExport: ExportUnit<'linear'> = {
  kind: 'linear',
  lower(b, { path, params: p }, input, output, relu) {
    const bias = p.bias ? b.weight(`${path}.bias`) : b.constant(`${path}.bias`, [p.out], new Float32Array(p.out));
    return b.add({ op: 'linear', name: path, input, output, weight: b.weight(`${path}.weight`), bias, relu }, { kind: 'vector', F: p.out });
  },
};
