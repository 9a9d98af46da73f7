/** The TF.js module of every unit kind, by kind. A new kind registers its module here (one line). */
import type { UnitKind } from '../../family/types.js';
import { bnUnit } from './bn.js';
import { convbnUnit } from './convbn.js';
import { linearUnit } from './linear.js';
import { repmlp2021Unit } from './repmlp2021.js';
import { repmlpnetBlockUnit } from './repmlpnet_block.js';
import type { ModelUnit, UnitModule } from './types.js';

export type { ModelUnit, UnitModule };

export const MODEL_UNITS: ReadonlyMap<UnitKind, ModelUnit<any>> = new Map<UnitKind, ModelUnit<any>>([
  ['convbn', convbnUnit],
  ['bn', bnUnit],
  ['linear', linearUnit],
  ['repmlp2021', repmlp2021Unit],
  ['repmlpnet_block', repmlpnetBlockUnit],
]);
