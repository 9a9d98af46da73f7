/** The IR lowering of every unit kind, by kind. A new kind registers its lowering here (one line). */
import type { UnitKind } from '../../family/types.js';
import { convbnExport } from './convbn.js';
import { linearExport } from './linear.js';
import { repmlp2021Export } from './repmlp2021.js';
import { bnExport } from './bn.js';
import { repmlpnetBlockExport } from './repmlpnet_block.js';
import type { ExportUnit } from './types.js';

export type { ExportUnit };

export const EXPORT_UNITS: ReadonlyMap<UnitKind, ExportUnit<any>> = new Map<UnitKind, ExportUnit<any>>([
  ['convbn', convbnExport],
  ['linear', linearExport],
  ['repmlp2021', repmlp2021Export],
  ['bn', bnExport],
  ['repmlpnet_block', repmlpnetBlockExport],
]);
