/**
 * Which RepMLP-ResNet a state dict holds, from its keys and shapes alone. No TensorFlow.js
 * here (the `inspect` command imports this and should start fast).
 */
import type { StateDict } from '../pth/pyobj.js';
import { PRESETS, type RepMLPResNetConfig, parseConfig, presetConfig, resolveArch } from './config.js';
import { RepmlpError } from '../errors.js';
import { type Entry, networkEntries } from './layout.js';

export type Mode = 'train' | 'deploy';

/**
 * 'train' when any BatchNorm statistics are present, 'deploy' when the network's convs
 * carry biases and no BN is left, null when neither pattern fits (not a RepMLP-ResNet-
 * style state dict).
 */
export function detectMode(sd: StateDict): Mode | null {
  let bn = false;
  let convBias = false;
  for (const k of sd.keys()) {
    if (/(^|\.)(bn|fc3_bn)\.running_var$/.test(k)) bn = true;
    else if (/(^|\.)(conv|fc3)\.bias$/.test(k)) convBias = true;
  }
  if (bn) return 'train';
  return convBias ? 'deploy' : null;
}

function matches(entries: readonly Entry[], sd: StateDict): boolean {
  let n = 0;
  for (const e of entries) {
    const t = sd.get(e.name);
    if (!t) {
      if (e.name.endsWith('num_batches_tracked')) continue;
      return false;
    }
    if (t.shape.length !== e.shape.length || t.shape.some((d, i) => d !== e.shape[i])) return false;
    n++;
  }
  return n === sd.size;
}

let presetCache: Array<{ name: string; mode: Mode; entries: Entry[]; config: RepMLPResNetConfig }> | undefined;

function presetLayouts() {
  presetCache ??= Object.keys(PRESETS).flatMap((name) => {
    const config = presetConfig(name);
    return (['train', 'deploy'] as const).map((mode) => ({ name, mode, config, entries: networkEntries(config, mode === 'deploy') }));
  });
  return presetCache;
}

/**
 * A preset whose keys and shapes the state dict has exactly, else a custom configuration
 * inferred from the shapes (checked by regenerating its full layout), else null.
 */
export function detectArch(sd: StateDict): { name: string | null; config: RepMLPResNetConfig } | null {
  const mode = detectMode(sd);
  for (const p of presetLayouts()) {
    if ((mode === null || p.mode === mode) && matches(p.entries, sd)) return { name: p.name, config: p.config };
  }
  const config = inferConfig(sd);
  return config ? { name: null, config } : null;
}

const shapeOf = (sd: StateDict, k: string) => sd.get(k)?.shape;

/** A square root when n is a perfect square, else null. */
function isqrt(n: number): number | null {
  const r = Math.round(Math.sqrt(n));
  return r * r === n ? r : null;
}

/**
 * Reads the constructor arguments back from the shapes. Partition and image sizes are
 * only known as products (h*w, hp*wp): square is assumed, and the final layout check
 * rejects anything that does not fit. Returns null when it cannot tell.
 */
export function inferConfig(sd: StateDict): RepMLPResNetConfig | null {
  const stem = shapeOf(sd, 'stage0.0.conv.weight');
  const lin = shapeOf(sd, 'linear.weight');
  if (!stem || stem.length !== 4 || !lin || lin.length !== 2) return null;
  const deploy = detectMode(sd) === 'deploy';
  const numBlocks = [1, 2, 3, 4].map((s) => {
    let i = 0;
    while ([...sd.keys()].some((k) => k.startsWith(`stage${s}.${i}.`))) i++;
    return i;
  });
  const keys = [...sd.keys()];
  const lastOut = (s: number) => {
    const i = numBlocks[s - 1]! - 1;
    const w = shapeOf(sd, `stage${s}.${i}.conv3.conv.weight`) ?? shapeOf(sd, `stage${s}.${i}.light_conv3.conv.weight`) ?? shapeOf(sd, `stage${s}.${i}.btnk_conv5.conv.weight`);
    return w?.[0];
  };
  const widths = [1, 2, 3, 4].map(lastOut);
  if (widths.some((w) => w === undefined)) return null;
  const blockType = keys.some((k) => k.includes('.light_repmlp.')) ? 'light' : keys.some((k) => k.includes('.btnk_repmlp.')) ? 'bottleneck' : 'base';
  const raw: Record<string, unknown> = {
    num_blocks: numBlocks, num_classes: lin[0], block_type: blockType, img_H: 224, img_W: 224, h: 7, w: 7,
    reparam_conv_k: [1, 3, 5], fc1_fc2_reduction: 1, fc3_groups: 4, widths, stem_width: stem[0], in_channels: stem[1],
  };
  if (blockType !== 'base' && !inferRepmlp(sd, keys, blockType, raw, deploy)) return null;
  try {
    const config = parseConfig(raw, 'inferred');
    return matches(networkEntries(config, deploy), sd) ? config : null;
  } catch {
    return null;
  }
}

