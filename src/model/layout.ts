/**
 * The state-dict layout of every module, as data: names, shapes and dtypes in PyTorch's
 * registration order (own parameters, then buffers, then children in the order the
 * release's constructors register them). No TensorFlow.js here: `detect.ts` and the
 * `inspect` command use it without loading a backend, and the TF.js modules build their
 * parameter slots from the same lists, so both always agree.
 */
import { type BlockPlan, type RepMLPParams, type RepMLPResNetConfig, planNetwork, repmlpParams } from './config.js';

export interface Entry {
  name: string;
  shape: number[];
  dtype: 'float32' | 'int64';
}

const f32 = (name: string, shape: number[]): Entry => ({ name, shape, dtype: 'float32' });

export function withPrefix(prefix: string, entries: Entry[]): Entry[] {
  return entries.map((e) => ({ ...e, name: prefix + e.name }));
}

/** BatchNorm1d/2d: params weight, bias; buffers running_mean, running_var, num_batches_tracked. */
export function bnEntries(n: number): Entry[] {
  return [
    f32('weight', [n]), f32('bias', [n]), f32('running_mean', [n]), f32('running_var', [n]),
    { name: 'num_batches_tracked', shape: [], dtype: 'int64' },
  ];
}

export function convEntries(inC: number, outC: number, k: number, groups: number, bias: boolean): Entry[] {
  const e = [f32('weight', [outC, inC / groups, k, k])];
  if (bias) e.push(f32('bias', [outC]));
  return e;
}

export function linearEntries(inF: number, outF: number): Entry[] {
  return [f32('weight', [outF, inF]), f32('bias', [outF])];
}

/** ConvBN / ConvBNReLU: `conv` (no bias) + `bn` in training; one biased `conv` in deploy. */
export function convBNEntries(inC: number, outC: number, k: number, groups: number, deploy: boolean): Entry[] {
  const conv = withPrefix('conv.', convEntries(inC, outC, k, groups, deploy));
  return deploy ? conv : [...conv, ...withPrefix('bn.', bnEntries(outC))];
}

export function hasGlobalPerceptron(p: RepMLPParams): boolean {
  return p.H !== p.h || p.W !== p.w;
}

/** fc1's output count: floor(C*hp*wp / reduction), as `int(n // r)` in the release. */
export function fc1Features(p: RepMLPParams): { n: number; inner: number } {
  const n = p.C * (p.H / p.h) * (p.W / p.w);
  return { n, inner: Math.floor(n / p.fc1fc2Reduction) };
}

/** RepMLP: fc1_fc2.*, avg.bn.* (training), fc3.weight (+bias in deploy), fc3_bn.*, repconv{k}.*. */
export function repmlpEntries(p: RepMLPParams, deploy: boolean): Entry[] {
  const out: Entry[] = [];
  const hw = p.h * p.w;
  if (hasGlobalPerceptron(p)) {
    const { n, inner } = fc1Features(p);
    out.push(...withPrefix('fc1_fc2.fc1.', linearEntries(n, inner)), ...withPrefix('fc1_fc2.fc2.', linearEntries(inner, n)));
    if (!deploy) out.push(...withPrefix('avg.bn.', bnEntries(p.C)));
  }
  out.push(...withPrefix('fc3.', convEntries(p.C * hw, p.O * hw, 1, p.fc3Groups, deploy)));
  if (!deploy) {
    out.push(...withPrefix('fc3_bn.', bnEntries(p.O * hw)));
    for (const k of p.reparamConvK) {
      out.push(...withPrefix(`repconv${k}.conv.`, convEntries(p.C, p.O, k, p.fc3Groups, false)));
      out.push(...withPrefix(`repconv${k}.bn.`, bnEntries(p.O)));
    }
  }
  return out;
}

/** The children of one block, in registration order (shortcut first, as in the release). */
export function blockChildren(b: BlockPlan): Array<{ name: string; kind: 'convbn' | 'repmlp'; in: number; out: number; k: number; stride: number; relu: boolean }> {
  const kids: Array<{ name: string; kind: 'convbn' | 'repmlp'; in: number; out: number; k: number; stride: number; relu: boolean }> = [];
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

export function blockEntries(cfg: RepMLPResNetConfig, b: BlockPlan, deploy: boolean): Entry[] {
  const out: Entry[] = [];
  for (const c of blockChildren(b)) {
    const e = c.kind === 'repmlp' ? repmlpEntries(repmlpParams(cfg, b), deploy) : convBNEntries(c.in, c.out, c.k, 1, deploy);
    out.push(...withPrefix(`${c.name}.`, e));
  }
  return out;
}

/** Every state-dict entry of RepMLPResNet(cfg), in PyTorch's order. */
export function networkEntries(cfg: RepMLPResNetConfig, deploy: boolean): Entry[] {
  const out = withPrefix('stage0.0.', convBNEntries(cfg.in_channels, cfg.stem_width, 7, 1, deploy));
  for (const b of planNetwork(cfg)) out.push(...withPrefix(`${b.prefix}.`, blockEntries(cfg, b, deploy)));
  out.push(...withPrefix('linear.', linearEntries(cfg.widths[3]!, cfg.num_classes)));
  return out;
}

export function numelOfShape(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}
