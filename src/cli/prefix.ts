/**
 * `repmlp prefix IN OUT [--strip [PREFIX]] [--add PREFIX]`: rewrites the leading prefix
 * of every state-dict key (and `_metadata` module path), keeping wrappers and every
 * other entry, and writes OUT atomically (OUT may be IN). Without --strip / --add, or
 * with a bare --strip, every known wrapper prefix found is stripped (`module.` of
 * DataParallel / DDP, `_orig_mod.` of torch.compile, both). OUT's format is --format's,
 * else its extension's (.safetensors, or torch zip for .pth .pt .bin ...), else IN's;
 * safetensors `__metadata__` is kept from a safetensors IN to a safetensors OUT (from a
 * torch IN it is `{"format": "pt"}`, as transformers writes it).
 */
import type { Command, OptionValues } from './command.js';
import { printJson, str } from './command.js';
import { progress } from './progress.js';
import { readCheckpoint } from '../pth/checkpoint.js';
import { WRAPPER_PREFIXES, findStateDict, knownPrefixes, stripPrefix, addPrefix, toStateDict } from '../pth/statedict.js';
import { OUTPUT_OPTIONS, TORCH_SAFETENSORS_METADATA, outputBounds, outputFormatFor, sameFile } from './output-options.js';
import { READ_OPTIONS, readOptions } from './read-options.js';
import { writeCheckpoint } from '../pth/write.js';
import { PyDict, PyObject, type PyKey, type PyValue } from '../pth/pyobj.js';
import { Tensor } from '../tensor.js';
import { UsageError, RepmlpError, oneLine } from '../errors.js';

export class PrefixError extends RepmlpError {
  override name = 'PrefixError';
}

/** A bare --strip: every known wrapper prefix found (not a prefix anyone can type). */
const KNOWN = '\u0000known';
const POSITIONALS = 2;
const VALUE_FLAGS = new Set(['--add', '--format', '--max-output', '--entry']);

/**
 * `--strip` takes an optional value, which parseArgs cannot express. Rewritten here to
 * `--strip=VALUE`: the word after a bare `--strip` is its value only when the two
 * positionals (IN OUT) are still there without it; otherwise `--strip` means every
 * known wrapper prefix found.
 */
export function preprocessStrip(args: string[]): string[] {
  const words = (a: string[]) => a.filter((x, i) => !x.startsWith('-') && !(i > 0 && VALUE_FLAGS.has(a[i - 1]!)) && !(i > 0 && a[i - 1] === '--strip')).length;
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a !== '--strip') {
      out.push(a);
      continue;
    }
    const next = args[i + 1];
    const others = words([...args.slice(0, i), ...args.slice(i + 2)]);
    if (next !== undefined && !next.startsWith('-') && others >= POSITIONALS) {
      out.push(`--strip=${next}`);
      i++;
    } else out.push(`--strip=${KNOWN}`);
  }
  return out;
}

/** A copy of `root` with the dict at `path` replaced (every dict on the way copied). */
export function replaceAt(root: PyValue, path: readonly string[], dict: PyDict): PyValue {
  if (path.length === 0) return dict;
  if (!(root instanceof PyDict)) throw new PrefixError(`wrapper path ${path.join('.')} does not lead through dicts`);
  const [head, ...rest] = path as [string, ...string[]];
  const map = new Map<PyKey, PyValue>(root.map);
  map.set(head, replaceAt(root.map.get(head) ?? null, rest, dict));
  return new PyDict(map, root.ordered, new Map(root.attrs));
}

/** The value at `path` in `root` (through dicts), or undefined. */
function valueAt(root: PyValue, path: readonly string[]): PyValue | undefined {
  let v: PyValue | undefined = root;
  for (const k of path) v = v instanceof PyDict ? v.map.get(k) : undefined;
  return v;
}

function stringKeys(d: PyDict): string[] {
  return [...d.map.keys()].filter((k): k is string => typeof k === 'string');
}

