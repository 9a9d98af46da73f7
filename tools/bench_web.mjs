#!/usr/bin/env node
/**
 * Page weight and speed of the web app (README "Web app"): bundle sizes, and the time to
 * inspect and to convert a checkpoint in headless Chromium (the page's own step timings,
 * window.repmlpTimings) against the CLI on the same machine, runs alternating, medians.
 * With --screenshots DIR, a PNG of each step of the page (demo checkpoint) is written.
 *
 *   npm run build && npm run web && node tools/bench_web.mjs CKPT [--runs 3] [--screenshots docs/web]
 *
 * Uses the browser helpers of the test suite (dist/test/helpers/browser.js).
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync, mkdirSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const { openApp, chooseFile, waitStep, clickDownload } = await import(path.join(root, 'dist/test/helpers/browser.js'));
const args = process.argv.slice(2);
const flag = (name) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const shots = flag('--screenshots') ?? null;
const runs = Number(flag('--runs') ?? 3) || 3;
const ckpt = args.find((a, i) => !a.startsWith('--') && !['--screenshots', '--runs'].includes(args[i - 1]));
const cli = path.join(root, 'dist/src/cli/main.js');
const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];

function timeCli(argv) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, [cli, ...argv], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

const web = path.join(root, 'dist/web');
const sizes = Object.fromEntries(readdirSync(web).map((f) => [f, statSync(path.join(web, f)).size]));
const kib = (n) => `${(n / 1024).toFixed(0)} KiB`;
console.log(`bundle: repmlp.mjs ${kib(sizes['repmlp.mjs'])}, app.js ${kib(sizes['app.js'])}, worker.js ${kib(sizes['worker.js'])}, index.html + style.css ${kib(sizes['index.html'] + sizes['style.css'])}; wasm ${kib(sizes['tfjs-backend-wasm-simd.wasm'])} (simd) / ${kib(sizes['tfjs-backend-wasm-threaded-simd.wasm'])} (threaded)`);

if (ckpt) {
  const out = path.join(path.dirname(ckpt), `.bench-web-${process.pid}.pth`);
  const t = { cliInspect: [], cliConvert: [], webInspect: [], webConvert: [] };
  for (let i = 0; i < runs; i++) {
    t.cliInspect.push(timeCli(['inspect', ckpt, '--json']));
    t.cliConvert.push(timeCli(['convert', ckpt, out]));
    const app = await openApp();
    app.page.setDefaultTimeout(600_000);
    await chooseFile(app, '#checkpoint', ckpt);
    await waitStep(app, 'open', 600_000);
    await clickDownload(app, '#convert', /_deploy\.pth$/, 600_000);
    const timings = await app.page.evaluate('window.repmlpTimings');
    t.webInspect.push(timings.open);
    t.webConvert.push(timings.convert);
    if (app.errors.length) console.log('page errors:', app.errors);
    await app.close();
  }
  spawnSync('rm', ['-f', out]);
  const s = (ms) => `${(median(ms) / 1000).toFixed(2)} s`;
  console.log(`${path.basename(ckpt)} (${(statSync(ckpt).size / 2 ** 20).toFixed(0)} MiB), median of ${runs}:`);
  console.log(`  inspect: Chromium ${s(t.webInspect)} (step, file chosen -> summary shown) vs CLI ${s(t.cliInspect)} (whole process)`);
  console.log(`  convert: Chromium ${s(t.webConvert)} (step, click -> download handed to the browser) vs CLI ${s(t.cliConvert)} (whole process, incl. read-back check and fsync)`);
  console.log(`  raw: ${JSON.stringify(Object.fromEntries(Object.entries(t).map(([k, v]) => [k, v.map(Math.round)])))}`);
}

if (shots) {
  mkdirSync(shots, { recursive: true });
  const app = await openApp();
  app.page.setDefaultTimeout(300_000);
  const page = app.page;
  await page.setViewport({ width: 1000, height: 1400, deviceScaleFactor: 1 });
  const shot = async (name, section) => {
    const el = await page.$(section);
    await el.screenshot({ path: path.join(shots, `${name}.png`) });
  };
  const demo = path.join(root, 'fixtures/demo/repmlp-fmnist.pth');
  // Step 2 on a DataParallel checkpoint (keys 'module.'-prefixed, wrapped).
  await chooseFile(app, '#checkpoint', path.join(root, 'fixtures/ckpt/ddp_wrapped.pth'));
  await waitStep(app, 'open');
  await clickDownload(app, '#strip-prefix', /_stripped\.pth$/);
  await shot('2-prefix', '#step-prefix');
  await chooseFile(app, '#checkpoint', demo);
  await waitStep(app, 'open');
  await page.type('#filter', 'repmlp.fc3');
  await shot('1-inspect', '#step-open');
  await clickDownload(app, '#convert', /_deploy\.pth$/);
  await shot('3-convert', '#step-convert');
  await clickDownload(app, '#export-onnx', /\.onnx$/);
  await clickDownload(app, '#export-tfjs', /\.zip$/);
  await shot('4-export', '#step-export');
  await chooseFile(app, '#image', path.join(root, 'fixtures/demo/samples/ankle-boot.jpg'), path.join(root, 'fixtures/demo/samples/trouser.png'));
  await page.click('#predict');
  await waitStep(app, 'predict');
  await shot('5-classify', '#step-predict');
  await page.click('#verify');
  await waitStep(app, 'verify');
  await shot('6-verify', '#step-verify');
  await page.screenshot({ path: path.join(shots, 'page.png'), fullPage: true });
  if (app.errors.length) console.log('page errors:', app.errors);
  await app.close();
  console.log(`screenshots in ${shots}`);
}
