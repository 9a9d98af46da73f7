/** The layout of every unit kind, by kind. A new kind registers its layout here (one line). */
import type { UnitKind } from '../types.js';
import { bnLayout } from './bn.js';
import { convbnLayout } from './convbn.js';
import { linearLayout } from './linear.js';
import { repmlp2021Layout } from './repmlp2021.js';
import { repmlpnetBlockLayout } from './repmlpnet_block.js';
import type { KindLayout } from './types.js';

export type { KindLayout };

export const KIND_LAYOUTS: ReadonlyMap<UnitKind, KindLayout<any>> = new Map<UnitKind, KindLayout<any>>([
  ['convbn', convbnLayout],
  ['bn', bnLayout],
  ['linear', linearLayout],
  ['repmlp2021', repmlp2021Layout],
  ['repmlpnet_block', repmlpnetBlockLayout],
]);
