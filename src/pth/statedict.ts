/** State-dict utilities: find it inside wrappers, convert, rewrite leading prefixes. */
import { RepmlpError } from '../errors.js';
import { Tensor } from '../tensor.js';
import { PyDict, PyObject, unwrapValue, type PyKey, type PyValue, type StateDict } from './pyobj.js';
import { isModule, moduleStateDict } from './nnmodule.js';

export class StateDictError extends RepmlpError {
  override name = 'StateDictError';
}

/** Wrapper keys seen in the wild, tried in this order before a general search. */
const WRAPPER_KEYS = ['state_dict', 'model', 'model_state_dict', 'model_state', 'net', 'network', 'module', 'ema', 'model_ema', 'params', 'weights'];

/** A state dict: string keys, tensor values (a non-tensor entry such as `_extra_state` is tolerated). */
function isStateDict(v: PyValue): v is PyDict {
  if (!(v instanceof PyDict) || v.map.size === 0) return false;
  let tensors = 0;
  for (const [k, x] of v.map) {
    if (typeof k !== 'string') return false;
    if (unwrapValue(x) instanceof Tensor) tensors++;
    else if (!k.endsWith('_extra_state')) return false;
  }
  return tensors > 0;
}

/** A pickled nn.Module's rebuilt state dict, built once per module object. */
const rebuilt = new WeakMap<PyObject, PyDict>();

function moduleSD(m: PyObject): PyDict {
  let d = rebuilt.get(m);
  if (!d) rebuilt.set(m, (d = moduleStateDict(m)));
  return d;
}

/** `v` as a state dict (a pickled module's rebuilt one), or null. */
function asStateDict(v: PyValue): PyDict | null {
  if (v instanceof PyObject && isModule(v)) {
    const d = moduleSD(v);
    return d.map.size ? d : null;
  }
  const u = unwrapValue(v);
  return isStateDict(u) ? u : null;
}

/** What a search may descend into: dicts, and placeholders read as dicts (a CfgNode, a Namespace's fields). */
function asContainer(v: PyValue): PyDict | null {
  if (v instanceof PyDict) return v;
  if (v instanceof PyObject && !isModule(v)) {
    const u = unwrapValue(v);
    if (u instanceof PyDict) return u;
    if (v.state instanceof PyDict) return v.state;
  }
  return null;
}

export interface StateDictCandidate {
  /** Key path from the root ([] for the root itself). */
  path: string[];
  dict: PyDict;
  /** Where it came from: a dict of tensors, or a pickled nn.Module's parameters and buffers. */
  source: 'dict' | 'module';
}

/**
 * Every state dict in the object, breadth first (the root, then wrapper entries, nested
 * up to 4 levels), known wrapper keys first at each level. The first is the default.
 */
export function listStateDicts(root: PyValue, limit = Infinity): StateDictCandidate[] {
  const out: StateDictCandidate[] = [];
  const found = (path: string[], v: PyValue): boolean => {
    const d = asStateDict(v);
    if (d) out.push({ path, dict: d, source: isModule(v) ? 'module' : 'dict' });
    return d !== null;
  };
  if (found([], root)) return out;
  const r = asContainer(root);
  let level: { path: string[]; dict: PyDict }[] = r ? [{ path: [], dict: r }] : [];
  // A hostile pickle can share one dict under many keys (memo references): visit each once.
  const seen = new Set<PyDict>(r ? [r] : []);
  for (let depth = 0; depth < 4 && level.length && out.length < limit; depth++) {
    const next: typeof level = [];
    for (const { path, dict } of level) {
      const keys = [...WRAPPER_KEYS.filter((k) => dict.map.has(k)), ...[...dict.map.keys()].filter((k): k is string => typeof k === 'string' && !WRAPPER_KEYS.includes(k))];
      for (const k of keys) {
        const v = dict.map.get(k)!;
        if (found([...path, k], v)) {
          if (out.length >= limit) return out;
          continue;
        }
        const c = asContainer(v);
        if (c && !seen.has(c)) {
          seen.add(c);
          next.push({ path: [...path, k], dict: c });
        }
      }
    }
    level = next;
  }
  return out;
}

/**
 * Finds the state dict: the root itself (a dict of tensors or a pickled nn.Module), or
 * under a wrapper such as `{'state_dict': ..., 'epoch': ..., 'optimizer': ...}`, nested
 * up to 4 levels. `entry` (the CLI's --entry) names it by a dotted key path instead,
 * e.g. 'state_dict_ema' or 'model.ema'; a wrapper named there is searched as the root is.
 */
