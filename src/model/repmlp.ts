/**
 * RepMLP (Ding et al. 2021, arXiv 2105.01883): global perceptron (avg pool per partition
 * -> fc1 -> ReLU -> fc2, added to each partition), partition perceptron (fc3, a grouped FC
 * over every h x w partition) and, in training form, the local perceptron (grouped k x k
 * convs on each partition alone). The deploy form is the global perceptron plus fc3 only.
 *
 * NHWC inside. A partition flattens to (y, x, c) order here, where PyTorch uses (c, y, x);
 * the weights are re-indexed once (weights.ts) so that fc3 is one batched matmul over the
 * groups and no per-partition loop or channel transpose is needed.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { RepMLPParams } from './config.js';
import { fc1Features, hasGlobalPerceptron, repmlpEntries } from './layout.js';
import { BN_EPS, Module } from './module.js';
import { bnAffine, cpToPc, fc1ToNhwc, fc2ToNhwc, fc3ToBatched, fc3VectorToBatched, oihwToHwio, outChannels } from './weights.js';

interface Global {
  /** Training only: avg.bn as scale/shift over C. */
  bnScale?: tf.Tensor1D;
  bnShift?: tf.Tensor1D;
  w1: tf.Tensor2D;
  b1: tf.Tensor1D;
  w2: tf.Tensor2D;
  b2: tf.Tensor1D;
}

interface LocalBranch {
  k: number;
  /** Per group: HWIO filter [k, k, Cg, Og] and BN affine over Og. */
  filters: tf.Tensor4D[];
  scales: tf.Tensor1D[];
  shifts: tf.Tensor1D[];
}

interface Prepared {
  global?: Global;
  /** [g, hw*Cg, hw*Og] */
  fc3: tf.Tensor3D;
  /** Training: fc3_bn scale [g, 1, hw*Og]; deploy: absent. */
  fc3Scale?: tf.Tensor3D;
  /** Deploy: fc3 bias; training: fc3_bn shift. [g, 1, hw*Og] */
  fc3Shift: tf.Tensor3D;
  local: LocalBranch[];
}

export class RepMLP extends Module {
  readonly typeName = 'RepMLP';
  readonly hp: number;
  readonly wp: number;
  readonly needGlobal: boolean;

  constructor(readonly p: RepMLPParams, readonly deploy = false) {
    super();
    this.hp = p.H / p.h;
    this.wp = p.W / p.w;
    this.needGlobal = hasGlobalPerceptron(p);
    this.addSlots(repmlpEntries(p, deploy));
  }

  protected prepare(): Prepared {
    const { C, O, h, w, fc3Groups: g } = this.p;
    const hw = h * w;
    const Cg = C / g;
    const Og = O / g;
    const v = (n: string) => this.value(n);
    const out: Prepared = {
      fc3: tf.tensor3d(fc3ToBatched(v('fc3.weight'), g, Cg, Og, hw), [g, hw * Cg, hw * Og]),
      fc3Shift: tf.tensor3d(fc3VectorToBatched(this.deploy ? v('fc3.bias') : new Float32Array(O * hw), g, Og, hw), [g, 1, hw * Og]),
      local: [],
    };
    if (this.needGlobal) out.global = this.prepareGlobal();
    if (this.deploy) return out;
    const bn = bnAffine(v('fc3_bn.weight'), v('fc3_bn.bias'), v('fc3_bn.running_mean'), v('fc3_bn.running_var'), BN_EPS);
    out.fc3Scale = tf.tensor3d(fc3VectorToBatched(bn.scale, g, Og, hw), [g, 1, hw * Og]);
    tf.dispose(out.fc3Shift);
    out.fc3Shift = tf.tensor3d(fc3VectorToBatched(bn.shift, g, Og, hw), [g, 1, hw * Og]);
    for (const k of this.p.reparamConvK) {
      const pre = `repconv${k}.`;
      const kb = bnAffine(v(pre + 'bn.weight'), v(pre + 'bn.bias'), v(pre + 'bn.running_mean'), v(pre + 'bn.running_var'), BN_EPS);
      const wk = v(pre + 'conv.weight');
      const branch: LocalBranch = { k, filters: [], scales: [], shifts: [] };
      for (let j = 0; j < g; j++) {
        const wj = outChannels(wk, Cg, k, k, j * Og, Og);
        branch.filters.push(tf.tensor4d(oihwToHwio(wj, Og, Cg, k, k), [k, k, Cg, Og]));
        branch.scales.push(tf.tensor1d(kb.scale.slice(j * Og, (j + 1) * Og)));
        branch.shifts.push(tf.tensor1d(kb.shift.slice(j * Og, (j + 1) * Og)));
      }
      out.local.push(branch);
    }
    return out;
  }

