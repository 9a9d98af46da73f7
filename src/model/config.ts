/**
 * RepMLPResNet configuration: the release's constructor arguments, checked by a zod
 * schema whose errors name the field, plus the constraints PyTorch would only hit at
 * run time (H divisible by h, ...), checked up front. Extensions for small models
 * (documented in README): `widths` (four stage widths), `stem_width`, `in_channels`.
 */
import type * as Zod from 'zod';
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { RepmlpError } from '../errors.js';

export class ConfigError extends RepmlpError {
  override name = 'ConfigError';
}

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
  const preset = Object.hasOwn(PRESETS, name) ? PRESETS[name] : undefined; // user input: 'constructor' is no preset
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

/** A preset name or the path of a JSON file with RepMLPResNet arguments. */
export function resolveArch(arch: string): { name: string | null; config: RepMLPResNetConfig } {
  if (Object.hasOwn(PRESETS, arch)) return { name: arch, config: presetConfig(arch) };
  let text: string;
  try {
    text = readFileSync(arch, 'utf8');
  } catch {
    throw new ConfigError(`--arch ${arch}: not a preset (${Object.keys(PRESETS).join(', ')}) nor a readable JSON file`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`${arch}: invalid JSON: ${(e as Error).message}`);
  }
  return { name: null, config: parseConfig(raw, arch) };
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

export interface RepMLPParams {
  C: number;
  O: number;
  H: number;
  W: number;
  h: number;
  w: number;
  reparamConvK: number[];
  fc1fc2Reduction: number;
  fc3Groups: number;
}

/** The block list RepMLPResNet's constructor produces, in state-dict order. */
export function planNetwork(cfg: RepMLPResNetConfig): BlockPlan[] {
  const blocks: BlockPlan[] = [];
  let inC = cfg.stem_width;
  const ratios = [4, 8, 16, 32];
  for (let s = 1; s <= 4; s++) {
    const width = cfg.widths[s - 1]!;
    const H = cfg.img_H / ratios[s - 1]!;
    const W = cfg.img_W / ratios[s - 1]!;
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
  if (cfg.img_H % 32 || cfg.img_W % 32) fail(cfg.img_H % 32 ? 'img_H' : 'img_W', `image size ${cfg.img_H}x${cfg.img_W} must be a multiple of 32 (five stride-2 steps)`);
  for (const [i, wd] of cfg.widths.entries()) if (wd % 8) fail(`widths.${i}`, `stage width ${wd} must be a multiple of 8`);
  for (const b of planNetwork(cfg)) {
    if (b.kind === 'base') continue;
    const p = repmlpParams(cfg, b);
    if (p.C < 1) fail('bottleneck_r', `${b.prefix}: RepMLP channels would be ${p.C}`);
    if (p.H % p.h) fail('h', `${b.prefix}: feature height ${p.H} is not a multiple of h=${p.h}`);
    if (p.W % p.w) fail('w', `${b.prefix}: feature width ${p.W} is not a multiple of w=${p.w}`);
    if (p.C % p.fc3Groups) fail('fc3_groups', `${b.prefix}: ${p.C} channels are not divisible by fc3_groups=${p.fc3Groups}`);
    const hasGlobal = p.H !== p.h || p.W !== p.w;
    if (hasGlobal && Math.floor((p.C * (p.H / p.h) * (p.W / p.w)) / p.fc1fc2Reduction) < 1) {
      fail('fc1_fc2_reduction', `${b.prefix}: fc1 would have no outputs`);
    }
  }
}
