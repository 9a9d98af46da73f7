#!/usr/bin/env node
/**
 * `npm run web`: builds the static web app into dist/web/ (no CDN: everything it loads
 * is in that folder).
 *
 *   repmlp.mjs   the library as one browser ES module (src/web/lib.ts)
 *   worker.js    the page's worker: runs the library off the main thread, where
 *                FileReaderSync makes lazy Blob reads possible
 *   app.js       the page (src/web/app.ts); index.html, style.css
 *   *.wasm       TF.js's wasm backend binaries
 *
 * Node built-ins are mapped to small browser stand-ins (src/web/shim/): an in-memory
 * file system, so the library's own readers and writers run unchanged.
 */
import * as esbuild from 'esbuild';
import { copyFileSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist/web');
const shim = (f) => join(root, 'src/web/shim', f);
const minify = !process.argv.includes('--no-minify');

const BUILTINS = {
  fs: 'vfs.ts', 'fs/promises': 'fs-promises.ts', path: 'path.ts',
  crypto: 'misc.ts', os: 'misc.ts', module: 'misc.ts', perf_hooks: 'misc.ts', url: 'misc.ts', buffer: 'misc.ts',
  zlib: 'zlib.ts', child_process: 'misc.ts', readline: 'misc.ts', worker_threads: 'misc.ts', util: 'misc.ts',
};
const UNAVAILABLE = new Set(['onnxruntime-node', 'pngjs', 'cli-progress']);

/** node:* (and bare built-in names) -> src/web/shim; Node-only packages -> a stub. */
const shims = {
  name: 'repmlp-browser-shims',
  setup(build) {
    build.onResolve({ filter: /^(node:)?[a-z_/]+$/ }, (args) => {
      const name = args.path.replace(/^node:/, '');
      if (args.path.startsWith('node:') || (BUILTINS[name] && !args.importer.includes('node_modules'))) {
        const f = BUILTINS[name];
        if (!f) return { errors: [{ text: `no browser stand-in for ${args.path} (imported by ${args.importer})` }] };
        return { path: shim(f) };
      }
      return undefined;
    });
    // Node's globals (Buffer, process, setImmediate) for our own modules only: injected
    // everywhere, a `process` object would make TF.js take it for the global scope.
    const globalsFile = shim('globals.ts');
    build.onLoad({ filter: /[\\/]src[\\/].*\.ts$/ }, (args) => {
      let contents = readFileSync(args.path, 'utf8');
      if (args.path !== globalsFile) {
        const used = ['Buffer', 'process', 'setImmediate'].filter((g) => new RegExp(`\\b${g}\\b`).test(contents));
        if (used.length) contents = `import { ${used.join(', ')} } from ${JSON.stringify(globalsFile)};\n${contents}`;
      }
      return { contents, loader: 'ts' };
    });
    build.onResolve({ filter: /^(onnxruntime-node|pngjs|cli-progress)$/ }, (args) => (UNAVAILABLE.has(args.path) ? { path: shim('unavailable.ts') } : undefined));
  },
};

function typecheck() {
  const r = spawnSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'tsconfig.web.json')], { stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

const common = {
  bundle: true, format: 'esm', platform: 'browser', target: ['chrome110', 'firefox115', 'safari16'],
  minify, sourcemap: false, legalComments: 'none', logLevel: 'warning',
  define: { 'process.env.NODE_ENV': '"production"' },
};

async function main() {
  if (!process.argv.includes('--no-check')) typecheck();
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  await esbuild.build({
    ...common, entryPoints: { repmlp: join(root, 'src/web/lib.ts') }, outdir: out, outExtension: { '.js': '.mjs' },
    plugins: [shims], splitting: false,
  });
  // The page and its worker load the library from repmlp.mjs at run time (one copy).
  for (const [name, entry] of [['app', 'src/web/app.ts'], ['worker', 'src/web/worker.ts']]) {
    await esbuild.build({ ...common, entryPoints: { [name]: join(root, entry) }, outdir: out, external: ['./repmlp.mjs'] });
  }
  for (const f of ['index.html', 'style.css']) copyFileSync(join(root, 'src/web', f), join(out, f));
  const wasmDir = join(root, 'node_modules/@tensorflow/tfjs-backend-wasm/dist');
  for (const f of ['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm', 'tfjs-backend-wasm-threaded-simd.wasm']) copyFileSync(join(wasmDir, f), join(out, f));
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  writeFileSync(join(out, 'build.json'), JSON.stringify({ name: pkg.name, version: pkg.version }) + '\n');
  const size = (f) => statSync(join(out, f)).size;
  const kb = (n) => `${(n / 1024).toFixed(0)} KiB`;
  console.log(`dist/web: repmlp.mjs ${kb(size('repmlp.mjs'))}, app.js ${kb(size('app.js'))}, worker.js ${kb(size('worker.js'))}, wasm (simd) ${kb(size('tfjs-backend-wasm-simd.wasm'))}`);
}

main().catch((e) => {
  console.error(e.message ?? e);
  process.exit(1);
});
