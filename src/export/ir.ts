/**
 * The one description of the deploy network that every exporter consumes.
 *
 * Values are named tensors with a logical, layout-free meaning: a feature map
 * `[N, C, H, W]` (PyTorch's axis order, whatever layout a writer stores it in) or a
 * vector `[N, F]` whose F entries are in PyTorch's order. Nodes are the operations of the
 * deploy RepMLP-ResNet at the level where the two targets differ least; each writer
 * lowers them to its own ops and layout (ONNX: NCHW; TF.js: NHWC). Weights stay in
 * PyTorch's layout under their state-dict names; writers re-lay them out as they need.
 */

export type Pads = readonly [top: number, left: number, bottom: number, right: number];

export type ValueShape =
  | { kind: 'map'; C: number; H: number; W: number }
  | { kind: 'vector'; F: number };

interface NodeBase {
  /** Unique, readable (state-dict module path + role), used for target node names. */
  name: string;
  output: string;
}

/** Conv2d with bias (a fused ConvBN); `relu` applies ReLU to the result. */
export interface ConvNode extends NodeBase {
  op: 'conv';
  input: string;
  /** Initializer, OIHW `[out, in/groups, kh, kw]`. */
  weight: string;
  bias: string;
  stride: number;
  pads: Pads;
  groups: number;
  relu: boolean;
}

export interface AddNode extends NodeBase {
  op: 'add';
  inputs: readonly [string, string];
  relu: boolean;
}

export interface ReluNode extends NodeBase {
  op: 'relu';
  input: string;
}

/** MaxPool2d with padding by -inf (PyTorch semantics). */
export interface MaxPoolNode extends NodeBase {
  op: 'maxpool';
  input: string;
  kernel: number;
  stride: number;
  pads: Pads;
}

/** AvgPool2d with kernel = stride = (kh, kw) and no padding: one mean per partition. */
export interface AvgPoolNode extends NodeBase {
  op: 'avgpool';
  input: string;
  kernel: readonly [number, number];
}

/** Mean over H and W: map -> vector of C. */
export interface GlobalAvgPoolNode extends NodeBase {
  op: 'globalavgpool';
  input: string;
}

/** map [C, H, W] -> vector of C*H*W in (c, y, x) order. */
export interface FlattenNode extends NodeBase {
  op: 'flatten';
  input: string;
}

/** nn.Linear: weight `[out, in]`, bias `[out]`. */
export interface LinearNode extends NodeBase {
  op: 'linear';
  input: string;
  weight: string;
  bias: string;
  relu: boolean;
}

/**
 * RepMLP's partition perceptron (deploy form), optionally preceded by the global
 * perceptron's broadcast add: with `addend` v (a vector of C*hp*wp in (c, py, px)
 * order), every pixel of partition (py, px) of channel c first gets v[c, py, px] added.
 * Then each (h x w) partition, read as a vector in (c, y, x) order, goes through fc3 (a
 * grouped FC stored as PyTorch's 1x1 conv weight `[O*h*w, C*h*w/groups, 1, 1]`, bias
 * `[O*h*w]`) and the (o, y, x) result is put back in place: map [C,H,W] -> [O,H,W].
 */
export interface PartitionFcNode extends NodeBase {
  op: 'partitionfc';
  input: string;
  addend: string | null;
  weight: string;
  bias: string;
  h: number;
  w: number;
  groups: number;
  outChannels: number;
  /** ReLU on the result (ReLU commutes with the put-back, so writers apply it early). */
  relu: boolean;
}

// ---- RepMLPNet (CVPR 2022) ----------------------------------------------------------

/**
 * RepMLPNet's fc3 (deploy, after locality injection): the map cut into h x w patches;
 * channel c of every patch, a vector in (y, x) order, goes through its share-set's matrix
 * W[c mod S] (fc3's weight `[S*h*w, h*w, 1, 1]`: rows (s, y, x), columns (y', x')) plus
 * bias `[S*h*w]`. The result is put back as the repository's partition_affine does: its
 * rows, computed in (n, py, px, q) order (c = q*S + s), are read as (n, q', py', px')
 * (identical when there is one partition per map or C == S; repmlpnet.md, and
 * PARTITION_ORDER_NOTE in tools/repmlpnet_ref.py). map [C, H, W] -> map [C, H, W].
 */
export interface SharedFcNode extends NodeBase {
  op: 'sharedfc';
  input: string;
  weight: string;
  bias: string;
  h: number;
  w: number;
  sets: number;
}

