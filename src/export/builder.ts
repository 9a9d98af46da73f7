/**
 * Building the IR (./ir.ts) from a described deploy network: values with their logical
 * shapes, nodes in execution order, initializers taken from the deploy state dict by
 * key (or computed, e.g. a BatchNorm folded into its conv at export time).
 */
import { RepmlpError } from '../errors.js';
import type { StateDict } from '../pth/pyobj.js';
import type { Tensor } from '../tensor.js';
import type { Initializer, IrNode, ValueShape } from './ir.js';

export class GraphError extends RepmlpError {
  override name = 'GraphError';
}

export class GraphBuilder {
  readonly values = new Map<string, ValueShape>();
  readonly nodes: IrNode[] = [];
  readonly initializers = new Map<string, Initializer>();
  constructor(readonly sd: StateDict) {}

  /** A state-dict tensor as an initializer under its key. */
  weight(key: string): string {
    if (!this.initializers.has(key)) {
      const t: Tensor | undefined = this.sd.get(key);
      if (!t) throw new GraphError(`deploy state dict: missing key '${key}'`);
      this.initializers.set(key, { shape: [...t.shape], data: t.toFloat32() });
    }
    return key;
  }

  /** A state-dict tensor's float32 values (to compute a folded initializer from). */
  values32(key: string): Float32Array {
    const t = this.sd.get(key);
    if (!t) throw new GraphError(`deploy state dict: missing key '${key}'`);
    return t.toFloat32();
  }

  /** A computed initializer. */
  constant(name: string, shape: readonly number[], data: Float32Array): string {
    if (this.initializers.has(name)) throw new Error(`internal: initializer ${name} defined twice`);
    this.initializers.set(name, { shape: [...shape], data });
    return name;
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

  vector(v: string): { kind: 'vector'; F: number } {
    const s = this.values.get(v);
    if (!s || s.kind !== 'vector') throw new Error(`internal: ${v} is not a vector`);
    return s;
  }

  /** A biased conv node on a map (weight/bias are initializer names). */
  conv(name: string, input: string, weight: string, bias: string, o: { stride: number; pad: number; groups: number; relu: boolean; output?: string }): string {
    const [O, , kh, kw] = this.initializers.get(weight)!.shape as [number, number, number, number];
    const { H, W } = this.map(input);
    const outH = Math.floor((H + 2 * o.pad - kh) / o.stride) + 1;
    const outW = Math.floor((W + 2 * o.pad - kw) / o.stride) + 1;
    return this.add(
      { op: 'conv', name, input, output: o.output ?? name, weight, bias, stride: o.stride, pads: [o.pad, o.pad, o.pad, o.pad], groups: o.groups, relu: o.relu },
      { kind: 'map', C: O, H: outH, W: outW },
    );
  }
}
