import type { ExportUnit } from './types.js';

export const convExport: ExportUnit<'conv'> = {
  kind: 'conv',
  lower(b, { path, params: p }, input, output, relu) {
    const bias = p.bias ? b.weight(`${path}.bias`) : b.constant(`${path}.bias`, [p.out], new Float32Array(p.out));
    return b.conv(path, input, b.weight(`${path}.weight`), bias, { stride: p.stride, pad: p.pad, groups: p.groups, relu, output });
  },
};
