/**
 * Finding what to re-parameterize in any state dict, by key pattern alone (the model
 * class is unknown: a RepMLP-ResNet or a user's model with RepMLPs somewhere), and
 * reading each RepMLP's geometry off the shapes (architecture.md, last bullet of
 * "Re-parameterization").
 */
import type { StateDict } from '../../pth/pyobj.js';
import type { Tensor } from '../../tensor.js';
import { ReparamError } from '../errors.js';

/** The keys of one BatchNorm; num_batches_tracked is optional (old checkpoints lack it). */
export interface BnKeys {
  weight: string;
  bias: string;
  runningMean: string;
  runningVar: string;
  numBatchesTracked?: string;
}

/** One training-time RepMLP: `prefix` ends with '.' (or is '' for a bare RepMLP). */
export interface RepmlpBlock {
  prefix: string;
  fc3Weight: string;
  /** A bias on the training fc3 (not in the release; fused too if someone added one). */
  fc3Bias?: string;
  fc3Bn: BnKeys;
  /** Local perceptron branches in key order. */
  repconvs: { k: number; conv: string; bn: BnKeys }[];
  /** Global perceptron, when present. */
  global?: { avgBn: BnKeys; fc1Weight: string; fc1Bias: string };
}

/** A `<p>conv.weight` + `<p>bn.*` pair (ConvBN / ConvBNReLU) outside any RepMLP. */
export interface ConvBnPair {
  prefix: string;
  convWeight: string;
  convBias?: string;
  bn: BnKeys;
}

/** The name users see: the prefix without its dot, or '(root)'. */
export function blockName(prefix: string): string {
  return prefix === '' ? '(root)' : prefix.slice(0, -1);
}

/** BN keys under `p` (e.g. 'a.bn.'), or undefined when `p` holds no BN; throws when one is incomplete. */
export function bnKeys(sd: StateDict, p: string): BnKeys | undefined {
  if (!sd.has(p + 'running_var') && !sd.has(p + 'running_mean')) return undefined;
  const k: BnKeys = { weight: p + 'weight', bias: p + 'bias', runningMean: p + 'running_mean', runningVar: p + 'running_var' };
  for (const key of [k.weight, k.bias, k.runningMean, k.runningVar]) {
    if (!sd.has(key)) throw new ReparamError(`${key}: missing (BatchNorm ${blockName(p)} is incomplete)`);
  }
  if (sd.has(p + 'num_batches_tracked')) k.numBatchesTracked = p + 'num_batches_tracked';
  return k;
}

const FC3_BN_VAR = 'fc3_bn.running_var';
const REPCONV = /^repconv(\d+)\.conv\.weight$/;

/** The training-time RepMLP whose keys start with `p` ('' or ending with '.'), or undefined when `p` holds none. */
export function repmlpBlockAt(sd: StateDict, p: string): RepmlpBlock | undefined {
  const key = p + FC3_BN_VAR;
  if (!sd.has(key)) return undefined;
  if (!sd.has(p + 'fc3.weight')) throw new ReparamError(`${p}fc3.weight: missing next to ${key} (RepMLP ${blockName(p)})`);
  const block: RepmlpBlock = { prefix: p, fc3Weight: p + 'fc3.weight', fc3Bn: bnKeys(sd, p + 'fc3_bn.')!, repconvs: [] };
  if (sd.has(p + 'fc3.bias')) block.fc3Bias = p + 'fc3.bias';
  for (const k2 of sd.keys()) {
    if (!k2.startsWith(p)) continue;
    const m = REPCONV.exec(k2.slice(p.length));
    if (!m) continue;
    const k = Number(m[1]);
    const bn = bnKeys(sd, `${p}repconv${m[1]}.bn.`);
    if (!bn) throw new ReparamError(`${p}repconv${m[1]}.bn.running_var: missing (local perceptron of RepMLP ${blockName(p)})`);
    block.repconvs.push({ k, conv: k2, bn });
  }
  const avgBn = bnKeys(sd, p + 'avg.bn.');
  if (avgBn) {
    const fc1Weight = p + 'fc1_fc2.fc1.weight';
    const fc1Bias = p + 'fc1_fc2.fc1.bias';
    for (const k2 of [fc1Weight, fc1Bias]) if (!sd.has(k2)) throw new ReparamError(`${k2}: missing next to ${avgBn.runningVar} (global perceptron of RepMLP ${blockName(p)})`);
    block.global = { avgBn, fc1Weight, fc1Bias };
  }
  return block;
}