interface Plan {
  /** A prefix, KNOWN (every known wrapper prefix found) or undefined (none). */
  strip: string | undefined;
  add: string | undefined;
}

function plan(values: OptionValues): Plan {
  const strip = str(values, 'strip');
  const add = str(values, 'add');
  if (strip === '') throw new UsageError('prefix: --strip= needs a prefix (or give --strip alone for every known wrapper prefix)');
  if (add === '') throw new UsageError('prefix: --add needs a non-empty prefix');
  return { strip: strip ?? (add === undefined ? KNOWN : undefined), add };
}

/**
 * The known wrapper prefixes every key starts with, outermost first ('module.',
 * '_orig_mod.'; statedict.ts knownPrefixes), stripped one wrapper at a time as torch's
 * consume_prefix_in_state_dict_if_present would (so `_metadata` stays right).
 */
const knownChain = knownPrefixes;

export const command: Command = {
  name: 'prefix',
  summary: "strip or add a leading key prefix such as DataParallel's 'module.' (wrappers and other entries kept)",
  usage: 'repmlp prefix IN OUT [--strip [PREFIX]] [--add PREFIX] [--format pth|safetensors] [--max-output SIZE]',
  example: 'repmlp prefix ddp_checkpoint.pth checkpoint.pth',
  options: {
    strip: { type: 'string', help: "[PREFIX]  remove PREFIX from the start of every key (default: every known wrapper prefix found, module. and _orig_mod.; --strip alone, --strip P or --strip=P)" },
    add: { type: 'string', help: 'PREFIX  prepend PREFIX to every key (after --strip when both are given)' },
    format: { type: 'string', help: "FMT  output format: pth (torch zip) or safetensors (default: OUT's extension, else IN's format)" },
    ...OUTPUT_OPTIONS,
    ...READ_OPTIONS,
  },
  positionals: [2, 2],
  preprocess: preprocessStrip,
  async run({ positionals, values, json }) {
    const [input, output] = positionals as [string, string];
    const p = plan(values);
    const ro = readOptions(values);
    const bounds = outputBounds(values, input);
    const ck = await readCheckpoint(input, ro);
    const format = outputFormatFor(values, output, ck.format, 'prefix');
    let found;
    try {
      found = findStateDict(ck.root, ro.entry);
    } catch (e) {
      if (e instanceof RepmlpError) throw new PrefixError(`${input}: ${e.message}`);
      throw e;
    }
    const { path, dict } = found;
    let out = dict;
    let stripped = 0;
    const strips = p.strip === KNOWN ? knownChain(dict) : p.strip !== undefined ? [p.strip] : [];
    // Refused when nothing would change, or when a bare --strip (given, not defaulted) finds nothing.
    if (p.strip === KNOWN && strips.length === 0 && (p.add === undefined || str(values, 'strip') === KNOWN)) {
      const sample = stringKeys(dict).slice(0, 3).map((k) => `'${k}'`).join(', ');
      throw new PrefixError(`${input}: no known wrapper prefix (${WRAPPER_PREFIXES.join(', ')}) on the state-dict keys (keys look like ${sample}); nothing to strip (give --strip PREFIX or --add PREFIX)`);
    }
    for (const s of strips) {
      const n = stringKeys(out).filter((k) => k.startsWith(s)).length;
      if (n === 0) {
        const sample = stringKeys(out).slice(0, 3).map((k) => `'${k}'`).join(', ');
        throw new PrefixError(`${input}: no state-dict key starts with '${s}' (keys look like ${sample}); nothing to strip`);
      }
      stripped = Math.max(stripped, n);
      out = stripPrefix(out, s);
    }
    const stripText = strips.length ? strips.join('') : undefined;
    if (p.add !== undefined) out = addPrefix(out, p.add);
    let root = replaceAt(ck.root, path, out);
    const notes: string[] = [];
    const was = valueAt(ck.root, path);
    if (was instanceof PyObject && format === 'zip') {
      notes.push(`${path.length ? path.join('.') : 'the file'} was a pickled ${was.global} (nn.Module): written as its state dict with the new keys (a module's attribute names are its keys; torch.load gives an OrderedDict there now)`);
    }
    if (format === 'safetensors') {
      if (path.length) notes.push(`safetensors holds only the state dict; wrapper entries (${path.join('.')} siblings) are not written`);
      root = out;
    } else if (ck.format === 'safetensors' && root instanceof PyDict) {
      const meta = root.attrs.get('__metadata__');
      if (meta instanceof PyDict && meta.map.size) notes.push(`safetensors __metadata__ (${meta.map.size} entries) has no place in a torch file; not written (write a .safetensors to keep it)`);
      root = new PyDict(root.map, root.ordered); // safetensors __metadata__ has no place in a torch file
    }
    for (const n of notes) process.stderr.write(`repmlp: note: ${oneLine(n)}\n`);
    const total = [...toStateDict(dict).values()].reduce<number>((a, t) => a + t.storage.byteLength, 0);
    const want = [...toStateDict(out)];
    // Where the rewritten state dict sits in the written file (safetensors: it is the file).
    const at = format === 'safetensors' ? [] : path;
    // Cheap verification before OUT is replaced (while the file is flushed): the temp
    // file's metadata (not its bytes) re-read, names, shapes and dtypes compared.
    const verify = async (tmp: string): Promise<void> => {
      let got: [string, Tensor][];
      try {
        const back = valueAt((await readCheckpoint(tmp)).root, at);
        if (!(back instanceof PyDict)) throw new PrefixError(`no state dict at ${at.length ? at.join('.') : 'the top level'}`);
        got = [...toStateDict(back)];
      } catch (e) {
        throw new PrefixError(`${output}: written file does not read back (${(e as Error).message}); ${output} left as it was`);
      }
      const same = want.length === got.length && want.every(([k, t], i) => got[i]![0] === k && got[i]![1].shape.join() === t.shape.join() && got[i]![1].dtype === t.dtype);
      if (!same) throw new PrefixError(`${output}: written file does not read back with the expected keys and shapes; ${output} left as it was`);
    };
    const replacedInput = sameFile(input, output);
    const bar = progress('writing', Math.round(total / 2 ** 20), 'MB');
    try {
      const fromTorch = format === 'safetensors' && !(out.attrs.get('__metadata__') instanceof PyDict);
      await writeCheckpoint(output, root, {
        format, verify, ...bounds, ...(fromTorch ? { metadata: TORCH_SAFETENSORS_METADATA } : {}),
        onProgress: (done) => bar.update(Math.round(done / 2 ** 20)),
      });
    } finally {
      bar.stop();
    }
    const meta = out.attrs.get('__metadata__');
    const result = {
      input, output, format, inputFormat: ck.format, wrapper: path, strip: stripText ?? null, add: p.add ?? null,
      renamed: p.add !== undefined ? want.length : stripped, tensors: want.length, verified: true,
      first: want[0]?.[0] ?? null, metadataKept: format === 'safetensors' && meta instanceof PyDict ? meta.map.size : 0,
      replacedInput, notes,
    };
    if (json) printJson(result);
    else {
      const what = [stripText !== undefined ? `stripped '${stripText}' from ${stripped} key(s)` : '', p.add !== undefined ? `added '${p.add}' to every key` : ''].filter(Boolean).join(', ');
      const kept = result.metadataKept ? `; __metadata__ (${result.metadataKept} entries) kept` : '';
      const fmt = format === 'safetensors' ? 'safetensors' : 'torch zip';
      process.stdout.write(oneLine(`${output} (${fmt}${replacedInput ? ', replaced the input' : ''}): ${what}${path.length && format === 'zip' ? `; wrapper ['${path.join("']['")}'] and its other entries kept` : ''}${kept}; re-read ${want.length} tensors: names and shapes as expected`) + '\n');
    }
  },
};
