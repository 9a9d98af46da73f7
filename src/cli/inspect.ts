/**
 * `repmlp inspect FILE [--json]`: what a checkpoint holds, from its metadata only (the
 * zip's central directory and pickle, a legacy file's pickles and counts, a safetensors
 * header): tensor bytes are never read, so a multi-GB file inspects in a blink.
 */
import { statSync } from 'node:fs';
import type { Command } from './command.js';
import { printJson } from './command.js';
import { READ_OPTIONS, readOptions } from './read-options.js';
import { readCheckpoint, type Checkpoint, type LoadOptions } from '../pth/checkpoint.js';
import { findStateDict, listStateDicts, stripKnownPrefixes, toStateDict } from '../pth/statedict.js';
import { PyDict, PyObject, PyOther, PyTuple, type PyKey, type PyValue } from '../pth/pyobj.js';
import { isModule } from '../pth/nnmodule.js';
import { Tensor } from '../tensor.js';
import { RepmlpError, oneLine } from '../errors.js';
import { detectMode } from '../model/detect.js';
import { detectArch } from '../family/registry.js';

export interface InspectEntry {
  name: string;
  dtype: string;
  shape: number[];
}

export interface InspectReport {
  file: string;
  bytes: number;
  format: Checkpoint['format'];
  /** Key path to the state dict; null when the file holds no state dict. */
  wrapper: string[] | null;
  prefix: string | null;
  tensors: number;
  elements: number;
  dtypes: Record<string, number>;
  arch: string | null;
  /** The network family the keys belong to (a preset's, or a custom configuration's), or null. */
  family: string | null;
  mode: 'train' | 'deploy' | null;
  entries: InspectEntry[];
  /** The wrapper's other entries (epoch, optimizer, ...), summarized. */
  others: { key: string; value: string }[];
  /** Every state dict found (key path, tensor count, a dict or a pickled nn.Module's); `default` is the one used without --entry. */
  stateDicts: { path: string[]; tensors: number; source: 'dict' | 'module'; default: boolean; used: boolean }[];
  /** Globals outside torch's weights_only allow-list, kept as inert data (nothing was run). */
  inertGlobals: string[];
}

/** How many items of a container a summary shows. */
const SHOWN = 6;

/** Python's repr of a str (single quotes unless the text holds one). */
function strRepr(s: string): string {
  const t = s.length > 60 ? s.slice(0, 60) + '...' : s;
  const q = t.includes("'") && !t.includes('"') ? '"' : "'";
  return q + t.replace(/\\/g, '\\\\').replace(q === "'" ? /'/g : /"/g, `\\${q}`) + q;
}

function floatRepr(v: number): string {
  if (Number.isNaN(v)) return 'nan';
  if (!Number.isFinite(v)) return v > 0 ? 'inf' : '-inf';
  return Number.isInteger(v) && Math.abs(v) < 1e16 ? v.toFixed(1) : String(v);
}

function keyRepr(k: PyKey): string {
  return k instanceof PyTuple ? summarize(k, 1) : typeof k === 'string' ? strRepr(k) : summarize(k, 1);
}

/** `{'a': 1, 'b': ...}` for a dict inside a placeholder; `{...}` deeper down. */
function dictRepr(d: PyDict, depth: number): string {
  if (depth > 1) return d.map.size ? '{...}' : '{}';
  const items = [...take(d.map, SHOWN)].map(([k, x]) => `${keyRepr(k)}: ${summarize(x, depth + 1)}`);
  return `{${items.join(', ')}${d.map.size > SHOWN ? ', ...' : ''}}`;
}

function* take<T>(it: Iterable<T>, n: number): Generator<T> {
  if (n <= 0) return;
  let i = 0;
  for (const x of it) {
    yield x;
    if (++i >= n) return;
  }
}

/** A placeholder as Python would show it: `argparse.Namespace(lr=0.1, ...)`, `numpy.float64(76.5)`, `<pickled m.C>`. */
function objectRepr(o: PyObject, depth: number): string {
  if (!o.called) return `<global ${o.global}>`;
  const v = o.value;
  if (isModule(o)) return `<pickled ${o.type}>`;
  if (o.type.startsWith('numpy.') && v !== undefined && (typeof v !== 'object' || v === null)) {
    return o.type === 'numpy.dtype' ? `numpy.dtype(${strRepr(String(v))})` : `${o.type}(${summarize(v, depth + 1)})`;
  }
  if (v instanceof Tensor) return o.type.endsWith('Storage') ? `${o.type}(${v.numel})` : `${o.type}(${v.dtype} [${v.shape.join(', ')}])`;
  if (o.global === 'argparse.Namespace' && v instanceof PyDict) {
    if (depth > 1) return `${o.type}(...)`;
    const fields = [...take(v.map, SHOWN)].map(([k, x]) => `${String(k)}=${summarize(x, depth + 1)}`);
    return `${o.type}(${fields.join(', ')}${v.map.size > SHOWN ? ', ...' : ''})`;
  }
  if (v instanceof PyDict) return `${o.type}(${dictRepr(v, depth)})`;
  if (Array.isArray(v)) return `${o.type}(list of ${v.length})`;
  return `<pickled ${o.type}>`;
}

/** A one-line Python-ish summary of a value (no tensor bytes read). */
export function summarize(v: PyValue, depth = 0): string {
  if (v === null) return 'None';
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'number') return floatRepr(v);
  if (typeof v === 'string') return strRepr(v);
  if (v instanceof Tensor) return `tensor ${v.dtype} [${v.shape.join(', ')}]`;
  if (v instanceof Uint8Array) return `bytes(${v.length})`;
  if (v instanceof PyObject) return objectRepr(v, depth);
  if (v instanceof PyOther) return otherRepr(v, depth);
  const items = Array.isArray(v) ? v : v instanceof PyTuple ? v.items : null;
  if (items) {
    const [open, close] = Array.isArray(v) ? ['[', ']'] : ['(', ')'];
    if (depth > 0 || items.length > SHOWN) return `${Array.isArray(v) ? 'list' : 'tuple'} of ${items.length}`;
    return open + items.map((x) => summarize(x, depth + 1)).join(', ') + (items.length === 1 && !Array.isArray(v) ? ',' : '') + close;
  }
  const d = v as PyDict;
  if (depth > 0) return dictRepr(d, depth);
  const keys = d.map.size ? ` (${[...take(d.map.keys(), SHOWN)].map(String).join(', ')}${d.map.size > SHOWN ? ', ...' : ''})` : '';
  return `${d.ordered ? 'OrderedDict' : 'dict'} of ${d.map.size}${keys}`;
}

