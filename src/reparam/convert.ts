/**
 * Training-time -> deploy conversion of a whole state dict (RepMLP, arXiv 2105.01883,
 * Sec. 3.3; architecture.md "Re-parameterization"): every RepMLP found by its keys gets
 * its local perceptron and fc3_bn merged into fc3 and avg.bn folded into fc1; every
 * ConvBN pair becomes one biased conv; everything else passes through untouched (same
 * Tensor objects). Output keys, order and shapes are those of the release's
 * `repmlp_model_convert` (a deploy model's state_dict); values are the exact conversion,
 * also for C != O.
 */
import type { StateDict } from '../pth/pyobj.js';
import { Tensor } from '../tensor.js';
import { readFloat, readFloat64, tensorFrom, ReparamError } from './numeric.js';
import { bnScaleShift, fuseBn, fuseBnAs, type BatchNorm } from './fuse_bn.js';
import { padKernel } from './pad_kernel.js';
import { mergeFc3, type LocalPerceptron } from './conv_to_fc.js';
import { foldAvgBn } from './fold_avg_bn.js';
import { blockKeys, blockName, findConvBnPairs, findRepmlpBlocks, get, pairKeys, type BnKeys, type ConvBnPair, type RepmlpBlock } from './find.js';
import { inferGeometry, type BlockGeometry, type BlockHint } from './geometry.js';

export const BN_EPS = 1e-5;

export interface ConvertOptions {
  /** Per-block hints, keyed by block name (`stage2.1.light_repmlp`, `(root)` for a bare RepMLP). */
  hints?: Record<string, BlockHint> | ReadonlyMap<string, BlockHint>;
  /** Hint for every block without its own (the CLI's --fc3-groups / --partition). */
  defaultHint?: BlockHint;
  /** BatchNorm eps; not stored in state dicts (1e-5 throughout the release). */
  eps?: number;
  /** Called after each converted block or pair with the fc3/conv elements done so far. */
  onProgress?: (done: number, total: number) => void;
}

export interface ConvertedBlock {
  name: string;
  C?: number;
  O?: number;
  fc3Groups?: number;
  h?: number;
  w?: number;
  /** Local-perceptron kernel sizes, in key order. */
  reparamConvK: number[];
  globalPerceptron: boolean;
  assumed: string[];
}

export interface ConvertResult {
  stateDict: StateDict;
  blocks: ConvertedBlock[];
  /** Prefixes (without the dot) of the fused ConvBN pairs. */
  convBnPairs: string[];
  tensorsIn: number;
  tensorsOut: number;
  elementsIn: number;
  elementsOut: number;
  /** Milliseconds per step. */
  timings: { find: number; repmlp: number; convBn: number; assemble: number };
}

/** The deploy parameters of one RepMLP (also the release's get_equivalent_fc1_fc3_params). */
export interface RepmlpDeploy {
  fc1Weight: Tensor | null;
  fc1Bias: Tensor | null;
  fc3Weight: Tensor;
  fc3Bias: Tensor;
}

export function readBn(sd: StateDict, k: BnKeys, eps: number): BatchNorm {
  return {
    weight: readFloat64(get(sd, k.weight), k.weight),
    bias: readFloat64(get(sd, k.bias), k.bias),
    runningMean: readFloat64(get(sd, k.runningMean), k.runningMean),
    runningVar: readFloat64(get(sd, k.runningVar), k.runningVar),
    eps,
  };
}

/** Local perceptron: each repconv{k} fused with its BN, padded to the largest K, summed. */
function localPerceptron(sd: StateDict, b: RepmlpBlock, geo: BlockGeometry, eps: number): LocalPerceptron | null {
  if (b.repconvs.length === 0) return null;
  const { O, Cg, K, h, w } = geo as Required<BlockGeometry>;
  const kernel = new Float64Array(O * Cg * K * K);
  const bias = new Float64Array(O);
  for (const r of b.repconvs) {
    const fused = fuseBn(readFloat(get(sd, r.conv), r.conv), readBn(sd, r.bn, eps));
    const padded = padKernel(fused.weight, [O, Cg, r.k, r.k], K);
    for (let i = 0; i < kernel.length; i++) kernel[i]! += padded[i]!;
    for (let o = 0; o < O; o++) bias[o]! += fused.bias[o]!;
  }
  return { kernel, bias, geometry: { O, Cg, K, h, w } };
}