export function findStateDict(root: PyValue, entry?: string): { path: string[]; dict: PyDict } {
  if (entry !== undefined && entry !== '') {
    const { path, value } = resolveEntry(root, entry);
    const direct = asStateDict(value);
    if (direct) return { path, dict: direct };
    const inner = listStateDicts(value, 1)[0];
    if (inner) return { path: [...path, ...inner.path], dict: inner.dict };
    throw new StateDictError(`--entry '${entry}' holds no state dict (a dict of name -> tensor); it is ${kindOf(value)}`);
  }
  const first = listStateDicts(root, 1)[0];
  if (first) return { path: first.path, dict: first.dict };
  const c = asContainer(root);
  const top = c ? [...c.map.keys()].slice(0, 8).map(String).join(', ') : kindOf(root);
  throw new StateDictError(`no state dict (a dict of name -> tensor) found; top level holds: ${top || 'nothing'}`);
}

function kindOf(v: PyValue): string {
  if (v instanceof PyObject) return v.called ? `a pickled ${v.type}` : `the global ${v.global}`;
  if (v instanceof PyDict) return `a dict of ${v.map.size} entries`;
  if (v instanceof Tensor) return 'a tensor';
  if (Array.isArray(v)) return 'a list';
  if (v instanceof Uint8Array) return 'bytes';
  if (typeof v === 'bigint') return 'an int';
  if (typeof v === 'number') return 'a float';
  if (typeof v === 'string') return 'a str';
  if (typeof v === 'boolean') return 'a bool';
  return v === null ? 'None' : 'a value';
}

/** The keys one step of an --entry path may take at `v` (dict keys, module children, attributes). */
function stepsAt(v: PyValue): Map<string, PyValue> {
  const m = new Map<string, PyValue>();
  const add = (d: PyDict | null | undefined) => {
    if (d) for (const [k, x] of d.map) if (typeof k === 'string' && !m.has(k)) m.set(k, x);
  };
  if (v instanceof PyObject) {
    const mods = isModule(v) ? (v.state as PyDict).map.get('_modules') : undefined;
    add(mods instanceof PyDict ? mods : null);
    const u = unwrapValue(v);
    add(u instanceof PyDict ? u : null);
    add(v.state instanceof PyDict ? v.state : null);
  } else add(v instanceof PyDict ? v : null);
  return m;
}

/** Follows a dotted path; a key that itself holds dots is matched whole first. */
function resolveEntry(root: PyValue, entry: string): { path: string[]; value: PyValue } {
  const parts = entry.split('.');
  const path: string[] = [];
  let v = root;
  for (let i = 0; i < parts.length; ) {
    const steps = stepsAt(v);
    let j = parts.length;
    for (; j > i; j--) if (steps.has(parts.slice(i, j).join('.'))) break;
    if (j === i) {
      const here = path.length ? ` under '${path.join('.')}'` : '';
      const keys = [...steps.keys()].slice(0, 10).join(', ');
      throw new StateDictError(`--entry '${entry}': no entry '${parts[i]}'${here} (${steps.size ? `it holds: ${keys}${steps.size > 10 ? ', ...' : ''}` : `it is ${kindOf(v)}`})`);
    }
    const key = parts.slice(i, j).join('.');
    path.push(key);
    v = steps.get(key)!;
    i = j;
  }
  return { path, value: v };
}

/** The tensors of a state dict, in file order. */
export function toStateDict(dict: PyDict): StateDict {
  const sd: StateDict = new Map();
  for (const [k, v] of dict.map) {
    if (typeof k !== 'string') throw new StateDictError(`state dict key ${String(k)} is not a string`);
    const t = unwrapValue(v);
    if (t instanceof Tensor) sd.set(k, t);
  }
  return sd;
}

/** An OrderedDict holding the tensors in order, for writeCheckpoint. */
export function stateDictToPy(sd: StateDict): PyDict {
  return new PyDict(new Map<PyKey, PyValue>(sd), true);
}

/** Prefixes wrappers add to every key: DataParallel / DDP's `module.`, torch.compile's `_orig_mod.`. */
export const WRAPPER_PREFIXES: readonly string[] = ['module.', '_orig_mod.'];

/** Wrappers stack at most this deep (DDP of a compiled model, and so on). */
const MAX_WRAPPERS = 8;

