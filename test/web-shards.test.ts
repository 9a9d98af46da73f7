/**
 * Exports that load where a web developer serves them: Chromium, stock
 * tf.loadGraphModel, a server sending `Cache-Control: no-store` over HTTP/1.1. With more
 * than 6 shards in flight Chromium stalls the loader with no error (measured: 84 x 4 MiB
 * never settles; 6 x 56 MiB loads in 2.6 s, 336 x 1 MiB in 6.1 s), so the default layout
 * is at most 6 shards. A ~100 MB export (a large classifier on the small fixture model)
 * is written with the default layout and with float16 / uint8 weights, served no-store,
 * loaded in the page and compared with the float32 graph run in Node.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { tempDir } from './helpers/torch.js';
import { browserSkip, ensureWebBuilt, launch, WEB_DIR } from './helpers/browser.js';
import { serveStatic } from '../src/cli/web.js';
import { writeTfjs } from '../src/export/tfjs.js';
import { buildGraph } from '../src/export/graph.js';
import { buildModel } from '../src/model/api.js';
import { parseConfig } from '../src/model/config.js';
import type { Browser } from 'puppeteer-core';
import type { Graph } from '../src/export/ir.js';

const skip = browserSkip();
if (skip) test('TF.js exports under no-store in Chromium', { skip }, () => {});

/** The fixture-sized light model with a 25000-class classifier: ~100 MB of float32 weights. */
function bigGraph(): Graph {
  const cfg = parseConfig({
    num_blocks: [1, 1, 1, 1], num_classes: 25000, block_type: 'light', img_H: 32, img_W: 32, h: 2, w: 2,
    reparam_conv_k: [1, 3], fc1_fc2_reduction: 1, fc3_groups: 2, widths: [32, 64, 128, 1024], stem_width: 16, in_channels: 3,
  });
  const model = buildModel(cfg, { deploy: true, seed: 3 });
  const g = buildGraph(cfg, model.stateDict());
  model.dispose();
  return g;
}

if (!skip) {
  let browser: Browser;
  let close: () => Promise<void>;
  let url: string;
  const tmp = tempDir('repmlp-web-shards-');
  let g: Graph;

  before(async () => {
    ensureWebBuilt();
    g = bigGraph();
    for (const w of ['float32', 'float16', 'uint8'] as const) await writeTfjs(path.join(tmp.dir, `big-${w}`), g, { weights: w });
    // Page and models from one no-store origin, as `http-server -c-1` serves them.
    const { cpSync } = await import('node:fs');
    cpSync(WEB_DIR, path.join(tmp.dir), { recursive: true });
    const s = await serveStatic(tmp.dir, { headers: { 'Cache-Control': 'no-store' } });
    url = s.url;
    browser = await launch();
    close = async () => {
      await browser.close();
      await new Promise((r) => s.server.close(r));
    };
  });
  after(async () => {
    await close?.();
    tmp.cleanup();
  });

  test('the default layout is at most 6 shards of >= 4 MiB', () => {
    const json = JSON.parse(readFileSync(path.join(tmp.dir, 'big-float32/model.json'), 'utf8'));
    const paths: string[] = json.weightsManifest[0].paths;
    assert.ok(paths.length > 1 && paths.length <= 6, `${paths.length} shards`);
    assert.deepEqual(readdirSync(path.join(tmp.dir, 'big-float32')).sort(), [...paths, 'model.json'].sort());
  });

  test('stock tf.loadGraphModel loads every encoding under no-store; float16/uint8 errors measured', async (t) => {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
    page.on('pageerror', (e) => errors.push((e as Error).message));
    page.setDefaultTimeout(240_000);
    await page.goto(url, { waitUntil: 'load' });
    await page.waitForSelector('body[data-ready="true"]');
    const r = await page.evaluate(async () => {
      const lib = (globalThis as unknown as { repmlp: any }).repmlp;
      await lib.setBackend('wasm');
      const x = lib.tf.randomNormal([2, 32, 32, 3], 0, 1, 'float32', 7);
      const out: Record<string, { seconds: number; logits: number[] } | string> = {};
      for (const w of ['float32', 'float16', 'uint8']) {
        const t0 = performance.now();
        const load = lib.loadGraphModel(`/big-${w}/model.json`);
        const timeout = new Promise((res) => setTimeout(() => res('did not settle in 120 s'), 120_000));
        const m = await Promise.race([load, timeout]);
        if (typeof m === 'string') { out[w] = m; continue; }
        const y = m.execute(x);
        out[w] = { seconds: (performance.now() - t0) / 1000, logits: Array.from(await y.data()) };
        y.dispose();
        m.dispose();
      }
      return out;
    });
    await page.close();
    const ref = r.float32;
    assert.ok(typeof ref !== 'string', `float32: ${ref}`);
    for (const w of ['float16', 'uint8']) {
      const got = r[w]!;
      assert.ok(typeof got !== 'string', `${w}: ${got}`);
      let maxAbs = 0;
      let maxRef = 0;
      ref.logits.forEach((v, i) => { maxAbs = Math.max(maxAbs, Math.abs(got.logits[i]! - v)); maxRef = Math.max(maxRef, Math.abs(v)); });
      t.diagnostic(`${w}: loaded in ${got.seconds.toFixed(1)} s; logits vs float32: max abs ${maxAbs.toExponential(2)}, relative ${(maxAbs / maxRef).toExponential(2)}`);
      assert.ok(maxAbs / maxRef < (w === 'float16' ? 1e-2 : 0.2), `${w}: relative ${maxAbs / maxRef}`);
    }
    t.diagnostic(`float32: loaded in ${ref.seconds.toFixed(1)} s`);
    assert.deepEqual(errors, []);
  });
}
