/**
 * A known RepMLPResNet architecture (a preset, a config JSON, or one detected from the
 * keys) as hints for the converter and as the layout the result must have. No TF.js.
 */
import type { StateDict } from '../pth/pyobj.js';
import { planNetwork, repmlpParams, type RepMLPResNetConfig } from '../model/config.js';
import { networkEntries } from '../model/layout.js';
import { assertLoadable, compareStateDict } from '../model/statedict.js';
import type { BlockHint } from './geometry.js';

/** Per-RepMLP hints (h, w, fc3 groups) keyed by block name, e.g. `stage2.1.light_repmlp`. */
export function archHints(cfg: RepMLPResNetConfig): Map<string, BlockHint> {
  const hints = new Map<string, BlockHint>();
  for (const b of planNetwork(cfg)) {
    if (b.kind === 'base') continue;
    const p = repmlpParams(cfg, b);
    hints.set(`${b.prefix}.${b.kind === 'light' ? 'light_repmlp' : 'btnk_repmlp'}`, { fc3Groups: p.fc3Groups, h: p.h, w: p.w });
  }
  return hints;
}

/**
 * Checks `sd` against the architecture's training (`deploy` false) or deploy layout the
 * way PyTorch's strict load would, throwing one error that lists what is wrong.
 */
export function checkLayout(sd: StateDict, cfg: RepMLPResNetConfig, deploy: boolean, archName: string, where: string): void {
  assertLoadable(compareStateDict(networkEntries(cfg, deploy), sd), `RepMLPResNet (${archName}, ${deploy ? 'deploy' : 'training-time'})`, true, where);
}

/** `sd` re-ordered as the architecture's deploy model registers its parameters. */
export function orderLikeDeploy(sd: StateDict, cfg: RepMLPResNetConfig): StateDict {
  const out: StateDict = new Map();
  for (const e of networkEntries(cfg, true)) {
    const t = sd.get(e.name);
    if (t) out.set(e.name, t);
  }
  for (const [k, t] of sd) if (!out.has(k)) out.set(k, t);
  return out;
}
