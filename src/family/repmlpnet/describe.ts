/**
 * RepMLPNet(config) as a description (repmlpnet.md "Structure"): conv_embedding, the
 * stages' RepMLPNetUnits, embeds between stages, head_norm, GAP, head, in PyTorch's
 * registration order (conv_embedding, stages.*, embeds.*, head_norm, head), and the
 * forward dataflow. Locality injection changes only the repmlpnet_block units; every
 * conv+BN pair and BN here is kept in deploy (fold: false), as the repository's deploy
 * model keeps them.
 */
import type { Mode, NetworkDesc, Op, Unit } from '../types.js';
import { blockParams, inputMultiples, type RepMLPNetConfig } from './config.js';

function convbn(path: string, i: number, o: number, k: number, stride: number, relu: boolean): Unit<'convbn'> {
  return { kind: 'convbn', path, params: { in: i, out: o, k, stride, pad: 0, groups: 1, relu, fold: false } };
}

const bn = (path: string, C: number): Unit<'bn'> => ({ kind: 'bn', path, params: { C } });

export function describeRepMLPNet(cfg: RepMLPNetConfig, mode: Mode): NetworkDesc {
  const p = cfg.patch_size;
  const units: Unit[] = [convbn('conv_embedding', cfg.in_channels, cfg.channels[0]!, p, p, true)];
  const forward: Op[] = [{ op: 'unit', unit: 'conv_embedding', input: 'input', output: 'conv_embedding' }];
  const embeds: Unit[] = [];
  let x = 'conv_embedding';
  cfg.num_blocks.forEach((n, i) => {
    const bp = blockParams(cfg, i);
    const C = bp.C;
    for (let j = 0; j < n; j++) {
      const u = `stages.${i}.${j}`;
      // Registration order of RepMLPNetUnit: repmlp_block, ffn_block (ffn_fc1, ffn_fc2), prebn1, prebn2.
      units.push(
        { kind: 'repmlpnet_block', path: `${u}.repmlp_block`, params: bp },
        convbn(`${u}.ffn_block.ffn_fc1`, C, 4 * C, 1, 1, false),
        convbn(`${u}.ffn_block.ffn_fc2`, 4 * C, C, 1, 1, false),
        bn(`${u}.prebn1`, C),
        bn(`${u}.prebn2`, C),
      );
      // y = x + repmlp_block(prebn1(x)); z = y + ffn_block(prebn2(y)).
      forward.push(
        { op: 'unit', unit: `${u}.prebn1`, input: x, output: `${u}.prebn1` },
        { op: 'unit', unit: `${u}.repmlp_block`, input: `${u}.prebn1`, output: `${u}.repmlp_block` },
        { op: 'add', inputs: [x, `${u}.repmlp_block`], output: `${u}.y` },
        { op: 'unit', unit: `${u}.prebn2`, input: `${u}.y`, output: `${u}.prebn2` },
        { op: 'unit', unit: `${u}.ffn_block.ffn_fc1`, input: `${u}.prebn2`, output: `${u}.ffn_block.ffn_fc1` },
        { op: 'gelu', input: `${u}.ffn_block.ffn_fc1`, output: `${u}.ffn_block.act` },
        { op: 'unit', unit: `${u}.ffn_block.ffn_fc2`, input: `${u}.ffn_block.act`, output: `${u}.ffn_block.ffn_fc2` },
        { op: 'add', inputs: [`${u}.y`, `${u}.ffn_block.ffn_fc2`], output: u },
      );
      x = u;
    }
    if (i + 1 < cfg.channels.length) {
      const e = `embeds.${i}`;
      embeds.push(convbn(e, C, cfg.channels[i + 1]!, 2, 2, true));
      forward.push({ op: 'unit', unit: e, input: x, output: e });
      x = e;
    }
  });
  const last = cfg.channels[cfg.channels.length - 1]!;
  units.push(...embeds, bn('head_norm', last), { kind: 'linear', path: 'head', params: { in: last, out: cfg.num_class, bias: true } });
  forward.push(
    { op: 'unit', unit: 'head_norm', input: x, output: 'head_norm' },
    { op: 'gap', input: 'head_norm', output: 'gap' },
    { op: 'unit', unit: 'head', input: 'gap', output: 'logits' },
  );
  return {
    family: 'RepMLPNet', typeName: 'RepMLPNet', mode,
    input: { C: cfg.in_channels, H: cfg.input_size[0], W: cfg.input_size[1] },
    sizes: inputMultiples(cfg),
    numClasses: cfg.num_class, units, forward, inputName: 'input', outputName: 'logits',
  };
}
