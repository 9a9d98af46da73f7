/**
 * The benchmark behind `repmlp bench` / `npm run bench`: what the toolkit does (read +
 * write, convert, export, inference per backend and runtime), side by side with PyTorch
 * on the same machine in the same run when torch is installed. Jobs that the issues
 * compare "whole process" run as child processes for both toolkits, each reporting its
 * own peak RSS.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { RepmlpError } from '../errors.js';
import { networkInfo, resolveArch } from '../family/registry.js';

export class BenchError extends RepmlpError {
  override name = 'BenchError';
}

export interface BenchRow {
  model: string;
  job: string;
  unit: 's' | 'ms/img';
  ours: number | null;
  torch: number | null;
  /** ours / torch for times: below 1 is faster. */
  ratio: number | null;
  target: string;
  met: boolean | null;
  oursRssMb?: number | null;
  torchRssMb?: number | null;
  note?: string;
}

export interface BenchOptions {
  /** A training-time checkpoint; default: the light and bottleneck presets, made with torch. */
  model?: string;
  arch?: string;
  presets?: string[];
  /** Timed inference runs after one warm-up. */
  iters: number;
  /** Rounds of each whole-process job (medians reported). */
  repeat: number;
  /** Skip the release's convert.py steps in PyTorch (~6 s per round for the light preset). */
  quick: boolean;
  /** Which jobs to time (default all); what a later job needs is made untimed when missing. */
  jobs?: ReadonlySet<BenchJob>;
  /** Where made checkpoints and outputs live. */
  dir: string;
  onStep?: (label: string) => void;
}

export const BENCH_JOBS = ['io', 'convert', 'export', 'infer'] as const;
export type BenchJob = (typeof BENCH_JOBS)[number];

export interface BenchReport {
  machine: Record<string, string | number>;
  rows: BenchRow[];
}

const HERE = path.dirname(fileURLToPath(import.meta.url));
const MAIN = path.resolve(HERE, '../cli/main.js');
const TOOLS = path.resolve(HERE, '../../../tools');
const PYTHON = process.env.REPMLP_PYTHON ?? '/usr/bin/python3';

/** Node children report their peak RSS through this preload (KB, from resourceUsage). */
const RSS_HOOK = `data:text/javascript,${encodeURIComponent(
  "import fs from 'node:fs'; process.on('exit', () => { const f = process.env.REPMLP_BENCH_RSS; if (f) fs.writeFileSync(f, String(process.resourceUsage().maxRSS)); });",
)}`;

interface ProcResult {
  seconds: number;
  rssMb: number | null;
  stdout: string;
}

function runNode(args: string[], dir: string): ProcResult {
  const rssFile = path.join(dir, `.rss-${process.pid}`);
  const t = performance.now();
  const r = spawnSync(process.execPath, ['--import', RSS_HOOK, MAIN, ...args], {
    encoding: 'utf8', maxBuffer: 1 << 26, env: { ...process.env, REPMLP_BENCH_RSS: rssFile },
  });
  const seconds = (performance.now() - t) / 1000;
  if (r.status !== 0) throw new BenchError(`repmlp ${args.join(' ')} failed: ${(r.stderr || '').trim().split('\n').pop()}`);
  const rss = fs.existsSync(rssFile) ? Number(fs.readFileSync(rssFile, 'utf8')) / 1024 : null;
  fs.rmSync(rssFile, { force: true });
  return { seconds, rssMb: rss, stdout: r.stdout };
}

/** Runs a tools/ script as __main__ and prints its peak RSS as a last JSON line. */
const PY_RSS_WRAPPER = [
  'import atexit, json, resource, runpy, sys',
  "atexit.register(lambda: print(json.dumps({'peak_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})))",
  'sys.argv = sys.argv[1:]',
  "runpy.run_path(sys.argv[0], run_name='__main__')",
].join('\n');

function runPy(args: string[]): ProcResult {
  const t = performance.now();
  const r = spawnSync(PYTHON, ['-c', PY_RSS_WRAPPER, ...args], {
    encoding: 'utf8', maxBuffer: 1 << 26, env: { ...process.env, OMP_NUM_THREADS: '2', PYTHONPATH: TOOLS },
  });
  const seconds = (performance.now() - t) / 1000;
  if (r.status !== 0) throw new BenchError(`python ${args.join(' ')} failed: ${(r.stderr || '').trim().split('\n').pop()}`);
  const last = r.stdout.trim().split('\n').pop() ?? '';
  let rss: number | null = null;
  try {
    rss = (JSON.parse(last) as { peak_rss_mb?: number }).peak_rss_mb ?? null;
  } catch {
    /* the job printed no JSON */
  }
  return { seconds, rssMb: rss, stdout: r.stdout };
}

