/**
 * A known architecture (a preset, a config JSON, or one detected from the keys, of any
 * family) as the units the converter folds and the layouts it checks against. No TF.js.
 */
import type { StateDict } from '../pth/pyobj.js';
import type { RepMLPResNetConfig } from '../family/repmlp_resnet/config.js';
import { descEntries, unitFolds } from '../family/layout.js';
import { archOf } from '../family/registry.js';
import type { Arch, NetworkDesc, Unit } from '../family/types.js';
import { assertLoadable, compareStateDict } from '../model/statedict.js';
import type { BlockHint } from './geometry.js';
import { REPARAM_UNITS } from './units/index.js';

const asArch = (a: Arch | RepMLPResNetConfig): Arch => ('family' in a && typeof a.family === 'object' ? (a as Arch) : archOf(a));

/** The training-time units whose deploy form differs (what the converter folds), in order. */
export function foldingUnits(desc: NetworkDesc): Unit[] {
  return desc.units.filter(unitFolds);
}

/** Per-unit hints (a 2021 RepMLP's h, w, fc3 groups) keyed by unit path, e.g. `stage2.1.light_repmlp`. */
export function archHints(a: Arch | RepMLPResNetConfig): Map<string, BlockHint> {
  const arch = asArch(a);
  const hints = new Map<string, BlockHint>();
  for (const u of arch.family.describe(arch.config, 'train').units) {
    const h = REPARAM_UNITS.get(u.kind)?.hint?.(u as never);
    if (h) hints.set(u.path, h);
  }
  return hints;
}

/**
 * Checks `sd` against the architecture's training (`deploy` false) or deploy layout the
 * way PyTorch's strict load would, throwing one error that lists what is wrong.
 */
export function checkLayout(sd: StateDict, a: Arch | RepMLPResNetConfig, deploy: boolean, archName: string, where: string): void {
  const arch = asArch(a);
  const desc = arch.family.describe(arch.config, deploy ? 'deploy' : 'train');
  assertLoadable(compareStateDict(descEntries(desc), sd), `${desc.typeName} (${archName}, ${deploy ? 'deploy' : 'training-time'})`, true, where);
}

/** `sd` re-ordered as the architecture's deploy model registers its parameters. */
export function orderLikeDeploy(sd: StateDict, a: Arch | RepMLPResNetConfig): StateDict {
  const arch = asArch(a);
  const out: StateDict = new Map();
  for (const e of descEntries(arch.family.describe(arch.config, 'deploy'))) {
    const t = sd.get(e.name);
    if (t) out.set(e.name, t);
  }
  for (const [k, t] of sd) if (!out.has(k)) out.set(k, t);
  return out;
}