/**
 * The known wrapper prefixes every key starts with, outermost first: `['module.']` for
 * DDP, `['_orig_mod.']` for torch.compile, `['module.', '_orig_mod.']` for DDP around a
 * compiled model (`module._orig_mod.x`), `['_orig_mod.', 'module.']` the other way round.
 */
export function knownPrefixes(dict: PyDict): string[] {
  const keys = [...dict.map.keys()];
  if (keys.length === 0 || !keys.every((k) => typeof k === 'string')) return [];
  const out: string[] = [];
  let at = 0;
  while (out.length < MAX_WRAPPERS) {
    // The same wrapper twice in a row is not stripped: `module.module.x` is DDP around a
    // model whose one child is named `module` (timm's EMA wrapper), as before.
    const p = WRAPPER_PREFIXES.find((w) => w !== out[out.length - 1] && keys.every((k) => (k as string).startsWith(w, at) && (k as string).length > at + w.length));
    if (!p) break;
    out.push(p);
    at += p.length;
  }
  return out;
}

/** The joined known wrapper prefix every key starts with ('module.', 'module._orig_mod.'), else null. */
export function detectPrefix(dict: PyDict): string | null {
  const p = knownPrefixes(dict);
  return p.length ? p.join('') : null;
}

/**
 * Strips every known wrapper prefix found, one wrapper at a time (so `_metadata` is
 * consumed as torch does); `prefix` is the chain stripped (detectPrefix's), or null.
 */
export function stripKnownPrefixes(dict: PyDict): { dict: PyDict; prefix: string | null } {
  const prefixes = knownPrefixes(dict);
  let d = dict;
  for (const p of prefixes) d = stripPrefix(d, p);
  return { dict: d, prefix: prefixes.length ? prefixes.join('') : null };
}

function renameKeys(dict: PyDict, rename: (k: string) => string): PyDict {
  const map = new Map<PyKey, PyValue>();
  const from = new Map<PyKey, PyKey>();
  for (const [k, v] of dict.map) {
    const nk = typeof k === 'string' ? rename(k) : k;
    if (map.has(nk)) throw new StateDictError(`renaming '${String(k)}' to '${String(nk)}' collides with '${String(from.get(nk))}' renamed to '${String(nk)}'`);
    map.set(nk, v);
    from.set(nk, k);
  }
  return new PyDict(map, dict.ordered, new Map(dict.attrs));
}

/**
 * `_metadata` is keyed by module path: under DDP, '' is the wrapper and 'module' the
 * model. As torch's consume_prefix_in_state_dict_if_present does, the wrapper's own
 * entry gives way when the model's entry is renamed onto ''.
 */
function renameMetadata(dict: PyDict, rename: (modulePath: string) => string): PyDict {
  const meta = dict.metadata;
  if (!meta) return dict;
  const map = new Map<PyKey, PyValue>();
  for (const [k, v] of meta.map) {
    const nk = typeof k === 'string' ? rename(k) : k;
    if (nk === '' && k !== '') map.delete('');
    if (!(k === '' && map.has(''))) map.set(nk, v);
  }
  const attrs = new Map(dict.attrs);
  attrs.set('_metadata', new PyDict(map, meta.ordered, new Map(meta.attrs)));
  return new PyDict(dict.map, dict.ordered, attrs);
}

/**
 * Removes a leading `prefix` from every key that starts with it (only at the start:
 * a name that merely contains `module.` is left alone), `_metadata` keys included.
 */
export function stripPrefix(dict: PyDict, prefix = 'module.'): PyDict {
  if (!prefix) return dict;
  const modPrefix = prefix.endsWith('.') ? prefix.slice(0, -1) : prefix;
  const out = renameKeys(dict, (k) => (k.startsWith(prefix) ? k.slice(prefix.length) : k));
  return renameMetadata(out, (m) => (m === modPrefix ? '' : m.startsWith(prefix) ? m.slice(prefix.length) : m));
}

/** Prepends `prefix` to every key (and `_metadata` module paths). */
export function addPrefix(dict: PyDict, prefix: string): PyDict {
  if (!prefix) return dict;
  const modPrefix = prefix.endsWith('.') ? prefix.slice(0, -1) : prefix;
  const out = renameKeys(dict, (k) => prefix + k);
  return renameMetadata(out, (m) => (m === '' ? modPrefix : prefix + m));
}
