/**
 * ConvBN / ConvBNReLU: conv (no bias) -> BatchNorm2d (eval) [-> ReLU]; deploy form is one
 * biased conv. Activations are NHWC inside the model. Padding is explicit (a number), never
 * TF's SAME, which pads (0, 1) where PyTorch pads (1, 1) at stride 2.
 */
import * as tf from '@tensorflow/tfjs-core';
import { convBNEntries } from './layout.js';
import { BN_EPS, Module } from './module.js';
import { bnAffine, oihwToHwio } from './weights.js';

interface Prepared {
  filter: tf.Tensor4D;
  /** Deploy: conv bias. Training: BN shift (after scale). */
  shift: tf.Tensor1D;
  /** Training only: BN scale. */
  scale?: tf.Tensor1D;
}

export class ConvBN extends Module {
  readonly typeName: string = 'ConvBN';
  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    readonly kernelSize: number,
    readonly stride = 1,
    readonly padding = 0,
    readonly deploy = false,
    readonly relu = false,
    groups = 1,
  ) {
    super();
    // tf.conv2d has no groups (only depthwise); the 2021 blocks use groups 1 throughout.
    if (groups !== 1) throw new Error(`internal: the TF.js ConvBN runs groups = 1 only (got ${groups})`);
    this.addSlots(convBNEntries(inChannels, outChannels, kernelSize, 1, deploy));
  }

  protected prepare(): Prepared {
    const { inChannels: I, outChannels: O, kernelSize: k } = this;
    const filter = tf.tensor4d(oihwToHwio(this.value('conv.weight'), O, I, k, k), [k, k, I, O]);
    if (this.deploy) return { filter, shift: tf.tensor1d(this.value('conv.bias')) };
    const { scale, shift } = bnAffine(this.value('bn.weight'), this.value('bn.bias'), this.value('bn.running_mean'), this.value('bn.running_var'), BN_EPS);
    return { filter, scale: tf.tensor1d(scale), shift: tf.tensor1d(shift) };
  }

  /** x: NHWC. `relu`: a ReLU after the module (besides its own, if any). */
  call(x: tf.Tensor4D, relu = false): tf.Tensor4D {
    const p = this.prepared<Prepared>();
    const act = this.relu || relu;
    if (this.deploy) {
      return tf.fused.conv2d({ x, filter: p.filter, strides: this.stride, pad: this.padding, bias: p.shift, activation: act ? 'relu' : 'linear' });
    }
    const y = tf.add(tf.mul(tf.conv2d(x, p.filter, this.stride, this.padding), p.scale!), p.shift) as tf.Tensor4D;
    return act ? tf.relu(y) : y;
  }
}

export class ConvBNReLU extends ConvBN {
  override readonly typeName: string = 'ConvBNReLU';
  constructor(inChannels: number, outChannels: number, kernelSize: number, stride = 1, padding = 0, deploy = false) {
    super(inChannels, outChannels, kernelSize, stride, padding, deploy, true);
  }
}
