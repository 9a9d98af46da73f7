/** BatchNorm2d (eval) on NHWC maps, or BatchNorm1d on vectors [N, C]. */
import * as tf from '@tensorflow/tfjs-core';
import { bnLayout } from '../../family/kinds/bn.js';
import type { BNParams } from '../../family/types.js';
import { BN_EPS, Module } from '../module.js';
import { bnAffine } from '../weights.js';
import type { ModelUnit } from './types.js';

interface Prepared {
  scale: tf.Tensor1D;
  shift: tf.Tensor1D;
}

export class BatchNorm extends Module {
  readonly typeName = 'BatchNorm2d';
  constructor(readonly p: BNParams) {
    super();
    this.addSlots(bnLayout.entries(p, 'train'));
  }

  protected prepare(): Prepared {
    const { scale, shift } = bnAffine(this.value('weight'), this.value('bias'), this.value('running_mean'), this.value('running_var'), BN_EPS);
    return { scale: tf.tensor1d(scale), shift: tf.tensor1d(shift) };
  }

  call(x: tf.Tensor, relu = false): tf.Tensor {
    const p = this.prepared<Prepared>();
    const y = tf.add(tf.mul(x, p.scale), p.shift);
    return relu ? tf.relu(y) : y;
  }
}

export const bnUnit: ModelUnit<'bn'> = { kind: 'bn', create: ({ params }) => new BatchNorm(params) };
