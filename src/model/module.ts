/**
 * A small nn.Module: an ordered list of parameter slots (PyTorch-layout float32 values,
 * named as in PyTorch) and child modules, so that `stateDict()` keys and order equal
 * PyTorch's. The TF.js tensors a forward pass needs (NHWC filters, folded BN affine,
 * permuted FC matrices) are derived lazily from the slots and cached until the next load.
 */
import * as tf from '@tensorflow/tfjs-core';
import { Tensor } from '../tensor.js';
import type { StateDict } from '../pth/pyobj.js';
import type { Entry } from './layout.js';
import { assertLoadable, compareStateDict, type StateDictReport, StateDictError } from './statedict.js';

export { BN_EPS } from '../family/entries.js';

/** One state-dict entry's value, in PyTorch's layout. */
export class Slot {
  /** float32 values in C order (null until initialized or loaded). */
  data: Float32Array | null = null;
  /** int64 value (num_batches_tracked). */
  count = 0n;
  constructor(readonly entry: Entry) {}

  get shape(): number[] {
    return this.entry.shape;
  }
}

type Item = { name: string; slot: Slot; child?: undefined } | { name: string; child: Module; slot?: undefined };

export abstract class Module {
  /** PyTorch's class name, used in load errors ("... for RepMLPResNet"). */
  abstract readonly typeName: string;
  private readonly items: Item[] = [];
  private cache: object | null = null;

  protected addSlots(entries: readonly Entry[]): void {
    for (const e of entries) this.items.push({ name: e.name, slot: new Slot(e) });
  }

  protected addChild<M extends Module>(name: string, m: M): M {
    this.items.push({ name, child: m });
    return m;
  }

  /** Every slot with its full dotted name, in PyTorch's state-dict order. */
  *namedSlots(prefix = ''): Generator<[string, Slot]> {
    for (const it of this.items) {
      if (it.slot) yield [prefix + it.name, it.slot];
      else yield* it.child.namedSlots(`${prefix}${it.name}.`);
    }
  }

  /** The layout (names, shapes, dtypes) this module expects. */
  entries(): Entry[] {
    return [...this.namedSlots()].map(([name, s]) => ({ ...s.entry, name }));
  }

  /** A state dict in PyTorch's layout and order (shares the slot arrays, no copies). */
  stateDict(): StateDict {
    const sd: StateDict = new Map();
    for (const [name, s] of this.namedSlots()) {
      if (s.entry.dtype === 'int64') sd.set(name, Tensor.scalarInt64(s.count));
      else if (s.data) sd.set(name, Tensor.fromArray(s.data, s.shape));
    }
    return sd;
  }

  /** Own slot values (this module's flat name, e.g. `conv.weight`). */
  protected value(name: string): Float32Array {
    const it = this.items.find((i) => i.name === name);
    if (!it?.slot) throw new Error(`${this.typeName} has no slot ${name}`);
    if (!it.slot.data) throw new StateDictError(`${this.typeName}: parameter '${name}' has no value (not initialized nor loaded)`);
    return it.slot.data;
  }

  protected hasSlot(name: string): boolean {
    return this.items.some((i) => i.name === name && i.slot);
  }

  /** Builds this module's TF.js tensors from its slots (called once per load). */
  protected abstract prepare(): object;

  /** The prepared tensors, kept out of any enclosing tf.tidy. */
  protected prepared<T extends object>(): T {
    if (!this.cache) {
      const c = tf.tidy(() => this.prepare() as tf.TensorContainer);
      // tf.keep: a first forward may run inside the caller's tf.tidy, which must not free these.
      forEachTensor(c, (t) => tf.keep(t));
      this.cache = c as object;
    }
    return this.cache as T;
  }

  /** Drops the cached TF.js tensors of this module and all children (after a load). */
  invalidate(): void {
    if (this.cache) forEachTensor(this.cache, (t) => t.dispose());
    this.cache = null;
    for (const it of this.items) it.child?.invalidate();
  }

  /** Frees all TF.js memory held by the model (the slot arrays stay). */
  dispose(): void {
    this.invalidate();
  }
}

function forEachTensor(c: unknown, f: (t: tf.Tensor) => void): void {
  if (c instanceof tf.Tensor) f(c);
  else if (Array.isArray(c)) for (const x of c) forEachTensor(x, f);
  else if (c && typeof c === 'object') for (const x of Object.values(c)) forEachTensor(x, f);
}

/** A module with no own computation, only named children (PyTorch's containers). */
export class Container extends Module {
  constructor(readonly typeName: string) {
    super();
  }
  add<M extends Module>(name: string, m: M): M {
    return this.addChild(name, m);
  }
  protected prepare(): object {
    return {};
  }
}

export interface LoadOptions {
  strict?: boolean;
  /** Prefixed to error messages, e.g. the checkpoint's path. */
  where?: string;
}

/**
 * PyTorch's `load_state_dict`: strict by default (missing, unexpected and wrong-shape keys
 * all reported in one StateDictError); shape mismatches are errors even when not strict.
 * float16/bfloat16/float64 values are promoted to float32.
 */
export function loadStateDict(model: Module, sd: StateDict, opts: LoadOptions = {}): StateDictReport {
  const strict = opts.strict ?? true;
  const report = compareStateDict(model.entries(), sd);
  assertLoadable(report, model.typeName, strict, opts.where);
  for (const [name, slot] of model.namedSlots()) {
    const t = sd.get(name);
    if (!t) continue;
    if (slot.entry.dtype === 'int64') {
      const a = t.typedArray();
      slot.count = a instanceof BigInt64Array ? a[0] ?? 0n : BigInt(Math.trunc(Number(a[0] ?? 0)));
      continue;
    }
    if (t.dtype === 'bool' || t.dtype === 'int64') {
      throw new StateDictError(`${opts.where ? opts.where + ': ' : ''}${name}: expected a floating-point tensor, found ${t.dtype}`);
    }
    slot.data = t.toFloat32();
  }
  model.invalidate();
  return report;
}
