/** nn.Conv2d with an optional bias of its own (no BN), on NHWC maps. */
import * as tf from '@tensorflow/tfjs-core';
import { convLayout } from '../../family/kinds/conv.js';
import type { ConvParams } from '../../family/types.js';
import { Module } from '../module.js';
import { oihwToHwio } from '../weights.js';
import type { ModelUnit } from './types.js';

interface Prepared {
  filter: tf.Tensor4D;
  bias?: tf.Tensor1D;
}

export class Conv2d extends Module {
  readonly typeName = 'Conv2d';
  constructor(readonly p: ConvParams) {
    super();
    if (p.groups !== 1) throw new Error('internal: the TF.js Conv2d unit runs groups = 1 only');
    this.addSlots(convLayout.entries(p, 'train'));
  }

  protected prepare(): Prepared {
    const { in: I, out: O, k } = this.p;
    const out: Prepared = { filter: tf.tensor4d(oihwToHwio(this.value('weight'), O, I, k, k), [k, k, I, O]) };
    if (this.p.bias) out.bias = tf.tensor1d(this.value('bias'));
    return out;
  }

  call(x: tf.Tensor, relu = false): tf.Tensor {
    const p = this.prepared<Prepared>();
    return tf.fused.conv2d({
      x: x as tf.Tensor4D, filter: p.filter, strides: this.p.stride, pad: this.p.pad,
      ...(p.bias ? { bias: p.bias } : {}), activation: relu ? 'relu' : 'linear',
    });
  }
}

export const convUnit: ModelUnit<'conv'> = { kind: 'conv', create: ({ params }) => new Conv2d(params) };
