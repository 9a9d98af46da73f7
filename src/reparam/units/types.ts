/** The converter's part of a unit kind: the fold rule of a described unit, as a job. */
import type { StateDict } from '../../pth/pyobj.js';
import type { Unit, UnitKind } from '../../family/types.js';
import type { Job } from '../convert.js';
import type { BlockHint } from '../geometry.js';

export interface ReparamContext {
  eps: number;
  /** What the user or the architecture says where the unit's keys cannot tell (2021 RepMLP geometry). */
  hint?: BlockHint;
}

export interface ReparamUnit<K extends UnitKind = UnitKind> {
  kind: K;
  /** The job that folds the described training-time unit (keys under `unit.path`) into its deploy tensors. */
  job(sd: StateDict, unit: Unit<K>, ctx: ReparamContext): Job;
  /**
   * Kinds a building-blocks family claims by their keys (no params known): the same fold,
   * with everything read off the shapes.
   */
  jobFromKeys?(sd: StateDict, path: string, ctx: ReparamContext): Job;
  /**
   * Optional: what the described unit says that its keys alone may not (the 2021 RepMLP's
   * fc3 groups and partition); merged with the user's flags by the pipeline.
   */
  hint?(unit: Unit<K>): BlockHint;
}
