/**
 * IR -> ONNX ModelProto (NCHW, the layout ONNX and PyTorch share).
 *
 * Shaped for onnxruntime's CPU kernels: every Conv is followed directly by its Relu (ORT
 * fuses the pair), fc3 is one grouped Conv with an h x w kernel and stride on the map
 * (each group one GEMM over all hp*wp partitions of an image, not a GEMV per partition),
 * and the put-back a DepthToSpace (square partitions) or one rank-6 Transpose. The
 * global perceptron's addend joins after fc3, at partition resolution (fc3ChannelSums).
 */
import { basename } from 'node:path';
import { RepmlpError } from '../errors.js';
import { dtypeInfo } from '../dtype.js';
import { OutputSet } from '../io/atomic.js';
import { MAX_MESSAGE_BYTES, Message } from './protobuf.js';
import { type Graph, type IrNode, fc3ChannelSums, init, mapShape, vectorSize } from './ir.js';
import { ChunkSink } from './sink.js';

export class OnnxExportError extends RepmlpError {
  override name = 'OnnxExportError';
}

export const DEFAULT_OPSET = 17;
/** Opsets whose semantics for the ops used here are the same (Reshape/Flatten/pools). */
export const MIN_OPSET = 11;
export const MAX_OPSET = 23;

/** IR version that first carries each opset (onnx/helper.py's VERSION_TABLE). */
function irVersionFor(opset: number): number {
  if (opset <= 14) return 7;
  if (opset <= 18) return 8;
  if (opset <= 20) return 9;
  if (opset <= 22) return 10;
  return 11;
}

export interface OnnxOptions {
  opset?: number;
  producerVersion?: string;
  /**
   * Initializers go to an external data file only when the model would pass this many
   * bytes (protobuf's 2 GiB limit by default).
   */
  externalDataThreshold?: number;
}

// onnx.proto field numbers, named so the writer below reads like the schema.
const F = {
  model: { irVersion: 1, producerName: 2, producerVersion: 3, graph: 7, opsetImport: 8 },
  opset: { domain: 1, version: 2 },
  graph: { node: 1, name: 2, initializer: 5, docString: 10, input: 11, output: 12 },
  node: { input: 1, output: 2, name: 3, opType: 4, attribute: 5 },
  attr: { name: 1, f: 2, i: 3, s: 4, ints: 8, type: 20 },
  tensor: { dims: 1, dataType: 2, name: 8, rawData: 9, externalData: 13, dataLocation: 14 },
  entry: { key: 1, value: 2 },
  valueInfo: { name: 1, type: 2 },
  type: { tensorType: 1 },
  tensorType: { elemType: 1, shape: 2 },
  shape: { dim: 1 },
  dim: { value: 1, param: 2 },
} as const;

const AttrType = { FLOAT: 1, INT: 2, STRING: 3, INTS: 7 } as const;
const FLOAT = dtypeInfo('float32').onnx;
const INT64 = dtypeInfo('int64').onnx;

type AttrValue = number | readonly number[] | { float: number } | { str: string };

interface OnnxNode {
  op: string;
  name: string;
  inputs: string[];
  outputs: string[];
  attrs?: Record<string, AttrValue>;
}

interface OnnxInit {
  name: string;
  dims: readonly number[];
  dataType: number;
  bytes: Uint8Array;
}

