/**
 * `repmlp prefix IN OUT [--strip [PREFIX]] [--add PREFIX]`: rewrites the leading prefix
 * of every state-dict key (and `_metadata` module path), keeping wrappers and every
 * other entry, and writes OUT in torch's zip format (atomically: OUT may be IN).
 */
import type { Command, OptionValues } from './command.js';
import { printJson, str } from './command.js';
import { sameFile } from '../io/atomic.js';
import { progress } from './progress.js';
import { readCheckpoint } from '../pth/checkpoint.js';
import { findStateDict, stripPrefix, addPrefix } from '../pth/statedict.js';
import { writeCheckpoint } from '../pth/write.js';
import { PyDict, type PyKey, type PyValue } from '../pth/pyobj.js';
import { Tensor } from '../tensor.js';
import { UsageError, RepmlpError } from '../errors.js';

export class PrefixError extends RepmlpError {
  override name = 'PrefixError';
}

const DEFAULT_PREFIX = 'module.';
const POSITIONALS = 2;
const VALUE_FLAGS = new Set(['--add', '--format']);

/**
 * `--strip` takes an optional value, which parseArgs cannot express. Rewritten here to
 * `--strip=VALUE`: the word after a bare `--strip` is its value only when the two
 * positionals (IN OUT) are still there without it; otherwise `--strip` means `module.`.
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
    } else out.push(`--strip=${DEFAULT_PREFIX}`);
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

function stringKeys(d: PyDict): string[] {
  return [...d.map.keys()].filter((k): k is string => typeof k === 'string');
}

interface Plan {
  strip: string | undefined;
  add: string | undefined;
  format: 'zip' | 'safetensors';
}

function plan(values: OptionValues): Plan {
  const strip = str(values, 'strip');
  const add = str(values, 'add');
  const format = str(values, 'format') ?? 'zip';
  if (format !== 'zip' && format !== 'safetensors') throw new UsageError(`prefix: --format ${format}: expected zip or safetensors`);
  if (strip === '') throw new UsageError('prefix: --strip= needs a prefix (or give --strip alone for module.)');
  if (add === '') throw new UsageError('prefix: --add needs a non-empty prefix');
  return { strip: strip ?? (add === undefined ? DEFAULT_PREFIX : undefined), add, format };
}

export const command: Command = {
  name: 'prefix',
  summary: "strip or add a leading key prefix such as DataParallel's 'module.' (wrappers and other entries kept)",
  usage: 'repmlp prefix IN OUT [--strip [PREFIX]] [--add PREFIX] [--format zip|safetensors]',
  example: 'repmlp prefix ddp_checkpoint.pth checkpoint.pth --strip module.',
  options: {
    strip: { type: 'string', help: "[PREFIX]  remove PREFIX from the start of every key (default 'module.'; --strip alone, --strip P or --strip=P)" },
    add: { type: 'string', help: 'PREFIX  prepend PREFIX to every key (after --strip when both are given)' },
    format: { type: 'string', help: 'FMT  output format: zip (torch.save format, default) or safetensors' },
  },
  positionals: [2, 2],
  preprocess: preprocessStrip,
  async run({ positionals, values, json }) {
    const [input, output] = positionals as [string, string];
    const p = plan(values);
    const ck = await readCheckpoint(input);
    let found;
    try {
      found = findStateDict(ck.root);
    } catch (e) {
      if (e instanceof RepmlpError) throw new PrefixError(`${input}: ${e.message}`);
      throw e;
    }
    const { path, dict } = found;
    let out = dict;
    let stripped = 0;
    if (p.strip !== undefined) {
      const s = p.strip;
      stripped = stringKeys(dict).filter((k) => k.startsWith(s)).length;
      if (stripped === 0) {
        const sample = stringKeys(dict).slice(0, 3).map((k) => `'${k}'`).join(', ');
        throw new PrefixError(`${input}: no state-dict key starts with '${s}' (keys look like ${sample}); nothing to strip`);
      }
      out = stripPrefix(out, s);
    }
    if (p.add !== undefined) out = addPrefix(out, p.add);
    let root = replaceAt(ck.root, path, out);
    if (p.format === 'safetensors') {
      if (path.length) process.stderr.write(`repmlp: note: safetensors holds only the state dict; wrapper entries (${path.join('.')} siblings) are not written\n`);
      root = out;
    } else if (ck.format === 'safetensors' && root instanceof PyDict) {
      root = new PyDict(root.map, root.ordered); // safetensors __metadata__ has no place in a torch file
    }
    const total = [...dict.map.values()].reduce<number>((a, v) => a + (v instanceof Tensor ? v.storage.byteLength : 0), 0);
    const want = [...out.map].filter(([, v]) => v instanceof Tensor) as [string, Tensor][];
    // Cheap verification before OUT is replaced (while the file is flushed): the temp
    // file's metadata (not its bytes) re-read, names, shapes and dtypes compared.
    const verify = async (tmp: string): Promise<void> => {
      let got: [string, Tensor][];
      try {
        got = [...findStateDict((await readCheckpoint(tmp)).root).dict.map].filter(([, v]) => v instanceof Tensor) as [string, Tensor][];
      } catch (e) {
        throw new PrefixError(`${output}: written file does not read back (${(e as Error).message}); ${output} left as it was`);
      }
      const same = want.length === got.length && want.every(([k, t], i) => got[i]![0] === k && got[i]![1].shape.join() === t.shape.join() && got[i]![1].dtype === t.dtype);
      if (!same) throw new PrefixError(`${output}: written file does not read back with the expected keys and shapes; ${output} left as it was`);
    };
    const replacesInput = sameFile(input, output); // before the rename makes it a new file
    const bar = progress('writing', Math.round(total / 2 ** 20), 'MB');
    try {
      await writeCheckpoint(output, root, { format: p.format, verify, onProgress: (done) => bar.update(Math.round(done / 2 ** 20)) });
    } finally {
      bar.stop();
    }
    const result = {
      input, output, format: p.format, wrapper: path, strip: p.strip ?? null, add: p.add ?? null,
      renamed: p.add !== undefined ? want.length : stripped, tensors: want.length, verified: true,
      first: want[0]?.[0] ?? null, replacedInput: replacesInput,
    };
    if (json) printJson(result);
    else {
      const what = [p.strip !== undefined ? `stripped '${p.strip}' from ${stripped} key(s)` : '', p.add !== undefined ? `added '${p.add}' to every key` : ''].filter(Boolean).join(', ');
      process.stdout.write(`${output}: ${what}${path.length ? `; wrapper ['${path.join("']['")}'] and its other entries kept` : ''}; re-read ${want.length} tensors: names and shapes as expected${replacesInput ? `; replaced the input ${input} (atomically)` : ''}\n`);
    }
  },
};
