/**
 * Deploy RepMLP-ResNet -> IR (./ir.ts). The network walk mirrors tools/repmlp_ref.py
 * (planNetwork gives the blocks); the state dict is checked against the config first, so
 * a wrong checkpoint fails here with the key named rather than deep inside a writer.
 */
import { RepmlpError } from '../errors.js';
import { dtypeInfo } from '../dtype.js';
import type { StateDict } from '../pth/pyobj.js';
import type { Tensor } from '../tensor.js';
import { type BlockPlan, type RepMLPResNetConfig, planNetwork, repmlpParams } from '../model/config.js';
import type { Graph, Initializer, IrNode, Pads, ValueShape } from './ir.js';

export class GraphError extends RepmlpError {
  override name = 'GraphError';
}

/** Every deploy key with its shape, in the reference's registration order. */
export function deployKeyShapes(cfg: RepMLPResNetConfig): Map<string, number[]> {
  const keys = new Map<string, number[]>();
  const conv = (p: string, o: number, i: number, k: number): void => {
    keys.set(`${p}.conv.weight`, [o, i, k, k]);
    keys.set(`${p}.conv.bias`, [o]);
  };
  conv('stage0.0', cfg.stem_width, cfg.in_channels, 7);
  for (const b of planNetwork(cfg)) {
    const p = b.prefix;
    if (b.hasShortcut) conv(`${p}.shortcut`, b.outChannels, b.inChannels, 1);
    if (b.kind === 'base') {
      conv(`${p}.conv1`, b.midChannels, b.inChannels, 1);
      conv(`${p}.conv2`, b.midChannels, b.midChannels, 3);
      conv(`${p}.conv3`, b.outChannels, b.midChannels, 1);
    } else if (b.kind === 'light') {
      conv(`${p}.light_conv1`, b.midChannels, b.inChannels, 1);
      repmlpKeys(keys, `${p}.light_repmlp`, cfg, b);
      conv(`${p}.light_conv3`, b.outChannels, b.midChannels, 1);
    } else {
      const rc = b.repmlpChannels!;
      conv(`${p}.btnk_conv1`, b.midChannels, b.inChannels, 1);
      conv(`${p}.btnk_conv2`, rc, b.midChannels, 3);
      repmlpKeys(keys, `${p}.btnk_repmlp`, cfg, b);
      conv(`${p}.btnk_conv4`, b.midChannels, rc, 3);
      conv(`${p}.btnk_conv5`, b.outChannels, b.midChannels, 1);
    }
  }
  keys.set('linear.weight', [cfg.num_classes, cfg.widths[3]!]);
  keys.set('linear.bias', [cfg.num_classes]);
  return keys;
}

function repmlpKeys(keys: Map<string, number[]>, p: string, cfg: RepMLPResNetConfig, b: BlockPlan): void {
  const r = repmlpParams(cfg, b);
  const hp = r.H / r.h;
  const wp = r.W / r.w;
  if (hp !== 1 || wp !== 1) {
    const n = r.C * hp * wp;
    const inner = Math.floor(n / r.fc1fc2Reduction);
    keys.set(`${p}.fc1_fc2.fc1.weight`, [inner, n]);
    keys.set(`${p}.fc1_fc2.fc1.bias`, [inner]);
    keys.set(`${p}.fc1_fc2.fc2.weight`, [n, inner]);
    keys.set(`${p}.fc1_fc2.fc2.bias`, [n]);
  }
  keys.set(`${p}.fc3.weight`, [r.O * r.h * r.w, (r.C * r.h * r.w) / r.fc3Groups, 1, 1]);
  keys.set(`${p}.fc3.bias`, [r.O * r.h * r.w]);
}

/**
 * Checks that `sd` is exactly the deploy state dict of `cfg` (like PyTorch's strict
 * load_state_dict, but failing on the first problem with the key and shapes named).
 */
