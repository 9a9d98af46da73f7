/**
 * IR -> TF.js graph model: `model.json` (a TF GraphDef in JSON + weightsManifest) and
 * 4 MiB weight shards, loadable by stock `tf.loadGraphModel` on every backend.
 *
 * Layout is NHWC (TF's). Only ops the tfjs converter's executors implement on cpu and
 * wasm are used, and only in forms that are known to work (tfjs-onnx-notes.md):
 * - Conv: _FusedConv2D (BiasAdd[, Relu]) with HWIO weights, `dilations` set, padding
 *   VALID / SAME where that equals PyTorch's, else EXPLICIT (stride 2 differs from SAME).
 * - Pools: MaxPool after PadV2 with -FLT_MAX (PyTorch pads max pools with -inf); the
 *   partition AvgPool has kernel = stride, VALID.
 * - fc3 (grouped FC): Reshape -> Transpose -> Unpack -> one 2-D _FusedMatMul per group
 *   (weights [Cin/G, Cout/G], bias, ReLU) -> Pack -> Transpose back (see partitionFc for
 *   why not BatchMatMulV2: 10x slower on wasm for these shapes).
 * - Vectors: flattening an NHWC map yields (y, x, c) order rather than PyTorch's
 *   (c, y, x); instead of transposing activations, Linear weights are permuted at export
 *   time (columns to the order their input arrives in, rows to the order the consumer
 *   wants), so the global perceptron costs no Transpose at all.
 */
import { basename, join } from 'node:path';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { RepmlpError } from '../errors.js';
import { OutputSet } from '../io/atomic.js';
import { packWeights, type ManifestWeight, type WeightOptions } from './tfjs_weights.js';
import { type Graph, type IrNode, type PartitionFcNode, consumers, fc3ChannelSums, init, mapShape, vectorSize } from './ir.js';

export class TfjsExportError extends RepmlpError {
  override name = 'TfjsExportError';
}

// Weight encoding and shard layout (--weights, --shard-size) live in tfjs_weights.ts.
export { SHARD_BYTES } from './tfjs_weights.js';
const FLT_LOWEST = -3.4028234663852886e38;

type AttrValue =
  | { type: string }
  | { list: { i?: string[]; s?: string[] } }
  | { s: string }
  | { i: string }
  | { f: number }
  | { b: boolean }
  | { shape: { dim: { size: string }[] } }
  | { tensor: { dtype: string; tensorShape: { dim?: { size: string }[] } } };

export interface TfNode {
  name: string;
  op: string;
  input: string[];
  attr: Record<string, AttrValue>;
}

export interface TfWeight {
  name: string;
  shape: number[];
  dtype: 'float32' | 'int32';
  data: Float32Array | Int32Array;
}

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');
const ints = (v: readonly number[]): AttrValue => ({ list: { i: v.map(String) } });
const strs = (v: readonly string[]): AttrValue => ({ list: { s: v.map(b64) } });
const str = (s: string): AttrValue => ({ s: b64(s) });
const T_FLOAT: AttrValue = { type: 'DT_FLOAT' };
const dims = (shape: readonly number[]): { size: string }[] => shape.map((d) => ({ size: String(d) }));

/** Physical order of a vector value: entry i holds logical entry perm[i] (null: identity). */
type Perm = Int32Array | null;

/** Logical (c, y, x) index of each physical (y, x, c) entry of a C x H x W map. */
function hwcPerm(C: number, H: number, W: number): Int32Array {
  const p = new Int32Array(C * H * W);
  let i = 0;
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) for (let c = 0; c < C; c++) p[i++] = (c * H + y) * W + x;
  return p;
}

class Lowering {
  readonly nodes: TfNode[] = [];
  readonly weights: TfWeight[] = [];
  private readonly names = new Set<string>();
  private readonly consts = new Map<string, string>();
  /** Physical order of each vector value in the TF graph. */
  private readonly perms = new Map<string, Perm>();
  private readonly wanted = new Map<string, Perm>();

