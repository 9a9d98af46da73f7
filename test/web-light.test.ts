/**
 * The page on a full-size checkpoint: RepMLP-Res50-light-224 (349 MB, made with real
 * torch, tools/repmlp_ref.py): inspect, convert (the download is byte-identical to the
 * CLI's conversion), export TF.js (PyTorch's logits within 1e-4), classify (the CLI's
 * top-5). The page's verify step on it (~35 s on 2 cores) runs with REPMLP_BIG_TESTS=1.
 * Skipped with a message without Chromium or torch.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { FIXTURES, ROOT, presetCheckpoint, runPython, tempDir, torchSkip } from './helpers/torch.js';
import { browserSkip, chooseFile, clickDownload, openApp, waitStep, type App } from './helpers/browser.js';
import { ZipReader } from '../src/pth/zip.js';
import { MemorySource } from '../src/pth/source.js';
import { readNpy } from '../src/io/npy.js';
import { difference } from '../src/util/compare.js';

const skip = browserSkip() || torchSkip();
if (skip) test('web app on RepMLP-Res50-light-224', { skip }, () => {});

if (!skip) {
  let app: App;
  let ckpt: string;
  const tmp = tempDir('repmlp-web-light-');
  const CLI = path.join(ROOT, 'dist/src/cli/main.js');
  const image = path.join(FIXTURES, 'demo/samples/ankle-boot.jpg');

  before(async () => {
    ckpt = presetCheckpoint('RepMLP-Res50-light-224', 'train');
    app = await openApp();
    app.page.setDefaultTimeout(600_000);
  });
  after(async () => {
    await app?.close();
    tmp.cleanup();
  });

  test('inspect: preset and training-time form', async (t) => {
    await chooseFile(app, '#checkpoint', ckpt);
    await waitStep(app, 'open', 300_000);
    const s = await app.page.$eval('#summary', (e) => e.textContent ?? '');
    assert.match(s, /arch: RepMLP-Res50-light-224; mode: train/);
    assert.match(s, /536 tensors/);
    t.diagnostic(`inspect in the page: ${((await app.page.evaluate('window.repmlpTimings.open')) as number).toFixed(0)} ms`);
  });

  test('convert: the download is byte for byte the CLI\'s conversion', async (t) => {
    const dl = await clickDownload(app, '#convert', /_deploy\.pth$/, 600_000);
    const cliOut = path.join(tmp.dir, 'cli_deploy.pth');
    const r = spawnSync(process.execPath, [CLI, 'convert', ckpt, cliOut], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.ok(dl.bytes.equals(readFileSync(cliOut)), 'page and CLI conversions differ');
    t.diagnostic(`convert in the page: ${((await app.page.evaluate('window.repmlpTimings.convert')) as number).toFixed(0)} ms (${await app.page.$eval('#convert-result', (e) => e.textContent)})`);
  });

  test('export TF.js: default <= 6 shards, PyTorch\'s logits within 1e-4', async () => {
    const zip = await clickDownload(app, '#export-tfjs', /-tfjs\.zip$/, 600_000);
    const dir = path.join(tmp.dir, 'tfjs');
    mkdirSync(dir);
    const z = new ZipReader(new MemorySource(new Uint8Array(zip.bytes)));
    for (const n of z.names) writeFileSync(path.join(dir, n), z.read(n));
    const json = JSON.parse(readFileSync(path.join(dir, 'model.json'), 'utf8'));
    assert.ok(json.weightsManifest[0].paths.length <= 6, `${json.weightsManifest[0].paths.length} shards`);
    // PyTorch's logits of the training-time model on a seeded batch of one.
    const xs = path.join(tmp.dir, 'x.npy');
    const ys = path.join(tmp.dir, 'y.npy');
    runPython(['-c', [
      'import sys, torch, numpy as np',
      'from repmlp_ref import build_model',
      "m = build_model('RepMLP-Res50-light-224', deploy=False)",
      'm.load_state_dict(torch.load(sys.argv[1])); m.eval()',
      'x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(5))',
      'with torch.no_grad(): y = m(x)',
      'np.save(sys.argv[2], x.numpy()); np.save(sys.argv[3], y.numpy())',
    ].join('\n'), ckpt, xs, ys]);
    const x = await readNpy(xs);
    const y = await readNpy(ys);
    const { initBackend } = await import('../src/model/backend.js');
    await initBackend('wasm');
    const { loadTfjsGraph, runTfjsGraph } = await import('../src/export/tfjs_runtime.js');
    const g = await loadTfjsGraph(dir);
    const out = await runTfjsGraph(g, x.data as Float32Array, [...x.shape]);
    g.dispose();
    const d = difference(out.data, y.data as Float32Array);
    assert.ok(d.rel <= 1e-4, `relative ${d.rel}`);
  });

  test('classify: the CLI\'s top-5 (ImageNet defaults)', async () => {
    await chooseFile(app, '#image', image);
    await app.page.click('#predict');
    await waitStep(app, 'predict', 600_000);
    const text = await app.page.$eval('#predictions', (e) => e.textContent ?? '');
    const cli = JSON.parse(spawnSync(process.execPath, [CLI, 'predict', ckpt, image, '--json'], { encoding: 'utf8' }).stdout) as { top: { index: number; probability: number }[] }[];
    const got = [...text.matchAll(/(\d+\.\d+)%\s+.+ \((\d+)\)/g)].map((m) => ({ index: Number(m[2]), probability: Number(m[1]) / 100 }));
    assert.equal(got.length, 5, text);
    cli[0]!.top.forEach((c, i) => {
      assert.ok(Math.abs(got[i]!.probability - c.probability) <= 1e-4, `${i}: ${got[i]!.probability} vs ${c.probability}`);
      if (c.probability > 1e-3) assert.equal(got[i]!.index, c.index);
    });
  });

  test('verify in the page', { skip: process.env.REPMLP_BIG_TESTS === '1' ? false : 'set REPMLP_BIG_TESTS=1 to run verify on light-224 in the page (~35 s)' }, async () => {
    await app.page.click('#verify');
    await waitStep(app, 'verify', 600_000);
    assert.match(await app.page.$eval('#verify-result', (e) => e.textContent ?? ''), /equivalent within/);
    assert.deepEqual(app.errors, []);
  });
}
