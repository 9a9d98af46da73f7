/**
 * RepMLPNet (Ding et al., CVPR 2022, arXiv 2112.11081; shared/spec/repmlpnet.md): the
 * constructor's arguments by their Python names, the six released presets, and the
 * state-dict layout (names, shapes, PyTorch's registration order) of the training-time
 * and the deploy (after locality_injection()) model. No TensorFlow.js here.
 *
 * One extension, not a constructor argument: `input_size` (pixels, an integer or [H, W]),
 * the resolution the model is exported and predicts at. Default: the smallest size every
 * stage's partition divides (inputMultiples), which is patch_size * (hs[0], ws[0])
 * whenever that works, e.g. every preset's 224 / 256.
 */
import { ConfigError } from '../errors.js';

export interface RepMLPNetConfig {
  in_channels: number;
  num_class: number;
  /** Square patches only (the released models use 4). */
  patch_size: number;
  num_blocks: number[];
  channels: number[];
  hs: number[];
  ws: number[];
  sharesets_nums: number[];
  reparam_conv_k: number[];
  globalperceptron_reduce: number;
  /** [H, W] in pixels. */
  input_size: [number, number];
}

const PRESET_COMMON = { in_channels: 3, num_class: 1000, patch_size: 4, reparam_conv_k: [1, 3], globalperceptron_reduce: 4 };
const s224 = { hs: [56, 28, 14, 7], ws: [56, 28, 14, 7] };
const s256 = { hs: [64, 32, 16, 8], ws: [64, 32, 16, 8] };

export const REPMLPNET_PRESETS: Readonly<Record<string, Omit<RepMLPNetConfig, 'input_size'>>> = {
  'RepMLPNet-T224': { ...PRESET_COMMON, ...s224, channels: [64, 128, 256, 512], num_blocks: [2, 2, 6, 2], sharesets_nums: [1, 4, 16, 128] },
  'RepMLPNet-B224': { ...PRESET_COMMON, ...s224, channels: [96, 192, 384, 768], num_blocks: [2, 2, 12, 2], sharesets_nums: [1, 4, 32, 128] },
  'RepMLPNet-T256': { ...PRESET_COMMON, ...s256, channels: [64, 128, 256, 512], num_blocks: [2, 2, 6, 2], sharesets_nums: [1, 4, 16, 128] },
  'RepMLPNet-B256': { ...PRESET_COMMON, ...s256, channels: [96, 192, 384, 768], num_blocks: [2, 2, 12, 2], sharesets_nums: [1, 4, 32, 128] },
  'RepMLPNet-D256': { ...PRESET_COMMON, ...s256, channels: [80, 160, 320, 640], num_blocks: [2, 2, 18, 2], sharesets_nums: [1, 4, 16, 128] },
  'RepMLPNet-L256': { ...PRESET_COMMON, ...s256, channels: [96, 192, 384, 768], num_blocks: [2, 2, 18, 2], sharesets_nums: [1, 4, 32, 256] },
};

/** The constructor's defaults (repmlpnet.py), for fields a user's JSON leaves out. */
const DEFAULTS = {
  in_channels: 3, num_class: 1000, patch_size: 4, num_blocks: [2, 2, 6, 2], channels: [192, 384, 768, 1536],
  hs: [64, 32, 16, 8], ws: [64, 32, 16, 8], sharesets_nums: [4, 8, 16, 32], reparam_conv_k: [3], globalperceptron_reduce: 4,
};
const FIELDS = ['in_channels', 'num_class', 'patch_size', 'num_blocks', 'channels', 'hs', 'ws', 'sharesets_nums', 'reparam_conv_k', 'globalperceptron_reduce', 'input_size'];
/** Accepted and ignored: the family tag, and the constructor's flags that change no weight. */
const IGNORED = ['family', 'use_checkpoint', 'deploy'];

function fail(where: string, field: string, msg: string): never {
  throw new ConfigError(`${where}: field '${field}': ${msg}`);
}