/** Deploy fc1/fc3 of one RepMLP whose geometry is resolved. */
export function convertRepmlp(sd: StateDict, b: RepmlpBlock, geo: BlockGeometry, eps = BN_EPS): RepmlpDeploy {
  const fc3 = get(sd, b.fc3Weight);
  const bn = bnScaleShift(readBn(sd, b.fc3Bn, eps));
  if (b.fc3Bias) {
    const own = readFloat64(get(sd, b.fc3Bias), b.fc3Bias);
    for (let r = 0; r < own.length; r++) bn.shift[r]! += bn.scale[r]! * own[r]!;
  }
  const merged = mergeFc3(readFloat(fc3, b.fc3Weight), bn, localPerceptron(sd, b, geo, eps), fc3.dtype);
  const out: RepmlpDeploy = {
    fc1Weight: null,
    fc1Bias: null,
    // mergeFc3 wrote the dtype's own representation: wrapped without another copy.
    fc3Weight: Tensor.fromArray(merged.weight, fc3.shape, fc3.dtype),
    fc3Bias: Tensor.fromArray(merged.bias, [geo.rows], fc3.dtype),
  };
  if (b.global) {
    const g = b.global;
    const w1 = get(sd, g.fc1Weight);
    const b1 = get(sd, g.fc1Bias);
    const folded = foldAvgBn(readFloat(w1, g.fc1Weight), readFloat(b1, g.fc1Bias), readBn(sd, g.avgBn, eps));
    out.fc1Weight = tensorFrom(folded.weight, w1.shape, w1.dtype);
    out.fc1Bias = tensorFrom(folded.bias, b1.shape, b1.dtype);
  }
  return out;
}

/** One ConvBN pair as a biased conv: [weight, bias]. */
export function convertConvBn(sd: StateDict, p: ConvBnPair, eps = BN_EPS): [Tensor, Tensor] {
  const conv = get(sd, p.convWeight);
  const bias = p.convBias ? readFloat(get(sd, p.convBias), p.convBias) : undefined;
  const bn = readBn(sd, p.bn, eps);
  if (conv.shape[0] !== bn.weight.length) throw new ReparamError(`${p.convWeight}: ${conv.shape[0]} output channels, but ${p.bn.runningVar} has ${bn.weight.length}`);
  const fused = fuseBnAs(readFloat(conv, p.convWeight), bn, bias, conv.dtype);
  return [Tensor.fromArray(fused.weight, conv.shape, conv.dtype), tensorFrom(fused.bias, [fused.bias.length], conv.dtype)];
}

function hintFor(opts: ConvertOptions, name: string): BlockHint | undefined {
  const h = opts.hints;
  const own = h instanceof Map ? h.get(name) : h ? (h as Record<string, BlockHint>)[name] : undefined;
  return own ?? opts.defaultHint;
}

/** Every RepMLP block with its resolved geometry; throws naming the block when a hint is needed. */
export function planConversion(sd: StateDict, opts: ConvertOptions = {}): { blocks: { block: RepmlpBlock; geometry: BlockGeometry }[]; pairs: ConvBnPair[] } {
  const found = findRepmlpBlocks(sd);
  const blocks = found.map((block) => ({ block, geometry: inferGeometry(sd, block, hintFor(opts, blockName(block.prefix))) }));
  return { blocks, pairs: findConvBnPairs(sd, found) };
}

function elementsOf(sd: StateDict): number {
  let n = 0;
  for (const t of sd.values()) n += t.numel;
  return n;
}