  private prepareGlobal(): Global {
    const { C } = this.p;
    const P = this.hp * this.wp;
    const { inner: I } = fc1Features(this.p);
    const v = (n: string) => this.value(n);
    const g: Global = {
      w1: tf.tensor2d(fc1ToNhwc(v('fc1_fc2.fc1.weight'), I, C, P), [P * C, I]),
      b1: tf.tensor1d(v('fc1_fc2.fc1.bias')),
      w2: tf.tensor2d(fc2ToNhwc(v('fc1_fc2.fc2.weight'), I, C, P), [I, P * C]),
      b2: tf.tensor1d(cpToPc(v('fc1_fc2.fc2.bias'), C, P)),
    };
    if (!this.deploy) {
      const bn = bnAffine(v('avg.bn.weight'), v('avg.bn.bias'), v('avg.bn.running_mean'), v('avg.bn.running_var'), BN_EPS);
      g.bnScale = tf.tensor1d(bn.scale);
      g.bnShift = tf.tensor1d(bn.shift);
    }
    return g;
  }

  /** x: NHWC [N, H, W, C] -> [N, H, W, O]. */
  call(x: tf.Tensor4D): tf.Tensor4D {
    const pr = this.prepared<Prepared>();
    const { C, O, H, W, h, w, fc3Groups: g } = this.p;
    const { hp, wp } = this;
    const N = x.shape[0];
    const Cg = C / g;
    const Og = O / g;
    const M = N * hp * wp;
    let x6: tf.Tensor = tf.reshape(x, [N, hp, h, wp, w, C]);
    if (pr.global) x6 = tf.add(x6, tf.reshape(this.globalPerceptron(x, pr.global), [N, hp, 1, wp, 1, C]));
    // [g, N*hp, wp, h, w, Cg]: group-major partitions, each an NHWC h x w image.
    const parts = tf.transpose(tf.reshape(x6, [N * hp, h, wp, w, g, Cg]), [4, 0, 2, 1, 3, 5]);
    let y: tf.Tensor = tf.matMul(tf.reshape(parts, [g, M, h * w * Cg]) as tf.Tensor3D, pr.fc3);
    if (pr.fc3Scale) y = tf.mul(y, pr.fc3Scale);
    y = tf.add(y, pr.fc3Shift);
    if (pr.local.length) y = tf.add(y, tf.reshape(this.localPerceptron(tf.reshape(parts, [g, M, h, w, Cg]), pr.local), [g, M, h * w * Og]));
    // Back from [g, N*hp, wp, h, w, Og] to [N, H, W, O] with o = j*Og + og.
    const back = tf.transpose(tf.reshape(y, [g, N * hp, wp, h, w, Og]), [1, 3, 2, 4, 0, 5]);
    return tf.reshape(back, [N, H, W, O]);
  }

  /** One vector per image in (partition, c) order. */
  private globalPerceptron(x: tf.Tensor4D, gp: Global): tf.Tensor2D {
    const { C, h, w } = this.p;
    let v: tf.Tensor = tf.avgPool(x, [h, w], [h, w], 'valid');
    if (gp.bnScale) v = tf.add(tf.mul(v, gp.bnScale), gp.bnShift!);
    v = tf.reshape(v, [x.shape[0], this.hp * this.wp * C]);
    v = tf.relu(tf.add(tf.matMul(v as tf.Tensor2D, gp.w1), gp.b1));
    return tf.add(tf.matMul(v as tf.Tensor2D, gp.w2), gp.b2) as tf.Tensor2D;
  }

  /** Each k x k branch (conv + BN) per group on each partition alone; zero padding at its borders. */
  private localPerceptron(parts: tf.Tensor, branches: LocalBranch[]): tf.Tensor {
    const groups = tf.unstack(parts) as tf.Tensor4D[];
    const outs = groups.map((xj, j) => {
      const terms = branches.map((b) => tf.add(tf.mul(tf.conv2d(xj, b.filters[j]!, 1, Math.floor(b.k / 2)), b.scales[j]!), b.shifts[j]!));
      return terms.length === 1 ? terms[0]! : tf.addN(terms);
    });
    return tf.stack(outs);
  }

  /** Standalone use: x NCHW [N, C, H, W] -> NCHW [N, O, H, W]. */
  forward(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => tf.transpose(this.call(tf.transpose(x, [0, 2, 3, 1])), [0, 3, 1, 2]));
  }
}