function otherRepr(v: PyOther, depth: number): string {
  switch (v.kind) {
    case 'torch.dtype': return `torch.${String(v.value)}`;
    case 'torch.device': return `device(${strRepr(String(v.value))})`;
    case 'bytearray': return `bytearray(${v.value instanceof Uint8Array ? v.value.length : 0} bytes)`;
    case 'complex': {
      const [re, im] = v.value instanceof PyTuple ? v.value.items : [];
      return `complex(${summarize(re ?? 0, depth + 1)}, ${summarize(im ?? 0, depth + 1)})`;
    }
    default: {
      const items = Array.isArray(v.value) ? v.value : [];
      const shown = depth > 1 ? '...' : [...take(items, SHOWN)].map((x) => summarize(x, depth + 1)).join(', ') + (items.length > SHOWN ? ', ...' : '');
      return `${v.kind}({${shown}})`;
    }
  }
}

/** Every tensor in the object, named by its path (for files without a state dict). */
function allTensors(root: PyValue): [string, Tensor][] {
  const out: [string, Tensor][] = [];
  const seen = new Set<object>();
  const walk = (v: PyValue, name: string, depth: number): void => {
    if (v instanceof Tensor) return void out.push([name, v]);
    if (v === null || typeof v !== 'object' || seen.has(v) || depth > 100) return;
    seen.add(v);
    const join = (k: unknown) => (name ? `${name}.${String(k)}` : String(k));
    if (Array.isArray(v)) v.forEach((x, i) => walk(x, join(i), depth + 1));
    else if (v instanceof PyTuple) v.items.forEach((x, i) => walk(x, join(i), depth + 1));
    else if (v instanceof PyDict) for (const [k, x] of v.map) walk(x, join(k), depth + 1);
    else if (v instanceof PyObject) {
      if (v.value !== undefined) walk(v.value, name, depth + 1);
      else if (v.state !== undefined) walk(v.state, name, depth + 1);
    }
  };
  walk(root, '', 0);
  return out;
}

function wrapperOthers(root: PyValue, path: string[]): { key: string; value: string }[] {
  if (!(root instanceof PyDict) || path.length === 0) return [];
  const out: { key: string; value: string }[] = [];
  let d: PyValue = root;
  for (let i = 0; i < path.length && d instanceof PyDict; i++) {
    for (const [k, v] of d.map) if (k !== path[i]) out.push({ key: [...path.slice(0, i), String(k)].join('.'), value: summarize(v) });
    d = d.map.get(path[i]!) ?? null;
  }
  return out;
}