/**
 * Converts a training-time state dict. Returns a new StateDict (the input is not
 * modified; untouched tensors are shared). Throws ReparamError naming the block and the
 * hint when a RepMLP's fc3 groups or partition size cannot be read from the shapes.
 */
export function convertStateDict(sd: StateDict, opts: ConvertOptions = {}): ConvertResult {
  const eps = opts.eps ?? BN_EPS;
  const t0 = performance.now();
  const { blocks, pairs } = planConversion(sd, opts);
  const t1 = performance.now();
  // What to emit at a key's position (a replaced key) or nothing (a dropped key).
  const emit = new Map<string, [string, Tensor][]>();
  const drop = new Set<string>();
  const total = blocks.reduce((n, b) => n + get(sd, b.block.fc3Weight).numel, 0) + pairs.reduce((n, p) => n + get(sd, p.convWeight).numel, 0);
  let done = 0;
  for (const { block: b, geometry } of blocks) {
    for (const k of blockKeys(b)) drop.add(k);
    const d = convertRepmlp(sd, b, geometry, eps);
    emit.set(b.fc3Weight, [[b.fc3Weight, d.fc3Weight], [b.prefix + 'fc3.bias', d.fc3Bias]]);
    if (b.global) {
      emit.set(b.global.fc1Weight, [[b.global.fc1Weight, d.fc1Weight!]]);
      emit.set(b.global.fc1Bias, [[b.global.fc1Bias, d.fc1Bias!]]);
    }
    done += d.fc3Weight.numel;
    opts.onProgress?.(done, total);
  }
  const t2 = performance.now();
  for (const p of pairs) {
    for (const k of pairKeys(p)) drop.add(k);
    const [w, bias] = convertConvBn(sd, p, eps);
    emit.set(p.convWeight, [[p.convWeight, w], [p.prefix + 'conv.bias', bias]]);
    done += w.numel;
    opts.onProgress?.(done, total);
  }
  const t3 = performance.now();
  const out: StateDict = new Map();
  for (const [key, t] of sd) {
    const rep = emit.get(key);
    if (rep) for (const [k, v] of rep) out.set(k, v);
    else if (!drop.has(key)) out.set(key, t);
  }
  const t4 = performance.now();
  return {
    stateDict: out,
    blocks: blocks.map(({ block: b, geometry: g }) => ({
      name: blockName(b.prefix), C: g.C, O: g.O, fc3Groups: g.g, h: g.h, w: g.w,
      reparamConvK: b.repconvs.map((r) => r.k), globalPerceptron: b.global !== undefined, assumed: g.assumed,
    })),
    convBnPairs: pairs.map((p) => blockName(p.prefix)),
    tensorsIn: sd.size,
    tensorsOut: out.size,
    elementsIn: elementsOf(sd),
    elementsOut: elementsOf(out),
    timings: { find: t1 - t0, repmlp: t2 - t1, convBn: t3 - t2, assemble: t4 - t3 },
  };
}

/**
 * The equivalent fc1/fc3 of the RepMLP at `prefix` (the release FAQ's
 * get_equivalent_fc1_fc3_params, for quantization-aware training): what the deploy model
 * would hold, computed without converting the rest. `prefix` is the block name
 * (`stage2.1.light_repmlp`), '' or '(root)' for a bare RepMLP.
 */
export function equivalentFc1Fc3(sd: StateDict, prefix: string, opts: { hint?: BlockHint; eps?: number } = {}): RepmlpDeploy {
  const p = prefix === '' || prefix === '(root)' ? '' : prefix.endsWith('.') ? prefix : prefix + '.';
  const b = findRepmlpBlocks(sd).find((x) => x.prefix === p);
  if (!b) throw new ReparamError(`${p}fc3_bn.running_var: no training-time RepMLP at '${blockName(p)}'`);
  return convertRepmlp(sd, b, inferGeometry(sd, b, opts.hint), opts.eps ?? BN_EPS);
}
