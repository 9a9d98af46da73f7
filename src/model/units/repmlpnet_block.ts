/**
 * RepMLPNet's RepMLPBlock as a TF.js unit (Ding et al., CVPR 2022, arXiv 2112.11081;
 * shared/spec/repmlpnet.md), training-time and deploy (after locality_injection()) forms,
 * NHWC inside; the rest of the network is generic (model/network.ts).
 *
 * RepMLPBlock, per image: a gate g = sigmoid(fc2(relu(fc1(mean(x))))) per channel; the map
 * cut into h x w patches; channel c of every patch goes through its share-set's matrix
 * W[c mod S] ((h*w) x (h*w), one per set, shared by all channels of the set and all
 * patches) plus, in training, fc3_bn over the sets and the repconv{k} branches (k x k
 * depthwise convs over the sets, on each patch alone); the result times g.
 *
 * Layout (only rank <= 4 transposes: tfjs-wasm's rank 6 is 10-15x slower): partitions as
 * [M, hw, Q, S] (m = (n, py, px), channel c = q*S + s, as PyTorch's reshape reads them)
 * -> [S, hw, M, Q] -> per set W_s @ X_s ([hw, hw] @ [hw, M*Q], the weight on the left,
 * as PyTorch stores it: no re-layout). Small sets (S <= 32) run as one 2-D matmul each,
 * more sets as one batched matmul: measured on wasm at T224's shapes, 2-D matmuls are
 * 10x faster for [4, 784, 784] (5.8 vs 57 ms), batched 8x faster for [128, 49, 49]
 * (0.9 vs 7.9 ms).
 */
import * as tf from '@tensorflow/tfjs-core';
import { RepmlpError } from '../../errors.js';
import { repmlpnetBlockEntries } from '../../family/kinds/repmlpnet_block.js';
import type { RepMLPNetBlockParams } from '../../family/repmlpnet/config.js';
import { BN_EPS, Module } from '../module.js';
import { bnAffine } from '../weights.js';
import type { ModelUnit } from './types.js';

export class RepMLPNetShapeError extends RepmlpError {
  override name = 'RepMLPNetShapeError';
}

/** Share-set counts up to this run as one 2-D matmul per set; more as one batched matmul. */
const MAX_UNSTACKED_SETS = 32;

interface Branch {
  /** Depthwise filter [k, k, S, 1], BN over S. */
  filter: tf.Tensor4D;
  scale: tf.Tensor1D;
  shift: tf.Tensor1D;
  pad: number;
}

interface BlockPrepared {
  /** gp.fc1 as [C, inner], gp.fc2 as [inner, C] (x @ W). */
  w1: tf.Tensor2D;
  b1: tf.Tensor1D;
  w2: tf.Tensor2D;
  b2: tf.Tensor1D;
  /** fc3 per set [hw, hw] (unstacked) or all sets [S, hw, hw] (batched). */
  fc3: tf.Tensor[];
  /** Deploy: fc3.bias as [hw, 1] per set or [S, hw, 1]; training: absent. */
  bias?: tf.Tensor[];
  /** Training: fc3_bn per set, as [S, 1, 1] (batched) or scalars per set. */
  scale?: tf.Tensor[];
  shift?: tf.Tensor[];
  branches: Branch[];
}

/** RepMLPNet's RepMLPBlock (PyTorch names: gp.fc1, gp.fc2, fc3, fc3_bn, repconv{k}.conv/bn). */
export class RepMLPNetBlock extends Module {
  readonly typeName = 'RepMLPBlock';
  readonly unstacked: boolean;

  constructor(readonly p: RepMLPNetBlockParams, readonly deploy = false) {
    super();
    this.unstacked = p.S <= MAX_UNSTACKED_SETS;
    this.addSlots(repmlpnetBlockEntries(p, deploy));
  }