function inferRepmlp(sd: StateDict, keys: string[], blockType: string, raw: Record<string, unknown>, deploy: boolean): boolean {
  const name = blockType === 'light' ? 'light_repmlp' : 'btnk_repmlp';
  const prefixes = [2, 3].map((s) => keys.find((k) => k.startsWith(`stage${s}.`) && k.includes(`.${name}.fc3.weight`))?.replace(/fc3\.weight$/, ''));
  const pre = prefixes.find((p) => p !== undefined);
  if (!pre) return false;
  const fc3 = shapeOf(sd, pre + 'fc3.weight')!;
  const blockPre = pre.slice(0, -(name.length + 1));
  const inConv = shapeOf(sd, blockPre + (blockType === 'light' ? 'light_conv1.conv.weight' : 'btnk_conv2.conv.weight'));
  if (!inConv) return false;
  const C = inConv[0]!;
  const hw = fc3[0]! / C;
  const side = isqrt(hw);
  if (!Number.isInteger(hw) || side === null) return false;
  raw.h = raw.w = side;
  raw.fc3_groups = (C * hw) / fc3[1]!;
  const ks = keys.filter((k) => k.startsWith(pre + 'repconv') && k.endsWith('.conv.weight')).map((k) => Number(/repconv(\d+)\./.exec(k.slice(pre.length))![1]));
  if (!deploy && ks.length) raw.reparam_conv_k = ks;
  // Feature size of the stage from fc1 (C*hp*wp inputs); without a global perceptron,
  // the feature equals the partition.
  const stage = Number(/^stage(\d)/.exec(pre)![1]);
  const ratio = stage === 2 ? 8 : 16;
  const fc1 = shapeOf(sd, pre + 'fc1_fc2.fc1.weight');
  const parts = fc1 ? fc1[1]! / C : 1;
  const ps = isqrt(parts);
  if (ps === null) return false;
  raw.img_H = raw.img_W = side * ps * ratio;
  if (fc1) raw.fc1_fc2_reduction = Math.max(1, Math.round(fc1[1]! / fc1[0]!));
  if (blockType === 'bottleneck') {
    const r = [2, 3].map((s) => {
      const k = keys.find((kk) => kk.startsWith(`stage${s}.`) && kk.endsWith('.btnk_conv2.conv.weight'));
      const w = k ? shapeOf(sd, k) : undefined;
      return w ? w[1]! / w[0]! : 2;
    });
    raw.bottleneck_r = r;
  }
  return true;
}

import { checkArchFits } from './archfit.js';

export class ModelLoadError extends RepmlpError {
  override name = 'ModelLoadError';
}

/** Architecture and mode for a state dict: `arch` (preset or JSON path) when given, else detected. */
export function resolveModel(sd: StateDict, path: string, arch?: string): { arch: string | null; config: RepMLPResNetConfig; mode: Mode } {
  const mode = detectMode(sd);
  if (arch !== undefined) {
    const r = resolveArch(arch);
    // With an explicit arch and no telling keys, training form is PyTorch's default.
    checkArchFits(sd, path, arch, r.config, mode ?? 'train');
    return { arch: r.name, config: r.config, mode: mode ?? 'train' };
  }
  if (!mode) throw new ModelLoadError(`${path}: cannot tell training-time from deploy form (no BatchNorm statistics and no conv biases); not a RepMLP-ResNet state dict?`);
  const found = detectArch(sd);
  if (!found) throw new ModelLoadError(`${path}: architecture not recognized from its ${sd.size} keys; give --arch (a preset name or a config JSON)`);
  return { arch: found.name, config: found.config, mode };
}
