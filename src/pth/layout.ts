/**
 * How the tensors of an object are laid out in a file about to be written, decided (and
 * bounded) before any byte is written:
 * - torch zip: every storage is written whole, views keep their offset and strides, and
 *   tensors sharing a storage keep sharing it, as torch.save does. With `compact`, a
 *   storage that also holds bytes no written tensor uses (a flat apex / DeepSpeed buffer
 *   whose training-only tensors were dropped by `convert`) is cut down to the element
 *   ranges the written tensors use; tensors that shared it still share the cut-down one.
 * - safetensors: every tensor is its own contiguous bytes (the format has no views).
 * The bytes the output will hold are summed first, so a 627-byte checkpoint holding
 * `torch.zeros(1).expand(2**30)` is refused before it writes 4 GiB as safetensors.
 */
import { RepmlpError } from '../errors.js';
import { dtypeInfo } from '../dtype.js';
import { Storage, Tensor } from '../tensor.js';
import { PyDict, PyObject, PyOther, PyTuple, type PyValue } from './pyobj.js';

export class LayoutError extends RepmlpError {
  override name = 'LayoutError';
}

/**
 * A view may name more elements than its storage holds (stride 0, overlapping strides);
 * written contiguous (safetensors) it grows. Beyond this factor, and past
 * EXPANSION_FREE_BYTES, it is refused unless the caller allows any size
 * (`maxExpansion: Infinity`; the CLI does when --max-output is given).
 */
export const MAX_VIEW_EXPANSION = 16;
/** Expansion below this many bytes is never refused (an expanded position-id buffer, say). */
export const EXPANSION_FREE_BYTES = 1 << 20;

export interface LayoutOptions {
  /** Cut storages down to the ranges the written tensors use (convert's deploy file). */
  compact?: boolean;
  /** Refuse when the tensor data would exceed this many bytes. */
  maxOutput?: number;
  /** How `maxOutput` came about, for the refusal ('--max-output 64 MiB (4x the input)'). */
  maxOutputSource?: string;
  /** Largest growth of one view written contiguous, as a multiple of its storage. */
  maxExpansion?: number;
}

/** Every tensor reachable from `obj`, each once, in pickling order. */
export function tensorsIn(obj: PyValue): Tensor[] {
  return reachable(obj).tensors;
}

/** The tensors reachable from `obj`, and the storages referenced bare (PyObject.storage). */
function reachable(obj: PyValue): { tensors: Tensor[]; bare: Set<Storage> } {
  const out: Tensor[] = [];
  const bare = new Set<Storage>();
  const seen = new Set<object>();
  const stack: PyValue[] = [obj];
  while (stack.length) {
    const v = stack.pop()!;
    if (v === null || typeof v !== 'object' || seen.has(v)) continue;
    seen.add(v);
    if (v instanceof Tensor) out.push(v);
    else if (Array.isArray(v)) for (let i = v.length - 1; i >= 0; i--) stack.push(v[i]!);
    else if (v instanceof PyTuple) for (let i = v.items.length - 1; i >= 0; i--) stack.push(v.items[i]!);
    else if (v instanceof PyDict) {
      const vals = [...v.map.values(), ...v.attrs.values()];
      for (let i = vals.length - 1; i >= 0; i--) stack.push(vals[i]!);
    } else if (v instanceof PyObject) {
      if (v.storage) bare.add(v.storage);
      const parts: PyValue[] = [...v.args, ...(v.state !== undefined ? [v.state] : []), ...(v.listItems ?? []), ...(v.dictItems ? [v.dictItems] : [])];
      for (let i = parts.length - 1; i >= 0; i--) stack.push(parts[i]!);
    } else if (v instanceof PyOther && v.value !== null && typeof v.value === 'object') stack.push(v.value as PyValue);
  }
  return { tensors: out, bare };
}


