/**
 * The page: six steps over one chosen checkpoint, each a request to the worker (which
 * runs the library), with a progress bar, and the last error as one line in #error,
 * worded as the CLI words it. `window.repmlp` is the library module itself.
 */
import type * as Lib from './lib.js';

type LibT = typeof Lib;
const $ = <T extends HTMLElement = HTMLElement>(id: string): T => document.getElementById(id) as T;

const worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
let nextId = 0;
const pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void; progress?: (d: number, t: number) => void }>();

worker.onmessage = (ev: MessageEvent<{ id: number; type: string; value?: unknown; message?: string; stack?: string; done?: number; total?: number }>) => {
  const m = ev.data;
  const p = pending.get(m.id);
  if (!p) return;
  if (m.type === 'progress') return p.progress?.(m.done!, m.total!);
  pending.delete(m.id);
  if (m.type === 'result') p.resolve(m.value);
  else {
    // The stack of an internal error, for bug reports (not an error line of its own).
    if (m.stack && m.message?.startsWith('internal error')) console.debug(m.stack);
    p.reject(new Error(m.message));
  }
};
worker.onerror = (ev) => {
  ev.preventDefault();
  showError(`internal error: the worker failed (${ev.message || 'could not start'})`);
};

function call<T>(op: string, args: Record<string, unknown>, bar?: HTMLProgressElement): Promise<T> {
  const id = ++nextId;
  return new Promise<T>((resolve, reject) => {
    pending.set(id, {
      resolve: resolve as (v: unknown) => void, reject,
      progress: bar ? (d, t) => { bar.max = Math.max(1, t); bar.value = Math.min(d, t); } : undefined,
    });
    worker.postMessage({ id, op, args });
  });
}

function showError(msg: string): void {
  $('error').textContent = `repmlp: error: ${msg}`;
}

const busy = new Set<string>();

/** Runs one step: its bar shown (indeterminate until the worker reports), errors to #error. */
async function step(name: string, buttons: string[], work: (bar: HTMLProgressElement) => Promise<void>): Promise<void> {
  if (busy.has(name)) return;
  busy.add(name);
  const bar = $<HTMLProgressElement>(`progress-${name}`);
  bar.hidden = false;
  bar.removeAttribute('value');
  for (const b of buttons) $<HTMLButtonElement>(b).disabled = true;
  $('error').textContent = '';
  const t0 = performance.now();
  try {
    await work(bar);
    bar.max = 1;
    bar.value = 1;
    timings[name] = performance.now() - t0;
  } catch (e) {
    showError((e as Error).message);
    bar.hidden = true;
  } finally {
    for (const b of buttons) $<HTMLButtonElement>(b).disabled = false;
    busy.delete(name);
  }
}

/** Timings of the last run of each step (ms), for scripts and the README's figures. */
const timings: Record<string, number> = {};

