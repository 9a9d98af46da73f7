/**
 * The two Node globals the library's modules mention, for the browser build (injected
 * by esbuild where the identifiers `Buffer` / `process` appear): a Buffer with the
 * handful of statics used (allocUnsafe, from, concat, isBuffer, ...) returning
 * Uint8Array subclasses, and a process object that has no signals to hook.
 */
const b64chars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

function toBase64(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i += 3) {
    const n = (b[i]! << 16) | ((b[i + 1] ?? 0) << 8) | (b[i + 2] ?? 0);
    s += b64chars[(n >> 18) & 63]! + b64chars[(n >> 12) & 63]! + (i + 1 < b.length ? b64chars[(n >> 6) & 63]! : '=') + (i + 2 < b.length ? b64chars[n & 63]! : '=');
  }
  return s;
}

class BufferShim extends Uint8Array {
  static isBuffer(x: unknown): boolean {
    return x instanceof BufferShim;
  }
  static allocUnsafe(n: number): BufferShim {
    return new BufferShim(n);
  }
  static alloc(n: number, fill = 0): BufferShim {
    return new BufferShim(n).fill(fill) as BufferShim;
  }
  static override from(x: unknown, enc?: unknown, len?: unknown): BufferShim {
    if (typeof x === 'string') {
      if (enc === 'base64') return BufferShim.from(Uint8Array.from(atob(x), (c) => c.charCodeAt(0)));
      return BufferShim.from(new TextEncoder().encode(x));
    }
    if (x instanceof ArrayBuffer) return new BufferShim(x, (enc as number) ?? 0, (len as number) ?? x.byteLength - ((enc as number) ?? 0));
    const src = x as ArrayLike<number>;
    const out = new BufferShim(src.length);
    out.set(src);
    return out;
  }
  static concat(list: readonly Uint8Array[], total?: number): BufferShim {
    const n = total ?? list.reduce((a, b) => a + b.byteLength, 0);
    const out = new BufferShim(n);
    let at = 0;
    for (const b of list) {
      out.set(b.subarray(0, Math.min(b.byteLength, n - at)), at);
      at += b.byteLength;
      if (at >= n) break;
    }
    return out;
  }
  static byteLength(s: string): number {
    return new TextEncoder().encode(s).byteLength;
  }
  static compare(a: Uint8Array, b: Uint8Array): number {
    const n = Math.min(a.length, b.length);
    for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! < b[i]! ? -1 : 1;
    return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
  }
  override toString(enc?: string): string {
    if (enc === 'base64') return toBase64(this);
    if (enc === 'hex') return [...this].map((x) => x.toString(16).padStart(2, '0')).join('');
    return new TextDecoder().decode(this);
  }
}

export const Buffer = BufferShim;

export const process = {
  pid: 1,
  env: {} as Record<string, string | undefined>,
  platform: 'browser',
  version: '',
  versions: {} as Record<string, string>,
  argv: [] as string[],
  execPath: '',
  cwd: () => '/',
  once: () => undefined,
  on: () => undefined,
  off: () => undefined,
  removeListener: () => undefined,
  // The only pid is ours: kill(pid, 0) (a liveness probe) finds it alive, any other not.
  kill: (pid: number) => {
    if (pid !== 1) throw Object.assign(new Error('no such process'), { code: 'ESRCH' });
    return true;
  },
  exit: () => undefined,
  cpuUsage: () => ({ user: 0, system: 0 }),
  resourceUsage: () => ({ maxRSS: 0 }),
  stdout: { isTTY: false, write: () => true },
  stderr: { isTTY: false, write: () => true },
};

/** Node's setImmediate (convert.ts schedules read-ahead with it): a macrotask here. */
export const setImmediate = (f: (...a: unknown[]) => void, ...args: unknown[]): ReturnType<typeof setTimeout> => setTimeout(f, 0, ...args);
