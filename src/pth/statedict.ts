/** State-dict utilities: find it inside wrappers, convert, rewrite leading prefixes. */
import { RepmlpError } from '../errors.js';
import { Tensor } from '../tensor.js';
import { PyDict, type PyKey, type PyValue, type StateDict } from './pyobj.js';

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
    if (x instanceof Tensor) tensors++;
    else if (!k.endsWith('_extra_state')) return false;
  }
  return tensors > 0;
}

/**
 * Finds the state dict: the root itself, or under a wrapper such as
 * `{'state_dict': ..., 'epoch': ..., 'optimizer': ...}`, nested up to 4 levels.
 */
export function findStateDict(root: PyValue): { path: string[]; dict: PyDict } {
  if (isStateDict(root)) return { path: [], dict: root };
  let level: { path: string[]; dict: PyDict }[] = root instanceof PyDict ? [{ path: [], dict: root }] : [];
  // A hostile pickle can share one dict under many keys (memo references): visit each once.
  const seen = new Set<PyDict>(root instanceof PyDict ? [root] : []);
  for (let depth = 0; depth < 4 && level.length; depth++) {
    const next: typeof level = [];
    for (const { path, dict } of level) {
      const keys = [...WRAPPER_KEYS.filter((k) => dict.map.has(k)), ...[...dict.map.keys()].filter((k): k is string => typeof k === 'string' && !WRAPPER_KEYS.includes(k))];
      for (const k of keys) {
        const v = dict.map.get(k)!;
        if (isStateDict(v)) return { path: [...path, k], dict: v };
        if (v instanceof PyDict && !seen.has(v)) {
          seen.add(v);
          next.push({ path: [...path, k], dict: v });
        }
      }
    }
    level = next;
  }
  const top = root instanceof PyDict ? [...root.map.keys()].slice(0, 8).map(String).join(', ') : typeof root;
  throw new StateDictError(`no state dict (a dict of name -> tensor) found; top level holds: ${top || 'nothing'}`);
}

/** The tensors of a state dict, in file order. */
export function toStateDict(dict: PyDict): StateDict {
  const sd: StateDict = new Map();
  for (const [k, v] of dict.map) {
    if (typeof k !== 'string') throw new StateDictError(`state dict key ${String(k)} is not a string`);
    if (v instanceof Tensor) sd.set(k, v);
  }
  return sd;
}

/** An OrderedDict holding the tensors in order, for writeCheckpoint. */
export function stateDictToPy(sd: StateDict): PyDict {
  return new PyDict(new Map<PyKey, PyValue>(sd), true);
}

/** 'module.' when every key starts with it (DataParallel / DDP), else null. */
export function detectPrefix(dict: PyDict): string | null {
  const keys = [...dict.map.keys()];
  return keys.length > 0 && keys.every((k) => typeof k === 'string' && k.startsWith('module.')) ? 'module.' : null;
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
