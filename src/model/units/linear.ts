/** nn.Linear on vectors [N, F]. */
import * as tf from '@tensorflow/tfjs-core';
import { linearLayout } from '../../family/kinds/linear.js';
import type { LinearParams } from '../../family/types.js';
import { Module } from '../module.js';
import type { ModelUnit } from './types.js';

interface Prepared {
  weight: tf.Tensor2D;
  bias?: tf.Tensor1D;
}

export class Linear extends Module {
  readonly typeName = 'Linear';
  constructor(readonly p: LinearParams) {
    super();
    this.addSlots(linearLayout.entries(p, 'train'));
  }

  protected prepare(): Prepared {
    const out: Prepared = { weight: tf.tensor2d(this.value('weight'), [this.p.out, this.p.in]) };
    if (this.p.bias) out.bias = tf.tensor1d(this.value('bias'));
    return out;
  }

  call(x: tf.Tensor, relu = false): tf.Tensor {
    const w = this.prepared<Prepared>();
    // Not tf.fused.matMul: on wasm (tfjs 4.22) its transposeB path returns wrong values.
    let y: tf.Tensor = tf.matMul(x as tf.Tensor2D, w.weight, false, true);
    if (w.bias) y = tf.add(y, w.bias);
    return relu ? tf.relu(y) : y;
  }
}

export const linearUnit: ModelUnit<'linear'> = { kind: 'linear', create: ({ params }) => new Linear(params) };
