/**
 * The Python values a checkpoint can hold, as the unpickler returns them and the
 * pickler takes them. Lossless: Python int is bigint, Python float is number, a tuple
 * is a PyTuple (not a list), dicts are Maps so keys like `__proto__` stay plain keys.
 */
import type { Tensor } from '../tensor.js';

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
  | PyOther;

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

/** A state dict as the model and converter use it: names to tensors, in file order. */
export type StateDict = Map<string, Tensor>;
