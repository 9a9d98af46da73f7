/**
 * RepMLPResNet (the 2021 family) configuration: the release's constructor arguments, checked by a zod
 * schema whose errors name the field, plus the constraints PyTorch would only hit at
 * run time (H divisible by h, ...), checked up front. Extensions for small models
 * (documented in README): `widths` (four stage widths), `stem_width`, `in_channels`.
 */
import type * as Zod from 'zod';
import { createRequire } from 'node:module';
import { ConfigError } from '../errors.js';
import type { RepMLP2021Params } from '../types.js';

export { ConfigError };

/** What the optional fields default to (the release's values; the extensions' widths). */
const DEFAULTS = {
  bottleneck_r: [2, 4],
  widths: [256, 512, 1024, 2048],
  stem_width: 64,
  in_channels: 3,
};

function makeSchema(z: typeof Zod) {
  const posInt = z.number().int().positive();
  return z
    .object({
      num_blocks: z.array(posInt).length(4),
      num_classes: posInt,
      block_type: z.enum(['light', 'bottleneck', 'base']),
      img_H: posInt,
      img_W: posInt,
      h: posInt,
      w: posInt,
      reparam_conv_k: z.array(posInt.refine((k) => k % 2 === 1, 'kernel sizes must be odd')),
      fc1_fc2_reduction: posInt,
      fc3_groups: posInt,
      bottleneck_r: z.array(posInt).length(2).default(DEFAULTS.bottleneck_r),
      widths: z.array(posInt).length(4).default(DEFAULTS.widths),
      stem_width: posInt.default(DEFAULTS.stem_width),
      in_channels: posInt.default(DEFAULTS.in_channels),
      /** Optional tag of a config JSON (the registry reads it to pick the family). */
      family: z.literal('RepMLPResNet').optional(),
    })
    .strict();
}

type Schema = ReturnType<typeof makeSchema>;
export type RepMLPResNetConfig = Zod.output<Schema>;
export type RepMLPResNetConfigInput = Zod.input<Schema>;

// zod takes ~70-100 ms to load here; presets and configs validated before need none of
// it, so it is required (synchronously) the first time a user's config is checked.
let schema: Schema | undefined;
const requireHere = createRequire(import.meta.url);

/** The RepMLPResNet argument schema (zod), built on first use. */
export function configSchema(): Schema {
  return (schema ??= makeSchema(requireHere('zod') as typeof Zod));
}

const common = {
  num_blocks: [3, 4, 6, 3],
  num_classes: 1000,
  img_H: 224,
  img_W: 224,
  h: 7,
  w: 7,
  reparam_conv_k: [1, 3, 5],
  fc1_fc2_reduction: 1,
};

export const PRESETS: Readonly<Record<string, RepMLPResNetConfigInput>> = {
  'RepMLP-Res50-light-224': { ...common, block_type: 'light', fc3_groups: 4 },
  'RepMLP-Res50-bottleneck-224': { ...common, block_type: 'bottleneck', fc3_groups: 8, bottleneck_r: [2, 4] },
  'RepMLP-Res50-base-224': { ...common, block_type: 'base', fc3_groups: 4 },
};

/** Configs this module produced (parsed, or presets completed): not parsed again. */
const checked = new WeakSet<object>();

/** A preset's full configuration (defaults filled in, constraints checked), without zod. */
export function presetConfig(name: string): RepMLPResNetConfig {
  const preset = Object.hasOwn(PRESETS, name) ? PRESETS[name] : undefined; // user input: 'toString' is not a preset
  if (!preset) throw new ConfigError(`unknown preset '${name}' (${Object.keys(PRESETS).join(', ')})`);
  const cfg = structuredClone({ ...DEFAULTS, ...preset }) as RepMLPResNetConfig;
  checkConstraints(cfg, name);
  checked.add(cfg);
  return cfg;
}

/** Validates a config object; the error names the bad field. */
export function parseConfig(raw: unknown, where = 'config'): RepMLPResNetConfig {
  if (typeof raw === 'object' && raw !== null && checked.has(raw)) return raw as RepMLPResNetConfig;
  const r = configSchema().safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const field = issue.path.length ? issue.path.join('.') : '(root)';
    throw new ConfigError(`${where}: field '${field}': ${issue.message}`);
  }
  checkConstraints(r.data, where);
  checked.add(r.data);
  return r.data;
}

/** One block of the network, as RepMLPResNet builds it. */
export interface BlockPlan {
  /** State-dict prefix, e.g. `stage2.1`. */
  prefix: string;
  stage: number;
  index: number;
  kind: 'base' | 'light' | 'bottleneck';
  inChannels: number;
  midChannels: number;
  outChannels: number;
  stride: number;
  /** Feature size at this block's output (and input, except for stride 2). */
  H: number;
  W: number;
  /** Bottleneck only: channels of the RepMLP (mid // r). */
  repmlpChannels?: number;
  hasShortcut: boolean;
}

