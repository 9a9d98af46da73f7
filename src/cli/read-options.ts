/**
 * The options of every command that reads a checkpoint: which state dict (--entry) and
 * how strictly globals are held (--strict-globals). Spread READ_OPTIONS into a command's
 * `options`, and pass readOptions(values) to loadStateDictFile / readCheckpoint.
 */
import type { OptionSpec, OptionValues } from './command.js';
import type { LoadOptions } from '../pth/checkpoint.js';

export const READ_OPTIONS: Record<string, OptionSpec> = {
  entry: { type: 'string', help: "PATH  dotted key path to the state dict inside the checkpoint (e.g. state_dict_ema, model.ema); default: found by search (see inspect)" },
  'strict-globals': { type: 'boolean', help: "refuse every global outside torch's weights_only allow-list (default: unknown classes are kept as inert data, attack globals refused)" },
};

export function readOptions(values: OptionValues): LoadOptions {
  const entry = values.entry;
  return { ...(typeof entry === 'string' ? { entry } : {}), ...(values['strict-globals'] === true ? { strictGlobals: true } : {}) };
}
