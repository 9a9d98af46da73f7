/**
 * RepMLP-ResNet in TensorFlow.js: the generic Network (network.ts) on the family's
 * description (family/repmlp_resnet/describe.ts). Kept as a class for its name and
 * `config`.
 */
import { type RepMLPResNetConfig } from '../family/repmlp_resnet/config.js';
import { describeRepMLPResNet } from '../family/repmlp_resnet/describe.js';
import { Network, ShapeError } from './network.js';

export { ShapeError };

export class RepMLPResNet extends Network {
  constructor(readonly config: RepMLPResNetConfig, readonly deploy = false) {
    super(describeRepMLPResNet(config, deploy ? 'deploy' : 'train'));
  }
}