  constructor(private readonly g: Graph) {
    // Vectors feeding a partition perceptron's addend are wanted in (py, px, c) order,
    // so that they reshape straight onto the NHWC partitions.
    const uses = consumers(g);
    for (const n of g.nodes) {
      if (n.op !== 'partitionfc' || !n.addend) continue;
      const { C, H, W } = mapShape(g, n.input);
      if ((uses.get(n.addend) ?? []).length === 1) this.wanted.set(n.addend, hwcPerm(C, H / n.h, W / n.w));
    }
  }

  emit(op: string, name: string, input: string[], attr: Record<string, AttrValue> = {}): string {
    if (this.names.has(name)) throw new TfjsExportError(`internal: two TF nodes named ${name}`);
    this.names.add(name);
    this.nodes.push({ name, op, input, attr });
    return name;
  }

  constant(name: string, shape: number[], data: Float32Array | Int32Array): string {
    const dtype = data instanceof Int32Array ? 'int32' : 'float32';
    this.weights.push({ name, shape, dtype, data });
    const tensorShape = shape.length ? { dim: dims(shape) } : {};
    return this.emit('Const', name, [], { dtype: { type: dtype === 'int32' ? 'DT_INT32' : 'DT_FLOAT' }, value: { tensor: { dtype: dtype === 'int32' ? 'DT_INT32' : 'DT_FLOAT', tensorShape } } });
  }

  /** An int32 constant shared by all users of the same value (shapes, perms, axes). */
  intConst(tag: string, values: readonly number[], shape: number[] = [values.length]): string {
    const key = `${tag}:${values.join(',')}:${shape.join(',')}`;
    let name = this.consts.get(key);
    if (!name) {
      name = `const/${tag}_${values.map((v) => (v < 0 ? 'N' : String(v))).join('x')}`;
      this.consts.set(key, name);
      this.constant(name, shape, Int32Array.from(values));
    }
    return name;
  }

  reshape(name: string, x: string, shape: readonly number[]): string {
    return this.emit('Reshape', name, [x, this.intConst('shape', shape)], { T: T_FLOAT, Tshape: { type: 'DT_INT32' } });
  }

  transpose(name: string, x: string, perm: readonly number[]): string {
    return this.emit('Transpose', name, [x, this.intConst('perm', perm)], { T: T_FLOAT, Tperm: { type: 'DT_INT32' } });
  }

