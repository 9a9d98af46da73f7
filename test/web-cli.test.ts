/** `repmlp web`: serves dist/web on 127.0.0.1, prints the URL; static files only, nothing outside. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { ROOT } from './helpers/torch.js';
import { ensureWebBuilt } from './helpers/browser.js';
import { serveStatic } from '../src/cli/web.js';

test('repmlp web --port 0 prints its URL and serves the app, the library and the wasm', async (t) => {
  ensureWebBuilt();
  const p = spawn(process.execPath, [path.join(ROOT, 'dist/src/cli/main.js'), 'web', '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((r) => p.once('exit', (c) => r(c)));
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    p.stdout.on('data', (d) => {
      out += d;
      const m = /(http:\/\/127\.0\.0\.1:\d+\/)/.exec(out);
      if (m) resolve(m[1]!);
    });
    p.once('exit', (c) => reject(new Error(`exited ${c}`)));
  });
  const index = await fetch(url);
  assert.equal(index.status, 200);
  assert.match(await index.text(), /id="checkpoint"/);
  assert.equal(index.headers.get('cross-origin-opener-policy'), 'same-origin');
  const mjs = await fetch(url + 'repmlp.mjs');
  assert.match(mjs.headers.get('content-type') ?? '', /javascript/);
  assert.equal((await fetch(url + 'tfjs-backend-wasm-simd.wasm')).headers.get('content-type'), 'application/wasm');
  assert.equal((await fetch(url + '../package.json')).status, 404);
  assert.equal((await fetch(url + '%2e%2e/%2e%2e/package.json')).status, 404);
  p.kill('SIGINT');
  assert.equal(await exited, 0, 'Ctrl-C stops the server with status 0');
});

test('a port in use: one clear line', async (t) => {
  const { server, url } = await serveStatic(path.join(ROOT, 'dist/web'));
  t.after(() => server.close());
  const port = new URL(url).port;
  const p = spawn(process.execPath, [path.join(ROOT, 'dist/src/cli/main.js'), 'web', '--port', port], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  p.stderr.on('data', (d) => (err += d));
  const code = await new Promise((r) => p.once('exit', r));
  assert.equal(code, 1);
  assert.match(err, /^repmlp: error: cannot listen on 127\.0\.0\.1:\d+: port in use \(try --port N\)\n$/);
});
