/**
 * Every family the toolkit knows, and the family-neutral questions asked of them: which
 * architecture an ARCH string names (a preset of any family, or a config JSON whose
 * optional "family" field picks the family, RepMLPResNet by default), which one a state
 * dict holds (presets by exact layout, else a configuration inferred from the shapes),
 * and which family a parsed configuration belongs to. TF.js-free (`inspect` uses it).
 * A new family is one line in NETWORK_FAMILIES (or BLOCK_FAMILIES).
 */
import { readFileSync } from 'node:fs';
import type { StateDict } from '../pth/pyobj.js';
import { blocks2021 } from './blocks2021/index.js';
import { ConfigError } from './errors.js';
import { descEntries, matchesLayout } from './layout.js';
import { repmlpResNet } from './repmlp_resnet/index.js';
import { repmlpNet } from './repmlpnet/index.js';
import type { Arch, BlockFamily, Entry, Mode, NetworkDesc, NetworkFamily } from './types.js';

/** Complete networks, in the order help texts list them. */
export const NETWORK_FAMILIES: readonly NetworkFamily<any>[] = [repmlpResNet, repmlpNet];

/**
 * The order mode detection and shape inference ask them in: the most specific first.
 * RepMLPNet's checks answer only for its own keys (repmlp_block.*), while the 2021 mode
 * check reads any kept BatchNorm (RepMLPNet's deploy model keeps several) as training-time.
 */
const DETECTION_ORDER: readonly NetworkFamily<any>[] = [repmlpNet, repmlpResNet];

/** Building blocks for users' own models (tried by the converter when no network matches). */
export const BLOCK_FAMILIES: readonly BlockFamily[] = [blocks2021];

export const DEFAULT_FAMILY = 'RepMLPResNet';

export function networkFamily(name: string): NetworkFamily<any> | undefined {
  return NETWORK_FAMILIES.find((f) => f.name === name);
}

/** Every preset name of every family. */
export function presetNames(): string[] {
  return NETWORK_FAMILIES.flatMap((f) => [...f.presets]);
}

/** Family names for messages ("tried RepMLPResNet, RepMLPNet, RepMLP building blocks"). */
export function familyNames(): string[] {
  // In the order they are tried.
  return [...DETECTION_ORDER.map((f) => f.name), ...BLOCK_FAMILIES.map((f) => f.name)];
}

/** The family a parsed configuration belongs to. */
export function familyOfConfig<C>(config: C): NetworkFamily<C> {
  const f = NETWORK_FAMILIES.find((x) => x.owns(config));
  if (!f) throw new ConfigError('internal: configuration of no known family');
  return f as NetworkFamily<C>;
}

/** An Arch for a parsed configuration (any family). */
export function archOf<C>(config: C, name: string | null = null): Arch<C> {
  return { family: familyOfConfig(config), name, config };
}

/** What runners need to know of a parsed configuration (any family), without TF.js. */
export interface NetworkInfo {
  family: string;
  typeName: string;
  /** One image [C, H, W] the configuration is built for. */
  input: { C: number; H: number; W: number };
  numClasses: number;
  /** Shorter side the family's test script resizes to before the centre crop. */
  resizeShorter: number;
}

export function networkInfo(config: object): NetworkInfo {
  const family = familyOfConfig(config);
  const d = family.describe(config, 'deploy');
  return { family: family.name, typeName: d.typeName, input: { ...d.input }, numClasses: d.numClasses, resizeShorter: family.preprocessing(config).resizeShorter };
}

export function describeArch(arch: Arch, mode: Mode): NetworkDesc {
  return arch.family.describe(arch.config, mode);
}

/** A preset of any family. */
export function presetArch(name: string): Arch | undefined {
  const f = NETWORK_FAMILIES.find((x) => x.presets.includes(name));
  return f ? { family: f, name, config: f.presetConfig(name) } : undefined;
}

/** A config object (e.g. parsed JSON): its "family" field (default RepMLPResNet) picks the schema. */
export function parseArchConfig(raw: unknown, where: string): Arch {
  let family = DEFAULT_FAMILY;
  let body = raw;
  if (typeof raw === 'object' && raw !== null && !Array.isArray(raw) && 'family' in raw) {
    const { family: tag, ...rest } = raw as Record<string, unknown>;
    if (typeof tag !== 'string' || !networkFamily(tag)) {
      throw new ConfigError(`${where}: field 'family': expected one of ${NETWORK_FAMILIES.map((f) => `"${f.name}"`).join(', ')}, found ${JSON.stringify(tag)}`);
    }
    family = tag;
    body = rest;
  }
  const f = networkFamily(family)!;
  return { family: f, name: null, config: f.parseConfig(body, where) };
}

/** ARCH: a preset name of any family or the path of a config JSON. */
export function resolveArch(arch: string): Arch {
  const preset = presetArch(arch);
  if (preset) return preset;
  let text: string;
  try {
    text = readFileSync(arch, 'utf8');
  } catch {
    throw new ConfigError(`--arch ${arch}: not a preset (${presetNames().join(', ')}) nor a readable JSON file`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`${arch}: invalid JSON: ${(e as Error).message}`);
  }
  return parseArchConfig(raw, arch);
}

let presetCache: Array<{ arch: Arch; mode: Mode; entries: Entry[] }> | undefined;

function presetLayouts() {
  presetCache ??= NETWORK_FAMILIES.flatMap((family) => family.presets.flatMap((name) => {
    const config = family.presetConfig(name);
    return (['train', 'deploy'] as const).map((mode) => ({ arch: { family, name, config }, mode, entries: descEntries(family.describe(config, mode)) }));
  }));
  return presetCache;
}

/** The mode the first family that recognizes the keys tells, else null. */
export function detectMode(sd: StateDict): Mode | null {
  for (const f of DETECTION_ORDER) {
    const m = f.detectMode(sd);
    if (m) return m;
  }
  return null;
}

/**
 * The architecture a state dict holds: a preset whose layout it has exactly, else a
 * configuration some family infers from the shapes (checked by its layout), else null.
 */
export function detectArch(sd: StateDict): (Arch & { mode: Mode }) | null {
  for (const p of presetLayouts()) {
    const m = p.arch.family.detectMode(sd);
    if ((m === null || m === p.mode) && matchesLayout(p.entries, sd)) return { ...p.arch, mode: p.mode };
  }
  for (const family of DETECTION_ORDER) {
    const mode = family.detectMode(sd);
    const config = family.infer(sd, mode);
    if (config !== null) {
      const m = mode ?? 'train';
      if (matchesLayout(descEntries(family.describe(config, m)), sd)) return { family, name: null, config, mode: m };
    }
  }
  return null;
}