/** Logistic sigmoid, elementwise (map or vector). */
export interface SigmoidNode extends NodeBase {
  op: 'sigmoid';
  input: string;
}

/** Exact GELU, 0.5 x (1 + erf(x / sqrt 2)) (torch.nn.GELU's default), elementwise. */
export interface GeluNode extends NodeBase {
  op: 'gelu';
  input: string;
}

/**
 * Product: map [C, H, W] times vector [C] (per image and channel, broadcast over H, W:
 * RepMLPNet's gate), or two values of the same shape.
 */
export interface MulNode extends NodeBase {
  op: 'mul';
  input: string;
  /** The vector [C] (or same-shape value) `input` is multiplied by. */
  other: string;
}

/**
 * Per-channel `x * scale + shift` on a map or a vector: an eval-mode BatchNorm that no
 * neighbouring conv or linear could absorb (foldAffine, export/fold.ts). Initializers
 * `scale`, `shift` `[C]`.
 */
export interface AffineNode extends NodeBase {
  op: 'affine';
  input: string;
  scale: string;
  shift: string;
}

export type IrNode =
  | ConvNode | AddNode | ReluNode | MaxPoolNode | AvgPoolNode | GlobalAvgPoolNode
  | FlattenNode | LinearNode | PartitionFcNode
  | SharedFcNode | SigmoidNode | GeluNode | MulNode | AffineNode;

export interface Initializer {
  shape: readonly number[];
  /** float32 values in C order (PyTorch layout). */
  data: Float32Array;
}

export interface Graph {
  /** Graph input: map [inChannels, H, W] with a dynamic batch. */
  input: string;
  /** Graph output: vector of numClasses. */
  output: string;
  /** Logical shapes of every value (input included), batch dimension left out. */
  values: Map<string, ValueShape>;
  /** In execution order (each node's inputs are produced earlier). */
  nodes: IrNode[];
  /** Named weights in the order nodes first use them. */
  initializers: Map<string, Initializer>;
}

/** Inputs of a node (value names), in operand order. */
export function nodeInputs(n: IrNode): string[] {
  switch (n.op) {
    case 'add': return [...n.inputs];
    case 'mul': return [n.input, n.other];
    case 'partitionfc': return n.addend ? [n.input, n.addend] : [n.input];
    default: return [n.input];
  }
}

/** Map from value name to the nodes that read it. */
export function consumers(g: Graph): Map<string, IrNode[]> {
  const m = new Map<string, IrNode[]>();
  for (const n of g.nodes) {
    for (const v of nodeInputs(n)) {
      const list = m.get(v) ?? [];
      list.push(n);
      m.set(v, list);
    }
  }
  return m;
}

export function mapShape(g: Graph, value: string): { C: number; H: number; W: number } {
  const s = g.values.get(value);
  if (!s || s.kind !== 'map') throw new Error(`internal: ${value} is not a feature map`);
  return s;
}

export function vectorSize(g: Graph, value: string): number {
  const s = g.values.get(value);
  if (!s || s.kind !== 'vector') throw new Error(`internal: ${value} is not a vector`);
  return s.F;
}

export function init(g: Graph, name: string): Initializer {
  const t = g.initializers.get(name);
  if (!t) throw new Error(`internal: no initializer ${name}`);
  return t;
}

/**
 * fc3 applied to a partition that is constant per channel: because fc3 is linear,
 * fc3(x + v) = fc3(x) + S v, where S[(o,y,x), c'] sums fc3's weights over the h*w input
 * positions of channel c' (within o's group). Writers use this to add the global
 * perceptron's v after fc3 at partition resolution (one small grouped matmul, a
 * same-shape Add) instead of broadcasting v over every pixel (a rank-6 broadcast Add,
 * which onnxruntime and tfjs run without a fast path). Sums in float64.
 * Returns `[O*h*w, C/groups]` (row-major).
 */
export function fc3ChannelSums(n: PartitionFcNode, g: Graph): Float32Array {
  const W = init(g, n.weight);
  const hw = n.h * n.w;
  const rows = W.shape[0]!;
  const cols = W.shape[1]!; // Cg * hw
  const Cg = cols / hw;
  const out = new Float32Array(rows * Cg);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < Cg; c++) {
      let s = 0;
      const base = r * cols + c * hw;
      for (let k = 0; k < hw; k++) s += W.data[base + k]!;
      out[r * Cg + c] = s;
    }
  }
  return out;
}
