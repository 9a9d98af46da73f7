/**
 * `repmlp web [--port N]`: serves the web app that `npm run web` built into dist/web/ on
 * 127.0.0.1 (static files only: the page does all the work, nothing is uploaded).
 */
import * as http from 'node:http';
import { createReadStream, existsSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Command, int } from './command.js';
import { RepmlpError } from '../errors.js';

export class WebError extends RepmlpError {
  override name = 'WebError';
}

/** dist/web next to this file's dist/src/cli/. */
export const WEB_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../web');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8', '.json': 'application/json', '.wasm': 'application/wasm', '.png': 'image/png',
  '.jpg': 'image/jpeg', '.bin': 'application/octet-stream', '.onnx': 'application/octet-stream',
};

export interface ServeOptions {
  port?: number;
  host?: string;
  /** Extra response headers, e.g. {'Cache-Control': 'no-store'} (tests of stock loading). */
  headers?: Record<string, string>;
  /**
   * Cross-origin isolation headers (COOP/COEP, default on): they give the page
   * SharedArrayBuffer, so TF.js's wasm backend runs multi-threaded.
   */
  isolated?: boolean;
}

const ISOLATION = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' };

/** A static file server for `root` (no directory listings, nothing outside root). */
export function serveStatic(root: string, opts: ServeOptions = {}): Promise<{ server: http.Server; url: string }> {
  const base = path.resolve(root);
  const server = http.createServer((req, res) => {
    let rel: string;
    try {
      rel = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    } catch {
      res.writeHead(400).end('bad request');
      return;
    }
    if (rel.endsWith('/')) rel += 'index.html';
    const file = path.resolve(base, '.' + rel);
    if ((file !== base && !file.startsWith(base + path.sep)) || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405).end();
      return;
    }
    res.writeHead(200, {
      'Content-Type': TYPES[path.extname(file).toLowerCase()] ?? 'application/octet-stream',
      'Content-Length': statSync(file).size,
      ...(opts.isolated ?? true ? ISOLATION : {}),
      ...opts.headers,
    });
    if (req.method === 'HEAD') res.end();
    else createReadStream(file).pipe(res);
  });
  return new Promise((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => reject(new WebError(`cannot listen on ${opts.host ?? '127.0.0.1'}:${opts.port ?? 0}: ${e.code === 'EADDRINUSE' ? 'port in use (try --port N)' : e.message}`)));
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => {
      const a = server.address() as { port: number };
      resolve({ server, url: `http://${opts.host ?? '127.0.0.1'}:${a.port}/` });
    });
  });
}

export const command: Command = {
  name: 'web',
  summary: 'serve the web app (built by `npm run web`) on 127.0.0.1: inspect, fix, convert, export and classify in a browser',
  usage: 'repmlp web [--port N]',
  example: 'repmlp web --port 8080',
  options: {
    port: { type: 'string', help: 'N  port to listen on (default 8080; 0 picks a free one)' },
  },
  positionals: [0, 0],
  async run({ values }) {
    const portText = values.port;
    const port = portText === '0' ? 0 : int(values, 'port', 8080)!;
    if (port > 65535) throw new WebError(`--port ${port}: expected 0..65535`);
    if (!existsSync(path.join(WEB_ROOT, 'index.html'))) throw new WebError(`${WEB_ROOT}: the web app is not built; run \`npm run web\` first`);
    const { server, url } = await serveStatic(WEB_ROOT, { port });
    process.stdout.write(`repmlp web: serving ${WEB_ROOT} at ${url} (Ctrl-C to stop)\n`);
    // Ctrl-C / SIGTERM: stop listening and drop idle keep-alive connections, then exit 0.
    await new Promise<void>((resolve) => {
      const stop = () => {
        server.close(() => resolve());
        server.closeAllConnections();
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    return 0;
  },
};
