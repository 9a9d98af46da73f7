/** The export layer's part of a unit kind: lowering a deploy unit to IR nodes. */
import type { Unit, UnitKind } from '../../family/types.js';
import type { GraphBuilder } from '../builder.js';

export interface ExportUnit<K extends UnitKind = UnitKind> {
  kind: K;
  /**
   * Adds the unit's nodes reading value `input`; returns the output value, which must be
   * named `output`. `relu`: fuse a ReLU into the output (the description's relu op right
   * after the unit, when it is the output's only consumer).
   */
  lower(b: GraphBuilder, unit: Unit<K>, input: string, output: string, relu: boolean): string;
}
