#!/usr/bin/env node
/**
 * The `repmlp` command (../shared/spec/cli.md). Commands load lazily so that `inspect`
 * does not pay for TensorFlow.js start-up. Errors: one line on stderr, exit 1, no stack
 * trace unless --debug.
 */
import { readFileSync } from 'node:fs';
import { UsageError } from '../errors.js';
import type { Command } from './command.js';
import { setQuiet } from './progress.js';
import { errorLine, parseCommandArgs } from './args.js';

const COMMANDS: Record<string, () => Promise<{ command: Command }>> = {
  inspect: () => import('./inspect.js'),
  prefix: () => import('./prefix.js'),
  run: () => import('./run.js'),
  convert: () => import('./convert.js'),
  verify: () => import('./verify.js'),
  export: () => import('./export.js'),
  predict: () => import('./predict.js'),
  eval: () => import('./eval.js'),
  bench: () => import('./bench.js'),
  demo: () => import('./demo.js'),
  web: () => import('./web.js'),
};

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

async function topHelp(): Promise<string> {
  const lines = ['Usage: repmlp <command> [options]   (repmlp <command> --help for details)', '', 'Commands:'];
  for (const [name, load] of Object.entries(COMMANDS)) {
    const { command } = await load();
    lines.push(`  ${name.padEnd(9)} ${command.summary}`);
  }
  lines.push('', 'Global options: --json (machine output), --debug (stack traces), --version, --help');
  return lines.join('\n');
}

function commandHelp(c: Command): string {
  const lines = [`Usage: ${c.usage}`, '', c.summary, ''];
  const opts = Object.entries(c.options);
  if (opts.length) {
    lines.push('Options:');
    for (const [name, o] of opts) lines.push(`  --${name}${o.type === 'string' ? ' ' + (o.help.split(/\s{2,}/)[0] ?? '') : ''}`.padEnd(30) + (o.help.split(/\s{2,}/)[1] ?? o.help));
    lines.push('');
  }
  if (c.details) lines.push(...c.details(), '');
  lines.push(`Example:\n  ${c.example}`);
  return lines.join('\n');
}

async function main(argv: string[]): Promise<number> {
  const debug = argv.includes('--debug');
  try {
    const name = argv[0];
    if (!name || name === '--help' || name === '-h' || name === 'help') {
      process.stdout.write((await topHelp()) + '\n');
      return name ? 0 : 1;
    }
    if (name === '--version' || name === '-v') {
      process.stdout.write(version() + '\n');
      return 0;
    }
    // A Map-like lookup: 'constructor' or 'toString' is no command.
    const load = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
    if (!load) throw new UsageError(`unknown command '${name}' (try repmlp --help)`); // escaped as every message is (errors.ts oneLine)
    const { command } = await load();
    const options: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = {
      json: { type: 'boolean' }, debug: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
    };
    for (const [k, o] of Object.entries(command.options)) options[k] = { type: o.type, ...(o.short ? { short: o.short } : {}), ...(o.multiple ? { multiple: true } : {}) };
    const args = command.preprocess ? command.preprocess(argv.slice(1)) : argv.slice(1);
    const parsed = parseCommandArgs(name, args, options);
    if (parsed.values.help) {
      process.stdout.write(commandHelp(command) + '\n');
      return 0;
    }
    const [min, max] = command.positionals;
    const n = parsed.positionals.length;
    if (n < min || n > max) throw new UsageError(`${name}: expected ${min === max ? min : `${min}${max === Infinity ? ' or more' : `-${max}`}`} argument(s), got ${n}; usage: ${command.usage}`);
    const json = parsed.values.json === true;
    setQuiet(json);
    const rc = await command.run({ positionals: parsed.positionals, values: parsed.values as Record<string, string | boolean | string[] | undefined>, json });
    return rc ?? 0;
  } catch (e) {
    if (debug) console.error(e);
    process.stderr.write(errorLine(e, debug));
    return 1;
  }
}

// `repmlp inspect x.pth | head`: a closed pipe ends the output, not with a crash.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
}

main(process.argv.slice(2)).then((rc) => {
  process.exitCode = rc;
});
