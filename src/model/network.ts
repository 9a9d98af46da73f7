/**
 * Any described network (family/types.ts NetworkDesc) as a TF.js module: one child per
 * unit at its PyTorch path (MODEL_UNITS builds it), registered in unit order so that
 * stateDict() keys and order are PyTorch's, and a forward pass that runs the
 * description's dataflow. The structural ops (add, mul, relu, gelu, sigmoid, maxpool,
 * gap) are implemented here, once. NHWC inside.
 */
import * as tf from '@tensorflow/tfjs-core';
import { RepmlpError } from '../errors.js';
import type { NetworkDesc, Op } from '../family/types.js';
import { Module } from './module.js';
import { MODEL_UNITS, type UnitModule } from './units/index.js';

export class ShapeError extends RepmlpError {
  override name = 'ShapeError';
}

/** Inputs of an op (value names). */
export function opInputs(op: Op): readonly string[] {
  return 'inputs' in op ? op.inputs : [op.input];
}

export class Network extends Module {
  readonly typeName: string;
  readonly units = new Map<string, UnitModule>();
  /** Per op index: true when it is a relu fused into the previous unit op. */
  private readonly fused: boolean[];

  constructor(readonly desc: NetworkDesc) {
    super();
    this.typeName = desc.typeName;
    for (const u of desc.units) {
      const impl = MODEL_UNITS.get(u.kind);
      if (!impl) throw new Error(`internal: no TF.js module for unit kind '${u.kind}'`);
      this.units.set(u.path, this.addChild(u.path, impl.create(u as never, desc.mode)));
    }
    const uses = new Map<string, number>();
    for (const op of desc.forward) for (const v of opInputs(op)) uses.set(v, (uses.get(v) ?? 0) + 1);
    this.fused = desc.forward.map((op, i) => {
      const prev = desc.forward[i - 1];
      return op.op === 'relu' && prev?.op === 'unit' && prev.output === op.input && uses.get(op.input) === 1;
    });
  }

  protected prepare(): object {
    return {};
  }

  /** x: NHWC [N, H, W, C] -> logits [N, numClasses]. */
  callNhwc(x: tf.Tensor4D): tf.Tensor2D {
    const values = new Map<string, tf.Tensor>([[this.desc.inputName, x]]);
    const get = (v: string) => {
      const t = values.get(v);
      if (!t) throw new Error(`internal: value ${v} used before it is computed`);
      return t;
    };
    const ops = this.desc.forward;
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i]!;
      if (this.fused[i]) continue;
      if (op.op === 'unit') {
        const fuse = this.fused[i + 1] === true;
        const out = this.units.get(op.unit)!.call(get(op.input), fuse);
        values.set(fuse ? (ops[i + 1] as { output: string }).output : op.output, out);
        if (fuse) values.set(op.output, out);
        continue;
      }
      values.set(op.output, structural(op, get));
    }
    return get(this.desc.outputName) as tf.Tensor2D;
  }

  /** x: NCHW [N, C, H, W] (PyTorch's layout) -> logits [N, numClasses]. */
  forward(x: tf.Tensor4D): tf.Tensor2D {
    const { C, H, W } = this.desc.input;
    const [, c, hh, ww] = x.shape;
    const sizes = this.desc.sizes;
    const sizeOk = sizes ? hh % sizes.multipleH === 0 && ww % sizes.multipleW === 0 : hh === H && ww === W;
    if (c !== C || !sizeOk) {
      const any = sizes && sizes.multipleH === 1 && sizes.multipleW === 1;
      const want = !sizes ? `[N, ${C}, ${H}, ${W}]` : any ? `[N, ${C}, H, W]` : `[N, ${C}, H, W] with H a multiple of ${sizes.multipleH}, W of ${sizes.multipleW}`;
      throw new ShapeError(`input shape [${x.shape.join(', ')}] does not match the model: expected ${want}`);
    }
    return tf.tidy(() => this.callNhwc(tf.transpose(x, [0, 2, 3, 1]) as tf.Tensor4D));
  }
}

/** The parameter-free ops, NHWC. */
function structural(op: Exclude<Op, { op: 'unit' }>, get: (v: string) => tf.Tensor): tf.Tensor {
  switch (op.op) {
    case 'add':
      return tf.add(get(op.inputs[0]), get(op.inputs[1]));
    case 'mul': {
      const a = get(op.inputs[0]);
      let b = get(op.inputs[1]);
      // map [N, H, W, C] * vector [N, C]: per image and channel.
      if (a.rank === 4 && b.rank === 2) b = tf.reshape(b, [b.shape[0]!, 1, 1, b.shape[1]!]);
      return tf.mul(a, b);
    }
    case 'relu':
      return tf.relu(get(op.input));
    case 'sigmoid':
      return tf.sigmoid(get(op.input));
    case 'gelu': {
      // Exact (erf) GELU, as torch.nn.GELU() by default.
      const x = get(op.input);
      return tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2))));
    }
    case 'maxpool':
      // Explicit padding: PyTorch pads with -inf, as tf.maxPool's numeric pad does.
      return tf.maxPool(get(op.input) as tf.Tensor4D, op.kernel, op.stride, op.pad);
    case 'gap':
      return tf.mean(get(op.input), [1, 2]);
  }
}
