/**
 * A pickled nn.Module (`torch.save(model)`), read without its class's code: the module
 * tree is plain data (each module an inert PyObject whose BUILD state is its `__dict__`),
 * and its state dict is rebuilt as `model.state_dict()` builds it.
 */
import { RepmlpError } from '../errors.js';
import { Tensor } from '../tensor.js';
import { PyDict, PyObject, PyOther, type PyKey, type PyValue } from './pyobj.js';

export class ModuleTreeError extends RepmlpError {
  override name = 'ModuleTreeError';
}

/** Python's recursion limit, which torch's own state_dict() would hit. */
const MAX_DEPTH = 1000;
/** Module visits: shared submodules are listed under every name, so a DAG could explode. */
const MAX_VISITS = 1 << 20;

/** The `__dict__` of a pickled module: it has `_parameters`, `_buffers` and `_modules`. */
function moduleDict(v: PyValue): PyDict | null {
  if (!(v instanceof PyObject) || !v.called || !(v.state instanceof PyDict)) return null;
  const s = v.state.map;
  return s.get('_parameters') instanceof PyDict && s.get('_buffers') instanceof PyDict && s.get('_modules') instanceof PyDict ? v.state : null;
}

export function isModule(v: PyValue): boolean {
  return moduleDict(v) !== null;
}

/** The names the buffers' `_non_persistent_buffers_set` lists (not in state_dict()). */
function nonPersistent(d: PyDict): Set<PyKey> {
  const s = d.map.get('_non_persistent_buffers_set');
  const items = s instanceof PyOther && (s.kind === 'set' || s.kind === 'frozenset') ? s.value : undefined;
  return new Set(Array.isArray(items) ? (items.filter((x) => typeof x === 'string') as string[]) : []);
}

/**
 * `model.state_dict()`'s names and order: for each module (depth first, pre-order), its
 * `_parameters` then its persistent `_buffers` (None entries skipped), then its children
 * under `name.`. A submodule shared by two parents is listed under both names, as torch
 * lists it. Iterative; depth and visits bounded (a cycle or an exploding DAG is refused).
 */
export function moduleStateDict(root: PyObject): PyDict {
  const out = new Map<PyKey, PyValue>();
  const todo: [PyObject, string, number][] = [[root, '', 0]];
  let visits = 0;
  while (todo.length) {
    const [m, prefix, depth] = todo.pop()!;
    if (depth > MAX_DEPTH) throw new ModuleTreeError(`pickled module tree nested deeper than ${MAX_DEPTH} (the nesting depth limit) at '${prefix.slice(0, 80)}...'`);
    if (++visits > MAX_VISITS) throw new ModuleTreeError(`pickled module tree of more than ${MAX_VISITS} module visits (the module count limit)`);
    const d = moduleDict(m)!;
    const skip = nonPersistent(d);
    for (const [k, v] of (d.map.get('_parameters') as PyDict).map) if (v instanceof Tensor && typeof k === 'string') out.set(prefix + k, v);
    for (const [k, v] of (d.map.get('_buffers') as PyDict).map) if (v instanceof Tensor && typeof k === 'string' && !skip.has(k)) out.set(prefix + k, v);
    const children: [PyObject, string, number][] = [];
    for (const [k, v] of (d.map.get('_modules') as PyDict).map) if (typeof k === 'string' && v instanceof PyObject && isModule(v)) children.push([v, `${prefix}${k}.`, depth + 1]);
    // reversed onto the stack: children come out in their order
    for (let i = children.length - 1; i >= 0; i--) todo.push(children[i]!);
  }
  return new PyDict(out, true);
}