  node(n: IrNode): void {
    switch (n.op) {
      case 'conv': return this.conv(n);
      case 'add': {
        const sum = this.emit('AddV2', n.relu ? `${n.output}/add` : n.output, [...n.inputs], { T: T_FLOAT });
        if (n.relu) this.emit('Relu', n.output, [sum], { T: T_FLOAT });
        return;
      }
      case 'relu':
        this.emit('Relu', n.output, [n.input], { T: T_FLOAT });
        return;
      case 'maxpool': {
        const [t, l, b, r] = n.pads;
        // The executor reads paddings with the const's shape: it must be [4, 2].
        const pads = this.intConst('pads', [0, 0, t, b, l, r, 0, 0], [4, 2]);
        const fill = this.floatScalar('const/lowest', FLT_LOWEST);
        const padded = this.emit('PadV2', `${n.output}/pad`, [n.input, pads, fill], { T: T_FLOAT, Tpaddings: { type: 'DT_INT32' } });
        this.emit('MaxPool', n.output, [padded], {
          T: T_FLOAT, ksize: ints([1, n.kernel, n.kernel, 1]), strides: ints([1, n.stride, n.stride, 1]), padding: str('VALID'), data_format: str('NHWC'),
        });
        return;
      }
      case 'avgpool': {
        const [kh, kw] = n.kernel;
        this.emit('AvgPool', n.output, [n.input], { T: T_FLOAT, ksize: ints([1, kh, kw, 1]), strides: ints([1, kh, kw, 1]), padding: str('VALID'), data_format: str('NHWC') });
        return;
      }
      case 'globalavgpool':
        this.emit('Mean', n.output, [n.input, this.intConst('axes', [1, 2])], { T: T_FLOAT, Tidx: { type: 'DT_INT32' }, keep_dims: { b: false } });
        this.perms.set(n.output, null);
        return;
      case 'flatten': {
        const { C, H, W } = mapShape(this.g, n.input);
        this.reshape(n.output, n.input, [-1, C * H * W]);
        this.perms.set(n.output, hwcPerm(C, H, W));
        return;
      }
      case 'linear': return this.linear(n);
      case 'partitionfc': return this.partitionFc(n);
      case 'sharedfc': return this.sharedFc(n);
      case 'sigmoid':
        this.emit('Sigmoid', n.output, [n.input], { T: T_FLOAT });
        this.keepPerm(n.input, n.output);
        return;
      case 'gelu': {
        // 0.5 x (1 + erf(x / sqrt 2)), the exact form of torch.nn.GELU.
        const p = n.output;
        const d = this.emit('Mul', `${p}/scaled`, [n.input, this.floatScalar('const/rsqrt2', Math.SQRT1_2)], { T: T_FLOAT });
        const e = this.emit('Erf', `${p}/erf`, [d], { T: T_FLOAT });
        const a = this.emit('AddV2', `${p}/add`, [e, this.floatScalar('const/one', 1)], { T: T_FLOAT });
        const m = this.emit('Mul', `${p}/mul`, [n.input, a], { T: T_FLOAT });
        this.emit('Mul', p, [m, this.floatScalar('const/half', 0.5)], { T: T_FLOAT });
        return;
      }
      case 'mul': {
        const vec = this.g.values.get(n.other)?.kind === 'vector' && this.g.values.get(n.input)?.kind === 'map';
        if (vec && (this.perms.get(n.other) ?? null) !== null) throw new TfjsExportError(`internal: ${n.other} is not in channel order`);
        // A vector [N, C] multiplies an NHWC map per image and channel: as [N, 1, 1, C].
        const other = vec ? this.reshape(`${n.output}/other`, n.other, [-1, 1, 1, vectorSize(this.g, n.other)]) : n.other;
        this.emit('Mul', n.output, [n.input, other], { T: T_FLOAT });
        return;
      }
      case 'affine': {
        // Per channel: the last axis in NHWC maps and in channel-order vectors.
        if ((this.perms.get(n.input) ?? null) !== null) throw new TfjsExportError(`internal: ${n.input} is not in channel order`);
        const scale = this.constant(`${n.scale}/affine`, [init(this.g, n.scale).data.length], init(this.g, n.scale).data);
        const shift = this.constant(`${n.shift}/affine`, [init(this.g, n.shift).data.length], init(this.g, n.shift).data);
        const m = this.emit('Mul', `${n.output}/scaled`, [n.input, scale], { T: T_FLOAT });
        this.emit('AddV2', n.output, [m, shift], { T: T_FLOAT });
        this.keepPerm(n.input, n.output);
        return;
      }
    }
  }

  /** An elementwise op keeps its input vector's physical order. */
  private keepPerm(input: string, output: string): void {
    if (this.perms.has(input)) this.perms.set(output, this.perms.get(input)!);
  }