const MiB = 2 ** 20;
export function formatBytes(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(1)} GiB`;
  if (n >= MiB) return `${(n / MiB).toFixed(1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${n} bytes`;
}

function checkTotal(total: number, opts: LayoutOptions, what: string): void {
  if (opts.maxOutput !== undefined && total > opts.maxOutput) {
    throw new LayoutError(`${what} would hold ${formatBytes(total)} of tensor data, more than the output limit ${formatBytes(opts.maxOutput)}${opts.maxOutputSource ? ` (${opts.maxOutputSource})` : ''}; nothing written (raise it with --max-output SIZE)`);
  }
}

/**
 * Bytes of tensor data a safetensors file of these tensors holds; refuses a view that
 * grows past maxExpansion x its storage, and a total past maxOutput.
 */
export function planSafetensors(tensors: readonly [string, Tensor][], opts: LayoutOptions = {}): number {
  const limit = opts.maxExpansion ?? MAX_VIEW_EXPANSION;
  let total = 0;
  for (const [name, t] of tensors) {
    const bytes = t.numel * dtypeInfo(t.dtype).itemSize;
    const own = t.storage.byteLength;
    if (bytes > EXPANSION_FREE_BYTES && bytes > own * limit) {
      throw new LayoutError(`tensor '${name}': view [${t.shape.join(', ')}] stride [${t.stride.join(', ')}] names ${formatBytes(bytes)} of a storage of ${formatBytes(own)} (${own ? `${Math.round(bytes / own)}x` : 'an empty storage'}); written contiguous it would grow more than ${limit}x (the limit on an expanded view): write a .pth, which keeps the view, or allow it with --max-output SIZE`);
    }
    total += bytes;
  }
  checkTotal(total, opts, 'the safetensors file');
  return total;
}

/**
 * For the zip format: the replacement of each tensor whose storage is cut down
 * (`compact`), and the bytes the storages will hold. Without `compact` the map is empty:
 * storages are written whole.
 */
export function planZip(obj: PyValue, opts: LayoutOptions = {}): { replace: Map<Tensor, Tensor>; total: number } {
  const { tensors, bare } = reachable(obj);
  const byStorage = new Map<Storage, Tensor[]>();
  for (const s of bare) byStorage.set(s, []);
  for (const t of tensors) {
    const list = byStorage.get(t.storage);
    if (list) list.push(t);
    else byStorage.set(t.storage, [t]);
  }
  const replace = new Map<Tensor, Tensor>();
  let total = 0;
  for (const [storage, views] of byStorage) {
    // A storage referenced bare is written whole: every byte of it is used.
    if (!opts.compact || bare.has(storage)) {
      total += storage.byteLength;
      continue;
    }
    const cut = compactStorage(storage, views);
    if (!cut) {
      total += storage.byteLength;
      continue;
    }
    total += cut.storage.byteLength;
    for (const [t, u] of cut.views) replace.set(t, u);
  }
  checkTotal(total, opts, 'the checkpoint');
  return { replace, total };
}

/** Merged [start, end) element ranges the views use, in order. */
function usedRanges(views: readonly Tensor[]): [number, number][] {
  const spans = views.map((t) => t.span()).filter(([a, b]) => b > a).sort((x, y) => x[0] - y[0]);
  const out: [number, number][] = [];
  for (const [a, b] of spans) {
    const last = out[out.length - 1];
    if (last && a <= last[1]) last[1] = Math.max(last[1], b);
    else out.push([a, b]);
  }
  return out;
}

/**
 * A storage holding only the element ranges `views` use, and each view re-based onto it
 * (same shape and strides: a range is kept whole, so every view's elements stay at the
 * same distances). Null when the views use the whole storage.
 */
export function compactStorage(storage: Storage, views: readonly Tensor[]): { storage: Storage; views: Map<Tensor, Tensor> } | null {
  const ranges = usedRanges(views);
  const used = ranges.reduce((n, [a, b]) => n + (b - a), 0);
  if (used === storage.numel) return null;
  const item = dtypeInfo(storage.dtype).itemSize;
  // Where each range starts in the new storage.
  const starts: number[] = [];
  let at = 0;
  for (const [a, b] of ranges) {
    starts.push(at);
    at += b - a;
  }
  const load = (): Uint8Array => {
    if (ranges.length === 1) return storage.bytesInRange(ranges[0]![0] * item, used * item);
    const out = new Uint8Array(used * item);
    // Range by range from the file when it can be read so; else one whole read, sliced.
    const whole = storage.loaded || storage.region() ? undefined : storage.bytesUncached();
    for (let i = 0; i < ranges.length; i++) {
      const [a, b] = ranges[i]!;
      out.set(whole ? whole.subarray(a * item, b * item) : storage.bytesInRange(a * item, (b - a) * item), starts[i]! * item);
    }
    return out;
  };
  const cut = new Storage(storage.dtype, used, load, storage.key, storage.device);
  // One range of a file not yet read: still copied straight from the file.
  const region = storage.region();
  if (ranges.length === 1 && region) cut.sourceRegion = { source: region.source, offset: region.offset + ranges[0]![0] * item, length: used * item };
  const map = new Map<Tensor, Tensor>();
  for (const t of views) {
    let offset = 0;
    if (t.numel > 0) {
      const i = ranges.findIndex(([a, b]) => t.offset >= a && t.offset < b);
      offset = starts[i]! + (t.offset - ranges[i]![0]);
    }
    const u = new Tensor(cut, t.shape, t.stride, offset);
    u.requiresGrad = t.requiresGrad;
    u.isParameter = t.isParameter;
    map.set(t, u);
  }
  return { storage: cut, views: map };
}
