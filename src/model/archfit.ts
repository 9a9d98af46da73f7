/**
 * A `--arch` that does not fit the checkpoint, said in one short line: how many keys are
 * missing, unexpected or of another shape (one example of each, not the whole list), and
 * which known architecture the keys do match, if any, so the fix is in the message.
 * (The full lists stay on the error object.)
 */
import type { StateDict } from '../pth/pyobj.js';
import type { Arch, Mode } from '../family/types.js';
import { descEntries } from '../family/layout.js';
import { describeArch, detectArch } from '../family/registry.js';
import { compareStateDict, StateDictError } from './statedict.js';

const dims = (s: readonly number[]) => `[${s.join(', ')}]`;

/** Throws StateDictError when `config` in `mode` is not the layout of `sd`. */
export function checkArchFits(sd: StateDict, where: string, arch: string, resolved: Arch, mode: Mode): void {
  const r = compareStateDict(descEntries(describeArch(resolved, mode)), sd);
  const { missingKeys: miss, unexpectedKeys: extra, sizeMismatches: mm } = r;
  if (!miss.length && !extra.length && !mm.length) return;
  const counts = [
    miss.length ? `${miss.length} key(s) missing (e.g. '${miss[0]}')` : '',
    extra.length ? `${extra.length} unexpected (e.g. '${extra[0]}')` : '',
    mm.length ? `${mm.length} of another shape (e.g. '${mm[0]!.key}': ${dims(mm[0]!.checkpoint)} in the file, ${dims(mm[0]!.model)} for this arch)` : '',
  ].filter(Boolean).join(', ');
  let match: string;
  try {
    const found = detectArch(sd);
    match = found === null ? 'the keys match no preset and their shapes do not tell a configuration (give --arch CONFIG.json)'
      : found.name ? `the keys match ${found.name}: use --arch ${found.name} or leave --arch out`
      : 'the keys fit a custom configuration read from their shapes: leave --arch out';
  } catch {
    match = 'the keys match no preset';
  }
  throw new StateDictError(`${where}: --arch ${arch} (${mode === 'deploy' ? 'deploy' : 'training-time'} form) does not fit this checkpoint: ${counts}; ${match}`, miss, extra, mm);
}