  /**
   * RepMLPNet's fc3 (ir.ts SharedFcNode), NHWC with rank-4 transposes only (tfjs-wasm
   * has no fast rank-6 path): patches as [M, hw, Q, S] (m = (n, py, px), c = q*S + s) ->
   * [S, hw, M*Q] -> per set W_s [hw, hw] @ X_s + bias (S <= 32: one 2-D MatMul each;
   * more sets: one BatchMatMulV2 whose operands share the batch S, no broadcast; measured
   * on wasm: 5.8 vs 57 ms for [4, 784, 784], 7.9 vs 0.9 ms for [128, 49, 49]) -> back, the
   * columns (n, py, px, q) read as (n, q', py', px') as the repository does.
   */
  private sharedFc(n: Extract<IrNode, { op: 'sharedfc' }>): void {
    const { C, H, W } = mapShape(this.g, n.input);
    const { h, w, sets: S } = n;
    const hw = h * w;
    const Q = C / S;
    const hp = H / h;
    const wp = W / w;
    const P = hp * wp;
    const p = n.name;
    let x = n.input;
    if (P > 1) x = this.transpose(`${p}/gather`, this.reshape(`${p}/rows`, x, [-1, h, wp, w * C]), [0, 2, 1, 3]);
    x = this.transpose(`${p}/sets`, this.reshape(`${p}/split`, x, [-1, hw, Q, S]), [3, 1, 0, 2]);
    const wt = init(this.g, n.weight).data; // [S*hw, hw]: W_s rows (y, x), columns (y', x')
    const bt = init(this.g, n.bias).data;
    let y: string;
    if (S <= 32) {
      const xs = S === 1 ? [this.reshape(`${p}/columns`, x, [hw, -1])] : this.unstack(`${p}/columns`, x, S, [S, hw, -1], 0);
      const ys = xs.map((xsS, s) => {
        const wS = this.constant(`${n.weight}/set${s}`, [hw, hw], wt.slice(s * hw * hw, (s + 1) * hw * hw));
        const bS = this.constant(`${n.bias}/set${s}`, [hw, 1], bt.slice(s * hw, (s + 1) * hw));
        const mm = this.emit('MatMul', `${p}/matmul_${s}`, [wS, xsS], { T: T_FLOAT, transpose_a: { b: false }, transpose_b: { b: false } });
        return this.emit('AddV2', `${p}/bias_${s}`, [mm, bS], { T: T_FLOAT });
      });
      y = S === 1 ? ys[0]! : this.emit('Pack', `${p}/pack`, ys, { T: T_FLOAT, N: { i: String(S) }, axis: { i: '0' } });
    } else {
      const cols = this.reshape(`${p}/columns`, x, [S, hw, -1]);
      const wS = this.constant(`${n.weight}/sets`, [S, hw, hw], wt);
      const bS = this.constant(`${n.bias}/sets`, [S, hw, 1], bt);
      const mm = this.emit('BatchMatMulV2', `${p}/matmul`, [wS, cols], { T: T_FLOAT, adj_x: { b: false }, adj_y: { b: false } });
      y = this.emit('AddV2', `${p}/bias`, [mm, bS], { T: T_FLOAT });
    }
    // [M, hw, C] rows m = (n, py, px), then the patches back in place.
    let rows = P === 1 || Q === 1
      ? this.transpose(`${p}/unsets`, this.reshape(`${p}/unsplit`, y, [S, hw, -1, Q]), [2, 1, 3, 0])
      : this.transpose(`${p}/unsets2`, this.reshape(`${p}/regroup`, this.transpose(`${p}/unsets`, this.reshape(`${p}/unsplit`, y, [S, hw, -1, P]), [2, 3, 1, 0]), [-1, Q, P * hw, S]), [0, 2, 1, 3]);
    if (P > 1) rows = this.transpose(`${p}/scatter`, this.reshape(`${p}/unrows`, rows, [-1, wp, h, w * C]), [0, 2, 1, 3]);
    this.reshape(n.output, rows, [-1, H, W, C]);
  }

  private floatScalar(name: string, v: number): string {
    if (!this.names.has(name)) this.constant(name, [], Float32Array.of(v));
    return name;
  }

