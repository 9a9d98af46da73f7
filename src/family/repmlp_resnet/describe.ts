/**
 * RepMLPResNet(config) as a description: the module tree as the release registers it
 * (`stage0.0`, then per block the shortcut first, then its body, then `linear`) and its
 * forward dataflow. Everything about the RepMLP-ResNet's structure is said here once.
 */
import type { Mode, NetworkDesc, Op, Unit } from '../types.js';
import { type BlockPlan, type RepMLPResNetConfig, afterStrides, planNetwork, repmlpParams } from './config.js';

/** One child of a block, in registration order. */
export interface BlockChild {
  name: string;
  kind: 'convbn' | 'repmlp';
  in: number;
  out: number;
  k: number;
  stride: number;
  relu: boolean;
}

/** The children of one block, in registration order (shortcut first, as in the release). */
export function blockChildren(b: BlockPlan): BlockChild[] {
  const kids: BlockChild[] = [];
  const cb = (name: string, i: number, o: number, k: number, stride: number, relu: boolean) => kids.push({ name, kind: 'convbn', in: i, out: o, k, stride, relu });
  if (b.hasShortcut) cb('shortcut', b.inChannels, b.outChannels, 1, b.stride, false);
  const mid = b.midChannels;
  if (b.kind === 'base') {
    cb('conv1', b.inChannels, mid, 1, 1, true);
    cb('conv2', mid, mid, 3, b.stride, true);
    cb('conv3', mid, b.outChannels, 1, 1, false);
  } else if (b.kind === 'light') {
    cb('light_conv1', b.inChannels, mid, 1, 1, true);
    kids.push({ name: 'light_repmlp', kind: 'repmlp', in: mid, out: mid, k: 0, stride: 1, relu: true });
    cb('light_conv3', mid, b.outChannels, 1, 1, false);
  } else {
    const rc = b.repmlpChannels!;
    cb('btnk_conv1', b.inChannels, mid, 1, 1, true);
    cb('btnk_conv2', mid, rc, 3, 1, true);
    kids.push({ name: 'btnk_repmlp', kind: 'repmlp', in: rc, out: rc, k: 0, stride: 1, relu: true });
    cb('btnk_conv4', rc, mid, 3, 1, true);
    cb('btnk_conv5', mid, b.outChannels, 1, 1, false);
  }
  return kids;
}

/** The 2021 ConvBN / ConvBNReLU: folded into one biased conv in deploy. */
function convbn(path: string, i: number, o: number, k: number, stride: number, relu: boolean): Unit<'convbn'> {
  return { kind: 'convbn', path, params: { in: i, out: o, k, stride, pad: Math.floor(k / 2), groups: 1, relu, fold: true } };
}

export function describeRepMLPResNet(cfg: RepMLPResNetConfig, mode: Mode): NetworkDesc {
  const units: Unit[] = [convbn('stage0.0', cfg.in_channels, cfg.stem_width, 7, 2, true)];
  const forward: Op[] = [
    { op: 'unit', unit: 'stage0.0', input: 'input', output: 'stage0.0' },
    // stage0.1: MaxPool2d(3, 2, padding 1), no parameters.
    { op: 'maxpool', input: 'stage0.0', output: 'stage0.1', kernel: 3, stride: 2, pad: 1 },
  ];
  let x = 'stage0.1';
  let fixed = false;
  for (const b of planNetwork(cfg)) {
    const p = b.prefix;
    let y = x;
    let short = x;
    for (const c of blockChildren(b)) {
      const path = `${p}.${c.name}`;
      if (c.kind === 'repmlp') {
        fixed = true;
        units.push({ kind: 'repmlp2021', path, params: repmlpParams(cfg, b) });
        forward.push({ op: 'unit', unit: path, input: y, output: path }, { op: 'relu', input: path, output: `${path}.relu` });
        y = `${path}.relu`;
        continue;
      }
      units.push(convbn(path, c.in, c.out, c.k, c.stride, c.relu));
      if (c.name === 'shortcut') {
        forward.push({ op: 'unit', unit: path, input: x, output: path });
        short = path;
      } else {
        forward.push({ op: 'unit', unit: path, input: y, output: path });
        y = path;
      }
    }
    forward.push({ op: 'add', inputs: [y, short], output: `${p}.add` }, { op: 'relu', input: `${p}.add`, output: p });
    x = p;
  }
  units.push({ kind: 'linear', path: 'linear', params: { in: cfg.widths[3]!, out: cfg.num_classes, bias: true } });
  forward.push({ op: 'gap', input: x, output: 'gap' }, { op: 'unit', unit: 'linear', input: 'gap', output: 'logits' });
  const desc: NetworkDesc = {
    family: 'RepMLPResNet', typeName: 'RepMLPResNet', mode,
    input: { C: cfg.in_channels, H: cfg.img_H, W: cfg.img_W },
    numClasses: cfg.num_classes, units, forward, inputName: 'input', outputName: 'logits',
  };
  // Only RepMLPs fix the image size (fc1 over the partitions, fc3 over one partition);
  // the plain ResNet runs any size (PyTorch's ceil(x/2) strides).
  if (!fixed) desc.sizes = { multipleH: 1, multipleW: 1 };
  return desc;
}

/** Stage feature sizes for an image (exported for messages and detection). */
export function stageSize(img: number, stage: number): number {
  return afterStrides(img, stage + 1);
}
