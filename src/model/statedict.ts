/**
 * Matching a checkpoint's state dict against a model's layout, reported the way
 * PyTorch's `load_state_dict(strict=True)` does: every missing key, unexpected key and
 * shape mismatch at once, in one error. No TensorFlow.js here.
 */
import { RepmlpError } from '../errors.js';
import type { StateDict } from '../pth/pyobj.js';
import type { Entry } from './layout.js';

export class StateDictError extends RepmlpError {
  override name = 'StateDictError';
  constructor(
    message: string,
    readonly missingKeys: string[] = [],
    readonly unexpectedKeys: string[] = [],
    readonly sizeMismatches: SizeMismatch[] = [],
  ) {
    super(message);
  }
}

export interface SizeMismatch {
  key: string;
  checkpoint: readonly number[];
  model: readonly number[];
}

export interface StateDictReport {
  missingKeys: string[];
  unexpectedKeys: string[];
  sizeMismatches: SizeMismatch[];
}

const sameShape = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((d, i) => d === b[i]);

/**
 * Compares keys and shapes. `num_batches_tracked` may be absent (checkpoints from before
 * torch 0.4.1 lack it and PyTorch fills it in), so it is never reported missing.
 */
export function compareStateDict(entries: readonly Entry[], sd: StateDict): StateDictReport {
  const want = new Map(entries.map((e) => [e.name, e]));
  const missingKeys = entries.filter((e) => !sd.has(e.name) && !e.name.endsWith('num_batches_tracked')).map((e) => e.name);
  const unexpectedKeys = [...sd.keys()].filter((k) => !want.has(k));
  // Model order, as PyTorch visits modules.
  const sizeMismatches: SizeMismatch[] = [];
  for (const e of entries) {
    const t = sd.get(e.name);
    if (t && !sameShape(e.shape, t.shape)) sizeMismatches.push({ key: e.name, checkpoint: t.shape, model: e.shape });
  }
  return { missingKeys, unexpectedKeys, sizeMismatches };
}

const LIST_MAX = 8;

function quoted(keys: string[]): string {
  const shown = keys.slice(0, LIST_MAX).map((k) => `"${k}"`).join(', ');
  return keys.length > LIST_MAX ? `${shown}, ... (${keys.length} in all)` : shown;
}

const size = (s: readonly number[]) => `torch.Size([${s.join(', ')}])`;

/**
 * PyTorch's wording on one line (the CLI prints one line); long key lists are cut after
 * a few names with the total given, and the full lists stay on the error object.
 */
export function formatReport(r: StateDictReport, moduleName: string, strict: boolean, where?: string): string | null {
  const parts: string[] = [];
  if (strict && r.missingKeys.length) parts.push(`Missing key(s) in state_dict: ${quoted(r.missingKeys)}.`);
  if (strict && r.unexpectedKeys.length) parts.push(`Unexpected key(s) in state_dict: ${quoted(r.unexpectedKeys)}.`);
  const mm = r.sizeMismatches;
  for (const m of mm.slice(0, LIST_MAX)) {
    parts.push(`size mismatch for ${m.key}: copying a param with shape ${size(m.checkpoint)} from checkpoint, the shape in current model is ${size(m.model)}.`);
  }
  if (mm.length > LIST_MAX) parts.push(`... (${mm.length} size mismatches in all).`);
  if (!parts.length) return null;
  return `${where ? where + ': ' : ''}Error(s) in loading state_dict for ${moduleName}: ${parts.join(' ')}`;
}

/** Throws StateDictError when the report has anything PyTorch would refuse. */
export function assertLoadable(r: StateDictReport, moduleName: string, strict = true, where?: string): void {
  const msg = formatReport(r, moduleName, strict, where);
  if (msg) throw new StateDictError(msg, r.missingKeys, r.unexpectedKeys, r.sizeMismatches);
}
