/** The shape of one `repmlp` command: each lives in its own file under src/cli/. */
import { UsageError } from '../errors.js';

export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  multiple?: boolean;
  /** One line for --help, e.g. 'ARCH  preset name or config JSON'. */
  help: string;
}

export type OptionValues = Record<string, string | boolean | string[] | undefined>;

export interface CommandContext {
  positionals: string[];
  values: OptionValues;
  /** --json given: print machine-readable output on stdout, no progress bars. */
  json: boolean;
}

export interface Command {
  name: string;
  summary: string;
  /** e.g. 'repmlp inspect FILE [--json]' */
  usage: string;
  /** A command line a user can copy. */
  example: string;
  /** Optional: more lines for --help, after the options (e.g. the families a command knows). */
  details?(): string[];
  options: Record<string, OptionSpec>;
  /** Positional argument count allowed: [min, max] (max Infinity for IMAGE...). */
  positionals: [number, number];
  /**
   * Optional: rewrites this command's arguments before parsing (e.g. a flag whose value
   * is optional, which parseArgs cannot express).
   */
  preprocess?(args: string[]): string[];
  /** Returns the exit status (0 when omitted). Throws RepmlpError for bad input. */
  run(ctx: CommandContext): Promise<number | void>;
}

/** Reads a string option, or undefined. */
export function str(values: OptionValues, name: string): string | undefined {
  const v = values[name];
  return typeof v === 'string' ? v : undefined;
}

/** Reads a positive integer option. */
export function int(values: OptionValues, name: string, fallback?: number): number | undefined {
  const v = str(values, name);
  if (v === undefined) return fallback;
  if (!/^\d+$/.test(v) || Number(v) < 1) throw new UsageError(`--${name} ${v}: expected a positive integer`);
  return Number(v);
}

export function printJson(obj: unknown): void {
  process.stdout.write(jsonText(obj) + '\n');
}

/**
 * JSON.stringify escapes C0 controls but not DEL, C1 (U+009B is a CSI to many terminals)
 * or line/paragraph separators: those become \u escapes too, so --json output is
 * terminal-safe. They can only occur inside strings, where the escape means the same.
 */
export function jsonText(obj: unknown): string {
  return JSON.stringify(obj, (_k, v) => (typeof v === 'bigint' ? Number(v) : v), 2).replace(/[\u007f-\u009f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
