/**
 * The web app in Debian's Chromium (headless, puppeteer-core): every step of the page
 * driven on fixtures made by PyTorch, the downloads checked against PyTorch's numbers
 * (converted tensors <= 1e-5, exported logits <= 1e-4 relative), the predictions against
 * the CLI's, no console errors. Skipped with a message when Chromium is absent.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { FIXTURES, ROOT, tempDir, torchSkip, runPython } from './helpers/torch.js';
import { browserSkip, chooseFile, clickDownload, openApp, waitStep, type App } from './helpers/browser.js';
import { loadStateDictFile, readCheckpoint } from '../src/pth/checkpoint.js';
import { findStateDict } from '../src/pth/statedict.js';
import { ZipReader } from '../src/pth/zip.js';
import { MemorySource } from '../src/pth/source.js';
import { readNpy } from '../src/io/npy.js';
import { difference } from '../src/util/compare.js';

const skip = browserSkip();
if (skip) test('web app in Chromium', { skip }, () => {});

let app: App;
const tmp = tempDir('repmlp-web-test-');
const CLI = path.join(ROOT, 'dist/src/cli/main.js');

/** Relative difference of two tensors' values (max |a - b| / max |b|). */
function tensorRel(a: Float32Array, b: Float32Array): number {
  return difference(a, b).rel;
}

async function open(file: string, arch = ''): Promise<string> {
  await app.page.$eval('#arch', (e, v) => { (e as unknown as { value: string }).value = v as string; }, arch);
  await chooseFile(app, '#checkpoint', file);
  await waitStep(app, 'open', 120_000);
  return app.page.$eval('#summary', (e) => e.textContent ?? '');
}

function saved(name: string, bytes: Buffer): string {
  const p = path.join(tmp.dir, name);
  writeFileSync(p, bytes);
  return p;
}

async function npyOf(p: string): Promise<{ data: Float32Array; shape: number[] }> {
  const a = await readNpy(p);
  return { data: a.data as Float32Array, shape: [...a.shape] };
}

/** Downloads the page's ONNX and TF.js exports of the open checkpoint; both must give `want` (<= 1e-4). */
async function exportsGive(tag: string, x: { data: Float32Array; shape: number[] }, want: { data: Float32Array }): Promise<void> {
  const onnx = await clickDownload(app, '#export-onnx', /\.onnx$/);
  const { runOnnx } = await import('../src/export/onnx_runtime.js');
  const o = await runOnnx(new Uint8Array(onnx.bytes), x.data, x.shape);
  assert.ok(difference(o.data, want.data).rel <= 1e-4, `ONNX relative ${difference(o.data, want.data).rel}`);
  const zip = await clickDownload(app, '#export-tfjs', /-tfjs\.zip$/);
  const dir = path.join(tmp.dir, `${tag}-tfjs`);
  mkdirSync(dir, { recursive: true });
  const z = new ZipReader(new MemorySource(new Uint8Array(zip.bytes)));
  assert.ok(z.names.includes('model.json'), z.names.join(', '));
  for (const n of z.names) writeFileSync(path.join(dir, n), z.read(n));
  const { initBackend } = await import('../src/model/backend.js');
  await initBackend('wasm');
  const { loadTfjsGraph, runTfjsGraph } = await import('../src/export/tfjs_runtime.js');
  const g = await loadTfjsGraph(dir);
  const t = await runTfjsGraph(g, x.data, x.shape);
  g.dispose();
  assert.ok(difference(t.data, want.data).rel <= 1e-4, `TF.js relative ${difference(t.data, want.data).rel}`);
}

