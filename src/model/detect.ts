/**
 * Architecture and mode of a state dict, for any family (family/registry.ts decides);
 * TF.js-free so that `inspect` and the exporter use it without loading a backend.
 */
import type { StateDict } from '../pth/pyobj.js';
import { RepmlpError } from '../errors.js';
import { detectArch as detectAnyArch, detectMode as detectAnyMode, familyNames, resolveArch } from '../family/registry.js';
import type { Arch, Mode } from '../family/types.js';

export type { Mode };
export { inferConfig } from '../family/repmlp_resnet/detect.js';

export function detectMode(sd: StateDict): Mode | null {
  return detectAnyMode(sd);
}

/** The architecture a state dict holds: `{ name, config }` (name null for a custom config), or null (registry's detectArch has the family too). */
export function detectArch(sd: StateDict): { name: string | null; config: any } | null {
  const r = detectAnyArch(sd);
  return r ? { name: r.name, config: r.config } : null;
}

import { checkArchFits } from './archfit.js';

export class ModelLoadError extends RepmlpError {
  override name = 'ModelLoadError';
}

export interface ResolvedModel {
  arch: string | null;
  config: any;
  mode: Mode;
  /** The resolved architecture (family, name, config). */
  resolved: Arch<any>;
}

/** Architecture and mode for a state dict: `arch` (preset or JSON path) when given, else detected. */
export function resolveModel(sd: StateDict, path: string, arch?: string): ResolvedModel {
  if (arch !== undefined) {
    const r = resolveArch(arch);
    // With an explicit arch and no telling keys, training form is PyTorch's default.
    const mode = r.family.detectMode(sd) ?? 'train';
    checkArchFits(sd, path, arch, r, mode);
    return { arch: r.name, config: r.config, mode, resolved: r };
  }
  const mode = detectAnyMode(sd);
  if (!mode) throw new ModelLoadError(`${path}: cannot tell training-time from deploy form (no BatchNorm statistics and no conv biases); not a state dict of a known family (${familyNames().slice(0, -1).join(', ')})?`);
  const found = detectAnyArch(sd);
  if (!found) throw new ModelLoadError(`${path}: architecture not recognized from its ${sd.size} keys; give --arch (a preset name or a config JSON)`);
  return { arch: found.name, config: found.config, mode: found.mode, resolved: found };
}
