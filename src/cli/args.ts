/**
 * Command-line parsing with our own one-line messages. Node's parseArgs does the work;
 * its errors (`Unknown option '--bogus'. To specify a positional argument ...` with an
 * unbalanced quote, `argument is ambiguous`) are replaced by ours, and a value that
 * starts with '-' (`--batch -3`, `--add -x`) is taken as the value, as users mean it,
 * so that the option's own check can say what is wrong with it.
 */
import { parseArgs } from 'node:util';
import { RepmlpError, UsageError } from '../errors.js';

export type ParseOptions = Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }>;

/** `--name value` where value starts with '-' and is not itself an option: `--name=value`. */
function attachDashValues(args: readonly string[], options: ParseOptions): string[] {
  const out: string[] = [];
  const isOption = (a: string) => {
    if (a === '--') return true;
    if (a.startsWith('--')) return Object.hasOwn(options, a.slice(2).split('=')[0]!);
    return a.length === 2 && Object.values(options).some((o) => o.short === a[1]);
  };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') {
      out.push(...args.slice(i));
      break;
    }
    const name = a.startsWith('--') && !a.includes('=') ? a.slice(2) : null;
    const next = args[i + 1];
    if (name !== null && Object.hasOwn(options, name) && options[name]!.type === 'string' && next !== undefined && next.startsWith('-') && next !== '-' && !isOption(next)) {
      out.push(`--${name}=${next}`);
      i++;
    } else out.push(a);
  }
  return out;
}

/** The option named in one of parseArgs' messages ('--bogus', '-x'). */
function optionIn(message: string): string {
  const m = /'(-{1,2}[^' <]+)/.exec(message);
  return m ? m[1]! : '';
}

export function parseCommandArgs(command: string, args: readonly string[], options: ParseOptions): { values: Record<string, unknown>; positionals: string[] } {
  const help = `(see repmlp ${command} --help)`;
  try {
    const r = parseArgs({ args: attachDashValues(args, options), options, allowPositionals: true, strict: true });
    return { values: r.values as Record<string, unknown>, positionals: r.positionals };
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const opt = optionIn(err.message);
    switch (err.code) {
      case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
        throw new UsageError(`${command}: unknown option ${opt || '(unreadable)'} ${help}`);
      case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
        if (/does not take an argument/.test(err.message)) throw new UsageError(`${command}: ${opt} is a flag and takes no value ${help}`);
        if (/argument missing/.test(err.message)) throw new UsageError(`${command}: ${opt} needs a value ${help}`);
        throw new UsageError(`${command}: bad value for ${opt || 'an option'} ${help}`);
      case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
        throw new UsageError(`${command}: unexpected argument ${help}`);
      default:
        throw new UsageError(`${command}: cannot read the arguments ${help}`);
    }
  }
}

/**
 * The one stderr line for an error: ours as they are; anything else is an internal
 * error, with advice to rerun with --debug unless this run has it (the stack is then
 * printed above).
 */
export function errorLine(e: unknown, debug: boolean): string {
  const msg = e instanceof RepmlpError ? e.message : `internal error: ${(e as Error)?.message ?? String(e)}${debug ? '' : ' (rerun with --debug for details)'}`;
  return `repmlp: error: ${msg.split('\n')[0]}\n`;
}