/** Every training-time RepMLP, in key order: found by `fc3.weight` + `fc3_bn.*`. */
export function findRepmlpBlocks(sd: StateDict): RepmlpBlock[] {
  const blocks: RepmlpBlock[] = [];
  for (const key of sd.keys()) {
    if (!key.endsWith(FC3_BN_VAR) || !(key.length === FC3_BN_VAR.length || key[key.length - FC3_BN_VAR.length - 1] === '.')) continue;
    blocks.push(repmlpBlockAt(sd, key.slice(0, key.length - FC3_BN_VAR.length))!);
  }
  return blocks;
}

/** The `<p>conv.weight` + `<p>bn.*` pair at `p`, or undefined. */
export function convBnPairAt(sd: StateDict, p: string): ConvBnPair | undefined {
  const key = p + 'conv.weight';
  if (!sd.has(key)) return undefined;
  const bn = bnKeys(sd, p + 'bn.');
  if (!bn) return undefined;
  const pair: ConvBnPair = { prefix: p, convWeight: key, bn };
  if (sd.has(p + 'conv.bias')) pair.convBias = p + 'conv.bias';
  return pair;
}

/** Every `<p>conv.weight` with a `<p>bn.*` that is not a RepMLP's local-perceptron branch. */
export function findConvBnPairs(sd: StateDict, blocks: readonly RepmlpBlock[]): ConvBnPair[] {
  const taken = new Set(blocks.flatMap((b) => b.repconvs.map((r) => r.conv)));
  const pairs: ConvBnPair[] = [];
  for (const key of sd.keys()) {
    if (taken.has(key) || !(key === 'conv.weight' || key.endsWith('.conv.weight'))) continue;
    const pair = convBnPairAt(sd, key.slice(0, key.length - 'conv.weight'.length));
    if (pair) pairs.push(pair);
  }
  return pairs;
}

/** Every key a block consumes (all of them are dropped or replaced in the output). */
export function blockKeys(b: RepmlpBlock): string[] {
  const bn = (k: BnKeys) => [k.weight, k.bias, k.runningMean, k.runningVar, ...(k.numBatchesTracked ? [k.numBatchesTracked] : [])];
  return [
    b.fc3Weight, ...(b.fc3Bias ? [b.fc3Bias] : []), ...bn(b.fc3Bn),
    ...b.repconvs.flatMap((r) => [r.conv, ...bn(r.bn)]),
    ...(b.global ? [...bn(b.global.avgBn), b.global.fc1Weight, b.global.fc1Bias] : []),
  ];
}

export function pairKeys(p: ConvBnPair): string[] {
  const k = p.bn;
  return [p.convWeight, ...(p.convBias ? [p.convBias] : []), k.weight, k.bias, k.runningMean, k.runningVar, ...(k.numBatchesTracked ? [k.numBatchesTracked] : [])];
}

export function get(sd: StateDict, key: string): Tensor {
  const t = sd.get(key);
  if (!t) throw new ReparamError(`${key}: missing`);
  return t;
}

/** Checks a tensor's shape; `null` entries match anything. Returns the shape. */
export function expectShape(sd: StateDict, key: string, want: (number | null)[], what: string): readonly number[] {
  const s = get(sd, key).shape;
  if (s.length !== want.length || want.some((d, i) => d !== null && d !== s[i])) {
    throw new ReparamError(`${key}: ${what}: expected shape [${want.map((d) => d ?? '*')}], found [${s}]`);
  }
  return s;
}
