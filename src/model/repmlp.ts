/**
 * RepMLP (Ding et al. 2021, arXiv 2105.01883): global perceptron (avg pool per partition
 * -> fc1 -> ReLU -> fc2, added to each partition), partition perceptron (fc3, a grouped FC
 * over every h x w partition) and, in training form, the local perceptron (grouped k x k
 * convs on each partition alone). The deploy form is the global perceptron plus fc3 only.
 *
 * NHWC inside. A partition flattens to (y, x, c) order here, where PyTorch uses (c, y, x);
 * the weights are re-indexed once (weights.ts) so that fc3 is one matmul per group over all
 * partitions at once: no per-partition loop, and only low-rank transposes around it.
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
  /** Per group j: fc3's block [hw*Cg, hw*Og] (rows (p', cg), columns (p, og)). */
  fc3: tf.Tensor2D[];
  /** Training: fc3_bn scale per group [hw*Og]; deploy: absent. */
  fc3Scale?: tf.Tensor1D[];
  /** Deploy: fc3 bias; training: fc3_bn shift. Per group [hw*Og]. */
  fc3Shift: tf.Tensor1D[];
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
    const K = hw * Cg;
    const Nn = hw * Og;
    const v = (n: string) => this.value(n);
    const perGroup = (a: Float32Array) => Array.from({ length: g }, (_, j) => tf.tensor1d(a.subarray(j * Nn, (j + 1) * Nn)));
    const W = fc3ToBatched(v('fc3.weight'), g, Cg, Og, hw);
    const out: Prepared = {
      fc3: Array.from({ length: g }, (_, j) => tf.tensor2d(W.subarray(j * K * Nn, (j + 1) * K * Nn), [K, Nn])),
      fc3Shift: [],
      local: [],
    };
    if (this.needGlobal) out.global = this.prepareGlobal();
    if (this.deploy) {
      out.fc3Shift = perGroup(fc3VectorToBatched(v('fc3.bias'), g, Og, hw));
      return out;
    }
    const bn = bnAffine(v('fc3_bn.weight'), v('fc3_bn.bias'), v('fc3_bn.running_mean'), v('fc3_bn.running_var'), BN_EPS);
    out.fc3Scale = perGroup(fc3VectorToBatched(bn.scale, g, Og, hw));
    out.fc3Shift = perGroup(fc3VectorToBatched(bn.shift, g, Og, hw));
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

  /**
   * x: NHWC [N, H, W, C] -> [N, H, W, O]. `relu` applies a ReLU to the output (the
   * blocks' repmlp_nonlinear); it commutes with the re-layout, so deploy fuses it into fc3.
   */
  call(x: tf.Tensor4D, relu = false): tf.Tensor4D {
    const pr = this.prepared<Prepared>();
    const { C, O, H, W, h, w, fc3Groups: g } = this.p;
    const { hp, wp } = this;
    const N = x.shape[0];
    const Cg = C / g;
    const Og = O / g;
    const M = N * hp * wp;
    const hw = h * w;
    // Partitions as [M, hw, C] (m = (n, a, b), then y, x, c). Two low-rank transposes: tfjs-wasm
    // has no fast path for rank 6 (measured 10-15x slower than this pair).
    let parts: tf.Tensor = tf.reshape(tf.transpose(tf.reshape(x, [N * hp, h, wp, w * C]), [0, 2, 1, 3]), [M, hw, C]);
    if (pr.global) parts = tf.add(parts, tf.reshape(this.globalPerceptron(x, pr.global), [M, 1, C]));
    // Group-major [g, M, hw*Cg]; each group's rows are NHWC h x w images flattened.
    const groups = g === 1
      ? [tf.reshape(parts, [M, hw * C]) as tf.Tensor2D]
      : (tf.unstack(tf.reshape(tf.transpose(tf.reshape(parts, [M * hw, g, Cg]), [1, 0, 2]), [g, M, hw * Cg])) as tf.Tensor2D[]);
    const outs = groups.map((a, j) => {
      // One 2-D matmul per group: tfjs-wasm's batched matmul is several times slower.
      if (this.deploy) return tf.fused.matMul({ a, b: pr.fc3[j]!, bias: pr.fc3Shift[j]!, activation: relu ? 'relu' : 'linear' });
      let y: tf.Tensor = tf.add(tf.mul(tf.matMul(a, pr.fc3[j]!), pr.fc3Scale![j]!), pr.fc3Shift[j]!);
      if (pr.local.length) y = tf.add(y, tf.reshape(this.localPerceptron(tf.reshape(a, [M, h, w, Cg]) as tf.Tensor4D, j, pr.local), [M, hw * Og]));
      return relu ? tf.relu(y) : y;
    });
    // Back to [M, hw, O] with o = j*Og + og, then to [N, H, W, O].
    const merged = g === 1 ? outs[0]! : tf.transpose(tf.reshape(tf.stack(outs), [g, M * hw, Og]), [1, 0, 2]);
    const back = tf.transpose(tf.reshape(merged, [N * hp, wp, h, w * O]), [0, 2, 1, 3]);
    return tf.reshape(back, [N, H, W, O]);
  }

  /** One vector per image in (partition, c) order: [N, hp*wp*C]. */
  private globalPerceptron(x: tf.Tensor4D, gp: Global): tf.Tensor2D {
    const { C, h, w } = this.p;
    let v: tf.Tensor = tf.avgPool(x, [h, w], [h, w], 'valid');
    if (gp.bnScale) v = tf.add(tf.mul(v, gp.bnScale), gp.bnShift!);
    v = tf.reshape(v, [x.shape[0], this.hp * this.wp * C]);
    v = tf.relu(tf.add(tf.matMul(v as tf.Tensor2D, gp.w1), gp.b1));
    return tf.add(tf.matMul(v as tf.Tensor2D, gp.w2), gp.b2) as tf.Tensor2D;
  }

  /** Group j's k x k branches (conv + BN) on each partition alone: zero padding at its borders. */
  private localPerceptron(xj: tf.Tensor4D, j: number, branches: LocalBranch[]): tf.Tensor {
    const terms = branches.map((b) => tf.add(tf.mul(tf.conv2d(xj, b.filters[j]!, 1, Math.floor(b.k / 2)), b.scales[j]!), b.shifts[j]!));
    return terms.length === 1 ? terms[0]! : tf.addN(terms);
  }

  /** Standalone use: x NCHW [N, C, H, W] -> NCHW [N, O, H, W]. */
  forward(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => tf.transpose(this.call(tf.transpose(x, [0, 2, 3, 1])), [0, 3, 1, 2]));
  }
}