  private conv(n: Extract<IrNode, { op: 'conv' }>): void {
    if (n.groups !== 1) throw new TfjsExportError(`${n.name}: grouped Conv2D (groups ${n.groups}) has no TF.js kernel`);
    const wt = init(this.g, n.weight);
    const [O, I, kh, kw] = wt.shape as [number, number, number, number];
    const hwio = new Float32Array(wt.data.length);
    for (let o = 0; o < O; o++) for (let i = 0; i < I; i++) for (let y = 0; y < kh; y++) for (let x = 0; x < kw; x++) {
      hwio[((y * kw + x) * I + i) * O + o] = wt.data[((o * I + i) * kh + y) * kw + x]!;
    }
    const filter = this.constant(`${n.weight}/hwio`, [kh, kw, I, O], hwio);
    const bias = this.constant(n.bias, [O], init(this.g, n.bias).data);
    const [t, l, b, r] = n.pads;
    const same = n.stride === 1 && t === b && l === r && 2 * t === kh - 1 && 2 * l === kw - 1;
    const padding = t + l + b + r === 0 ? 'VALID' : same ? 'SAME' : 'EXPLICIT';
    this.emit('_FusedConv2D', n.output, [n.input, filter, bias], {
      T: T_FLOAT,
      strides: ints([1, n.stride, n.stride, 1]),
      padding: str(padding),
      ...(padding === 'EXPLICIT' ? { explicit_paddings: ints([0, 0, t, b, l, r, 0, 0]) } : {}),
      data_format: str('NHWC'),
      dilations: ints([1, 1, 1, 1]),
      fused_ops: strs(n.relu ? ['BiasAdd', 'Relu'] : ['BiasAdd']),
      num_args: { i: '1' },
      epsilon: { f: 0 },
    });
  }

  /** MatMul with the weight laid out [in, out] in the physical orders of both sides. */
  private linear(n: Extract<IrNode, { op: 'linear' }>): void {
    const W = init(this.g, n.weight);
    const [out, inn] = W.shape as [number, number];
    if (vectorSize(this.g, n.input) !== inn) throw new TfjsExportError(`internal: ${n.name} input size`);
    const inPerm = this.perms.get(n.input) ?? null;
    const outPerm = this.wanted.get(n.output) ?? null;
    const wt = new Float32Array(inn * out);
    for (let o = 0; o < out; o++) {
      const lo = outPerm ? outPerm[o]! : o;
      const row = lo * inn;
      for (let i = 0; i < inn; i++) wt[i * out + o] = W.data[row + (inPerm ? inPerm[i]! : i)]!;
    }
    const b = init(this.g, n.bias).data;
    const bias = outPerm ? Float32Array.from(outPerm, (lo) => b[lo]!) : b;
    const w = this.constant(`${n.weight}/io`, [inn, out], wt);
    const bn = this.constant(`${n.bias}${outPerm ? '/perm' : ''}`, [out], bias);
    this.emit('_FusedMatMul', n.output, [n.input, w, bn], {
      T: T_FLOAT, transpose_a: { b: false }, transpose_b: { b: false },
      fused_ops: strs(n.relu ? ['BiasAdd', 'Relu'] : ['BiasAdd']), num_args: { i: '1' }, epsilon: { f: 0 },
    });
    this.perms.set(n.output, outPerm);
  }

