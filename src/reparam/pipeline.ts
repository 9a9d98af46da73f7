/**
 * Converting a loaded training-time state dict the way the CLI does (and `export`,
 * `verify` reuse): architecture from --arch or detected from the keys, its per-block
 * hints, user hints for what neither tells, and the result checked against the deploy
 * layout whenever the architecture is known.
 */
import type { StateDict } from '../pth/pyobj.js';
import { detectArch, detectMode, familyNames, resolveArch } from '../family/registry.js';
import type { Arch } from '../family/types.js';
import { ReparamError } from './numeric.js';
import { convertStateDict, type ConvertResult } from './convert.js';
import { archHints, checkLayout, foldingUnits, orderLikeDeploy } from './arch.js';
import { checkArchFits } from '../model/archfit.js';
import type { BlockHint } from './geometry.js';

export interface PipelineOptions {
  /** Preset name or config JSON path (the --arch flag). */
  arch?: string;
  /** --fc3-groups / --partition: for every block the shapes and the architecture leave open. */
  hint?: BlockHint;
  /** Per-block hints for user models, keyed by block name. */
  hints?: ReadonlyMap<string, BlockHint>;
  /** File name for messages. */
  where: string;
  onProgress?: (done: number, total: number) => void;
  /** Compute converted tensors when first read (see convertStateDict). */
  lazy?: boolean;
}

export interface PipelineResult extends ConvertResult {
  /** The architecture used (null: a model the toolkit does not know; converted by keys alone). */
  arch: { name: string | null; config: any; family: string; detected: boolean } | null;
}

function conflicts(a: BlockHint, b: BlockHint): boolean {
  return (['fc3Groups', 'h', 'w'] as const).some((k) => a[k] !== undefined && b[k] !== undefined && a[k] !== b[k]);
}

export function convertTrainingStateDict(sd: StateDict, opts: PipelineOptions): PipelineResult {
  const mode = detectMode(sd);
  if (mode === 'deploy') throw new ReparamError(`${opts.where}: already in deploy form (conv/fc3 biases and no BatchNorm statistics); nothing to convert`);
  let arch: PipelineResult['arch'] = null;
  let resolved: Arch | null = null;
  if (opts.arch !== undefined) {
    resolved = resolveArch(opts.arch);
    // PyTorch's strict check of the training layout, in one short line naming the architecture the keys do match.
    checkArchFits(sd, opts.where, opts.arch, resolved, 'train');
    arch = { name: resolved.name, config: resolved.config, family: resolved.family.name, detected: false };
  } else if (mode === 'train') {
    const found = detectArch(sd);
    if (found) {
      resolved = found;
      arch = { name: found.name, config: found.config, family: found.family.name, detected: true };
    }
  }
  const hints = new Map(opts.hints ?? []);
  if (arch && resolved) {
    for (const [name, h] of archHints(resolved)) {
      if (opts.hint && conflicts(opts.hint, h) && !arch.detected) {
        throw new ReparamError(`${name}: --fc3-groups/--partition (${JSON.stringify(opts.hint)}) contradict --arch ${opts.arch} (${JSON.stringify(h)})`);
      }
      // A detected architecture only fills in what the user did not say. A detected preset
      // matched every key and shape: its partition is known. An inferred custom config's
      // partition is itself a square guess: left to inferGeometry, which states it.
      const fromArch: BlockHint = arch.detected && arch.name === null ? { fc3Groups: h.fc3Groups! } : h;
      hints.set(name, { ...fromArch, ...(arch.detected ? opts.hint : {}), ...hints.get(name) });
    }
  }
  // A known network: exactly the units its description folds (nothing its deploy model
  // keeps); else the 2021 building blocks claimed by their keys, refusing unknown patterns.
  const result = convertStateDict(sd, {
    hints, ...(opts.hint ? { defaultHint: opts.hint } : {}), ...(opts.onProgress ? { onProgress: opts.onProgress } : {}), lazy: opts.lazy ?? false,
    ...(resolved ? { units: foldingUnits(resolved.family.describe(resolved.config, 'train')) } : {}),
  });
  if (!resolved && result.blocks.length === 0 && result.convBnPairs.length === 0) {
    throw new ReparamError(`${opts.where}: no family claims any of its ${sd.size} keys (tried ${familyNames().join(', ')}): no known network layout, no training-time RepMLP (fc3.weight + fc3_bn.*) and no ConvBN (conv.weight + bn.*); nothing to convert`);
  }
  if (resolved) {
    result.stateDict = orderLikeDeploy(result.stateDict, resolved);
    checkLayout(result.stateDict, resolved, true, arch!.name ?? 'custom', `converted ${opts.where}`);
  }
  return { ...result, arch };
}