function posInt(v: unknown, where: string, field: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) fail(where, field, `expected a positive integer, found ${JSON.stringify(v)}`);
  return v;
}

function intList(v: unknown, where: string, field: string, len?: number): number[] {
  if (!Array.isArray(v) || v.length === 0) fail(where, field, `expected a non-empty list of positive integers, found ${JSON.stringify(v)}`);
  if (len !== undefined && v.length !== len) fail(where, field, `expected ${len} entries (one per stage), found ${v.length}`);
  return v.map((x, i) => posInt(x, where, `${field}.${i}`));
}

/** A pair given as n or [a, b]; `square` demands a == b. */
function pair(v: unknown, where: string, field: string, square: boolean): [number, number] {
  const [a, b] = Array.isArray(v) ? (v.length === 2 ? v : fail(where, field, `expected an integer or a pair, found ${JSON.stringify(v)}`)) : [v, v];
  const p: [number, number] = [posInt(a, where, field), posInt(b, where, field)];
  if (square && p[0] !== p[1]) fail(where, field, `only square patches are supported, found ${JSON.stringify(v)}`);
  return p;
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}
const lcm = (a: number, b: number) => (a / gcd(a, b)) * b;

/**
 * Input sizes the network runs at: multiples of these, so that every stage's map splits
 * into its partitions (and the 2x2 embeds divide evenly). The smallest is the default
 * input size: patch * (hs[0], ws[0]) for every preset (224 / 256).
 */
export function inputMultiples(cfg: Pick<RepMLPNetConfig, 'patch_size' | 'channels' | 'hs' | 'ws'>): { multipleH: number; multipleW: number } {
  let mh = cfg.patch_size * 2 ** (cfg.channels.length - 1);
  let mw = mh;
  cfg.hs.forEach((h, i) => {
    mh = lcm(mh, cfg.patch_size * 2 ** i * h);
    mw = lcm(mw, cfg.patch_size * 2 ** i * cfg.ws[i]!);
  });
  return { multipleH: mh, multipleW: mw };
}

/** Per-stage map sizes at the model's input size (stage i is (H/patch) / 2^i). */
export function stageMaps(cfg: RepMLPNetConfig): Array<{ H: number; W: number }> {
  const [H, W] = cfg.input_size;
  return cfg.channels.map((_, i) => ({ H: H / cfg.patch_size / 2 ** i, W: W / cfg.patch_size / 2 ** i }));
}

/** The constraints PyTorch would hit at run time, checked up front. */
function checkConstraints(cfg: RepMLPNetConfig, where: string): void {
  const n = cfg.num_blocks.length;
  cfg.channels.forEach((C, i) => {
    const S = cfg.sharesets_nums[i]!;
    if (C % S !== 0) fail(where, `sharesets_nums.${i}`, `${S} share-sets do not divide channels[${i}] = ${C}`);
    if (Math.floor(C / cfg.globalperceptron_reduce) < 1) fail(where, 'globalperceptron_reduce', `channels[${i}] = ${C} // ${cfg.globalperceptron_reduce} leaves no neuron`);
  });
  for (const k of cfg.reparam_conv_k) if (k % 2 !== 1) fail(where, 'reparam_conv_k', `kernel sizes must be odd, found ${k}`);
  const [H, W] = cfg.input_size;
  const down = cfg.patch_size * 2 ** (n - 1);
  if (H % down !== 0 || W % down !== 0) fail(where, 'input_size', `${H}x${W} is not a multiple of patch_size * 2^${n - 1} = ${down}`);
  stageMaps(cfg).forEach(({ H: mh, W: mw }, i) => {
    if (mh % cfg.hs[i]! !== 0 || mw % cfg.ws[i]! !== 0) {
      fail(where, `hs.${i}`, `stage ${i}'s ${mh}x${mw} map does not split into ${cfg.hs[i]}x${cfg.ws[i]} partitions (input ${H}x${W})`);
    }
  });
}