  protected prepare(): BlockPrepared {
    const { C, S, h, w, inner } = this.p;
    const hw = h * w;
    const v = (n: string) => this.value(n);
    const transpose2 = (a: Float32Array, rows: number, cols: number) => {
      const out = new Float32Array(a.length);
      for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = a[r * cols + c]!;
      return out;
    };
    const W = v('fc3.weight'); // [S*hw, hw]: set s's matrix at rows s*hw .. , W_s[p, p'] as stored
    const perSet = (a: Float32Array, shape: number[]) => (this.unstacked
      ? Array.from({ length: S }, (_, s) => tf.tensor(a.subarray((s * a.length) / S, ((s + 1) * a.length) / S), shape))
      : [tf.tensor(a, [S, ...shape])]);
    const out: BlockPrepared = {
      w1: tf.tensor2d(transpose2(v('gp.fc1.weight'), inner, C), [C, inner]),
      b1: tf.tensor1d(v('gp.fc1.bias')),
      w2: tf.tensor2d(transpose2(v('gp.fc2.weight'), C, inner), [inner, C]),
      b2: tf.tensor1d(v('gp.fc2.bias')),
      fc3: perSet(W, [hw, hw]),
      branches: [],
    };
    if (this.deploy) {
      out.bias = perSet(v('fc3.bias'), [hw, 1]);
      return out;
    }
    const bn = bnAffine(v('fc3_bn.weight'), v('fc3_bn.bias'), v('fc3_bn.running_mean'), v('fc3_bn.running_var'), BN_EPS);
    out.scale = perSet(bn.scale, this.unstacked ? [] : [1, 1]);
    out.shift = perSet(bn.shift, this.unstacked ? [] : [1, 1]);
    for (const k of this.p.reparamConvK) {
      const pre = `repconv${k}.`;
      const kb = bnAffine(v(pre + 'bn.weight'), v(pre + 'bn.bias'), v(pre + 'bn.running_mean'), v(pre + 'bn.running_var'), BN_EPS);
      // [S, 1, k, k] -> [k, k, S, 1] (HWC times multiplier 1).
      const src = v(pre + 'conv.weight');
      const f = new Float32Array(src.length);
      for (let s = 0; s < S; s++) for (let i = 0; i < k * k; i++) f[i * S + s] = src[s * k * k + i]!;
      out.branches.push({ filter: tf.tensor4d(f, [k, k, S, 1]), scale: tf.tensor1d(kb.scale), shift: tf.tensor1d(kb.shift), pad: Math.floor(k / 2) });
    }
    return out;
  }

  /** The global perceptron's gate, [N, C] (sigmoid of fc2(relu(fc1(mean)))). */
  gate(x: tf.Tensor4D): tf.Tensor2D {
    const pr = this.prepared<BlockPrepared>();
    const v = tf.mean(x, [1, 2]) as tf.Tensor2D;
    const hidden = tf.relu(tf.add(tf.matMul(v, pr.w1), pr.b1)) as tf.Tensor2D;
    return tf.sigmoid(tf.add(tf.matMul(hidden, pr.w2), pr.b2)) as tf.Tensor2D;
  }

