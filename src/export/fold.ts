/**
 * BatchNorm folding across units, on the IR (./ir.ts): an `affine` node (a BatchNorm the
 * deploy model keeps, e.g. RepMLPNet's prebn2 and head_norm) is absorbed by the layer it
 * feeds where that is exact:
 * - affine -> 1x1 conv without padding (its only consumer): W'[o, i] = W[o, i] * scale[i],
 *   b' = b + sum_i W[o, i] * shift[i] (a padded or larger conv would see the shift at
 *   the zero-padded border, so it is left alone);
 * - affine -> global average pool -> linear (each the only consumer): the mean of a
 *   per-channel affine map is the affine map of the mean, so the same fold into the
 *   linear's columns.
 * An affine with other consumers (RepMLPNet's prebn1 feeds both the gate and fc3, whose
 * weights are shared by the channels of a set) stays. Sums in float64, each value
 * rounded once. Pure: returns a new Graph; the input is not modified.
 */
import { type AffineNode, type Graph, type Initializer, type IrNode, consumers, init, nodeInputs } from './ir.js';

/** W [out, in*rest] with column block i scaled by scale[i]; bias + W @ shift. */
function foldColumns(W: Initializer, bias: Initializer, scale: Float32Array, shift: Float32Array): { weight: Float32Array; bias: Float32Array } {
  const out = W.shape[0]!;
  const inn = scale.length;
  const per = W.data.length / out / inn; // 1 for a Linear or a 1x1 conv
  const w = new Float32Array(W.data.length);
  const b = new Float32Array(out);
  for (let o = 0; o < out; o++) {
    let acc = bias.data[o]!;
    for (let i = 0; i < inn; i++) {
      const t = scale[i]!;
      const base = (o * inn + i) * per;
      for (let k = 0; k < per; k++) {
        const v = W.data[base + k]!;
        w[base + k] = v * t;
        acc += v * shift[i]!;
      }
    }
    b[o] = acc;
  }
  return { weight: w, bias: b };
}

/** The graph with every foldable affine node absorbed (see the file comment). */
export function foldAffine(g: Graph): Graph {
  const uses = consumers(g);
  const only = (v: string): IrNode | undefined => {
    const c = uses.get(v);
    return c && c.length === 1 ? c[0] : undefined;
  };
  const inits = new Map(g.initializers);
  const replaced = new Map<IrNode, IrNode>();
  const dropped = new Set<IrNode>();
  for (const n of g.nodes) {
    if (n.op !== 'affine') continue;
    const a: AffineNode = n;
    const scale = init(g, a.scale).data;
    const shift = init(g, a.shift).data;
    const next = only(a.output);
    if (next?.op === 'conv' && next.input === a.output && next.groups === 1 && next.pads.every((p) => p === 0)) {
      const W = init(g, next.weight);
      if (W.shape[2] !== 1 || W.shape[3] !== 1 || W.shape[1] !== scale.length) continue;
      const f = foldColumns(W, init(g, next.bias), scale, shift);
      const wName = `${next.weight}+${a.name}`;
      const bName = `${next.bias}+${a.name}`;
      inits.set(wName, { shape: W.shape, data: f.weight });
      inits.set(bName, { shape: [f.bias.length], data: f.bias });
      replaced.set(next, { ...next, input: a.input, weight: wName, bias: bName });
      dropped.add(a);
      continue;
    }
    const lin = next?.op === 'globalavgpool' ? only(next.output) : undefined;
    if (next?.op === 'globalavgpool' && lin?.op === 'linear' && lin.input === next.output) {
      const W = init(g, lin.weight);
      if (W.shape[1] !== scale.length) continue;
      const f = foldColumns(W, init(g, lin.bias), scale, shift);
      const wName = `${lin.weight}+${a.name}`;
      const bName = `${lin.bias}+${a.name}`;
      inits.set(wName, { shape: W.shape, data: f.weight });
      inits.set(bName, { shape: [f.bias.length], data: f.bias });
      replaced.set(next, { ...next, input: a.input });
      replaced.set(lin, { ...lin, weight: wName, bias: bName });
      dropped.add(a);
    }
  }
  if (dropped.size === 0) return g;
  const nodes = g.nodes.filter((n) => !dropped.has(n)).map((n) => replaced.get(n) ?? n);
  const values = new Map(g.values);
  for (const a of dropped) values.delete(a.output);
  // Initializers in the order the nodes first use them, unused ones gone.
  const used = new Map<string, Initializer>();
  for (const n of nodes) {
    for (const k of ['weight', 'bias', 'scale', 'shift'] as const) {
      const name = (n as unknown as Record<string, unknown>)[k];
      if (typeof name === 'string' && inits.has(name) && !used.has(name)) used.set(name, inits.get(name)!);
    }
  }
  for (const n of nodes) for (const v of nodeInputs(n)) if (!values.has(v)) throw new Error(`internal: foldAffine left ${v} without a producer`);
  return { ...g, nodes, values, initializers: used };
}
