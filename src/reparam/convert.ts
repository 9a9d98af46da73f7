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
import { Storage, Tensor, numelOf } from '../tensor.js';
import { isFloatDType, readFloat, readFloat64, tensorFrom, ReparamError } from './numeric.js';
import { bnScaleShift, fuseBn, fuseBnAs, type BatchNorm } from './fuse_bn.js';
import { padKernel } from './pad_kernel.js';
import { mergeFc3, type LocalPerceptron } from './conv_to_fc.js';
import { foldAvgBn } from './fold_avg_bn.js';
import { blockKeys, blockName, findConvBnPairs, findRepmlpBlocks, get, pairKeys, type BnKeys, type ConvBnPair, type RepmlpBlock } from './find.js';
import { inferGeometry, type BlockGeometry, type BlockHint } from './geometry.js';
import { familyNames } from '../family/registry.js';

/**
 * A unit to fold: described by a family (with its params) or claimed by a building-blocks
 * family from the keys (no params: the rule reads them off the shapes).
 */
export type ConvertUnit = Unit | { kind: UnitKind; path: string; params?: undefined };
import { BLOCK_FAMILIES } from '../family/registry.js';
import type { Unit, UnitKind } from '../family/types.js';
import { REPARAM_UNITS } from './units/index.js';

import { BN_EPS } from '../family/entries.js';

export { BN_EPS };

