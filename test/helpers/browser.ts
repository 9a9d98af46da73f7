/**
 * Debian's Chromium driven by puppeteer-core (its own browser download cannot work
 * here), the built web app served from dist/web by `repmlp web`'s own server, and
 * downloads captured into a folder. Tests call `browserSkip()` and are skipped with a
 * message when Chromium is absent.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { Browser, Page } from 'puppeteer-core';
import { ROOT } from './torch.js';
import { serveStatic } from '../../src/cli/web.js';

const CANDIDATES = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'].filter(Boolean) as string[];
export const CHROMIUM = CANDIDATES.find((p) => existsSync(p)) ?? null;
export const WEB_DIR = path.join(ROOT, 'dist/web');

export function browserSkip(): false | string {
  return CHROMIUM ? false : `Chromium not found (tried ${CANDIDATES.join(', ')}; apt-get install chromium); browser test skipped`;
}

/** Builds dist/web when it is missing or older than the sources (npm test builds it too). */
export function ensureWebBuilt(): void {
  const out = path.join(WEB_DIR, 'repmlp.mjs');
  const newest = (dir: string): number => Math.max(...readdirSync(dir, { withFileTypes: true }).map((e) => (e.isDirectory() ? newest(path.join(dir, e.name)) : statSync(path.join(dir, e.name)).mtimeMs)));
  if (existsSync(out) && statSync(out).mtimeMs >= Math.max(newest(path.join(ROOT, 'src')), statSync(path.join(ROOT, 'tools/build_web.mjs')).mtimeMs)) return;
  const r = spawnSync(process.execPath, [path.join(ROOT, 'tools/build_web.mjs')], { encoding: 'utf8', cwd: ROOT });
  if (r.status !== 0) throw new Error(`npm run web failed:\n${r.stdout}\n${r.stderr}`);
}

export interface App {
  browser: Browser;
  page: Page;
  url: string;
  downloads: string;
  /** Console errors and page errors seen so far. */
  errors: string[];
  close(): Promise<void>;
}

export async function launch(): Promise<Browser> {
  const puppeteer = (await import('puppeteer-core')).default;
  return puppeteer.launch({
    executablePath: CHROMIUM!, headless: true,
    args: ['--no-sandbox', '--disable-dev-shm-usage', '--enable-unsafe-swiftshader', '--use-angle=swiftshader'],
  });
}

/** Opens the built app from a local server; downloads land in `app.downloads`. */
export async function openApp(opts: { headers?: Record<string, string> } = {}): Promise<App> {
  ensureWebBuilt();
  const { server, url } = await serveStatic(WEB_DIR, { ...(opts.headers ? { headers: opts.headers } : {}) });
  const browser = await launch();
  const downloads = mkdtempSync(path.join(tmpdir(), 'repmlp-web-dl-'));
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(`console: ${m.text()}`); });
  page.on('pageerror', (e) => errors.push(`pageerror: ${(e as Error).message}`));
  const cdp = await page.createCDPSession();
  await cdp.send('Browser.setDownloadBehavior', { behavior: 'allow', downloadPath: downloads, eventsEnabled: true });
  await page.setViewport({ width: 1000, height: 900 });
  await page.goto(url, { waitUntil: 'load' });
  await page.waitForSelector('body[data-ready="true"]', { timeout: 60_000 });
  return {
    browser, page, url, downloads, errors,
    async close() {
      await browser.close();
      await new Promise((r) => server.close(r));
      rmSync(downloads, { recursive: true, force: true });
    },
  };
}

/** Clicks `button` and waits for a download named like `match`; returns its bytes. */
export async function clickDownload(app: App, button: string, match: RegExp, timeoutMs = 300_000): Promise<{ name: string; bytes: Buffer }> {
  const before = new Set(readdirSync(app.downloads));
  await app.page.click(button);
  const t0 = Date.now();
  for (;;) {
    const err = await app.page.$eval('#error', (e) => e.textContent ?? '');
    if (err) throw new Error(`page error after ${button}: ${err}`);
    const done = readdirSync(app.downloads).filter((f) => !before.has(f) && match.test(f) && !f.endsWith('.crdownload'));
    if (done.length) {
      const f = path.join(app.downloads, done[0]!);
      // The file appears when complete (Chrome renames from .crdownload).
      return { name: done[0]!, bytes: readFileSync(f) };
    }
    if (Date.now() - t0 > timeoutMs) throw new Error(`no download matching ${match} after ${button}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Sets a file input. */
export async function chooseFile(app: App, selector: string, ...files: string[]): Promise<void> {
  const input = await app.page.$(selector);
  if (!input) throw new Error(`no ${selector}`);
  await (input as unknown as { uploadFile(...f: string[]): Promise<void> }).uploadFile(...files);
}

/** Waits until the step's progress bar is full or an error line appears. */
export async function waitStep(app: App, name: string, timeoutMs = 300_000): Promise<void> {
  // A string: this file is compiled without the DOM library.
  await app.page.waitForFunction(`(() => {
    const bar = document.getElementById('progress-${name}');
    return document.getElementById('error').textContent || (!bar.hidden && bar.hasAttribute('value') && bar.value === bar.max && !document.querySelector('#step-${name} button:disabled'));
  })()`, { timeout: timeoutMs, polling: 100 });
  const err = await app.page.$eval('#error', (e) => e.textContent ?? '');
  if (err) throw new Error(`page error in step ${name}: ${err}`);
}