export type RepMLPParams = RepMLP2021Params;

/**
 * Feature size after `n` stride-2 steps, as PyTorch computes it for the stem conv (7x7,
 * pad 3), the max pool (3, pad 1) and the stride-2 blocks (3x3 pad 1 / 1x1 pad 0): each
 * step maps x to ceil(x / 2), so any input size runs, not only multiples of 32.
 */
export function afterStrides(x: number, n: number): number {
  for (let i = 0; i < n; i++) x = Math.ceil(x / 2);
  return x;
}

/** The block list RepMLPResNet's constructor produces, in state-dict order. */
export function planNetwork(cfg: RepMLPResNetConfig): BlockPlan[] {
  const blocks: BlockPlan[] = [];
  let inC = cfg.stem_width;
  for (let s = 1; s <= 4; s++) {
    const width = cfg.widths[s - 1]!;
    // Stage s is 2^(s+1) times smaller than the image (exactly so for multiples of 32).
    const H = afterStrides(cfg.img_H, s + 1);
    const W = afterStrides(cfg.img_W, s + 1);
    for (let i = 0; i < cfg.num_blocks[s - 1]!; i++) {
      const stride = i === 0 && s > 1 ? 2 : 1;
      const repStage = s === 2 || s === 3;
      const kind = cfg.block_type === 'base' || stride === 2 || !repStage ? 'base' : cfg.block_type;
      const mid = kind === 'light' ? width / 8 : width / 4;
      const plan: BlockPlan = {
        prefix: `stage${s}.${i}`, stage: s, index: i, kind, inChannels: inC, midChannels: mid,
        outChannels: width, stride, H, W, hasShortcut: stride !== 1 || inC !== width,
      };
      if (kind === 'bottleneck') plan.repmlpChannels = Math.floor(mid / cfg.bottleneck_r[s - 2]!);
      blocks.push(plan);
      inC = width;
    }
  }
  return blocks;
}

/** The RepMLP inside a light/bottleneck block. */
export function repmlpParams(cfg: RepMLPResNetConfig, b: BlockPlan): RepMLPParams {
  const C = b.kind === 'bottleneck' ? b.repmlpChannels! : b.midChannels;
  return {
    C, O: C, H: b.H, W: b.W, h: cfg.h, w: cfg.w, reparamConvK: [...cfg.reparam_conv_k],
    fc1fc2Reduction: cfg.fc1_fc2_reduction, fc3Groups: cfg.fc3_groups,
  };
}

/** Checks PyTorch would make at construction or in forward, made here with clear words. */
export function checkConstraints(cfg: RepMLPResNetConfig, where = 'config'): void {
  const fail = (field: string, msg: string): never => {
    throw new ConfigError(`${where}: field '${field}': ${msg}`);
  };
  // Any image size runs through the strides (ceil(x/2) each); only a RepMLP's feature map
  // must be a whole number of partitions, checked per block below.
  for (const [i, wd] of cfg.widths.entries()) if (wd % 8) fail(`widths.${i}`, `stage width ${wd} must be a multiple of 8`);
  for (const b of planNetwork(cfg)) {
    if (b.kind === 'base') continue;
    const p = repmlpParams(cfg, b);
    if (p.C < 1) fail('bottleneck_r', `${b.prefix}: RepMLP channels would be ${p.C}`);
    // The release builds each RepMLP for img // ratio (fc1 over its partitions); the map it
    // gets is ceil(img / ratio). They agree only when the ratio divides the image side.
    const ratio = 2 ** (b.stage + 1);
    for (const [field, img, f] of [['img_H', cfg.img_H, p.H], ['img_W', cfg.img_W, p.W]] as const) {
      if (Math.floor(img / ratio) !== f) fail(field, `${b.prefix}: image side ${img} is not a multiple of ${ratio}: the RepMLP of stage ${b.stage} would be built for ${Math.floor(img / ratio)} but get a ${f}-pixel map`);
    }
    const need = (field: string, img: number, f: number, part: number) =>
      fail(field, `${b.prefix}: feature ${field === 'h' ? 'height' : 'width'} ${f} (image ${img}) is not a multiple of ${field}=${part}; the image side must make stage ${b.stage}'s map a whole number of partitions (e.g. ${part * ratio})`);
    if (p.H % p.h) need('h', cfg.img_H, p.H, p.h);
    if (p.W % p.w) need('w', cfg.img_W, p.W, p.w);
    if (p.C % p.fc3Groups) fail('fc3_groups', `${b.prefix}: ${p.C} channels are not divisible by fc3_groups=${p.fc3Groups}`);
    const hasGlobal = p.H !== p.h || p.W !== p.w;
    if (hasGlobal && Math.floor((p.C * (p.H / p.h) * (p.W / p.w)) / p.fc1fc2Reduction) < 1) {
      fail('fc1_fc2_reduction', `${b.prefix}: fc1 would have no outputs`);
    }
  }
}