export interface ConvertOptions {
  /** Per-block hints, keyed by block name (`stage2.1.light_repmlp`, `(root)` for a bare RepMLP). */
  hints?: Record<string, BlockHint> | ReadonlyMap<string, BlockHint>;
  /** Hint for every block without its own (the CLI's --fc3-groups / --partition). */
  defaultHint?: BlockHint;
  /** BatchNorm eps; not stored in state dicts (1e-5 throughout the release). */
  eps?: number;
  /**
   * The units to fold, from a family description (training form, only units whose deploy
   * form differs): each is converted by its kind's rule (./units/). Without it, the 2021
   * building blocks are claimed by their keys (RepMLP blocks and ConvBN pairs anywhere).
   */
  units?: readonly ConvertUnit[];
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

/** A folded unit of a kind beyond the 2021 blocks (e.g. a RepMLPNet block): what it was. */
export interface ConvertedUnit {
  kind: string;
  path: string;
  /** One line for the summary, e.g. `S=4, partition 8x8, local k=1,3`. */
  detail?: string;
}

export interface ConvertResult {
  stateDict: StateDict;
  blocks: ConvertedBlock[];
  /** Prefixes (without the dot) of the fused ConvBN pairs. */
  convBnPairs: string[];
  /** Other folded units (kinds beyond the 2021 blocks), in output order. */
  units: ConvertedUnit[];
  tensorsIn: number;
  tensorsOut: number;
  elementsIn: number;
  elementsOut: number;
  /** Milliseconds per step (repmlp / convBn: compute time, also when done lazily). */
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

/**
 * The units the building-blocks families claim in a state dict of an unknown model (the
 * 2021 RepMLP blocks and ConvBN pairs anywhere); throws on a pattern they know to be
 * another network's re-parameterizable block, naming it, its keys and the families tried.
 */
export function claimUnits(sd: StateDict): ConvertUnit[] {
  const units: ConvertUnit[] = [];
  for (const f of BLOCK_FAMILIES) {
    const claim = f.claim(sd);
    const r = claim.refused[0];
    if (r) {
      const keys = r.keys.length > 6 ? `${r.keys.slice(0, 6).join(', ')}, ... (${r.keys.length} keys)` : r.keys.join(', ');
      throw new ReparamError(`${r.path}: unknown block pattern: ${r.pattern}; no family description claims it (tried ${familyNames().join(', ')}); keys ${keys}. Refusing rather than folding its conv+BN pairs one by one (no deploy model would load that)${claim.refused.length > 1 ? `; ${claim.refused.length - 1} more such block(s)` : ''}`);
    }
    units.push(...claim.units);
  }
  return units;
}

/** Jobs for the units to fold (described or claimed), by their kinds' rules. */
function unitJobs(sd: StateDict, units: readonly ConvertUnit[], opts: ConvertOptions, eps: number): Job[] {
  return units.map((u) => {
    const impl = REPARAM_UNITS.get(u.kind);
    if (!impl) throw new ReparamError(`${u.path}: no re-parameterization rule for unit kind '${u.kind}'`);
    const hint = hintFor(opts, u.path === '' ? '(root)' : u.path);
    const ctx = { eps, ...(hint ? { hint } : {}) };
    if (u.params !== undefined) return impl.job(sd, u as never, ctx);
    if (!impl.jobFromKeys) throw new ReparamError(`${u.path}: unit kind '${u.kind}' cannot be folded from its keys alone; give --arch`);
    return impl.jobFromKeys(sd, u.path, ctx);
  });
}

function elementsOf(sd: StateDict): number {
  let n = 0;
  for (const t of sd.values()) n += t.numel;
  return n;
}

/** One unit of work: a unit to fold (a RepMLP block, a ConvBN pair, ...), and the tensors it emits. */
export interface Job {
  /** Timing bucket. */
  kind: 'repmlp' | 'convBn';
  /** What the CLI reports: a RepMLP block's sizes, or a folded conv+BN pair's name. */
  report?: { block: ConvertedBlock } | { pair: string } | { unit: { kind: string; path: string } };
  /** Per output tensor: the input key whose place it takes, its name, shape and dtype. */
  specs: { at: string; key: string; shape: readonly number[]; dtype: Tensor['dtype'] }[];
  /** Elements of work (for progress). */
  size: number;
  /** The input keys it reads (to read them ahead). */
  inputs: string[];
  run(): Tensor[];
}

export function blockReport(b: RepmlpBlock, g: BlockGeometry): ConvertedBlock {
  return {
    name: blockName(b.prefix), C: g.C, O: g.O, fc3Groups: g.g, h: g.h, w: g.w,
    reparamConvK: b.repconvs.map((r) => r.k), globalPerceptron: b.global !== undefined, assumed: g.assumed,
  };
}

export function repmlpJob(sd: StateDict, b: RepmlpBlock, geometry: BlockGeometry, eps: number): Job {
  const fc3 = get(sd, b.fc3Weight);
  const specs: Job['specs'] = [];
  if (b.global) {
    const w1 = get(sd, b.global.fc1Weight);
    const b1 = get(sd, b.global.fc1Bias);
    specs.push({ at: b.global.fc1Weight, key: b.global.fc1Weight, shape: w1.shape, dtype: w1.dtype });
    specs.push({ at: b.global.fc1Bias, key: b.global.fc1Bias, shape: b1.shape, dtype: b1.dtype });
  }
  specs.push({ at: b.fc3Weight, key: b.fc3Weight, shape: fc3.shape, dtype: fc3.dtype });
  specs.push({ at: b.fc3Weight, key: b.prefix + 'fc3.bias', shape: [geometry.rows], dtype: fc3.dtype });
  return {
    kind: 'repmlp', specs, size: fc3.numel, inputs: blockKeys(b), report: { block: blockReport(b, geometry) },
    run() {
      const d = convertRepmlp(sd, b, geometry, eps);
      return [...(b.global ? [d.fc1Weight!, d.fc1Bias!] : []), d.fc3Weight, d.fc3Bias];
    },
  };
}

export function convBnJob(sd: StateDict, p: ConvBnPair, eps: number): Job {
  const conv = get(sd, p.convWeight);
  return {
    kind: 'convBn', size: conv.numel, inputs: pairKeys(p), report: { pair: blockName(p.prefix) },
    specs: [
      { at: p.convWeight, key: p.convWeight, shape: conv.shape, dtype: conv.dtype },
      { at: p.convWeight, key: p.prefix + 'conv.bias', shape: [conv.shape[0]!], dtype: conv.dtype },
    ],
    run: () => convertConvBn(sd, p, eps),
  };
}

/** Float dtypes checked before any work, so a lazy conversion cannot fail half-written. */
function checkDtypes(sd: StateDict, keys: string[]): void {
  for (const k of keys) {
    if (k.endsWith('num_batches_tracked')) continue;
    const t = get(sd, k);
    if (!isFloatDType(t.dtype)) throw new ReparamError(`${k}: expected a floating-point tensor, found ${t.dtype}`);
  }
}

/**
 * Converts a training-time state dict. Returns a new StateDict (the input is not
 * modified; untouched tensors are shared). Throws ReparamError naming the block and the
 * hint when a RepMLP's fc3 groups or partition size cannot be read from the shapes.
 *
 * `lazy`: every shape is checked up front, but the converted tensors are computed when
 * their bytes are first asked for (in output order). Computing job k starts reading job
 * k+1's large inputs on the thread pool (Storage.prefetch), and job k+1 is computed as
 * soon as they are in. A streaming writer then computes block k+1 while the file system
 * copies block k, and reads overlap computing: the main thread mostly computes.
 */
export function convertStateDict(sd: StateDict, opts: ConvertOptions & { lazy?: boolean } = {}): ConvertResult {
  const eps = opts.eps ?? BN_EPS;
  const t0 = performance.now();
  const planned = unitJobs(sd, opts.units ?? claimUnits(sd), opts, eps);
  const drop = new Set<string>(planned.flatMap((j) => j.inputs));
  checkDtypes(sd, [...drop]);
  const order = new Map([...sd.keys()].map((k, i) => [k, i]));
  const jobs = planned.sort((a, b) => order.get(a.specs[0]!.at)! - order.get(b.specs[0]!.at)!);
  const t1 = performance.now();
  const timings = { find: t1 - t0, repmlp: 0, convBn: 0, assemble: 0 };
  const total = jobs.reduce((n, j) => n + j.size, 0);
  let done = 0;
  const results: (Tensor[] | undefined)[] = jobs.map(() => undefined);
  const readAhead = (j: number): Promise<unknown> => Promise.all(jobs[j]!.inputs.map((k) => sd.get(k)?.storage.prefetch()));
  const ensure = (j: number): Tensor[] => {
    let r = results[j];
    if (!r) {
      const next = opts.lazy && j + 1 < jobs.length ? readAhead(j + 1) : null;
      const t = performance.now();
      r = results[j] = jobs[j]!.run();
      timings[jobs[j]!.kind] += performance.now() - t;
      opts.onProgress?.((done += jobs[j]!.size), total);
      void next?.then(() => setImmediate(() => {
        try {
          ensure(j + 1);
        } catch {
          // Not here: the error surfaces when that tensor's bytes are asked for.
        }
      }));
    }
    return r;
  };
  const emit = new Map<string, [string, Tensor][]>();
  jobs.forEach((job, j) => {
    if (!opts.lazy) ensure(j);
    job.specs.forEach((s, i) => {
      const tensor = opts.lazy
        ? new Tensor(new Storage(s.dtype, numelOf(s.shape), () => ensure(j)[i]!.contiguousBytes()), s.shape)
        : results[j]![i]!;
      const list = emit.get(s.at) ?? [];
      list.push([s.key, tensor]);
      emit.set(s.at, list);
    });
  });
  const t2 = performance.now();
  const out: StateDict = new Map();
  for (const [key, t] of sd) {
    const rep = emit.get(key);
    if (rep) for (const [k, v] of rep) out.set(k, v);
    else if (!drop.has(key)) out.set(key, t);
  }
  timings.assemble = performance.now() - t2;
  return {
    stateDict: out,
    blocks: jobs.flatMap((j) => (j.report && 'block' in j.report ? [j.report.block] : [])),
    convBnPairs: jobs.flatMap((j) => (j.report && 'pair' in j.report ? [j.report.pair] : [])),
    units: jobs.flatMap((j) => (j.report && 'unit' in j.report ? [j.report.unit] : [])),
    tensorsIn: sd.size,
    tensorsOut: out.size,
    elementsIn: elementsOf(sd),
    elementsOut: elementsOf(out),
    timings,
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
