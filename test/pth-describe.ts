/**
 * The TypeScript twin of tools/make_ckpt_fixtures.py's `describe`: a lossless JSON view
 * of a loaded checkpoint (tensors by dtype/shape/stride/offset/storage identity and
 * SHA-256 of their bytes), so tests compare what we read with what torch recorded.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { Storage, Tensor } from '../src/tensor.js';
import { PyDict, PyOther, PyTuple, type PyValue } from '../src/pth/pyobj.js';
import { FIXTURES } from './helpers/torch.js';

export const CKPT = path.join(FIXTURES, 'ckpt');

export type Desc = Record<string, unknown>;

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

export function describe(root: PyValue): Desc {
  const ids = new Map<Storage, string>();
  const d = (v: PyValue): Desc => {
    if (v === null) return { type: 'None' };
    if (typeof v === 'boolean') return { type: 'bool', value: v };
    if (typeof v === 'bigint') return { type: 'int', value: v.toString() };
    if (typeof v === 'number') {
      const b = new DataView(new ArrayBuffer(8));
      b.setFloat64(0, v, true);
      return { type: 'float', bits: Buffer.from(b.buffer).toString('hex') };
    }
    if (typeof v === 'string') return { type: 'str', value: v };
    if (v instanceof Uint8Array) return { type: 'bytes', hex: Buffer.from(v).toString('hex') };
    if (Array.isArray(v)) return { type: 'list', items: v.map(d) };
    if (v instanceof PyTuple) return { type: 'tuple', items: v.items.map(d) };
    if (v instanceof Tensor) {
      if (!ids.has(v.storage)) ids.set(v.storage, `s${ids.size}`);
      return {
        type: 'tensor', dtype: v.dtype, shape: [...v.shape], stride: [...v.stride], offset: v.offset,
        storage: ids.get(v.storage), storage_numel: v.storage.numel, storage_sha256: sha(v.storage.bytes()),
        sha256: sha(v.contiguousBytes()), requires_grad: v.requiresGrad, parameter: v.isParameter,
      };
    }
    if (v instanceof PyDict) {
      const out: Desc = { type: v.ordered ? 'OrderedDict' : 'dict', items: [...v.map].map(([k, x]) => [d(k), d(x)]) };
      const meta = v.metadata;
      if (meta) out.metadata = d(meta);
      return out;
    }
    if (v instanceof PyOther) return { type: v.kind, value: String(v.value) };
    throw new Error(`cannot describe ${String(v)}`);
  };
  return d(root);
}

/** Python's describe drops `repr` for comparison (floats compare by bits). */
export function stripRepr(x: unknown): unknown {
  if (Array.isArray(x)) return x.map(stripRepr);
  if (x && typeof x === 'object') {
    const o: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(x)) if (k !== 'repr') o[k] = stripRepr(v);
    return o;
  }
  return x;
}

export interface FixtureJson {
  case: string;
  object: Desc;
  location?: string;
}

export function fixtureJson(name: string): FixtureJson {
  return JSON.parse(readFileSync(path.join(CKPT, `${name}.json`), 'utf8')) as FixtureJson;
}

/** Every pickle fixture case (NAME.pth + NAME.legacy.pth + NAME.json). */
export const CASES = ['dtypes', 'views', 'containers', 'wrapped', 'model_wrapped', 'state_dict', 'ddp', 'ddp_wrapped', 'parameter', 'metadata', 'cuda'];
