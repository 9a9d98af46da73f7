/**
 * Real PyTorch as the source of truth. Debian's python3-torch lives under /usr/bin/python3
 * (the python3 on PATH may be another interpreter). Tests that need it call
 * `torchOrSkip(t)` and are skipped with a clear message when it is absent.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export const PYTHON = process.env.REPMLP_PYTHON ?? '/usr/bin/python3';
/** Repository root (tests run from dist/test/...). */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const FIXTURES = path.join(ROOT, 'fixtures');
export const TOOLS = path.join(ROOT, 'tools');

let cached: boolean | undefined;
export function hasTorch(): boolean {
  if (cached === undefined) {
    const r = spawnSync(PYTHON, ['-c', 'import torch, numpy'], { encoding: 'utf8' });
    cached = r.status === 0;
  }
  return cached;
}

export const NO_TORCH = `PyTorch not found at ${PYTHON} (apt-get install python3-torch python3-onnx); interop test skipped`;

/** For `test(name, { skip: torchSkip() }, ...)`: false when torch is there, else the reason. */
export function torchSkip(): false | string {
  return hasTorch() ? false : NO_TORCH;
}

/** Runs a python script (path or `-c` code) with real torch; throws with its stderr on failure. */
export function runPython(args: string[], opts: { input?: string; timeoutMs?: number } = {}): string {
  const r = spawnSync(PYTHON, args, {
    encoding: 'utf8', input: opts.input, timeout: opts.timeoutMs ?? 600_000, maxBuffer: 1 << 28,
    env: { ...process.env, OMP_NUM_THREADS: process.env.OMP_NUM_THREADS ?? '2', PYTHONPATH: TOOLS },
  });
  if (r.status !== 0) throw new Error(`python ${args.join(' ')} failed (${r.status}):\n${r.stderr}`);
  return r.stdout;
}

const made = new Set<string>();
let sweptTemps = false;

/**
 * A fresh temporary folder `<prefix>PID-XXXXXX`, removed by the returned function, and in
 * any case when this test process exits (a failed assertion before the cleanup); folders
 * of test processes that were killed are removed by the next one.
 */
export function tempDir(prefix = 'repmlp-test-'): { dir: string; cleanup: () => void } {
  if (!sweptTemps) {
    sweptTemps = true;
    for (const name of readdirSync(tmpdir())) {
      const m = /^repmlp-[\w-]*?-(\d+)-[A-Za-z0-9]{6}$/.exec(name);
      if (m && !pidAlive(Number(m[1]))) rmSync(path.join(tmpdir(), name), { recursive: true, force: true });
    }
    process.on('exit', () => {
      for (const d of made) rmSync(d, { recursive: true, force: true });
    });
  }
  const dir = mkdtempSync(path.join(tmpdir(), `${prefix.replace(/-?$/, '-')}${process.pid}-`));
  made.add(dir);
  return { dir, cleanup: () => {
    rmSync(dir, { recursive: true, force: true });
    made.delete(dir);
  } };
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The cache of presetCheckpoint() for this test run (the runner's pid). */
export function presetCacheDir(): string {
  return path.join(tmpdir(), `repmlp-test-cache-${process.ppid}`);
}

/**
 * A full-preset checkpoint made with real torch (tools/repmlp_ref.py, randomized BN
 * statistics), cached for the whole test run so that several test files share one
 * ~350 MB file instead of each building its own. `mode` 'deploy' builds the release-style
 * deploy model (random weights, not a conversion).
 */
export function presetCheckpoint(preset: string, mode: 'train' | 'deploy', seed = 0): string {
  const dir = presetCacheDir();
  if (!existsSync(dir)) {
    removeStaleCaches();
    mkdirSync(dir, { recursive: true });
  }
  const file = path.join(dir, `${preset}-${mode}-${seed}.pth`);
  if (!existsSync(file)) {
    const tmp = `${file}.tmp-${process.pid}`;
    runPython(['-c', [
      'import sys, torch',
      'from repmlp_ref import build_model, randomize',
      'torch.manual_seed(0)',
      `m = build_model(${JSON.stringify(preset)}, deploy=${mode === 'deploy' ? 'True' : 'False'})`,
      `randomize(m, ${seed})`,
      `torch.save(m.state_dict(), ${JSON.stringify(tmp)})`,
    ].join('\n')]);
    renameSync(tmp, file);
  }
  return file;
}

/** Caches of test runs that have ended (their runner's pid is gone) are removed. */
function removeStaleCaches(): void {
  for (const name of readdirSync(tmpdir())) {
    const m = /^repmlp-test-cache-(\d+)$/.exec(name);
    if (!m) continue;
    if (!pidAlive(Number(m[1]))) rmSync(path.join(tmpdir(), name), { recursive: true, force: true });
  }
}
