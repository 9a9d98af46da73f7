/** The browser build's `node:path`: POSIX paths over the in-memory file system (vfs.ts). */
export const sep = '/';

export function normalize(p: string): string {
  const abs = p.startsWith('/');
  const out: string[] = [];
  for (const s of p.split('/')) {
    if (s === '' || s === '.') continue;
    if (s === '..' && out.length && out[out.length - 1] !== '..') out.pop();
    else if (s !== '..' || !abs) out.push(s);
  }
  const r = (abs ? '/' : '') + out.join('/');
  return r || (abs ? '/' : '.');
}
export function join(...parts: string[]): string {
  return normalize(parts.filter((s) => s !== '').join('/'));
}
export function isAbsolute(p: string): boolean {
  return p.startsWith('/');
}
export function resolve(...parts: string[]): string {
  let r = '';
  for (const p of parts) r = isAbsolute(p) ? p : `${r}/${p}`;
  return normalize(isAbsolute(r) ? r : '/' + r);
}
export function dirname(p: string): string {
  const n = normalize(p);
  const i = n.lastIndexOf('/');
  if (i < 0) return '.';
  return i === 0 ? '/' : n.slice(0, i);
}
export function basename(p: string, ext?: string): string {
  const b = normalize(p).split('/').pop() ?? '';
  return ext && b.endsWith(ext) && b !== ext ? b.slice(0, -ext.length) : b;
}
export function extname(p: string): string {
  const b = basename(p);
  const i = b.lastIndexOf('.');
  return i <= 0 ? '' : b.slice(i);
}
export function relative(from: string, to: string): string {
  const a = resolve(from).split('/').filter(Boolean);
  const b = resolve(to).split('/').filter(Boolean);
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return [...a.slice(i).map(() => '..'), ...b.slice(i)].join('/');
}
export const posix = { sep, normalize, join, isAbsolute, resolve, dirname, basename, extname, relative };
export default posix;