export function validateDeployStateDict(cfg: RepMLPResNetConfig, sd: StateDict): void {
  const want = deployKeyShapes(cfg);
  for (const [key, shape] of want) {
    const t = sd.get(key);
    if (!t) {
      const hint = [...sd.keys()].some((k) => k.includes('.bn.') || k.includes('repconv')) ? ' (is this a training-time checkpoint? convert it first)' : '';
      throw new GraphError(`deploy state dict: missing key '${key}' [${shape}]${hint}`);
    }
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new GraphError(`deploy state dict: key '${key}' has shape [${t.shape}], expected [${shape}] for this architecture`);
    }
    if (!dtypeInfo(t.dtype).isFloat) {
      throw new GraphError(`deploy state dict: key '${key}' has dtype ${t.dtype}, expected a float type`);
    }
  }
  for (const key of sd.keys()) {
    if (!want.has(key)) {
      const hint = key.endsWith('num_batches_tracked') || key.includes('.bn.') || key.includes('repconv') ? ' (a training-time key: convert the checkpoint first)' : '';
      throw new GraphError(`deploy state dict: unexpected key '${key}'${hint}`);
    }
  }
}

/** Small mutable builder; the Graph it returns is read-only by convention. */
class Builder {
  readonly values = new Map<string, ValueShape>();
  readonly nodes: IrNode[] = [];
  readonly initializers = new Map<string, Initializer>();
  constructor(private readonly sd: StateDict) {}

  weight(key: string): string {
    if (!this.initializers.has(key)) {
      const t: Tensor = this.sd.get(key)!;
      this.initializers.set(key, { shape: [...t.shape], data: t.toFloat32() });
    }
    return key;
  }

  add<N extends IrNode>(node: N, shape: ValueShape): string {
    if (this.values.has(node.output)) throw new Error(`internal: value ${node.output} defined twice`);
    this.values.set(node.output, shape);
    this.nodes.push(node);
    return node.output;
  }

  map(v: string): { kind: 'map'; C: number; H: number; W: number } {
    const s = this.values.get(v);
    if (!s || s.kind !== 'map') throw new Error(`internal: ${v} is not a map`);
    return s;
  }

  /** A fused ConvBN(ReLU) module at `prefix` (keys `prefix.conv.weight/bias`). */
  conv(prefix: string, input: string, opts: { stride?: number; pad?: number; relu: boolean }): string {
    const weight = this.weight(`${prefix}.conv.weight`);
    const bias = this.weight(`${prefix}.conv.bias`);
    const [O, , k] = this.initializers.get(weight)!.shape as [number, number, number, number];
    const { H, W } = this.map(input);
    const stride = opts.stride ?? 1;
    const pad = opts.pad ?? 0;
    const outH = Math.floor((H + 2 * pad - k) / stride) + 1;
    const outW = Math.floor((W + 2 * pad - k) / stride) + 1;
    return this.add(
      { op: 'conv', name: prefix, input, output: prefix, weight, bias, stride, pads: [pad, pad, pad, pad], groups: 1, relu: opts.relu },
      { kind: 'map', C: O, H: outH, W: outW },
    );
  }
}

function pads(p: number): Pads {
  return [p, p, p, p];
}

