/**
 * RepMLPNet test material: the committed small fixtures (fixtures/repmlpnet, made by
 * tools/make_repmlpnet_fixtures.py) and the full RepMLPNet-T224 made on the fly with real
 * torch by tools/torch_repmlpnet_export.py (cached for the whole test run; callers skip
 * with NO_TORCH when torch is absent).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import assert from 'node:assert/strict';
import { FIXTURES, ROOT, TOOLS, runPython } from './torch.js';
import { readNpy, npyToFloat32 } from '../../src/io/npy.js';

export const RMN_DIR = path.join(FIXTURES, 'repmlpnet');
export const RMN_TOOL = path.join(TOOLS, 'torch_repmlpnet_export.py');
export const CLI = path.join(ROOT, 'dist', 'src', 'cli', 'main.js');
export const fx = (name: string): string => path.join(RMN_DIR, name);

export interface RmnCase {
  name: string;
  config: string;
  input_shape: number[];
  num_class: number;
  partitions: [number, number][];
  groups: number[];
  train_keys: number;
  deploy_keys: number;
}
export interface RmnCheckpoint {
  file: string;
  case: string;
  kind: 'training-script' | 'ddp' | 'release';
  entries?: string[];
  epoch?: number;
  max_accuracy?: number;
  logits: string;
  ema_logits?: string;
  prefix?: string;
  wrapper?: string[];
}
export interface RmnPredict {
  case: string;
  image: string;
  size: number;
  top: { index: number; probability: number }[];
  deploy_top: { index: number; probability: number }[];
}
export interface RmnManifest {
  cases: RmnCase[];
  checkpoints: RmnCheckpoint[];
  predict: RmnPredict[];
}

export const manifest: RmnManifest = JSON.parse(readFileSync(fx('manifest.json'), 'utf8')) as RmnManifest;
export const rmnCase = (name: string): RmnCase => {
  const c = manifest.cases.find((x) => x.name === name);
  assert.ok(c, `fixtures/repmlpnet has no case ${name}`);
  return c;
};

/** The built CLI in a child process. */
export function repmlp(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', cwd: ROOT, maxBuffer: 1 << 26, timeout: 900_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Runs the CLI and parses its --json output; fails the test with stderr otherwise. */
export function repmlpJson<T = Record<string, unknown>>(...args: string[]): T {
  const r = repmlp(...args, '--json');
  assert.equal(r.code, 0, `repmlp ${args.join(' ')}:\n${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

export async function npy(file: string): Promise<{ data: Float32Array; shape: number[] }> {
  const a = await readNpy(file);
  return { data: npyToFloat32(a), shape: a.shape };
}

/** max|a-b| / max|ref|: the brief's measure for logits and tensors. */
export function rel(got: ArrayLike<number>, ref: ArrayLike<number>): number {
  assert.equal(got.length, ref.length, 'lengths');
  let d = 0;
  let m = 0;
  for (let i = 0; i < ref.length; i++) {
    d = Math.max(d, Math.abs(got[i]! - ref[i]!));
    m = Math.max(m, Math.abs(ref[i]!));
  }
  return m === 0 ? d : d / m;
}

/** `repmlp run MODEL --input X --output Y [...]`, then Y against the reference logits. */
export async function runRel(model: string, input: string, refLogits: string, out: string, ...extra: string[]): Promise<number> {
  const r = repmlp('run', model, '--input', input, '--output', out, ...extra);
  assert.equal(r.code, 0, `repmlp run ${model}:\n${r.stderr}`);
  const got = await npy(out);
  const ref = await npy(refLogits);
  assert.deepEqual(got.shape, ref.shape, `${model}: logits shape`);
  return rel(got.data, ref.data);
}

/** onnx.checker.check_model(full_check=True) by path, through the family-independent tool. */
export function onnxCheck(file: string): { ir_version: number; opset: number[]; inputs: string[]; outputs: string[] } {
  return JSON.parse(runPython([path.join(TOOLS, 'torch_onnx_export.py'), 'check', file])) as {
    ir_version: number; opset: number[]; inputs: string[]; outputs: string[];
  };
}

export interface T224Set {
  dir: string;
  arch: 'RepMLPNet-T224';
  /** Training-time state dict (randomized BN statistics). */
  train: string;
  /** model.state_dict() after the reference's locality_injection() of that model. */
  deploy: string;
  /** The training script's checkpoint of the same model (optimizer, scheduler, CfgNode config). */
  script: string;
  x1: string;
  trainY1: string;
  /** Deploy-model logits for x1. */
  y1: string;
  meta: { input_size: number[]; train: [string, number[]][]; deploy: [string, number[]][] };
}

/**
 * RepMLPNet-T224 made with torch (~770 MB on disk with the training-script checkpoint),
 * once per test run: several test files share it through a cache folder named after the
 * runner's pid (test/helpers/torch.ts removes those of finished runs).
 */
export function t224(): T224Set {
  const cache = path.join(tmpdir(), `repmlp-test-cache-${process.ppid}`);
  const dir = path.join(cache, 'RepMLPNet-T224-0');
  if (!existsSync(path.join(dir, 'meta.json'))) {
    if (!existsSync(cache)) removeFinishedRunCaches();
    mkdirSync(cache, { recursive: true });
    const tmp = `${dir}.tmp-${process.pid}`;
    rmSync(tmp, { recursive: true, force: true });
    runPython([RMN_TOOL, 'prepare', 'RepMLPNet-T224', '--out', tmp, '--seed', '0', '--batches', '1', '--script'], { timeoutMs: 900_000 });
    renameSync(tmp, dir);
  }
  const f = (n: string) => path.join(dir, n);
  return {
    dir, arch: 'RepMLPNet-T224', train: f('train.pth'), deploy: f('deploy.pth'), script: f('script.pth'),
    x1: f('x1.npy'), trainY1: f('train_y1.npy'), y1: f('y1.npy'),
    meta: JSON.parse(readFileSync(f('meta.json'), 'utf8')) as T224Set['meta'],
  };
}

/**
 * The cache folders of test runs that have ended (runner pid gone), ~1 GB each with T224:
 * removed here too, since whichever helper creates this run's folder first must do it.
 * (Same rule as test/helpers/torch.ts; that one is not exported.)
 */
function removeFinishedRunCaches(): void {
  for (const name of readdirSync(tmpdir())) {
    const m = /^repmlp-test-cache-(\d+)$/.exec(name);
    if (!m) continue;
    try {
      process.kill(Number(m[1]), 0);
    } catch {
      rmSync(path.join(tmpdir(), name), { recursive: true, force: true });
    }
  }
}

/** torch.onnx.export of a deploy state dict (the benchmark's comparison file). */
export function torchOnnx(arch: string, deploy: string, out: string): string {
  runPython([RMN_TOOL, 'onnx', arch, '--weights', deploy, '--out', out], { timeoutMs: 900_000 });
  return out;
}