  /**
   * NHWC [N,H,W,C] -> [N*hp, h, wp, w*C] -> transpose -> [N*hp, wp, h, w*C], i.e. rows
   * m = (n, py, px) of partition vectors in (y, x, c) order -> per group j (Unpack of the
   * channel groups): [M, h*w*Cg] (concatenated with the addend's [M, Cg] slice) @ W_j +
   * bias (+ ReLU) in one _FusedMatMul -> Pack the groups back -> [N*hp, wp, h, w*O] ->
   * transpose -> [N, H, W, O]. Two rank-4 transposes per RepMLP: tfjs-wasm's rank-6
   * transpose is about 10x slower than rank 4 (measured by the model helper, same note in
   * src/model/repmlp.ts). Reshapes fold N*hp so the batch stays dynamic (-1).
   *
   * Why G 2-D MatMuls and not one BatchMatMulV2 with [G, K, M] weights: tfjs-wasm runs
   * 2-D MatMul through XNNPACK with the packed weights cached, but batched MatMul through
   * a plain loop. Measured on the light preset's fc3 shapes ([4, 16, 784] @ [4, 784,
   * 784] and [4, 4, 1568] @ [4, 1568, 1568]): 70-150 ms batched vs 7-15 ms as four 2-D
   * MatMuls; the whole graph model ran 2x slower with BatchMatMulV2.
   *
   * The global perceptron rides along: fc3(x + v) = fc3(x) + S v (ir.ts
   * fc3ChannelSums), so v's group slice is appended to each partition vector and S's
   * rows to W_j; the addend arrives in (py, px, c) order, i.e. as [M, G, Cg].
   */
  private partitionFc(n: PartitionFcNode): void {
    const { C, H, W } = mapShape(this.g, n.input);
    const { h, w, groups: G } = n;
    const hw = h * w;
    const wp = W / w;
    const O = n.outChannels;
    const Cg = C / G;
    const Og = O / G;
    const p = n.name;
    let x = this.reshape(`${p}/rows`, n.input, [-1, h, wp, w * C]);
    x = this.transpose(`${p}/gather`, x, [0, 2, 1, 3]);
    const parts = G === 1
      ? [this.reshape(`${p}/vectors`, x, [-1, hw * C])]
      : this.unstack(`${p}/channels`, x, G, [-1, G, Cg]).map((t, j) => this.reshape(`${p}/vectors_${j}`, t, [-1, hw * Cg]));
    let addend: string[] | null = null;
    if (n.addend) {
      const perm = this.perms.get(n.addend);
      const want = this.wanted.get(n.addend);
      if (!perm || !want || perm !== want) throw new TfjsExportError(`internal: ${n.addend} is not in partition order`);
      addend = G === 1 ? [this.reshape(`${p}/addend`, n.addend, [-1, Cg])] : this.unstack(`${p}/addend`, n.addend, G, [-1, G, Cg]);
    }
    const S = n.addend ? fc3ChannelSums(n, this.g) : null;
    const outs: string[] = [];
    for (let j = 0; j < G; j++) {
      let a = parts[j]!;
      if (addend) a = this.emit('ConcatV2', `${p}/with_global_${j}`, [a, addend[j]!, this.intScalar(1)], { T: T_FLOAT, N: { i: '2' }, Tidx: { type: 'DT_INT32' } });
      const { weight, bias } = this.fc3Group(n, C, O, j, S);
      outs.push(this.emit('_FusedMatMul', `${p}/matmul_${j}`, [a, weight, bias], {
        T: T_FLOAT, transpose_a: { b: false }, transpose_b: { b: false },
        fused_ops: strs(n.relu ? ['BiasAdd', 'Relu'] : ['BiasAdd']), num_args: { i: '1' }, epsilon: { f: 0 },
      }));
    }
    // [M, hw*Og] per group -> [M*hw, Og] -> packed on axis 1: [M*hw, G, Og] = [M, hw, O].
    x = G === 1
      ? outs[0]!
      : this.emit('Pack', `${p}/groups`, outs.map((o, j) => this.reshape(`${p}/pixels_${j}`, o, [-1, Og])), { T: T_FLOAT, N: { i: String(G) }, axis: { i: '1' } });
    x = this.reshape(`${p}/unrows`, x, [-1, wp, h, w * O]);
    x = this.transpose(`${p}/scatter`, x, [0, 2, 1, 3]);
    this.reshape(n.output, x, [-1, H, W, O]);
  }

  /** The G slices along axis 1 of `x` reshaped to `shape` (an Unpack). */
  private unstack(name: string, x: string, G: number, shape: number[], axis = 1): string[] {
    const r = this.reshape(name, x, shape);
    const u = this.emit('Unpack', `${name}/unpack`, [r], { T: T_FLOAT, num: { i: String(G) }, axis: { i: String(axis) } });
    return Array.from({ length: G }, (_, j) => (j === 0 ? u : `${u}:${j}`));
  }

