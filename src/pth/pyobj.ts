/**
 * The Python values a checkpoint can hold, as the unpickler returns them and the
 * pickler takes them. Lossless: Python int is bigint, Python float is number, a tuple
 * is a PyTuple (not a list), dicts are Maps so keys like `__proto__` stay plain keys.
 */
import type { Storage, Tensor } from '../tensor.js';

export type PyKey = string | bigint | number | boolean | null | PyTuple;

export type PyValue =
  | null
  | boolean
  | bigint
  | number
  | string
  | Uint8Array
  | PyValue[]
  | PyTuple
  | PyDict
  | Tensor
  | PyOther
  | PyObject;

/** A Python tuple (torch.Size comes back as one too). */
export class PyTuple {
  constructor(readonly items: PyValue[]) {}
}

/**
 * dict or collections.OrderedDict. `attrs` holds the instance state BUILD set on an
 * OrderedDict: torch state dicts carry `_metadata` there (a PyDict keyed by module path).
 */
export class PyDict {
  constructor(
    readonly map: Map<PyKey, PyValue> = new Map(),
    readonly ordered = false,
    readonly attrs: Map<string, PyValue> = new Map(),
  ) {}

  get metadata(): PyDict | undefined {
    const m = this.attrs.get('_metadata');
    return m instanceof PyDict ? m : undefined;
  }
}

/**
 * Allowed values with no JS counterpart of their own: torch.dtype objects, torch.device,
 * set, bytearray, complex. `kind` names the Python type; `value` what it carries.
 */
export class PyOther {
  constructor(
    readonly kind: 'torch.dtype' | 'torch.device' | 'set' | 'frozenset' | 'bytearray' | 'complex',
    readonly value: PyValue,
  ) {}
}

/**
 * An inert placeholder for a global outside the allow-list (src/pth/inert.ts): an
 * `argparse.Namespace`, a pickled `nn.Module`, a `yacs` CfgNode, a class named and never
 * called... Nothing it names was imported or called: it records, as plain data, what the
 * file asked for (the global, the arguments of REDUCE / NEWOBJ, the BUILD state, the
 * items of APPEND(S) / SETITEM(S)). When its type is a known value type, `value` holds
 * what it reads as (a numpy scalar's number, an ndarray's Tensor, a CfgNode's dict).
 */
export class PyObject {
  /** BUILD state (the object's `__dict__`, or `__setstate__`'s argument). */
  state: PyValue | undefined = undefined;
  /** Items added by APPEND(S) (list subclasses). */
  listItems: PyValue[] | undefined = undefined;
  /** Items set by SETITEM(S) (dict subclasses such as CfgNode). */
  dictItems: PyDict | undefined = undefined;
  /** What it reads as, for a known value type; undefined otherwise. */
  value: PyValue | undefined = undefined;
  /** The Python type shown for it ('numpy.float64'); defaults to `global`. */
  type: string;
  /**
   * Built by NEWOBJ (`cls.__new__(cls, *args)`, what protocol 2 writes for plain classes
   * such as a pickled nn.Module), not REDUCE (`f(*args)`): a writer must keep the
   * difference, or torch.load would run the class's __init__.
   */
  newobj = false;
  /**
   * Set for a bare storage (`torch.save({'s': t.storage()})`): the storage itself, which
   * a writer puts back as its persistent id; `value` is its 1-D tensor.
   */
  storage: Storage | undefined = undefined;
  constructor(
    /** The qualified name the file named, e.g. 'argparse.Namespace'. */
    readonly global: string,
    /** False: the global itself (a class or function reference), never called. */
    readonly called: boolean,
    readonly args: PyValue[] = [],
  ) {
    this.type = global;
  }
}

/** A PyObject's value when it has one, else the value itself. */
export function unwrapValue(v: PyValue): PyValue {
  return v instanceof PyObject && v.value !== undefined ? v.value : v;
}

/** A state dict as the model and converter use it: names to tensors, in file order. */
export type StateDict = Map<string, Tensor>;