/** A user's configuration (constructor arguments by Python name), checked; errors name the field. */
export function parseRepMLPNetConfig(raw: unknown, where = 'config'): RepMLPNetConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ConfigError(`${where}: expected a JSON object of RepMLPNet arguments`);
  const o = raw as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!FIELDS.includes(k) && !IGNORED.includes(k)) fail(where, k, `not a RepMLPNet argument (${FIELDS.join(', ')})`);
  if (o.family !== undefined && o.family !== 'RepMLPNet') fail(where, 'family', `expected "RepMLPNet", found ${JSON.stringify(o.family)}`);
  const num_blocks = intList(o.num_blocks ?? DEFAULTS.num_blocks, where, 'num_blocks');
  const n = num_blocks.length;
  const patch = pair(o.patch_size ?? DEFAULTS.patch_size, where, 'patch_size', true)[0];
  const hs = intList(o.hs ?? DEFAULTS.hs, where, 'hs', n);
  const ws = intList(o.ws ?? DEFAULTS.ws, where, 'ws', n);
  const cfg: RepMLPNetConfig = {
    in_channels: posInt(o.in_channels ?? DEFAULTS.in_channels, where, 'in_channels'),
    num_class: posInt(o.num_class ?? DEFAULTS.num_class, where, 'num_class'),
    patch_size: patch,
    num_blocks,
    channels: intList(o.channels ?? DEFAULTS.channels, where, 'channels', n),
    hs,
    ws,
    sharesets_nums: intList(o.sharesets_nums ?? DEFAULTS.sharesets_nums, where, 'sharesets_nums', n),
    // None (or an empty list): no local perceptron.
    reparam_conv_k: o.reparam_conv_k === null || (Array.isArray(o.reparam_conv_k) && o.reparam_conv_k.length === 0) ? [] : intList(o.reparam_conv_k ?? DEFAULTS.reparam_conv_k, where, 'reparam_conv_k'),
    globalperceptron_reduce: posInt(o.globalperceptron_reduce ?? DEFAULTS.globalperceptron_reduce, where, 'globalperceptron_reduce'),
    input_size: [0, 0],
  };
  const m = inputMultiples(cfg);
  cfg.input_size = o.input_size === undefined || o.input_size === null ? [m.multipleH, m.multipleW] : pair(o.input_size, where, 'input_size', false);
  checkConstraints(cfg, where);
  return cfg;
}

export function isRepMLPNetPreset(name: string): boolean {
  return Object.hasOwn(REPMLPNET_PRESETS, name);
}

/** A preset's full configuration. */
export function repmlpnetPreset(name: string): RepMLPNetConfig {
  const p = Object.hasOwn(REPMLPNET_PRESETS, name) ? REPMLPNET_PRESETS[name] : undefined;
  if (!p) throw new ConfigError(`unknown RepMLPNet preset '${name}' (${Object.keys(REPMLPNET_PRESETS).join(', ')})`);
  const cfg = { ...structuredClone(p), input_size: [p.patch_size * p.hs[0]!, p.patch_size * p.ws[0]!] as [number, number] };
  checkConstraints(cfg, name);
  return cfg;
}

/** One RepMLPBlock's sizes (the `repmlpnet_block` unit's params). */
export interface RepMLPNetBlockParams {
  C: number;
  h: number;
  w: number;
  S: number;
  reparamConvK: number[];
  /** gp's hidden neurons, C // globalperceptron_reduce. */
  inner: number;
}

export function blockParams(cfg: RepMLPNetConfig, stage: number): RepMLPNetBlockParams {
  const C = cfg.channels[stage]!;
  return {
    C, h: cfg.hs[stage]!, w: cfg.ws[stage]!, S: cfg.sharesets_nums[stage]!,
    reparamConvK: [...cfg.reparam_conv_k], inner: Math.floor(C / cfg.globalperceptron_reduce),
  };
}