  private intScalar(v: number): string {
    const name = `const/int_${v}`;
    if (!this.names.has(name)) this.constant(name, [], Int32Array.of(v));
    return name;
  }

  /**
   * Group j of fc3 as a [K, hw*Og] matrix, rows (y', x', c') then (with a global
   * perceptron) the Cg rows of S = fc3ChannelSums `[O*hw, Cg]`, columns (y, x, o');
   * bias in column order.
   */
  private fc3Group(n: PartitionFcNode, C: number, O: number, j: number, S: Float32Array | null): { weight: string; bias: string } {
    const { h, w, groups: G } = n;
    const hw = h * w;
    const Cg = C / G;
    const Og = O / G;
    const M = hw * Og;
    const K = hw * Cg + (S ? Cg : 0);
    const src = init(this.g, n.weight).data; // [O*hw, Cg*hw]
    const b = init(this.g, n.bias).data; // [O*hw]
    const wt = new Float32Array(K * M);
    const bt = new Float32Array(M);
    for (let yx = 0; yx < hw; yx++) for (let o = 0; o < Og; o++) {
      const r = (j * Og + o) * hw + yx; // fc3 output row (o, y, x)
      const col = yx * Og + o;
      bt[col] = b[r]!;
      const row = r * (Cg * hw);
      for (let yx2 = 0; yx2 < hw; yx2++) for (let c = 0; c < Cg; c++) wt[(yx2 * Cg + c) * M + col] = src[row + c * hw + yx2]!;
      if (S) for (let c = 0; c < Cg; c++) wt[(hw * Cg + c) * M + col] = S[r * Cg + c]!;
    }
    return {
      weight: this.constant(`${n.weight}/group${j}`, [K, M], wt),
      bias: this.constant(`${n.bias}/group${j}`, [M], bt),
    };
  }
}

export interface TfjsModelJson {
  format: 'graph-model';
  generatedBy: string;
  convertedBy: string;
  signature: unknown;
  modelTopology: { node: TfNode[]; library: object; versions: object };
  weightsManifest: { paths: string[]; weights: ManifestWeight[] }[];
}

export interface TfjsArtifacts {
  modelJson: TfjsModelJson;
  /** Shard file contents, in manifest order. */
  shards: Uint8Array[];
}

export function tfjsArtifacts(g: Graph, opts: { producerVersion?: string } & WeightOptions = {}): TfjsArtifacts {
  const low = new Lowering(g);
  const { C, H, W } = mapShape(g, g.input);
  low.emit('Placeholder', g.input, [], { dtype: T_FLOAT, shape: { shape: { dim: dims([-1, H, W, C]) } } });
  for (const n of g.nodes) low.node(n);
  const { shards, entries } = packWeights(low.weights, opts);
  const n = shards.length;
  const paths = shards.map((_, i) => `group1-shard${i + 1}of${n}.bin`);
  const sig = (name: string, shape: number[]) => ({ name: `${name}:0`, dtype: 'DT_FLOAT', tensorShape: { dim: dims(shape) } });
  return {
    modelJson: {
      format: 'graph-model',
      generatedBy: 'repmlp deploy graph (src/export/graph.ts)',
      convertedBy: `repmlp ${opts.producerVersion ?? ''}`.trim(),
      signature: { inputs: { input: sig(g.input, [-1, H, W, C]) }, outputs: { logits: sig(g.output, [-1, vectorSize(g, g.output)]) } },
      modelTopology: { node: low.nodes, library: {}, versions: {} },
      weightsManifest: [{ paths, weights: entries }],
    },
    shards,
  };
}

export interface TfjsWriteResult {
  dir: string;
  shards: number;
  bytes: number;
  nodes: number;
}