/**
 * The PyTorch-side scripts of a family: the RepMLP-ResNet's (bench_torch.py,
 * reparam_ref.py, torch_onnx_export.py) or RepMLPNet's (torch_repmlpnet_export.py, one
 * script with the same subcommands and arguments).
 */
interface TorchSide {
  make: string;
  io: string;
  /** Script and its trailing mode for `convert IN OUT ARCH MODE` (the release's own steps, float32). */
  convert: string;
  onnx: string;
  eager: string;
}

function torchSide(arch: string): TorchSide {
  const t = (f: string) => path.join(TOOLS, f);
  if (resolveArch(arch).family.name === 'RepMLPNet') {
    const one = t('torch_repmlpnet_export.py');
    return { make: one, io: one, convert: one, onnx: one, eager: one };
  }
  return { make: t('bench_torch.py'), io: t('bench_torch.py'), convert: t('reparam_ref.py'), onnx: t('torch_onnx_export.py'), eager: t('torch_onnx_export.py') };
}

export function torchAvailable(): boolean {
  return spawnSync(PYTHON, ['-c', 'import torch, onnx'], { encoding: 'utf8' }).status === 0;
}

function machine(hasTorch: boolean): Record<string, string | number> {
  const m: Record<string, string | number> = {
    cpu: os.cpus()[0]?.model ?? 'unknown', cores: os.cpus().length, memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version, platform: `${os.platform()} ${os.release()}`, date: new Date().toISOString().slice(0, 10),
  };
  if (hasTorch) m.torch = spawnSync(PYTHON, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' }).stdout.trim();
  return m;
}

function row(model: string, job: string, unit: BenchRow['unit'], ours: number | null, torch: number | null, target: string, check: ((r: number) => boolean) | null, extra: Partial<BenchRow> = {}): BenchRow {
  const ratio = ours !== null && torch !== null && torch > 0 ? ours / torch : null;
  return { model, job, unit, ours, torch, ratio, target, met: ratio !== null && check ? check(ratio) : null, ...extra };
}

/** Runs ours and theirs in turn, `n` times; the run with the median time of each. */
function alternate(n: number, ours: () => ProcResult, theirs: (() => ProcResult) | null): [ProcResult, ProcResult | null] {
  const a: ProcResult[] = [];
  const b: ProcResult[] = [];
  for (let i = 0; i < n; i++) {
    a.push(ours());
    if (theirs) b.push(theirs());
  }
  const median = (xs: ProcResult[]) => [...xs].sort((x, y) => x.seconds - y.seconds)[xs.length >> 1]!;
  return [median(a), b.length ? median(b) : null];
}

type Timings = Record<string, { minMs: number; medianMs: number; ratioToFirst: number }>;

/**
 * Every runtime loaded once, then timed in rotation (src/export/bench.ts pairedLatency):
 * TF.js training-time and deploy, onnxruntime on our file and on torch's, PyTorch eager
 * in child processes. Paired ratios stay meaningful on a machine with background load.
 */
async function timeInference(train: string, deploy: string, onnx: string, torchOnnx: string | null, arch: string, shape: readonly [number, number, number, number], hasTorch: boolean, iters: number): Promise<{ backend: string; timings: Timings }> {
  const { fromCheckpoint, predictLogits, initBackend } = await import('../model/index.js');
  const { openOnnx } = await import('../export/onnx_runtime.js');
  const { pairedLatency, onnxRunner, eagerRunner, benchInput } = await import('../export/bench.js');
  const backend = await initBackend('wasm');
  const x = benchInput(shape);
  const tfjsRunner = async (ckpt: string) => {
    const { model } = await fromCheckpoint(ckpt, { arch });
    return async () => {
      const t0 = performance.now();
      await predictLogits(model, x, shape);
      return performance.now() - t0;
    };
  };
  const sessions = [await openOnnx(onnx, { threads: 2 })];
  const runners: Record<string, () => Promise<number>> = {
    'ort-ours': onnxRunner(sessions[0]!, shape),
    'tfjs-train': await tfjsRunner(train),
    'tfjs-deploy': await tfjsRunner(deploy),
  };
  const closers: (() => void)[] = [];
  if (torchOnnx) {
    sessions.push(await openOnnx(torchOnnx, { threads: 2 }));
    runners['ort-torch'] = onnxRunner(sessions[1]!, shape);
  }
  if (hasTorch) {
    const tool = torchSide(arch).eager;
    const et = await eagerRunner(PYTHON, tool, arch, train, 2, true);
    const ed = await eagerRunner(PYTHON, tool, arch, deploy, 2, false);
    runners['eager-train'] = et.run;
    runners['eager-deploy'] = ed.run;
    closers.push(et.close, ed.close);
  }
  try {
    return { backend, timings: await pairedLatency(runners, iters, 1) };
  } finally {
    for (const c of closers) c();
    for (const sess of sessions) await sess.release();
  }
}

/** One model's jobs. `arch` is what both toolkits are told (preset name or JSON path). */
/** Reads a file through one small buffer: page cache warm, this process stays small. */
function warmPageCache(file: string): void {
  const fd = fs.openSync(file, 'r');
  const buf = Buffer.allocUnsafe(1 << 24);
  try {
    while (fs.readSync(fd, buf, 0, buf.length, null) > 0);
  } finally {
    fs.closeSync(fd);
  }
}

interface ModelCase {
  label: string;
  trainCkpt: string;
  /** What both toolkits are told (preset name or JSON path). */
  arch: string;
}

function caseDir(opts: BenchOptions, label: string): string {
  return path.join(opts.dir, label.replace(/[^\w.-]/g, '_'));
}

/**
 * Whole-process jobs of every model run first, while this process is still small: on
 * Linux a child's peak RSS starts from its parent's RSS at fork, so children spawned after
 * the inference timings (TF.js heaps of hundreds of MB) would report inflated peaks.
 */
async function benchCases(cases: ModelCase[], hasTorch: boolean, opts: BenchOptions): Promise<BenchRow[]> {
  const proc = cases.map((m) => processJobs(m, hasTorch, opts));
  const rows: BenchRow[] = [];
  for (const [i, m] of cases.entries()) rows.push(...proc[i]!, ...(timed(opts, 'infer') ? await inferenceJobs(m, hasTorch, opts) : []));
  return rows;
}

const RSS_CHECK_MIN_MB = 100;

function timed(opts: BenchOptions, job: BenchJob): boolean {
  return opts.jobs?.has(job) ?? true;
}

/** One model's whole-process jobs (read + write, convert, export). */
function processJobs(m: ModelCase, hasTorch: boolean, opts: BenchOptions): BenchRow[] {
  const { label, trainCkpt, arch } = m;
  const rows: BenchRow[] = [];
  const dir = caseDir(opts, label);
  fs.mkdirSync(dir, { recursive: true });
  const out = (n: string) => path.join(dir, n);
  const fileMb = fs.statSync(trainCkpt).size / 1e6;
  // A memory bound relative to the file means something for large checkpoints only: a
  // bare Node process is already ~50 MB.
  const rssOk = (rss: number | null, times: number) => fileMb < RSS_CHECK_MIN_MB || (rss ?? Infinity) < times * fileMb;
  const rssNote = (times: number) => `RSS < ${times}x file${fileMb < RSS_CHECK_MIN_MB ? ` (checked from ${RSS_CHECK_MIN_MB} MB)` : ''}`;
  const step = (s: string) => opts.onStep?.(`${label}: ${s}`);

  // Whole-process jobs: the input is read once first (page cache warm for both), then
  // ours and PyTorch's alternate `repeat` times and the medians are compared.
  warmPageCache(trainCkpt);
  if (timed(opts, 'io')) {
    step(`read + write (prefix rewrite), ${opts.repeat} rounds`);
    const [io, tio] = alternate(opts.repeat,
      () => runNode(['prefix', trainCkpt, out('io.pth'), '--add', 'bench.'], dir),
      hasTorch ? () => runPy([torchSide(arch).io, 'io', trainCkpt, out('io-torch.pth')]) : null);
    rows.push(row(label, 'read + write checkpoint', 's', io.seconds, tio?.seconds ?? null, `<= 0.4x, ${rssNote(2)}`, (r) => r <= 0.4 && rssOk(io.rssMb, 2),
      { oursRssMb: io.rssMb, torchRssMb: tio?.rssMb ?? null, note: `file ${fileMb < 10 ? fileMb.toFixed(2) : fileMb.toFixed(0)} MB; medians of ${opts.repeat} alternating runs` }));
  }

  const convertArgs = ['convert', trainCkpt, out('deploy.pth'), '--arch', arch];
  const later = timed(opts, 'export') || timed(opts, 'infer');
  if (timed(opts, 'convert')) {
    const withTorch = hasTorch && !opts.quick;
    step(`convert${withTorch ? " (and the release's steps in PyTorch, float32 as the release computes)" : ''}, ${opts.repeat} rounds`);
    const [conv, tconv] = alternate(opts.repeat,
      () => runNode(convertArgs, dir),
      withTorch ? () => runPy([torchSide(arch).convert, 'convert', trainCkpt, out('deploy-torch.pth'), arch, 'release32']) : null);
    // The 0.05x target is the RepMLP-ResNet's (issue 9); RepMLPNet's has only the memory bound.
    const net = resolveArch(arch).family.name === 'RepMLPNet';
    rows.push(row(label, 'convert (whole process)', 's', conv.seconds, tconv?.seconds ?? null, net ? rssNote(3) : `<= 0.05x, ${rssNote(3)}`, (r) => (net || r <= 0.05) && rssOk(conv.rssMb, 3),
      { oursRssMb: conv.rssMb, torchRssMb: tconv?.rssMb ?? null, note: hasTorch && opts.quick ? 'PyTorch side skipped (--quick)' : net
        ? "PyTorch: the repository's convert.py steps (build, torch.load, unwrap, strip module., load_state_dict, locality_injection in float32, torch.save)"
        : "PyTorch: the release's steps (build, torch.load, load_state_dict, deepcopy, identity-conv conversion in float32, torch.save)" }));
  } else if (later && !fs.existsSync(out('deploy.pth'))) {
    step('convert (untimed: export/inference need the deploy checkpoint)');
    runNode(convertArgs, dir);
  }

  const exportArgs = ['export', out('deploy.pth'), '--arch', arch, '--onnx', out('model.onnx'), '--tfjs', out('tfjs')];
  if (timed(opts, 'export')) {
    step('export ONNX + TF.js');
    const exp = runNode(exportArgs, dir);
    rows.push(row(label, 'export ONNX + TF.js (incl. self-check)', 's', exp.seconds, null, '', null, { oursRssMb: exp.rssMb }));
  } else if (timed(opts, 'infer') && !fs.existsSync(out('model.onnx'))) {
    step('export (untimed: inference needs the ONNX file)');
    runNode(exportArgs, dir);
  }
  return rows;
}

/** One model's in-process inference timings (after processJobs wrote its exports). */
async function inferenceJobs(m: ModelCase, hasTorch: boolean, opts: BenchOptions): Promise<BenchRow[]> {
  const { label, trainCkpt, arch } = m;
  const rows: BenchRow[] = [];
  const out = (n: string) => path.join(caseDir(opts, label), n);
  const step = (s: string) => opts.onStep?.(`${label}: ${s}`);
  const { input } = networkInfo(resolveArch(arch).config as object);
  const shape = [1, input.C, input.H, input.W] as const;
  if (hasTorch) {
    step('torch.onnx.export of the same deploy model');
    runPy([torchSide(arch).onnx, 'onnx', arch, '--weights', out('deploy.pth'), '--out', out('torch.onnx')]);
  }
  step(`inference, batch 1: ${opts.iters} rounds per runtime, in rotation`);
  const { backend, timings: t } = await timeInference(trainCkpt, out('deploy.pth'), out('model.onnx'), hasTorch ? out('torch.onnx') : null, arch, shape, hasTorch, opts.iters);
  const tfTrain = t['tfjs-train']!.medianMs;
  const tfDeploy = t['tfjs-deploy']!.medianMs;
  const eTrain = t['eager-train']?.medianMs ?? null;
  const eDeploy = t['eager-deploy']?.medianMs ?? null;
  const speedup = t['tfjs-train']!.ratioToFirst / t['tfjs-deploy']!.ratioToFirst;
  rows.push(row(label, `TF.js ${backend}, training-time, batch 1`, 'ms/img', tfTrain, eTrain, '', null, { note: 'torch column: PyTorch eager, training-time' }));
  // The 4x target is the RepMLP-ResNet's (its training-time RepMLPs carry 3 conv branches
  // and avg.bn); RepMLPNet's local branches are small depthwise convs: figure reported only.
  const resnet = resolveArch(arch).family.name !== 'RepMLPNet';
  rows.push(row(label, `TF.js ${backend}, deploy, batch 1`, 'ms/img', tfDeploy, eDeploy, resnet ? 'deploy >= 4x faster than training-time' : '', null,
    { note: `training/deploy = ${speedup.toFixed(2)}x (paired); torch column: PyTorch eager, deploy` }));
  if (resnet) rows[rows.length - 1]!.met = speedup >= 4;
  const ort = t['ort-ours']!;
  rows.push(row(label, 'onnxruntime-node, our ONNX, batch 1, 2 threads', 'ms/img', ort.medianMs, eDeploy, '>= 1.5x faster than PyTorch eager', (r) => r <= 1 / 1.5, { note: 'torch column: PyTorch eager, deploy' }));
  const ortTorch = t['ort-torch'];
  if (ortTorch) {
    rows.push(row(label, 'onnxruntime-node, ours vs torch.onnx.export file', 'ms/img', ort.medianMs, ortTorch.medianMs, 'no slower (<= 1.0x, 5% noise allowed)', (r) => r <= 1.05,
      { note: `torch column: onnxruntime on torch.onnx.export's file; paired ratio ${(ort.ratioToFirst / ortTorch.ratioToFirst).toFixed(3)}x` }));
  }
  return rows;
}

/** What `npm run bench` times without a MODEL: both 2021 presets and RepMLPNet-T224. */
export const DEFAULT_PRESETS = ['RepMLP-Res50-light-224', 'RepMLP-Res50-bottleneck-224', 'RepMLPNet-T224'];

export async function runBench(opts: BenchOptions): Promise<BenchReport> {
  const hasTorch = torchAvailable();
  fs.mkdirSync(opts.dir, { recursive: true });
  const rows: BenchRow[] = [];
  if (opts.model) {
    const arch = opts.arch;
    if (!arch) throw new BenchError('bench MODEL needs --arch ARCH (so both toolkits build the same network)');
    rows.push(...(await benchCases([{ label: path.basename(opts.model), trainCkpt: opts.model, arch }], hasTorch, opts)));
    return { machine: machine(hasTorch), rows };
  }
  if (!hasTorch) throw new BenchError(`PyTorch not found at ${PYTHON}: give a training checkpoint (repmlp bench MODEL --arch ARCH) or install python3-torch python3-onnx to make the presets`);
  const cases: ModelCase[] = [];
  for (const preset of opts.presets ?? DEFAULT_PRESETS) {
    const ckpt = path.join(opts.dir, `${preset}-train.pth`);
    if (!fs.existsSync(ckpt)) {
      opts.onStep?.(`${preset}: making the training checkpoint with PyTorch`);
      runPy([torchSide(preset).make, 'make', preset, ckpt]);
    }
    cases.push({ label: preset, trainCkpt: ckpt, arch: preset });
  }
  rows.push(...(await benchCases(cases, hasTorch, opts)));
  return { machine: machine(hasTorch), rows };
}

const fmt = (v: number | null | undefined, unit: string) => (v === null || v === undefined ? '-' : unit === 's' ? `${v.toFixed(2)} s` : `${v.toFixed(1)} ms`);

/** The table people read: one row per job, ours beside PyTorch with the ratio. */
export function formatBench(r: BenchReport): string {
  const head = ['model', 'job', 'ours', 'PyTorch', 'ratio', 'peak RSS ours/torch', 'target', 'met'];
  const body = r.rows.map((x) => [
    x.model, x.job, fmt(x.ours, x.unit), fmt(x.torch, x.unit), x.ratio === null ? '-' : `${x.ratio.toFixed(3)}x`,
    x.oursRssMb || x.torchRssMb ? `${x.oursRssMb ? x.oursRssMb.toFixed(0) : '-'} / ${x.torchRssMb ? x.torchRssMb.toFixed(0) : '-'} MB` : '',
    x.target, x.met === null ? '' : x.met ? 'yes' : 'NO',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  const notes = r.rows.filter((x) => x.note).map((x) => `  ${x.model} / ${x.job}: ${x.note}`);
  const m = r.machine;
  return [
    `Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB; Node ${m.node}${m.torch ? `; PyTorch ${m.torch} (2 threads)` : ''}; ${m.date}`,
    '', line(head), line(widths.map((w) => '-'.repeat(w))), ...body.map(line),
    ...(notes.length ? ['', 'Notes:', ...notes] : []),
  ].join('\n');
}
