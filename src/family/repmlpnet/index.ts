/** The RepMLPNet family (CVPR 2022, arXiv 2112.11081): presets, schema, description, detection. */
import type { NetworkFamily } from '../types.js';
import { REPMLPNET_PRESETS, type RepMLPNetConfig, parseRepMLPNetConfig, repmlpnetPreset } from './config.js';
import { describeRepMLPNet } from './describe.js';
import { detectRepMLPNetMode, inferRepMLPNet } from './detect.js';

const IMAGENET_MEAN = [0.485, 0.456, 0.406] as const;
const IMAGENET_STD = [0.229, 0.224, 0.225] as const;

export const repmlpNet: NetworkFamily<RepMLPNetConfig> = {
  kind: 'network',
  name: 'RepMLPNet',
  presets: Object.keys(REPMLPNET_PRESETS),
  presetConfig: repmlpnetPreset,
  parseConfig: (raw, where) => parseRepMLPNetConfig(raw, where),
  owns: (c): c is RepMLPNetConfig => typeof c === 'object' && c !== null && 'sharesets_nums' in c && 'channels' in c,
  describe: describeRepMLPNet,
  detectMode: detectRepMLPNetMode,
  infer: inferRepMLPNet,
  // test.py: the shorter side resized to the resolution (bilinear), then a centre crop to it.
  preprocessing: (c) => ({ resizeShorter: Math.max(c.input_size[0], c.input_size[1]), mean: IMAGENET_MEAN, std: IMAGENET_STD }),
};

export * from './config.js';
export { describeRepMLPNet } from './describe.js';
export { detectRepMLPNetMode, inferRepMLPNet } from './detect.js';