/** What a TF.js export writes besides the graph: weight encoding and shard size, small extra files (e.g. a model card). */
export type TfjsWriteOptions = { producerVersion?: string; extraFiles?: Record<string, string> } & WeightOptions;

/** Writes DIR/model.json and its shards; see writeTfjsInto. Committed here. */
export async function writeTfjs(dir: string, g: Graph, opts: TfjsWriteOptions = {}, onBytes?: (n: number) => void): Promise<TfjsWriteResult> {
  const set = new OutputSet();
  try {
    const { files: _files, ...r } = await writeTfjsInto(set, dir, g, opts, onBytes);
    await set.commit();
    return r;
  } finally {
    await set.discard();
  }
}

/** Names (within DIR) a TF.js model.json lists: the files a re-export owns and may replace. */
export function ownedFiles(modelJsonPath: string): string[] | null {
  let j: unknown;
  try {
    j = JSON.parse(readFileSync(modelJsonPath, 'utf8'));
  } catch {
    return null;
  }
  if (typeof j !== 'object' || j === null || Array.isArray(j)) return null;
  const o = j as { modelTopology?: unknown; weightsManifest?: unknown; format?: unknown };
  if (typeof o.modelTopology !== 'object' || !Array.isArray(o.weightsManifest)) return null;
  const names: string[] = [];
  for (const group of o.weightsManifest as { paths?: unknown }[]) {
    if (!group || !Array.isArray(group.paths)) return null;
    for (const p of group.paths) {
      // Only plain names in the folder itself: a manifest naming '../x' owns nothing there.
      if (typeof p === 'string' && p === basename(p) && p !== '' && p !== '.' && p !== '..' && p !== 'model.json') names.push(p);
    }
  }
  return names;
}

/**
 * Writes DIR/model.json and its shards into `set` (not yet committed; the returned
 * `files` open the temporaries, for a check). DIR may be new (it appears whole at
 * commit) or an existing folder: then only model.json and its shards are replaced, the
 * shards the old model.json listed and the new one does not are removed, and every
 * other file stays. Refused: DIR is a file, or its model.json is not a TF.js model.
 */
export async function writeTfjsInto(set: OutputSet, dir: string, g: Graph, opts: TfjsWriteOptions = {}, onBytes?: (n: number) => void): Promise<TfjsWriteResult & { files: Map<string, string> }> {
  const a = tfjsArtifacts(g, opts);
  let bytes = 0;
  const paths = a.modelJson.weightsManifest[0]!.paths;
  if (existsSync(dir)) {
    if (!statSync(dir).isDirectory()) throw new TfjsExportError(`${dir}: exists and is a file, not a folder; --tfjs takes a folder (new, or one holding a TF.js model)`);
    const mj = join(dir, 'model.json');
    if (existsSync(mj)) {
      const owned = ownedFiles(mj);
      if (owned === null) throw new TfjsExportError(`${mj}: exists and is not a TF.js model.json; not replaced (choose another folder)`);
      for (const f of owned) if (!paths.includes(f)) set.removeOnCommit(join(dir, f));
    }
  } else await set.freshFolder(dir);
  const files = new Map<string, string>();
  for (const [i, shard] of a.shards.entries()) {
    files.set(paths[i]!, await set.bytes(join(dir, paths[i]!), shard));
    bytes += shard.byteLength;
    onBytes?.(bytes);
  }
  // Extra files (a model card) never replace one the user keeps in the folder.
  for (const [name, text] of Object.entries(opts.extraFiles ?? {})) {
    const file = join(dir, name);
    if (!existsSync(file)) files.set(name, await set.bytes(file, new TextEncoder().encode(text)));
  }
  // model.json last: committed in order, so a reader never sees it before its shards.
  files.set('model.json', await set.bytes(join(dir, 'model.json'), new TextEncoder().encode(JSON.stringify(a.modelJson))));
  return { dir, shards: a.shards.length, bytes, nodes: a.modelJson.modelTopology.node.length, files };
}
