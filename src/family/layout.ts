/**
 * The state-dict layout of a described network: each unit's entries under its path, in
 * unit order (= PyTorch's registration order). Used by detection, strict loads, the
 * converter's output order and the TF.js modules' parameter slots, so all agree.
 */
import { withPrefix } from './entries.js';
import { KIND_LAYOUTS, type KindLayout } from './kinds/index.js';
import type { StateDict } from '../pth/pyobj.js';
import type { Entry, Mode, NetworkDesc, Unit, UnitKind } from './types.js';

export function kindLayout<K extends UnitKind>(kind: K): KindLayout<K> {
  const k = KIND_LAYOUTS.get(kind);
  if (!k) throw new Error(`internal: no layout for unit kind '${kind}'`);
  return k as KindLayout<K>;
}

/** One unit's entries with full names. */
export function unitEntries(u: Unit, mode: Mode): Entry[] {
  return withPrefix(u.path === '' ? '' : `${u.path}.`, kindLayout(u.kind).entries(u.params as never, mode));
}

/** True when the unit's deploy keys differ from its training keys. */
export function unitFolds(u: Unit): boolean {
  return kindLayout(u.kind).folds(u.params as never);
}

/** Every state-dict entry of the network, in PyTorch's order. */
export function descEntries(d: NetworkDesc): Entry[] {
  return d.units.flatMap((u) => unitEntries(u, d.mode));
}

/**
 * True when `sd` has exactly these keys with these shapes (`num_batches_tracked` may be
 * absent: checkpoints from before torch 0.4.1 lack it).
 */
export function matchesLayout(entries: readonly Entry[], sd: StateDict): boolean {
  let n = 0;
  for (const e of entries) {
    const t = sd.get(e.name);
    if (!t) {
      if (e.name.endsWith('num_batches_tracked')) continue;
      return false;
    }
    if (t.shape.length !== e.shape.length || t.shape.some((d, i) => d !== e.shape[i])) return false;
    n++;
  }
  return n === sd.size;
}