if (!skip) {
  before(async () => {
    app = await openApp();
  });
  after(async () => {
    await app?.close();
    tmp.cleanup();
  });

  test('step 1: the demo checkpoint: summary, tensor table and its filter', async () => {
    const summary = await open(path.join(FIXTURES, 'demo/repmlp-fmnist.pth'));
    assert.match(summary, /PyTorch zip checkpoint/);
    assert.match(summary, /state dict: under \['state_dict'\]/);
    assert.match(summary, /173 tensors/);
    assert.match(summary, /mode: train/);
    assert.match(summary, /custom RepMLP-ResNet/);
    assert.match(summary, /other entries: .*epoch=6/);
    const rows = await app.page.$$eval('#tensors tbody tr', (r) => r.length);
    assert.equal(rows, 173);
    await app.page.type('#filter', 'fc3.weight');
    const filtered = await app.page.$$eval('#tensors tbody tr', (r) => r.map((x) => x.textContent ?? ''));
    assert.ok(filtered.length >= 1 && filtered.length < 10, `${filtered.length} rows`);
    assert.ok(filtered.every((t) => t.includes('fc3.weight')));
    await app.page.$eval('#filter', (e) => { (e as unknown as { value: string }).value = ''; });
  });

  test('step 5: predictions on the demo samples equal the CLI\'s (labels, probabilities to 1e-4)', async () => {
    const images = ['ankle-boot.jpg', 'trouser.png'].map((f) => path.join(FIXTURES, 'demo/samples', f));
    await chooseFile(app, '#image', ...images);
    await app.page.click('#predict');
    await waitStep(app, 'predict', 180_000);
    const text = await app.page.$eval('#predictions', (e) => e.textContent ?? '');
    const cli = JSON.parse(spawnSync(process.execPath, [CLI, 'predict', path.join(FIXTURES, 'demo/repmlp-fmnist.pth'), ...images, '--json'], { encoding: 'utf8' }).stdout) as { file: string; top: { index: number; label: string; probability: number }[] }[];
    const blocks = text.split(/\n(?=\S)/).filter((b: string) => !b.startsWith('('));
    assert.equal(blocks.length, 2, text);
    cli.forEach((r, i) => {
      const lines = blocks[i]!.split('\n').slice(1);
      assert.equal(lines.length, 5);
      r.top.forEach((t, j) => {
        const m = /(\d+\.\d+)%\s+(.+) \((\d+)\)$/.exec(lines[j]!.trim())!;
        assert.equal(m[2], t.label);
        assert.equal(Number(m[3]), t.index);
        assert.ok(Math.abs(Number(m[1]) / 100 - t.probability) <= 1e-4, `${lines[j]} vs ${t.probability}`);
      });
    });
  });

  test('step 6: verify shows training-time vs deploy within 1e-4', async () => {
    await app.page.click('#verify');
    await waitStep(app, 'verify', 180_000);
    const text = await app.page.$eval('#verify-result', (e) => e.textContent ?? '');
    assert.match(text, /converted \(deploy\) model: max abs diff \S+, max rel diff (\S+) <= 0.0001  OK/);
    assert.match(text, /TF\.js graph export .* OK/);
    assert.match(text, /equivalent within/);
  });

  test('step 2: strip module. from a DDP checkpoint; torch.load reads it with the keys stripped', async () => {
    const src = path.join(FIXTURES, 'ckpt/ddp_wrapped.pth');
    const summary = await open(src);
    assert.match(summary, /keys prefixed 'module\.'/);
    const dl = await clickDownload(app, '#strip-prefix', /_stripped\.pth$/);
    const out = saved('stripped.pth', dl.bytes);
    const mine = findStateDict((await readCheckpoint(out)).root);
    const orig = findStateDict((await readCheckpoint(src)).root);
    assert.deepEqual([...mine.dict.map.keys()], [...orig.dict.map.keys()].map((k) => String(k).replace(/^module\./, '')));
    assert.deepEqual(mine.path, orig.path);
    if (!torchSkip()) {
      const check = runPython(['-c', `
import torch, sys
a = torch.load(sys.argv[1], weights_only=True); b = torch.load(sys.argv[2], weights_only=True)
def sd(o): return o['state_dict'] if 'state_dict' in o else o
sa, sb = sd(a), sd(b)
assert list(sa) == [k[len('module.'):] if k.startswith('module.') else k for k in sb], (list(sa)[:3], list(sb)[:3])
assert all(torch.equal(sa[k], sb['module.' + k]) for k in sa)
assert {k: v for k, v in a.items() if k != 'state_dict'}.keys() == {k: v for k, v in b.items() if k != 'state_dict'}.keys()
print('ok')`, out, src]);
      assert.equal(check.trim(), 'ok');
    }
  });

  test('step 3: convert (pth and safetensors) equals PyTorch\'s deploy weights to 1e-5', async () => {
    await open(path.join(FIXTURES, 'reparam/resnet_ddp.train.pth'));
    const ref = (await loadStateDictFile(path.join(FIXTURES, 'reparam/resnet_ddp.deploy.pth'))).stateDict;
    for (const format of ['pth', 'safetensors']) {
      await app.page.select('#convert-format', format);
      const dl = await clickDownload(app, '#convert', new RegExp(`_deploy\\.${format}$`));
      const got = (await loadStateDictFile(saved(`deploy.${format}`, dl.bytes))).stateDict;
      assert.deepEqual([...got.keys()], [...ref.keys()], 'keys and order as the release\'s convert');
      for (const [k, t] of ref) {
        if (t.dtype !== 'float32') continue;
        const r = tensorRel(got.get(k)!.toFloat32(), t.toFloat32());
        assert.ok(r <= 1e-5, `${format} ${k}: relative ${r}`);
      }
    }
    await app.page.select('#convert-format', 'pth');
  });

  for (const c of [
    { name: 'light_g1_r2', arch: false },
    { name: 'light_nonsquare_g2', arch: true },
  ]) {
    test(`step 4: ONNX and TF.js exports of ${c.name} give PyTorch's logits (<= 1e-4)`, async () => {
      const archJson = c.arch ? readFileSync(path.join(FIXTURES, `model/${c.name}.config.json`), 'utf8') : '';
      await open(path.join(FIXTURES, `model/${c.name}.train.pth`), archJson.replace(/\s+/g, ''));
      const x = await npyOf(path.join(FIXTURES, `model/${c.name}.input.npy`));
      const want = await npyOf(path.join(FIXTURES, `model/${c.name}.train.output.npy`));
      await exportsGive(c.name, x, want);
    });
  }

  // RepMLPNet (issue 12's family) through the page: the training script's own checkpoint
  // (yacs CfgNode config, read as inert data), converted and exported against PyTorch.
  test('RepMLPNet: the training-script checkpoint of net_a: summary, convert and both exports match PyTorch', async () => {
    const rmn = (f: string) => path.join(FIXTURES, 'repmlpnet', f);
    const summary = await open(rmn('net_a.ckpt_epoch_3.pth'));
    assert.match(summary, /custom RepMLPNet/);
    assert.match(summary, /mode: train/);
    assert.match(summary, /yacs\.config\.CfgNode/);
    const ref = (await loadStateDictFile(rmn('net_a.deploy.pth'))).stateDict;
    const dl = await clickDownload(app, '#convert', /_deploy\.pth$/);
    const got = (await loadStateDictFile(saved('net_a.deploy.pth', dl.bytes))).stateDict;
    assert.deepEqual([...got.keys()], [...ref.keys()], 'keys and order of the reference\'s locality_injection()');
    for (const [k, t] of ref) {
      if (t.dtype !== 'float32') continue;
      const r = tensorRel(got.get(k)!.toFloat32(), t.toFloat32());
      assert.ok(r <= 1e-5, `${k}: relative ${r}`);
    }
    const x = await npyOf(rmn('net_a.input.npy'));
    const want = await npyOf(rmn('net_a.train.logits.npy'));
    await exportsGive('net_a', x, want);
  });

  test('a file that is not a checkpoint: one error line naming it, and no console errors at all', async () => {
    await chooseFile(app, '#checkpoint', path.join(FIXTURES, 'demo/samples/trouser.png'));
    await app.page.waitForFunction('document.getElementById("error").textContent.length > 0', { timeout: 30_000 });
    const err = await app.page.$eval('#error', (e) => e.textContent ?? '');
    assert.match(err, /^repmlp: error: trouser\.png: not a checkpoint/);
    assert.ok(!err.includes('\n'));
    assert.deepEqual(app.errors, []);
  });
}