function download(bytes: Uint8Array, name: string): void {
  const url = URL.createObjectURL(new Blob([bytes as BlobPart], { type: 'application/octet-stream' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

const mib = (n: number) => (n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : `${(n / 1024).toFixed(1)} KiB`);
/** #arch: a preset name, or a RepMLPResNet config as JSON text; empty: detected. */
function arch(): string | Record<string, unknown> | undefined {
  const v = $<HTMLInputElement>('arch').value.trim();
  if (!v.startsWith('{')) return v || undefined;
  try {
    return JSON.parse(v) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`architecture: invalid JSON: ${(e as Error).message}`);
  }
}

let lib: LibT | undefined;
let report: Lib.InspectReport | null = null;

function summaryText(r: Lib.InspectReport): string {
  const head = lib!.formatInspect({ ...r, entries: [] }).trimEnd();
  // A custom configuration is named by its family (read from the keys and shapes).
  const family = r.family === 'RepMLPResNet' ? 'RepMLP-ResNet' : r.family;
  const name = r.arch ?? (family ? `custom ${family} (architecture from the keys)` : r.mode ? 'not a network of a known family (give the architecture)' : 'not a network of a known family');
  return `${head}\narch: ${name}; mode: ${r.mode ?? 'unknown'}`;
}

function renderTable(filter: string): void {
  const body = $('tensors').querySelector('tbody')!;
  const f = filter.toLowerCase();
  const rows = (report?.entries ?? []).filter((e) => !f || `${e.name} ${e.dtype} [${e.shape.join(', ')}]`.toLowerCase().includes(f));
  body.replaceChildren(...rows.slice(0, 2000).map((e) => {
    const tr = document.createElement('tr');
    for (const v of [e.name, e.dtype, `[${e.shape.join(', ')}]`]) {
      const td = document.createElement('td');
      td.textContent = v;
      tr.append(td);
    }
    return tr;
  }));
  $('tensor-count').textContent = `${rows.length} of ${report?.entries.length ?? 0}${rows.length > 2000 ? ' (first 2000 shown)' : ''}`;
}

async function open(file: File): Promise<void> {
  await step('open', [], async (bar) => {
    report = null;
    $('summary').textContent = '';
    $('tensors-box').hidden = true;
    for (const id of ['prefix-result', 'convert-result', 'export-result', 'predictions', 'verify-result']) $(id).textContent = '';
    const r = await call<Lib.InspectReport>('open', { file }, bar);
    report = r;
    $('summary').textContent = summaryText(r);
    $('tensors-box').hidden = false;
    renderTable($<HTMLInputElement>('filter').value);
  });
}

async function init(): Promise<void> {
  lib = (await import(new URL('./repmlp.mjs', import.meta.url).href)) as LibT;
  (window as unknown as { repmlp: LibT }).repmlp = lib;
  (window as unknown as { repmlpTimings: Record<string, number> }).repmlpTimings = timings;
  $('presets').replaceChildren(...Object.keys(lib.PRESETS).map((n) => Object.assign(document.createElement('option'), { value: n })));

  const input = $<HTMLInputElement>('checkpoint');
  input.addEventListener('change', () => input.files?.[0] && open(input.files[0]));
  const drop = $('drop');
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    const f = e.dataTransfer?.files[0];
    if (f) open(f);
  });
  $<HTMLInputElement>('filter').addEventListener('input', (e) => renderTable((e.target as HTMLInputElement).value));

  const prefix = (mode: 'strip' | 'add') => step('prefix', ['strip-prefix', 'add-prefix'], async (bar) => {
    const value = $<HTMLInputElement>(`prefix-${mode}`).value;
    if (!value) throw new Error(`${mode}: give a prefix`);
    const r = await call<Lib.PrefixResult & { name: string }>('prefix', { [mode]: value }, bar);
    download(r.bytes, r.name);
    $('prefix-result').textContent = `${r.name}: ${mode === 'strip' ? `stripped '${value}' from ${r.renamed} key(s)` : `added '${value}' to every key`}${r.wrapper.length ? `; wrapper ['${r.wrapper.join("']['")}'] and its other entries kept` : ''} (${mib(r.bytes.byteLength)})`;
  });
  $('strip-prefix').addEventListener('click', () => prefix('strip'));
  $('add-prefix').addEventListener('click', () => prefix('add'));

  $('convert').addEventListener('click', () => step('convert', ['convert'], async (bar) => {
    const r = await call<Lib.ConvertResult & { name: string }>('convert', { format: $<HTMLSelectElement>('convert-format').value, arch: arch() }, bar);
    download(r.bytes, r.name);
    $('convert-result').textContent = `${r.name}: ${r.arch ?? 'model'}; ${r.blocks} RepMLP block(s)${r.units ? `, ${r.units} other block(s)` : ''} and ${r.convBnPairs} conv+BN pair(s) folded; ${r.tensorsIn} -> ${r.tensorsOut} tensors (${mib(r.bytes.byteLength)}; read ${(r.timings.read / 1000).toFixed(2)} s, convert + write ${(r.timings.convertAndWrite / 1000).toFixed(2)} s)`;
  }));

  $('export-onnx').addEventListener('click', () => step('export', ['export-onnx', 'export-tfjs'], async (bar) => {
    const r = await call<{ bytes: Uint8Array; name: string }>('export-onnx', { arch: arch() }, bar);
    download(r.bytes, r.name);
    $('export-result').textContent = `${r.name}: ONNX, input 'input' NCHW float32, output 'logits', dynamic batch (${mib(r.bytes.byteLength)})`;
  }));
  $('export-tfjs').addEventListener('click', () => step('export', ['export-onnx', 'export-tfjs'], async (bar) => {
    const shard = $<HTMLInputElement>('shard-size').value.trim();
    if (shard && !/^\d+$/.test(shard)) throw new Error(`shard size ${shard}: expected a number of bytes`);
    const weights = $<HTMLSelectElement>('weights').value;
    const r = await call<{ bytes: Uint8Array; name: string; shards: number }>('export-tfjs', { arch: arch(), weights, ...(shard ? { shardSize: Number(shard) } : {}) }, bar);
    download(r.bytes, r.name);
    $('export-result').textContent = `${r.name}: TF.js graph model (model.json + ${r.shards} shard(s), ${weights} weights), input NHWC (${mib(r.bytes.byteLength)})`;
  }));

  $('predict').addEventListener('click', () => step('predict', ['predict'], async (bar) => {
    const images = [...($<HTMLInputElement>('image').files ?? [])];
    if (!images.length) throw new Error('choose an image (JPEG or PNG) first');
    const cardFile = $<HTMLInputElement>('card').files?.[0];
    let meta: unknown;
    if (cardFile) {
      try {
        meta = JSON.parse(await cardFile.text());
      } catch (e) {
        throw new Error(`${cardFile.name}: invalid JSON: ${(e as Error).message}`);
      }
    }
    const r = await call<{ predictions: { file: string; top: Lib.Ranked[] }[]; backend: string; card: string }>('predict', { images, arch: arch(), ...(meta ? { meta } : {}) }, bar);
    const lines: string[] = [];
    for (const p of r.predictions) {
      lines.push(p.file);
      p.top.forEach((t, i) => lines.push(`  ${String(i + 1).padStart(2)}. ${`${(t.probability * 100).toFixed(2)}%`.padStart(7)}  ${t.label} (${t.index})`));
    }
    lines.push(`(converted model, TF.js ${r.backend}; preprocessing and labels: ${r.card})`);
    $('predictions').textContent = lines.join('\n');
  }));

  $('verify').addEventListener('click', () => step('verify', ['verify'], async (bar) => {
    const r = await call<Lib.VerifyResult>('verify', { arch: arch(), tfjs: true }, bar);
    const e = (x: number) => x.toExponential(2);
    $('verify-result').textContent = [
      `${r.arch}, random batch of ${r.batch} (seed ${r.seed}), TF.js ${r.backend}; reference: the training-time model`,
      `  converted (deploy) model: max abs diff ${e(r.maxAbsDiff)}, max rel diff ${e(r.maxRelDiff)} ${r.ok ? '<=' : '>'} ${r.tolerance}  ${r.ok ? 'OK' : 'FAIL'}`,
      ...(r.tfjs ? [`  TF.js graph export (tf.loadGraphModel): max abs diff ${e(r.tfjs.maxAbsDiff)}, max rel diff ${e(r.tfjs.maxRelDiff)}  ${r.tfjs.ok ? 'OK' : 'FAIL'}`] : []),
      `  ${r.ok && (r.tfjs?.ok ?? true) ? 'equivalent' : 'NOT equivalent'} within relative ${r.tolerance}`,
    ].join('\n');
    if (!r.ok || r.tfjs?.ok === false) showError(`verify: the converted model differs from the training-time model by relative ${e(Math.max(r.maxRelDiff, r.tfjs?.maxRelDiff ?? 0))} > ${r.tolerance}`);
  }));

  const build = await fetch(new URL('./build.json', import.meta.url)).then((r) => r.json()).catch(() => ({})) as { version?: string };
  $('footer').textContent = `repmlp ${build.version ?? ''} - the files you choose are read in this page only; nothing is uploaded.`;
  // The worker loads the library now, not when the first file is chosen.
  await call('ping', {});
  document.body.dataset.ready = 'true';
}

init().catch((e) => showError(`internal error: ${(e as Error).message}`));
