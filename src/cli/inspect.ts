/**
 * `repmlp inspect FILE [--json]`: what a checkpoint holds, from its metadata only (the
 * zip's central directory and pickle, a legacy file's pickles and counts, a safetensors
 * header): tensor bytes are never read, so a multi-GB file inspects in a blink.
 */
import { statSync } from 'node:fs';
import type { Command } from './command.js';
import { printJson } from './command.js';
import { readCheckpoint, type Checkpoint } from '../pth/checkpoint.js';
import { findStateDict, detectPrefix, stripPrefix, toStateDict } from '../pth/statedict.js';
import { PyDict, PyOther, PyTuple, type PyValue } from '../pth/pyobj.js';
import { Tensor } from '../tensor.js';
import { RepmlpError } from '../errors.js';
import { detectArch, detectMode } from '../model/detect.js';

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
  mode: 'train' | 'deploy' | null;
  entries: InspectEntry[];
  /** The wrapper's other entries (epoch, optimizer, ...), summarized. */
  others: { key: string; value: string }[];
}

/** A one-line Python-ish summary of a value (no tensor bytes read). */
export function summarize(v: PyValue, depth = 0): string {
  if (v === null) return 'None';
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'number') return Number.isInteger(v) ? v.toFixed(1) : String(v);
  if (typeof v === 'string') return JSON.stringify(v.length > 60 ? v.slice(0, 60) + '...' : v);
  if (v instanceof Tensor) return `tensor ${v.dtype} [${v.shape.join(', ')}]`;
  if (v instanceof Uint8Array) return `bytes(${v.length})`;
  if (v instanceof PyOther) return `${v.kind}(${String(v.value)})`;
  const items = Array.isArray(v) ? v : v instanceof PyTuple ? v.items : null;
  if (items) {
    const [open, close] = Array.isArray(v) ? ['[', ']'] : ['(', ')'];
    if (depth > 0 || items.length > 6) return `${Array.isArray(v) ? 'list' : 'tuple'} of ${items.length}`;
    return open + items.map((x) => summarize(x, depth + 1)).join(', ') + close;
  }
  const d = v as PyDict;
  const keys = depth === 0 && d.map.size ? ` (${[...d.map.keys()].slice(0, 6).map(String).join(', ')}${d.map.size > 6 ? ', ...' : ''})` : '';
  return `${d.ordered ? 'OrderedDict' : 'dict'} of ${d.map.size}${keys}`;
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

export async function inspectFile(file: string): Promise<InspectReport> {
  const ck = await readCheckpoint(file);
  let wrapper: string[] | null = null;
  let tensors: [string, Tensor][];
  let prefix: string | null = null;
  let arch: string | null = null;
  let mode: InspectReport['mode'] = null;
  try {
    const found = findStateDict(ck.root);
    wrapper = found.path;
    tensors = [...toStateDict(found.dict)];
    prefix = detectPrefix(found.dict);
    const sd = toStateDict(prefix ? stripPrefix(found.dict, prefix) : found.dict);
    mode = detectMode(sd);
    arch = detectArch(sd)?.name ?? null;
  } catch (e) {
    if (!(e instanceof RepmlpError)) throw e;
    tensors = allTensors(ck.root);
  }
  const dtypes: Record<string, number> = {};
  let elements = 0;
  for (const [, t] of tensors) {
    dtypes[t.dtype] = (dtypes[t.dtype] ?? 0) + 1;
    elements += t.numel;
  }
  return {
    file, bytes: statSync(file).size, format: ck.format, wrapper, prefix, tensors: tensors.length, elements, dtypes, arch, mode,
    entries: tensors.map(([name, t]) => ({ name, dtype: t.dtype, shape: [...t.shape] })),
    others: wrapper ? wrapperOthers(ck.root, wrapper) : [],
  };
}

const FORMAT_NAMES: Record<Checkpoint['format'], string> = {
  zip: 'PyTorch zip checkpoint (torch >= 1.6)',
  legacy: 'PyTorch legacy checkpoint (torch < 1.6 format)',
  safetensors: 'safetensors file',
};

export function formatReport(r: InspectReport): string {
  const mb = (n: number) => (n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MB` : `${n} bytes`);
  const lines = [`${r.file}: ${FORMAT_NAMES[r.format]}, ${mb(r.bytes)}`];
  if (r.wrapper === null) lines.push(`no state dict found; ${r.tensors} tensor(s) in the object`);
  else lines.push(`state dict: ${r.wrapper.length ? `under ${r.wrapper.map((k) => `['${k}']`).join('')}` : 'at the top level'}${r.prefix ? `, keys prefixed '${r.prefix}' (DataParallel/DDP)` : ''}`);
  lines.push(`${r.tensors} tensors, ${r.elements.toLocaleString('en-US')} elements (${Object.entries(r.dtypes).map(([d, n]) => `${d}: ${n}`).join(', ') || 'none'})`);
  if (r.wrapper !== null) lines.push(`architecture: ${r.arch ?? 'no preset of a known family'}${r.mode ? ` (${r.mode === 'train' ? 'training-time' : 'deploy'} form)` : ''}`);
  if (r.others.length) lines.push(`other entries: ${r.others.map((o) => `${o.key}=${o.value}`).join(', ')}`);
  if (r.entries.length) {
    const w = Math.min(60, Math.max(...r.entries.map((e) => e.name.length)));
    lines.push('', ...r.entries.map((e) => `  ${e.name.padEnd(w)}  ${e.dtype.padEnd(8)}  [${e.shape.join(', ')}]`));
  }
  return lines.join('\n');
}

export const command: Command = {
  name: 'inspect',
  summary: 'show what a checkpoint holds (format, wrapper, prefix, tensors, architecture)',
  usage: 'repmlp inspect FILE [--json]',
  example: 'repmlp inspect RepMLP-Res50-light-224_train.pth --json',
  options: {},
  positionals: [1, 1],
  async run({ positionals, json }) {
    const report = await inspectFile(positionals[0]!);
    if (json) {
      const { file: _f, bytes: _b, others, ...rest } = report;
      printJson({ ...rest, file: report.file, bytes: report.bytes, others });
    } else process.stdout.write(formatReport(report) + '\n');
  },
};
