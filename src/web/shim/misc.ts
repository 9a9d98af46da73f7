/**
 * The browser build's stand-ins for the small Node built-ins the library touches
 * (build: tools/build_web.mjs maps each `node:` module here). What a page cannot do
 * (child processes, native bindings) throws an error naming it.
 */
import * as zod from 'zod';

// node:crypto
export function randomBytes(n: number): { toString(enc: string): string } {
  const b = crypto.getRandomValues(new Uint8Array(n));
  return { toString: () => [...b].map((x) => x.toString(16).padStart(2, '0')).join('') };
}

// node:os
export function cpus(): unknown[] {
  return Array.from({ length: globalThis.navigator?.hardwareConcurrency ?? 1 }, () => ({}));
}
export function tmpdir(): string {
  return '/tmp';
}
export function platform(): string {
  return 'browser';
}
export function release(): string {
  return '';
}

// node:module: config.ts requires zod lazily in Node; bundled here.
export function createRequire(): (name: string) => unknown {
  return (name: string) => {
    if (name === 'zod') return zod;
    throw new Error(`require('${name}') is not available in the browser build`);
  };
}

// node:perf_hooks
export const performance = globalThis.performance;

// node:url
export function fileURLToPath(u: string | URL): string {
  return new URL(String(u)).pathname;
}

// node:buffer
export const constants = { MAX_LENGTH: 2 ** 31 - 1 };

function unavailable(what: string): never {
  throw new Error(`${what} is not available in a browser`);
}
// node:child_process, node:readline, node:worker_threads
export function spawn(): never {
  return unavailable('spawning processes');
}
export function spawnSync(): never {
  return unavailable('spawning processes');
}
export function execFile(): never {
  return unavailable('spawning processes');
}
export function createInterface(): never {
  return unavailable('readline');
}
export const isMainThread = true;
export class Worker {
  constructor() {
    unavailable('node:worker_threads');
  }
}
export default {};