function bytesOf(a: Float32Array | BigInt64Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** Lowers the IR to a flat ONNX node list plus initializers (weights + shape constants). */
class Lowering {
  readonly nodes: OnnxNode[] = [];
  readonly inits: OnnxInit[] = [];
  private readonly shapeConsts = new Map<string, string>();
  private readonly weightsDone = new Set<string>();

  constructor(private readonly g: Graph) {}

  /** A weight initializer (once); `dims` re-reads the same C-order data in another shape. */
  weight(name: string, dims?: readonly number[]): string {
    if (!this.weightsDone.has(name)) {
      const t = init(this.g, name);
      if (dims && dims.reduce((a, b) => a * b, 1) !== t.data.length) throw new OnnxExportError(`internal: ${name} cannot be read as [${dims}]`);
      this.inits.push({ name, dims: dims ?? t.shape, dataType: FLOAT, bytes: bytesOf(t.data) });
      this.weightsDone.add(name);
    }
    return name;
  }

  /** An int64 shape initializer, shared between Reshapes that use the same shape. */
  shape(dims: readonly number[]): string {
    const key = dims.join(',');
    let name = this.shapeConsts.get(key);
    if (!name) {
      name = `shape_${dims.map((d) => (d < 0 ? 'N' : String(d))).join('x')}`;
      this.shapeConsts.set(key, name);
      this.inits.push({ name, dims: [dims.length], dataType: INT64, bytes: bytesOf(BigInt64Array.from(dims, BigInt)) });
    }
    return name;
  }

  private readonly names = new Set<string>();

  emit(op: string, name: string, inputs: string[], output: string, attrs?: Record<string, AttrValue>): string {
    if (this.names.has(name)) throw new OnnxExportError(`internal: two ONNX nodes named ${name}`);
    this.names.add(name);
    this.nodes.push({ op, name, inputs, outputs: [output], ...(attrs ? { attrs } : {}) });
    return output;
  }

  reshape(name: string, x: string, dims: readonly number[]): string {
    return this.emit('Reshape', name, [x, this.shape(dims)], name);
  }

  /** `op` writing `out`, followed by Relu when asked (the pair ORT fuses). */
  withRelu(relu: boolean, out: string, make: (pre: string) => void): void {
    make(relu ? `${out}/pre_relu` : out);
    if (relu) this.emit('Relu', `${out}/relu`, [`${out}/pre_relu`], out);
  }

  node(n: IrNode): void {
    switch (n.op) {
      case 'conv': {
        const [, , kh, kw] = init(this.g, n.weight).shape as [number, number, number, number];
        const [t, l, b, r] = n.pads;
        this.withRelu(n.relu, n.output, (out) => this.emit('Conv', n.name, [n.input, this.weight(n.weight), this.weight(n.bias)], out, {
          dilations: [1, 1], group: n.groups, kernel_shape: [kh, kw], pads: [t, l, b, r], strides: [n.stride, n.stride],
        }));
        return;
      }
      case 'add':
        this.withRelu(n.relu, n.output, (out) => this.emit('Add', n.name, [...n.inputs], out));
        return;
      case 'relu':
        this.emit('Relu', n.name, [n.input], n.output);
        return;
      case 'maxpool': {
        const [t, l, b, r] = n.pads;
        this.emit('MaxPool', n.name, [n.input], n.output, { kernel_shape: [n.kernel, n.kernel], pads: [t, l, b, r], strides: [n.stride, n.stride] });
        return;
      }
      case 'avgpool':
        this.emit('AveragePool', n.name, [n.input], n.output, { kernel_shape: [...n.kernel], strides: [...n.kernel] });
        return;
      case 'globalavgpool': {
        const pooled = this.emit('GlobalAveragePool', n.name, [n.input], `${n.output}/4d`);
        this.emit('Flatten', `${n.name}/flatten`, [pooled], n.output, { axis: 1 });
        return;
      }
      case 'flatten':
        this.emit('Flatten', n.name, [n.input], n.output, { axis: 1 });
        return;
      case 'linear':
        this.withRelu(n.relu, n.output, (out) => this.emit('Gemm', n.name, [n.input, this.weight(n.weight), this.weight(n.bias)], out, { transB: 1 }));
        return;
      case 'partitionfc':
        this.partitionFc(n);
        return;
      case 'sharedfc':
        this.sharedFc(n);
        return;
      case 'sigmoid':
        this.emit('Sigmoid', n.name, [n.input], n.output);
        return;
      case 'gelu':
        this.gelu(n);
        return;
      case 'mul': {
        // A vector [N, C] multiplies a map per image and channel: as [N, C, 1, 1].
        const other = this.g.values.get(n.other)?.kind === 'vector' && this.g.values.get(n.input)?.kind === 'map'
          ? this.reshape(`${n.name}/other`, n.other, [-1, vectorSize(this.g, n.other), 1, 1])
          : n.other;
        this.emit('Mul', n.name, [n.input, other], n.output);
        return;
      }
      case 'affine': {
        const s = this.g.values.get(n.input);
        const C = init(this.g, n.scale).data.length;
        const dims = s?.kind === 'map' ? [C, 1, 1] : [C];
        const scaled = this.emit('Mul', `${n.name}/scale`, [n.input, this.weight(n.scale, dims)], `${n.output}/scaled`);
        this.emit('Add', n.name, [scaled, this.weight(n.shift, dims)], n.output);
        return;
      }
    }
  }

  /** A float32 scalar initializer, shared by name. */
  private scalar(name: string, v: number): string {
    if (!this.weightsDone.has(name)) {
      this.inits.push({ name, dims: [], dataType: FLOAT, bytes: bytesOf(Float32Array.of(v)) });
      this.weightsDone.add(name);
    }
    return name;
  }

  /**
   * Exact GELU as torch.onnx.export writes nn.GELU: Div(sqrt 2) -> Erf -> Add(1) -> Mul(x)
   * -> Mul(0.5), the pattern onnxruntime fuses into one Gelu kernel.
   */
  private gelu(n: Extract<IrNode, { op: 'gelu' }>): void {
    const p = n.name;
    const d = this.emit('Div', `${p}/div`, [n.input, this.scalar('const/sqrt2', Math.SQRT2)], `${p}/div`);
    const e = this.emit('Erf', `${p}/erf`, [d], `${p}/erf`);
    const a = this.emit('Add', `${p}/add`, [e, this.scalar('const/one', 1)], `${p}/add`);
    const m = this.emit('Mul', `${p}/mul`, [n.input, a], `${p}/mul`);
    this.emit('Mul', p, [m, this.scalar('const/half', 0.5)], n.output);
  }

  /**
   * RepMLPNet's fc3 (ir.ts SharedFcNode) as one batched MatMul, the weight on the left:
   * the map [N, C, H, W] is read as [N, Q, S, hp, h, wp, w] (c = q*S + s), transposed to
   * [S, h, w, N, hp, wp, Q] = [S, h*w, R] (R = every patch and channel of set s, in the
   * repository's row order (n, py, px, q)), then W [S, hw, hw] @ X + bias [S, hw, 1]:
   * one GEMM per set over all R columns, reading each weight once (torch.onnx.export's
   * grouped 1x1 Conv on R "images" of 1x1 is a GEMV per column). The put-back reads R as
   * (n, q', py', px'), as the repository's partition_affine does.
   */
  private sharedFc(n: Extract<IrNode, { op: 'sharedfc' }>): void {
    const { C, H, W } = mapShape(this.g, n.input);
    const { h, w, sets: S } = n;
    const hw = h * w;
    const Q = C / S;
    const hp = H / h;
    const wp = W / w;
    const p = n.name;
    let x = this.reshape(`${p}/split`, n.input, [-1, Q, S, hp, h, wp, w]);
    x = this.emit('Transpose', `${p}/gather`, [x], `${p}/gather`, { perm: [2, 4, 6, 0, 3, 5, 1] });
    x = this.reshape(`${p}/columns`, x, [S, hw, -1]);
    x = this.emit('MatMul', `${p}/matmul`, [this.weight(n.weight, [S, hw, hw]), x], `${p}/matmul`);
    x = this.emit('Add', `${p}/bias`, [x, this.weight(n.bias, [S, hw, 1])], `${p}/bias`);
    x = this.reshape(`${p}/unsplit`, x, [S, h, w, -1, Q, hp, wp]);
    x = this.emit('Transpose', `${p}/scatter`, [x], `${p}/scatter`, { perm: [3, 4, 0, 5, 1, 6, 2] });
    this.reshape(n.output, x, [-1, C, H, W]);
  }

  /**
   * fc3 reads each h x w partition as a vector in (c, y, x) order and writes (o, y, x):
   * that is a grouped Conv with an h x w kernel and stride (h, w) on the map itself, its
   * weight fc3's `[O*h*w, C*h*w/g, 1, 1]` read as `[O*h*w, C/g, h, w]`, its output
   * `[N, O*h*w, hp, wp]` (a "patch" conv, as in ViT embeddings). No gather transpose: the
   * conv's own im2col does it. The put-back to [N, O, H, W] is DepthToSpace (CRD) for
   * square partitions. Measured against the earlier transpose + 1x1-conv form on the
   * bottleneck preset, 2 threads: ~3% faster, and 0.89-0.95x of onnxruntime on
   * torch.onnx.export's file (paired, rotating).
   */
  private partitionFc(n: Extract<IrNode, { op: 'partitionfc' }>): void {
    const { C, H, W } = mapShape(this.g, n.input);
    const { h, w } = n;
    const hp = H / h;
    const wp = W / w;
    const O = n.outChannels;
    const p = n.name;
    const fc3 = this.weight(n.weight, [O * h * w, C / n.groups, h, w]);
    let x = this.emit('Conv', `${p}/conv`, [n.input, fc3, this.weight(n.bias)], `${p}/fc`, {
      dilations: [1, 1], group: n.groups, kernel_shape: [h, w], pads: [0, 0, 0, 0], strides: [h, w],
    });
    const conv1x1 = { dilations: [1, 1], group: n.groups, kernel_shape: [1, 1], pads: [0, 0, 0, 0], strides: [1, 1] };
    if (n.addend) {
      // fc3(x + v) = fc3(x) + S v (ir.ts fc3ChannelSums): v is one value per channel
      // and partition, i.e. a [N, C, hp, wp] map, and S a grouped 1x1 conv on it.
      if (vectorSize(this.g, n.addend) !== C * hp * wp) throw new OnnxExportError(`internal: ${n.addend} does not match ${p}`);
      const v = this.reshape(`${p}/addend`, n.addend, [-1, C, hp, wp]);
      const sums = `${n.weight}/channel_sums`;
      this.inits.push({ name: sums, dims: [O * h * w, C / n.groups, 1, 1], dataType: FLOAT, bytes: bytesOf(fc3ChannelSums(n, this.g)) });
      const sv = this.emit('Conv', `${p}/global`, [v, sums], `${p}/global`, conv1x1);
      x = this.emit('Add', `${p}/global_add`, [x, sv], `${p}/global_add`);
    }
    // ReLU before the put-back: Conv (+ Add) + Relu is a pattern ORT fuses.
    if (n.relu) x = this.emit('Relu', `${p}/relu`, [x], `${p}/relu`);
    // Channel (o, y, x) of partition (py, px) goes to pixel (py*h + y, px*w + x) of channel o.
    if (h === w) {
      this.emit('DepthToSpace', `${p}/scatter`, [x], n.output, { blocksize: h, mode: { str: 'CRD' } });
      return;
    }
    x = this.reshape(`${p}/unsplit`, x, [-1, O, h, w, hp, wp]);
    x = this.emit('Transpose', `${p}/scatter`, [x], `${p}/scatter`, { perm: [0, 1, 4, 2, 5, 3] });
    this.reshape(n.output, x, [-1, O, H, W]);
  }
}

function attribute(name: string, v: AttrValue): Message {
  const m = new Message().string(F.attr.name, name);
  if (typeof v === 'number') return m.varint(F.attr.i, v).varint(F.attr.type, AttrType.INT);
  if ('float' in v) return m.float(F.attr.f, v.float).varint(F.attr.type, AttrType.FLOAT);
  if ('str' in v) return m.string(F.attr.s, v.str).varint(F.attr.type, AttrType.STRING);
  return m.varints(F.attr.ints, v).varint(F.attr.type, AttrType.INTS);
}

function nodeProto(n: OnnxNode): Message {
  const m = new Message();
  for (const i of n.inputs) m.string(F.node.input, i);
  for (const o of n.outputs) m.string(F.node.output, o);
  m.string(F.node.name, n.name).string(F.node.opType, n.op);
  // onnx.helper.make_node sorts attributes by name; do the same for identical bytes.
  for (const k of Object.keys(n.attrs ?? {}).sort()) m.message(F.node.attribute, attribute(k, n.attrs![k]!));
  return m;
}

interface External {
  location: string;
  offset: number;
}

function tensorProto(t: OnnxInit, external?: External): Message {
  const m = new Message().varints(F.tensor.dims, t.dims).varint(F.tensor.dataType, t.dataType).string(F.tensor.name, t.name);
  if (!external) return m.bytes(F.tensor.rawData, t.bytes);
  const entry = (k: string, v: string): Message => new Message().string(F.entry.key, k).string(F.entry.value, v);
  m.message(F.tensor.externalData, entry('location', external.location));
  m.message(F.tensor.externalData, entry('offset', String(external.offset)));
  m.message(F.tensor.externalData, entry('length', String(t.bytes.byteLength)));
  return m.varint(F.tensor.dataLocation, 1);
}

function valueInfo(name: string, dims: readonly (number | string)[]): Message {
  const shape = new Message();
  for (const d of dims) shape.message(F.shape.dim, typeof d === 'string' ? new Message().string(F.dim.param, d) : new Message().varint(F.dim.value, d));
  const tensorType = new Message().varint(F.tensorType.elemType, FLOAT).message(F.tensorType.shape, shape);
  return new Message().string(F.valueInfo.name, name).message(F.valueInfo.type, new Message().message(F.type.tensorType, tensorType));
}

export interface OnnxModel {
  model: Message;
  /** Initializer payloads for the external data file, in file order (empty when inline). */
  externalChunks: Uint8Array[];
  opset: number;
  irVersion: number;
  nodeCount: number;
}

export function checkOpset(opset: number): void {
  if (!Number.isInteger(opset) || opset < MIN_OPSET || opset > MAX_OPSET) {
    throw new OnnxExportError(`--opset ${opset}: supported opsets are ${MIN_OPSET}..${MAX_OPSET} (default ${DEFAULT_OPSET})`);
  }
}

/**
 * The ModelProto for `g`. `externalLocation` (a file name next to the model) is used
 * only when the inline model would exceed the threshold.
 */
export function onnxModel(g: Graph, opts: OnnxOptions & { externalLocation?: string } = {}): OnnxModel {
  const opset = opts.opset ?? DEFAULT_OPSET;
  checkOpset(opset);
  const low = new Lowering(g);
  for (const n of g.nodes) low.node(n);
  const inits = low.inits;
  const weightBytes = inits.reduce((s, t) => s + t.bytes.byteLength, 0);
  // Headroom for the graph structure itself (a few hundred KB for these networks).
  const threshold = opts.externalDataThreshold ?? MAX_MESSAGE_BYTES - (16 << 20);
  const useExternal = weightBytes > threshold;
  if (useExternal && !opts.externalLocation) throw new OnnxExportError(`model of ${weightBytes} weight bytes needs external data: give a file to write`);

  const graph = new Message();
  for (const n of low.nodes) graph.message(F.graph.node, nodeProto(n));
  graph.string(F.graph.name, 'repmlp');
  const externalChunks: Uint8Array[] = [];
  let offset = 0;
  for (const t of inits) {
    // Small tensors (shapes, biases) stay inline; only the bulk moves out.
    if (useExternal && t.bytes.byteLength >= 1024) {
      const pad = (4096 - (offset % 4096)) % 4096; // page-aligned, so ORT can mmap
      if (pad) externalChunks.push(new Uint8Array(pad));
      offset += pad;
      graph.message(F.graph.initializer, tensorProto(t, { location: opts.externalLocation!, offset }));
      externalChunks.push(t.bytes);
      offset += t.bytes.byteLength;
    } else graph.message(F.graph.initializer, tensorProto(t));
  }
  const { C, H, W } = mapShape(g, g.input);
  graph.message(F.graph.input, valueInfo(g.input, ['N', C, H, W]));
  graph.message(F.graph.output, valueInfo(g.output, ['N', vectorSize(g, g.output)]));

  const irVersion = Math.max(8, irVersionFor(opset));
  const model = new Message()
    .varint(F.model.irVersion, irVersion)
    .string(F.model.producerName, 'repmlp')
    .string(F.model.producerVersion, opts.producerVersion ?? '0')
    .message(F.model.graph, graph)
    .message(F.model.opsetImport, new Message().string(F.opset.domain, '').varint(F.opset.version, opset));
  if (model.byteLength > MAX_MESSAGE_BYTES) throw new OnnxExportError(`ONNX model is ${model.byteLength} bytes, over protobuf's 2 GiB limit`);
  return { model, externalChunks, opset, irVersion, nodeCount: low.nodes.length };
}

/** The model as one buffer (for an in-memory InferenceSession); inline weights only. */
export function onnxBytes(g: Graph, opts: OnnxOptions = {}): Uint8Array {
  return onnxModel(g, opts).model.toBytes();
}

export interface OnnxWriteResult {
  file: string;
  bytes: number;
  externalData: string | null;
  opset: number;
  irVersion: number;
  nodes: number;
}

/** Writes `file` (and `file.data` when the weights pass 2 GiB), committed together. */
export async function writeOnnx(file: string, g: Graph, opts: OnnxOptions = {}, onBytes?: (n: number) => void): Promise<OnnxWriteResult> {
  const set = new OutputSet();
  try {
    const { files: _files, ...r } = await writeOnnxInto(set, file, g, opts, onBytes);
    await set.commit();
    return r;
  } finally {
    await set.discard();
  }
}

/** As writeOnnx, into `set` (not committed); `files` maps final base names to paths that open the temporaries. */
export async function writeOnnxInto(set: OutputSet, file: string, g: Graph, opts: OnnxOptions = {}, onBytes?: (n: number) => void): Promise<OnnxWriteResult & { files: Map<string, string> }> {
  const location = `${basename(file)}.data`;
  const m = onnxModel(g, { ...opts, externalLocation: location });
  let externalData: string | null = null;
  const files = new Map<string, string>();
  if (m.externalChunks.length) {
    externalData = `${file}.data`;
    files.set(location, await set.bytes(externalData, m.externalChunks));
  }
  files.set(basename(file), await set.file(file, async (fh) => {
    const sink = new ChunkSink(fh, onBytes);
    for (const c of m.model.chunks) await sink.write(c);
    await sink.flush();
  }));
  return { file, bytes: m.model.byteLength, externalData, opset: m.opset, irVersion: m.irVersion, nodes: m.nodeCount, files };
}
