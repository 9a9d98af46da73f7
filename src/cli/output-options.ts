/**
 * The options of every command that writes a checkpoint: the output format (from
 * --format, else OUT's extension, else the input's format) and the output size bound
 * (--max-output, checked before anything is written; src/pth/layout.ts).
 */
import { statSync } from 'node:fs';
import * as path from 'node:path';
import type { OptionSpec, OptionValues } from './command.js';
import { str } from './command.js';
import { UsageError } from '../errors.js';
import type { LayoutOptions } from '../pth/layout.js';
import { formatBytes } from '../pth/layout.js';

export type OutputFormat = 'zip' | 'safetensors';

/**
 * Default output bound: 4x the input file, at least 64 MiB. A rewrite (prefix) or a
 * conversion writes about what it read; safetensors copies of tied weights can double it.
 * A file that would grow further (stride-0 views written contiguous) is refused unless
 * the user says how much is fine.
 */
export const MAX_OUTPUT_FACTOR = 4;
export const MAX_OUTPUT_FLOOR = 64 * 2 ** 20;

export const OUTPUT_OPTIONS: Record<string, OptionSpec> = {
  'max-output': { type: 'string', help: `SIZE  refuse to write more tensor data than SIZE (e.g. 8GiB, 500M; default ${MAX_OUTPUT_FACTOR}x the input, at least ${formatBytes(MAX_OUTPUT_FLOOR)}); giving it also allows expanded views` },
};

const TORCH_EXTENSIONS = new Set(['.pth', '.pt', '.bin', '.tar', '.ckpt', '.pkl', '.pth.tar']);

/**
 * --format when given (zip / pth or safetensors), else OUT's extension (.safetensors;
 * .pth .pt .bin .tar .ckpt .pkl: torch zip), else the input's format.
 */
export function outputFormatFor(values: OptionValues, output: string, inputFormat: 'zip' | 'legacy' | 'safetensors' | undefined, command: string): OutputFormat {
  const f = str(values, 'format');
  if (f !== undefined) {
    if (f === 'zip' || f === 'pth') return 'zip';
    if (f === 'safetensors') return 'safetensors';
    throw new UsageError(`${command}: --format ${f}: expected pth (torch zip) or safetensors`);
  }
  const ext = path.extname(output).toLowerCase();
  if (ext === '.safetensors') return 'safetensors';
  if (TORCH_EXTENSIONS.has(ext)) return 'zip';
  return inputFormat === 'safetensors' ? 'safetensors' : 'zip';
}

// A Map: the unit is user input ('constructor' is no unit).
const UNITS = new Map<string, number>(Object.entries({ '': 1, b: 1, k: 2 ** 10, kb: 2 ** 10, kib: 2 ** 10, m: 2 ** 20, mb: 2 ** 20, mib: 2 ** 20, g: 2 ** 30, gb: 2 ** 30, gib: 2 ** 30, t: 2 ** 40, tb: 2 ** 40, tib: 2 ** 40 }));

/** '8GiB', '500M', '1.5g', '123456' (bytes); units are powers of 1024. */
export function parseSize(text: string, flag = '--max-output'): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  const unit = m ? UNITS.get(m[2]!.toLowerCase()) : undefined;
  if (!m || unit === undefined) throw new UsageError(`${flag} ${text}: expected a size such as 8GiB, 500M or 1000000 (bytes)`);
  const v = Number(m[1]) * unit;
  if (!Number.isFinite(v) || v <= 0) throw new UsageError(`${flag} ${text}: expected a positive size`);
  return Math.floor(v);
}

/** The layout bounds for writing from `input`: --max-output, or the default relative to the input's size. */
export function outputBounds(values: OptionValues, input: string): LayoutOptions {
  const given = str(values, 'max-output');
  if (given !== undefined) {
    const n = parseSize(given);
    return { maxOutput: n, maxOutputSource: `--max-output ${given}`, maxExpansion: Infinity };
  }
  let size = 0;
  try {
    size = statSync(input).size;
  } catch {
    // the reader reports a missing input; no bound beyond the floor is needed for it
  }
  const n = Math.max(MAX_OUTPUT_FACTOR * size, MAX_OUTPUT_FLOOR);
  return { maxOutput: n, maxOutputSource: `default: ${MAX_OUTPUT_FACTOR}x the input's ${formatBytes(size)}, at least ${formatBytes(MAX_OUTPUT_FLOOR)}` };
}

/** True when `output` names the same file as `input` (written atomically over it). */
/** One rule for "is OUT the input" (inode, else path), shared with the atomic writer. */
export { sameFile } from '../io/atomic.js';

/**
 * `__metadata__` for a safetensors file written from a torch checkpoint, which has none:
 * `{"format": "pt"}`, as transformers' save_pretrained writes it (and some transformers
 * versions require when loading: `metadata.get("format")` on a file without metadata fails).
 */
export const TORCH_SAFETENSORS_METADATA: ReadonlyMap<string, string> = new Map([['format', 'pt']]);