  /** x: NHWC [N, H, W, C] (H, W multiples of h, w) -> the block's output, same shape. */
  call(x4: tf.Tensor, relu = false): tf.Tensor4D {
    const x = x4 as tf.Tensor4D;
    const pr = this.prepared<BlockPrepared>();
    const { C, S, h, w } = this.p;
    const [N, H, W] = x.shape;
    if (H % h !== 0 || W % w !== 0 || x.shape[3] !== C) {
      throw new RepMLPNetShapeError(`RepMLPBlock (h=${h}, w=${w}, C=${C}): input map [${x.shape}] does not split into ${h}x${w} partitions`);
    }
    const hp = H / h;
    const wp = W / w;
    const M = N * hp * wp;
    const hw = h * w;
    const Q = C / S;
    // [M, hw, Q, S]: one row per (image, partition), channel c = q*S + s.
    const parts = hp === 1 && wp === 1
      ? tf.reshape(x, [M, hw, Q, S])
      : tf.reshape(tf.transpose(tf.reshape(x, [N * hp, h, wp, w * C]), [0, 2, 1, 3]), [M, hw, Q, S]);
    // [S, hw, M*Q]: set s's columns are every (partition, channel) of the set.
    const sets = tf.reshape(tf.transpose(parts, [3, 1, 0, 2]), [S, hw, M * Q]);
    let y: tf.Tensor;
    if (this.unstacked) {
      const xs = S === 1 ? [tf.reshape(sets, [hw, M * Q])] : tf.unstack(sets);
      const ys = xs.map((xsS, s) => {
        const z = tf.matMul(pr.fc3[s] as tf.Tensor2D, xsS as tf.Tensor2D);
        return this.deploy ? tf.add(z, pr.bias![s]!) : tf.add(tf.mul(z, pr.scale![s]!), pr.shift![s]!);
      });
      y = S === 1 ? tf.reshape(ys[0]!, [1, hw, M * Q]) : tf.stack(ys);
    } else {
      const z = tf.matMul(pr.fc3[0] as tf.Tensor3D, sets as tf.Tensor3D);
      y = this.deploy ? tf.add(z, pr.bias![0]!) : tf.add(tf.mul(z, pr.scale![0]!), pr.shift![0]!);
    }
    if (pr.branches.length) y = tf.add(y, this.localPerceptron(parts as tf.Tensor4D, pr.branches, M, Q));
    const out = tf.mul(this.putBack(y, N, hp, wp), tf.reshape(this.gate(x), [N, 1, 1, C])) as tf.Tensor4D;
    return relu ? tf.relu(out) : out;
  }

  /**
   * fc3's result [S, hw, M*Q] (columns (n, py, px, q)) -> the map [N, H, W, C]. As the
   * repository's partition_affine does: it reshapes the rows to (N, hp, wp, S, h, w)
   * although they are ordered (n, py, px, q), so with several partitions and C > S the
   * (py, px, q) block is read as (q', py', px'). That is what its models compute (in
   * training and deploy alike), so it is what this computes; the two coincide when
   * hp*wp = 1 (every preset at its resolution) or C = S.
   */
  private putBack(y: tf.Tensor, N: number, hp: number, wp: number): tf.Tensor4D {
    const { C, S, h, w } = this.p;
    const hw = h * w;
    const Q = C / S;
    const P = hp * wp;
    const M = N * P;
    // [M, hw, C] with m = (n, py, px), c = q*S + s.
    const rows = P === 1 || Q === 1
      ? tf.transpose(tf.reshape(y, [S, hw, M, Q]), [2, 1, 3, 0])
      : tf.transpose(tf.reshape(tf.transpose(tf.reshape(y, [S, hw, N * Q, P]), [2, 3, 1, 0]), [N, Q, P * hw, S]), [0, 2, 1, 3]);
    const H = hp * h;
    const W = wp * w;
    if (P === 1) return tf.reshape(rows, [N, H, W, C]);
    return tf.reshape(tf.transpose(tf.reshape(rows, [N * hp, wp, h, w * C]), [0, 2, 1, 3]), [N, H, W, C]);
  }

  /** repconv{k} + BN on each h x w patch alone (zero padding at its border), summed, as [S, hw, M*Q]. */
  private localPerceptron(parts: tf.Tensor4D, branches: Branch[], M: number, Q: number): tf.Tensor {
    const { S, h, w } = this.p;
    const imgs = tf.reshape(tf.transpose(parts, [0, 2, 1, 3]), [M * Q, h, w, S]) as tf.Tensor4D;
    const terms = branches.map((b) => tf.add(tf.mul(tf.depthwiseConv2d(imgs, b.filter, 1, b.pad), b.scale), b.shift));
    const sum = terms.length === 1 ? terms[0]! : tf.addN(terms);
    return tf.transpose(tf.reshape(sum, [M * Q, h * w, S]), [2, 1, 0]);
  }
}

export const repmlpnetBlockUnit: ModelUnit<'repmlpnet_block'> = {
  kind: 'repmlpnet_block',
  create: ({ params }, mode) => new RepMLPNetBlock(params, mode === 'deploy'),
};
