/**
 * The fold rule of every unit kind whose deploy form differs from its training form, by
 * kind. A new kind registers its rule here (one line); kinds that do not fold need none.
 */
import type { UnitKind } from '../../family/types.js';
import { convbnReparam } from './convbn.js';
import { repmlp2021Reparam } from './repmlp2021.js';
import { repmlpnetBlockReparam } from './repmlpnet_block.js';
import type { ReparamContext, ReparamUnit } from './types.js';

export type { ReparamContext, ReparamUnit };

export const REPARAM_UNITS: ReadonlyMap<UnitKind, ReparamUnit<any>> = new Map<UnitKind, ReparamUnit<any>>([
  ['convbn', convbnReparam],
  ['repmlp2021', repmlp2021Reparam],
  ['repmlpnet_block', repmlpnetBlockReparam],
]);