/** RepMLP (deploy): global perceptron when there is more than one partition, then fc3. */
/** The block's ReLU after the RepMLP is folded into it (`relu`), as for convs. */
function repmlp(b: Builder, cfg: RepMLPResNetConfig, plan: BlockPlan, prefix: string, x: string): string {
  const r = repmlpParams(cfg, plan);
  const hp = r.H / r.h;
  const wp = r.W / r.w;
  let addend: string | null = null;
  if (hp !== 1 || wp !== 1) {
    const pooled = b.add({ op: 'avgpool', name: `${prefix}.avg`, input: x, output: `${prefix}.avg`, kernel: [r.h, r.w] }, { kind: 'map', C: r.C, H: hp, W: wp });
    const flat = b.add({ op: 'flatten', name: `${prefix}.flatten`, input: pooled, output: `${prefix}.flatten` }, { kind: 'vector', F: r.C * hp * wp });
    const fc1 = `${prefix}.fc1_fc2.fc1`;
    const inner = b.add(
      { op: 'linear', name: fc1, input: flat, output: fc1, weight: b.weight(`${fc1}.weight`), bias: b.weight(`${fc1}.bias`), relu: true },
      { kind: 'vector', F: b.initializers.get(`${fc1}.weight`)!.shape[0]! },
    );
    const fc2 = `${prefix}.fc1_fc2.fc2`;
    addend = b.add(
      { op: 'linear', name: fc2, input: inner, output: fc2, weight: b.weight(`${fc2}.weight`), bias: b.weight(`${fc2}.bias`), relu: false },
      { kind: 'vector', F: r.C * hp * wp },
    );
  }
  const fc3 = `${prefix}.fc3`;
  return b.add(
    {
      op: 'partitionfc', name: fc3, input: x, output: fc3, addend, weight: b.weight(`${fc3}.weight`), bias: b.weight(`${fc3}.bias`),
      h: r.h, w: r.w, groups: r.fc3Groups, outChannels: r.O, relu: true,
    },
    { kind: 'map', C: r.O, H: r.H, W: r.W },
  );
}

function block(b: Builder, cfg: RepMLPResNetConfig, plan: BlockPlan, x: string): string {
  const p = plan.prefix;
  let y: string;
  if (plan.kind === 'base') {
    y = b.conv(`${p}.conv1`, x, { relu: true });
    y = b.conv(`${p}.conv2`, y, { stride: plan.stride, pad: 1, relu: true });
    y = b.conv(`${p}.conv3`, y, { relu: false });
  } else if (plan.kind === 'light') {
    y = b.conv(`${p}.light_conv1`, x, { relu: true });
    y = repmlp(b, cfg, plan, `${p}.light_repmlp`, y);
    y = b.conv(`${p}.light_conv3`, y, { relu: false });
  } else {
    y = b.conv(`${p}.btnk_conv1`, x, { relu: true });
    y = b.conv(`${p}.btnk_conv2`, y, { pad: 1, relu: true });
    y = repmlp(b, cfg, plan, `${p}.btnk_repmlp`, y);
    y = b.conv(`${p}.btnk_conv4`, y, { pad: 1, relu: true });
    y = b.conv(`${p}.btnk_conv5`, y, { relu: false });
  }
  const short = plan.hasShortcut ? b.conv(`${p}.shortcut`, x, { stride: plan.stride, relu: false }) : x;
  return b.add({ op: 'add', name: `${p}.add`, inputs: [y, short], output: p, relu: true }, b.map(y));
}

/**
 * The deploy network of `cfg` with the weights of `sd` (validated first). Value and
 * initializer names are PyTorch module paths / state-dict keys; the input is `input`
 * and the output `logits`.
 */
export function buildGraph(cfg: RepMLPResNetConfig, sd: StateDict): Graph {
  validateDeployStateDict(cfg, sd);
  const b = new Builder(sd);
  const input = 'input';
  b.values.set(input, { kind: 'map', C: cfg.in_channels, H: cfg.img_H, W: cfg.img_W });
  let y = b.conv('stage0.0', input, { stride: 2, pad: 3, relu: true });
  const s = b.map(y);
  y = b.add(
    { op: 'maxpool', name: 'stage0.1', input: y, output: 'stage0.1', kernel: 3, stride: 2, pads: pads(1) },
    { kind: 'map', C: s.C, H: Math.floor((s.H - 1) / 2) + 1, W: Math.floor((s.W - 1) / 2) + 1 },
  );
  for (const plan of planNetwork(cfg)) y = block(b, cfg, plan, y);
  y = b.add({ op: 'globalavgpool', name: 'gap', input: y, output: 'gap' }, { kind: 'vector', F: b.map(y).C });
  const output = 'logits';
  b.add(
    { op: 'linear', name: 'linear', input: y, output, weight: b.weight('linear.weight'), bias: b.weight('linear.bias'), relu: false },
    { kind: 'vector', F: cfg.num_classes },
  );
  return { input, output, values: b.values, nodes: b.nodes, initializers: b.initializers };
}
