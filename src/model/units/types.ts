/** The model layer's part of a unit kind: a TF.js module built from a described unit. */
import type * as tf from '@tensorflow/tfjs-core';
import type { Mode, Unit, UnitKind } from '../../family/types.js';
import type { Module } from '../module.js';

/**
 * A unit's TF.js module: its slots are the kind's layout entries (family/kinds/), and
 * `call` runs it on NHWC maps ([N, H, W, C]) or vectors ([N, F]). `relu`: apply a ReLU to
 * the output (the network passes it when a relu op is the output's only consumer, so a
 * module may fuse it).
 */
export interface UnitModule extends Module {
  call(x: tf.Tensor, relu?: boolean): tf.Tensor;
}

export interface ModelUnit<K extends UnitKind = UnitKind> {
  kind: K;
  create(unit: Unit<K>, mode: Mode): UnitModule;
}
