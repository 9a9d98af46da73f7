/**
 * RepMLPNet's RepMLPBlock (deploy) as IR: the gate, sigmoid(fc2(relu(fc1(mean x)))) with
 * gp.fc1/gp.fc2 (1x1 convs on a 1x1 map) as Linear layers, times fc3 over the patches
 * (SharedFcNode, ir.ts). map [C, H, W] -> map [C, H, W].
 */
import type { ExportUnit } from './types.js';

export const repmlpnetBlockExport: ExportUnit<'repmlpnet_block'> = {
  kind: 'repmlpnet_block',
  lower(b, { path, params: p }, input, output, relu) {
    const { C, H, W } = b.map(input);
    const avg = b.add({ op: 'globalavgpool', name: `${path}.gp.avg`, input, output: `${path}.gp.avg` }, { kind: 'vector', F: C });
    // A 1x1 conv's weight [out, in, 1, 1] is a Linear's [out, in], same bytes.
    const fc = (name: string, x: string, inF: number, outF: number, relu1: boolean) => {
      const weight = b.constant(`${path}.gp.${name}.weight`, [outF, inF], b.values32(`${path}.gp.${name}.weight`));
      return b.add({ op: 'linear', name: `${path}.gp.${name}`, input: x, output: `${path}.gp.${name}`, weight, bias: b.weight(`${path}.gp.${name}.bias`), relu: relu1 }, { kind: 'vector', F: outF });
    };
    const hidden = fc('fc1', avg, C, p.inner, true);
    const logit = fc('fc2', hidden, p.inner, C, false);
    const gate = b.add({ op: 'sigmoid', name: `${path}.gp.sigmoid`, input: logit, output: `${path}.gp.sigmoid` }, { kind: 'vector', F: C });
    const fc3 = b.add(
      { op: 'sharedfc', name: `${path}.fc3`, input, output: `${path}.fc3`, weight: b.weight(`${path}.fc3.weight`), bias: b.weight(`${path}.fc3.bias`), h: p.h, w: p.w, sets: p.S },
      { kind: 'map', C, H, W },
    );
    const prod = b.add({ op: 'mul', name: `${path}.gate`, input: fc3, other: gate, output: relu ? `${path}.gate` : output }, { kind: 'map', C, H, W });
    return relu ? b.add({ op: 'relu', name: output, input: prod, output }, { kind: 'map', C, H, W }) : prod;
  },
};