export async function inspectFile(file: string, opts: LoadOptions = {}): Promise<InspectReport> {
  const ck = await readCheckpoint(file, opts);
  let wrapper: string[] | null = null;
  let tensors: [string, Tensor][];
  let prefix: string | null = null;
  let arch: string | null = null;
  let family: string | null = null;
  let mode: InspectReport['mode'] = null;
  const candidates = listStateDicts(ck.root);
  try {
    const found = findStateDict(ck.root, opts.entry);
    wrapper = found.path;
    tensors = [...toStateDict(found.dict)];
    const stripped = stripKnownPrefixes(found.dict);
    prefix = stripped.prefix;
    const sd = toStateDict(stripped.dict);
    mode = detectMode(sd);
    const detected = detectArch(sd);
    arch = detected?.name ?? null;
    family = detected?.family.name ?? null;
  } catch (e) {
    if (!(e instanceof RepmlpError)) throw e;
    // A wrong --entry is an error; a file without any state dict is described as it is.
    if (opts.entry !== undefined) throw new RepmlpError(`${file}: ${e.message}`);
    tensors = allTensors(ck.root);
  }
  const dtypes: Record<string, number> = {};
  let elements = 0;
  for (const [, t] of tensors) {
    dtypes[t.dtype] = (dtypes[t.dtype] ?? 0) + 1;
    elements += t.numel;
  }
  return {
    file, bytes: statSync(file).size, format: ck.format, wrapper, prefix, tensors: tensors.length, elements, dtypes, arch, family, mode,
    entries: tensors.map(([name, t]) => ({ name, dtype: t.dtype, shape: [...t.shape] })),
    others: wrapper ? wrapperOthers(ck.root, wrapper) : [],
    stateDicts: candidates.map((c, i) => ({ path: c.path, tensors: toStateDict(c.dict).size, source: c.source, default: i === 0, used: wrapper !== null && c.path.join('\0') === wrapper.join('\0') })),
    inertGlobals: ck.inertGlobals,
  };
}

const FORMAT_NAMES: Record<Checkpoint['format'], string> = {
  zip: 'PyTorch zip checkpoint (torch >= 1.6)',
  legacy: 'PyTorch legacy checkpoint (torch < 1.6 format)',
  safetensors: 'safetensors file',
};

const PREFIX_NAMES: Record<string, string> = { 'module.': 'DataParallel/DDP', '_orig_mod.': 'torch.compile' };

function pathText(path: string[]): string {
  return path.length ? path.map((k) => `['${k}']`).join('') : 'the top level';
}

export function formatReport(r: InspectReport): string {
  const mb = (n: number) => (n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MB` : `${n} bytes`);
  const lines = [`${r.file}: ${FORMAT_NAMES[r.format]}, ${mb(r.bytes)}`];
  const used = r.stateDicts.find((c) => c.used);
  if (r.wrapper === null) lines.push(`no state dict found; ${r.tensors} tensor(s) in the object`);
  else {
    const wrappers = r.prefix ? r.prefix.match(/[^.]+\./g)!.map((p) => PREFIX_NAMES[p] ?? p).join(' + ') : '';
    const where = r.wrapper.length ? `under ${pathText(r.wrapper)}` : 'at the top level';
    const module = used?.source === 'module' ? ', rebuilt from a pickled nn.Module (its parameters and persistent buffers)' : '';
    lines.push(`state dict: ${where}${module}${r.prefix ? `, keys prefixed '${r.prefix}' (${wrappers})` : ''}`);
  }
  if (r.stateDicts.length > 1) {
    const list = r.stateDicts.map((c) => `${c.path.join('.') || '(top level)'} (${c.tensors} tensors${c.default ? ', default' : ''})`).join(', ');
    lines.push(`state dicts found: ${list}; choose one with --entry PATH`);
  }
  lines.push(`${r.tensors} tensors, ${r.elements.toLocaleString('en-US')} elements (${Object.entries(r.dtypes).map(([d, n]) => `${d}: ${n}`).join(', ') || 'none'})`);
  if (r.wrapper !== null) lines.push(`architecture: ${r.arch ?? (r.family ? `a custom ${r.family} configuration (read from the shapes)` : 'no preset of a known family')}${r.mode ? ` (${r.mode === 'train' ? 'training-time' : 'deploy'} form)` : ''}`);
  if (r.others.length) {
    // a wrapper of a million entries stays a readable line (--json has them all)
    const shown = r.others.slice(0, 40).map((o) => `${o.key}=${o.value}`).join(', ');
    lines.push(`other entries: ${shown}${r.others.length > 40 ? `, ... (${r.others.length - 40} more)` : ''}`);
  }
  if (r.inertGlobals.length) lines.push(`kept as inert data (nothing run; torch.load(weights_only=True) would refuse them): ${r.inertGlobals.join(', ')}`);
  if (r.entries.length) {
    // a loop, not Math.max(...names): 300k entries would overflow the call stack
    let w = 0;
    for (const e of r.entries) w = Math.max(w, e.name.length);
    w = Math.min(60, w);
    lines.push('');
    for (const e of r.entries) lines.push(`  ${e.name.padEnd(w)}  ${e.dtype.padEnd(8)}  [${e.shape.join(', ')}]`);
  }
  // Names, keys and values come from the file: control characters (ESC, C1 CSI, ...) escaped.
  return lines.map(oneLine).join('\n');
}

export const command: Command = {
  name: 'inspect',
  summary: 'show what a checkpoint holds (format, wrapper, prefix, tensors, architecture)',
  usage: 'repmlp inspect FILE [--json]',
  example: 'repmlp inspect RepMLP-Res50-light-224_train.pth --json',
  options: { ...READ_OPTIONS },
  positionals: [1, 1],
  async run({ positionals, values, json }) {
    const report = await inspectFile(positionals[0]!, readOptions(values));
    if (json) {
      const { file: _f, bytes: _b, others, ...rest } = report;
      printJson({ ...rest, file: report.file, bytes: report.bytes, others });
    } else process.stdout.write(formatReport(report) + '\n');
  },
};
