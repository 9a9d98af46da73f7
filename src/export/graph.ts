/**
 * Deploy network (any family's description) -> IR (./ir.ts). Units are lowered by their
 * kind (./units/), the structural ops here; a relu right after a unit or an add whose
 * only consumer it is is fused into it. The state dict is checked against the
 * description's deploy layout first, so a wrong checkpoint fails here with the key named
 * rather than deep inside a writer.
 */
import { dtypeInfo } from '../dtype.js';
import type { StateDict } from '../pth/pyobj.js';
import { descEntries } from '../family/layout.js';
import { archOf } from '../family/registry.js';
import type { NetworkDesc, Op } from '../family/types.js';
import type { RepMLPResNetConfig } from '../family/repmlp_resnet/config.js';
import { GraphBuilder, GraphError } from './builder.js';
import { foldAffine } from './fold.js';
import type { Graph, Pads } from './ir.js';
import { EXPORT_UNITS } from './units/index.js';

export { GraphError };

/** The deploy description of a parsed configuration (any family). */
function deployDesc(cfg: object): NetworkDesc {
  return archOf(cfg).family.describe(cfg, 'deploy');
}

/** Every deploy key with its shape, in the reference's registration order. */
export function deployKeyShapes(cfg: RepMLPResNetConfig | object): Map<string, number[]> {
  return new Map(descEntries(deployDesc(cfg)).map((e) => [e.name, e.shape]));
}

/**
 * Checks that `sd` is exactly the deploy state dict of `desc` (like PyTorch's strict
 * load_state_dict, but failing on the first problem with the key and shapes named).
 */
export function validateDeployStateDict(cfgOrDesc: object, sd: StateDict): void {
  const desc = 'units' in cfgOrDesc ? (cfgOrDesc as NetworkDesc) : deployDesc(cfgOrDesc);
  const entries = descEntries(desc);
  const want = new Map(entries.map((e) => [e.name, e]));
  const trainingHint = (k: string) => k.endsWith('num_batches_tracked') || k.includes('.bn.') || k.includes('repconv');
  for (const e of entries) {
    const t = sd.get(e.name);
    if (!t) {
      if (e.name.endsWith('num_batches_tracked')) continue;
      const hint = [...sd.keys()].some((k) => !want.has(k) && (k.includes('.bn.') || k.includes('repconv'))) ? ' (is this a training-time checkpoint? convert it first)' : '';
      throw new GraphError(`deploy state dict: missing key '${e.name}' [${e.shape}]${hint}`);
    }
    if (t.shape.length !== e.shape.length || t.shape.some((d, i) => d !== e.shape[i])) {
      throw new GraphError(`deploy state dict: key '${e.name}' has shape [${t.shape}], expected [${e.shape}] for this architecture`);
    }
    if (e.dtype === 'float32' && !dtypeInfo(t.dtype).isFloat) {
      throw new GraphError(`deploy state dict: key '${e.name}' has dtype ${t.dtype}, expected a float type`);
    }
  }
  for (const key of sd.keys()) {
    if (!want.has(key)) {
      const hint = trainingHint(key) ? ' (a training-time key: convert the checkpoint first)' : '';
      throw new GraphError(`deploy state dict: unexpected key '${key}'${hint}`);
    }
  }
}

function pads(p: number): Pads {
  return [p, p, p, p];
}

/** Lowers one structural op (add and relu may carry a fused relu). */
function structural(b: GraphBuilder, op: Exclude<Op, { op: 'unit' }>, output: string, relu: boolean): string {
  switch (op.op) {
    case 'add':
      return b.add({ op: 'add', name: op.output, inputs: op.inputs, output, relu }, b.map(op.inputs[0]));
    case 'relu':
      return b.add({ op: 'relu', name: op.output, input: op.input, output }, b.values.get(op.input)!);
    case 'maxpool': {
      const s = b.map(op.input);
      const size = (x: number) => Math.floor((x + 2 * op.pad - op.kernel) / op.stride) + 1;
      return b.add({ op: 'maxpool', name: op.output, input: op.input, output, kernel: op.kernel, stride: op.stride, pads: pads(op.pad) }, { kind: 'map', C: s.C, H: size(s.H), W: size(s.W) });
    }
    case 'gap':
      return b.add({ op: 'globalavgpool', name: op.output, input: op.input, output }, { kind: 'vector', F: b.map(op.input).C });
    case 'gelu':
    case 'sigmoid': {
      const y = b.add({ op: op.op, name: op.output, input: op.input, output: relu ? `${op.output}.pre_relu` : output }, b.values.get(op.input)!);
      return relu ? b.add({ op: 'relu', name: output, input: y, output }, b.values.get(op.input)!) : y;
    }
    case 'mul':
      return b.add({ op: 'mul', name: op.output, input: op.inputs[0], other: op.inputs[1], output }, b.values.get(op.inputs[0])!);
    default:
      throw new GraphError(`export: the '${(op as Op).op}' op has no IR lowering yet`);
  }
}

/**
 * The deploy network `desc` with the weights of `sd` (validated first). Value and
 * initializer names are PyTorch module paths / state-dict keys; the input is `input`
 * and the output `logits`.
 */
export function buildGraphFor(desc: NetworkDesc, sd: StateDict): Graph {
  if (desc.mode !== 'deploy') throw new Error('internal: buildGraph needs the deploy description');
  validateDeployStateDict(desc, sd);
  const b = new GraphBuilder(sd);
  const input = 'input';
  const output = 'logits';
  b.values.set(input, { kind: 'map', ...desc.input });
  const uses = new Map<string, number>();
  for (const op of desc.forward) for (const v of 'inputs' in op ? op.inputs : [op.input]) uses.set(v, (uses.get(v) ?? 0) + 1);
  const units = new Map(desc.units.map((u) => [u.path, u]));
  // Description value names -> IR value names (the input and output are renamed; a fused relu's output is its producer's).
  const rename = new Map<string, string>([[desc.inputName, input]]);
  const v = (name: string) => rename.get(name) ?? name;
  const ops = desc.forward;
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i]!;
    const next = ops[i + 1];
    const fuse = next?.op === 'relu' && next.input === op.output && uses.get(op.output) === 1 && (op.op === 'unit' || op.op === 'add');
    const outName = fuse ? next.output : op.output;
    const target = outName === desc.outputName ? output : outName;
    let produced: string;
    if (op.op === 'unit') {
      const unit = units.get(op.unit)!;
      const impl = EXPORT_UNITS.get(unit.kind);
      if (!impl) throw new GraphError(`export: unit kind '${unit.kind}' (${unit.path}) has no IR lowering`);
      produced = impl.lower(b, unit as never, v(op.input), target, fuse);
    } else {
      const mapped = ('inputs' in op ? { ...op, inputs: [v(op.inputs[0]), v(op.inputs[1])] as const } : { ...op, input: v(op.input) }) as Exclude<Op, { op: 'unit' }>;
      produced = structural(b, mapped, target, fuse);
    }
    rename.set(op.output, produced);
    if (fuse) {
      rename.set(next.output, produced);
      i++;
    }
  }
  if (!b.values.has(output)) throw new Error('internal: the description produced no logits');
  // Kept BatchNorms folded into the next 1x1 conv / linear wherever exact (fold.ts).
  return foldAffine({ input, output, values: b.values, nodes: b.nodes, initializers: b.initializers });
}

/** The deploy network of a parsed configuration (any family) with the weights of `sd`. */
export function buildGraph(cfg: RepMLPResNetConfig | object, sd: StateDict): Graph {
  return buildGraphFor(deployDesc(cfg), sd);
}
