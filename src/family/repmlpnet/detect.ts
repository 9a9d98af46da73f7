/**
 * Which RepMLPNet a state dict holds, from its keys and shapes alone (TF.js-free).
 * Mode: training-time has each RepMLPBlock's fc3_bn (and repconv{k}); deploy (after
 * locality_injection()) has fc3.bias and neither.
 */
import type { StateDict } from '../../pth/pyobj.js';
import type { Mode } from '../types.js';
import { parseRepMLPNetConfig, type RepMLPNetConfig } from './config.js';

const BLOCK = /(^|\.)repmlp_block\.(fc3_bn\.running_var|repconv\d+\.conv\.weight|fc3\.bias|fc3\.weight)$/;

export function detectRepMLPNetMode(sd: StateDict): Mode | null {
  let train = false;
  let bias = false;
  for (const k of sd.keys()) {
    const m = BLOCK.exec(k);
    if (!m) continue;
    if (m[2] === 'fc3.bias') bias = true;
    else if (m[2] !== 'fc3.weight') train = true;
  }
  if (train) return 'train';
  return bias ? 'deploy' : null;
}

const shape = (sd: StateDict, k: string) => sd.get(k)?.shape;

/**
 * The constructor's arguments read back from the shapes. Only h*w is stored, so the
 * partition is taken as square (a non-square one needs --arch); the input size is the
 * default (one partition per map in stage 0). Null when the keys are not a RepMLPNet's;
 * the registry checks the result against the full layout.
 */
export function inferRepMLPNet(sd: StateDict, mode: Mode | null): RepMLPNetConfig | null {
  const emb = shape(sd, 'conv_embedding.conv.weight');
  const head = shape(sd, 'head.weight');
  if (!emb || emb.length !== 4 || emb[2] !== emb[3] || !head || head.length !== 2) return null;
  const keys = [...sd.keys()];
  const numBlocks: number[] = [];
  for (let i = 0; keys.some((k) => k.startsWith(`stages.${i}.`)); i++) {
    let j = 0;
    while (keys.some((k) => k.startsWith(`stages.${i}.${j}.`))) j++;
    numBlocks.push(j);
  }
  if (numBlocks.length === 0) return null;
  const channels: number[] = [];
  const hs: number[] = [];
  const sets: number[] = [];
  const inner: number[] = [];
  for (let i = 0; i < numBlocks.length; i++) {
    const p = `stages.${i}.0.`;
    const C = shape(sd, p + 'prebn1.weight')?.[0];
    const fc3 = shape(sd, p + 'repmlp_block.fc3.weight');
    const fc1 = shape(sd, p + 'repmlp_block.gp.fc1.weight');
    if (C === undefined || !fc3 || fc3.length !== 4 || !fc1) return null;
    const hw = fc3[1]!;
    const side = Math.round(Math.sqrt(hw));
    if (side * side !== hw || fc3[0]! % hw !== 0) return null;
    channels.push(C);
    hs.push(side);
    sets.push(fc3[0]! / hw);
    inner.push(fc1[0]!);
  }
  // globalperceptron_reduce r: the one with C // r == inner in every stage.
  let reduce = 0;
  for (let r = Math.max(1, Math.floor(channels[0]! / inner[0]!)); r <= channels[0]!; r++) {
    if (channels.every((C, i) => Math.floor(C / r) === inner[i])) {
      reduce = r;
      break;
    }
    if (Math.floor(channels[0]! / r) < inner[0]!) break;
  }
  if (!reduce) return null;
  const ks = mode === 'deploy' ? [] : keys
    .map((k) => /^stages\.0\.0\.repmlp_block\.repconv(\d+)\.conv\.weight$/.exec(k))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]));
  try {
    return parseRepMLPNetConfig({
      in_channels: emb[1], num_class: head[0], patch_size: emb[2], num_blocks: numBlocks, channels, hs, ws: hs,
      sharesets_nums: sets, reparam_conv_k: ks.length ? ks : null, globalperceptron_reduce: reduce,
    }, 'inferred');
  } catch {
    return null;
  }
}
