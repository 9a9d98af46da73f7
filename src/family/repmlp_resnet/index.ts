/** The RepMLP-ResNet family (2021 release, arXiv 2105.01883): presets, schema, description, detection. */
import type { StateDict } from '../../pth/pyobj.js';
import type { Mode, NetworkFamily } from '../types.js';
import { PRESETS, type RepMLPResNetConfig, parseConfig, presetConfig } from './config.js';
import { describeRepMLPResNet } from './describe.js';
import { detectMode, inferConfig } from './detect.js';

export const IMAGENET_MEAN = [0.485, 0.456, 0.406] as const;
export const IMAGENET_STD = [0.229, 0.224, 0.225] as const;

export const repmlpResNet: NetworkFamily<RepMLPResNetConfig> = {
  kind: 'network',
  name: 'RepMLPResNet',
  presets: Object.keys(PRESETS),
  presetConfig,
  parseConfig: (raw, where) => parseConfig(raw, where),
  owns: (c): c is RepMLPResNetConfig => typeof c === 'object' && c !== null && 'block_type' in c && 'fc3_groups' in c,
  describe: describeRepMLPResNet,
  detectMode: (sd: StateDict) => detectMode(sd),
  infer: (sd: StateDict, mode: Mode | null) => inferConfig(sd, mode),
  // The release's test script: shorter side 256 for 224 crops (ratio 0.875).
  preprocessing: (c) => ({ resizeShorter: Math.round(Math.min(c.img_H, c.img_W) / 0.875), mean: IMAGENET_MEAN, std: IMAGENET_STD }),
};

export * from './config.js';
export { blockChildren, describeRepMLPResNet, type BlockChild } from './describe.js';
export { detectMode, inferConfig, networkEntries } from './detect.js';
