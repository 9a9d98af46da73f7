/** The family layer's part of a unit kind: its state-dict layout in each mode. */
import type { Entry, Mode, UnitKind, UnitKinds } from '../types.js';

export interface KindLayout<K extends UnitKind = UnitKind> {
  kind: K;
  /** The unit's entries (names relative to its path) in PyTorch's order. */
  entries(params: UnitKinds[K], mode: Mode): Entry[];
  /**
   * True when the deploy form differs from the training form (the converter must have a
   * rule for this kind); false when deploy keeps the training keys as they are.
   */
  folds(params: UnitKinds[K]): boolean;
}
