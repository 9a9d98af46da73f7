/**
 * RepMLP-ResNet: the stem, four stages of BaseBlock / RepMLPLightBlock /
 * RepMLPBottleneckBlock as planned by config.ts's planNetwork(), global average pool and
 * `linear`. Children are registered in the release's order (shortcut first in a block),
 * so stateDict() keys come out in PyTorch's order.
 */
import * as tf from '@tensorflow/tfjs-core';
import { RepmlpError } from '../errors.js';
import { type BlockPlan, type RepMLPResNetConfig, planNetwork, repmlpParams } from './config.js';
import { ConvBN } from './convbn.js';
import { blockChildren, linearEntries } from './layout.js';
import { Module } from './module.js';
import { RepMLP } from './repmlp.js';

/** A residual block: its non-shortcut children run in order (ReLU after the RepMLP). */
abstract class ResidualBlock extends Module {
  private readonly body: Array<ConvBN | RepMLP> = [];
  private readonly shortcut: ConvBN | null = null;

  constructor(cfg: RepMLPResNetConfig, readonly plan: BlockPlan, readonly deploy: boolean) {
    super();
    for (const c of blockChildren(plan)) {
      if (c.kind === 'repmlp') {
        this.body.push(this.addChild(c.name, new RepMLP(repmlpParams(cfg, plan), deploy)));
        continue;
      }
      const m = this.addChild(c.name, new ConvBN(c.in, c.out, c.k, c.stride, Math.floor(c.k / 2), deploy, c.relu));
      if (c.name === 'shortcut') this.shortcut = m;
      else this.body.push(m);
    }
  }

  protected prepare(): object {
    return {};
  }

  call(x: tf.Tensor4D): tf.Tensor4D {
    let y = x;
    for (const m of this.body) y = m instanceof RepMLP ? m.call(y, true) : m.call(y);
    return tf.relu(tf.add(y, this.shortcut ? this.shortcut.call(x) : x));
  }
}

export class BaseBlock extends ResidualBlock {
  readonly typeName = 'BaseBlock';
}
export class RepMLPLightBlock extends ResidualBlock {
  readonly typeName = 'RepMLPLightBlock';
}
export class RepMLPBottleneckBlock extends ResidualBlock {
  readonly typeName = 'RepMLPBottleneckBlock';
}

function makeBlock(cfg: RepMLPResNetConfig, b: BlockPlan, deploy: boolean): ResidualBlock {
  if (b.kind === 'light') return new RepMLPLightBlock(cfg, b, deploy);
  if (b.kind === 'bottleneck') return new RepMLPBottleneckBlock(cfg, b, deploy);
  return new BaseBlock(cfg, b, deploy);
}

interface Head {
  weight: tf.Tensor2D;
  bias: tf.Tensor1D;
}

export class RepMLPResNet extends Module {
  readonly typeName = 'RepMLPResNet';
  readonly stem: ConvBN;
  readonly blocks: ResidualBlock[];

  constructor(readonly config: RepMLPResNetConfig, readonly deploy = false) {
    super();
    // stage0 = Sequential(ConvBNReLU 7x7/2, MaxPool2d): the pool has no parameters.
    this.stem = this.addChild('stage0.0', new ConvBN(config.in_channels, config.stem_width, 7, 2, 3, deploy, true));
    this.blocks = planNetwork(config).map((b) => this.addChild(b.prefix, makeBlock(config, b, deploy)));
    this.addSlots(linearEntries(config.widths[3]!, config.num_classes).map((e) => ({ ...e, name: `linear.${e.name}` })));
  }

  protected prepare(): Head {
    return { weight: tf.tensor2d(this.value('linear.weight'), [this.config.num_classes, this.config.widths[3]!]), bias: tf.tensor1d(this.value('linear.bias')) };
  }

  /** x: NHWC [N, img_H, img_W, in_channels] -> logits [N, num_classes]. */
  callNhwc(x: tf.Tensor4D): tf.Tensor2D {
    const head = this.prepared<Head>();
    // MaxPool2d(3, 2, padding 1) with explicit padding (PyTorch pads with -inf).
    let y = tf.maxPool(this.stem.call(x), 3, 2, 1);
    for (const b of this.blocks) y = b.call(y);
    const pooled = tf.mean(y, [1, 2]) as tf.Tensor2D;
    // Not tf.fused.matMul: on wasm (tfjs 4.22) its transposeB path returns wrong values.
    return tf.add(tf.matMul(pooled, head.weight, false, true), head.bias);
  }

  /** x: NCHW [N, in_channels, img_H, img_W] (PyTorch's layout) -> logits [N, num_classes]. */
  forward(x: tf.Tensor4D): tf.Tensor2D {
    const { img_H, img_W, in_channels } = this.config;
    const [, c, hh, ww] = x.shape;
    // Only RepMLP blocks fix the image size; a plain (base) network takes any multiple of 32.
    const fixed = this.config.block_type !== 'base';
    if (c !== in_channels || (fixed ? hh !== img_H || ww !== img_W : hh % 32 !== 0 || ww % 32 !== 0)) {
      const want = fixed ? `[N, ${in_channels}, ${img_H}, ${img_W}]` : `[N, ${in_channels}, H, W] with H, W multiples of 32`;
      throw new ShapeError(`input shape [${x.shape.join(', ')}] does not match the model: expected ${want}`);
    }
    return tf.tidy(() => this.callNhwc(tf.transpose(x, [0, 2, 3, 1]) as tf.Tensor4D));
  }
}

export class ShapeError extends RepmlpError {
  override name = 'ShapeError';
}
