/**
 * Nothing an output does destroys what was there (issue 14): export targets that are the
 * input, a file where a folder is expected, a folder holding someone else's files or a
 * foreign model.json; a failed export check leaves the old outputs as they were;
 * `convert IN IN` / `prefix IN IN` say they replaced the input. Temporary files are
 * anonymous (O_TMPFILE) so SIGKILL leaves nothing; the named fallback is swept by the
 * next write once its process is gone; SIGTERM is honoured at once in long work.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { FIXTURES, ROOT, tempDir } from './helpers/torch.js';
import { writeCheckpoint } from '../src/pth/index.js';
import { PyDict, type PyKey, type PyValue } from '../src/pth/pyobj.js';
import { Storage, Tensor } from '../src/tensor.js';
import { sweepStaleTemps, writeBytesAtomic } from '../src/io/atomic.js';

const MAIN = path.join(ROOT, 'dist/src/cli/main.js');
const DIR = path.join(FIXTURES, 'export', 'custom');
const ARCH = path.join(FIXTURES, 'export', 'custom.json');

function repmlp(args: string[], env: Record<string, string> = {}): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, ...env } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function oneLineError(r: ReturnType<typeof repmlp>, re: RegExp): void {
  assert.equal(r.code, 1, r.stderr);
  const lines = r.stderr.split('\n').filter(Boolean);
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0]!, re);
}

const hidden = (dir: string) => readdirSync(dir).filter((f) => f.startsWith('.'));

test('export refuses targets that would destroy data: the input as --onnx or --tfjs, a file as --tfjs, a foreign model.json', () => {
  const { dir, cleanup } = tempDir();
  try {
    const input = path.join(dir, 'in.pth');
    copyFileSync(path.join(DIR, 'train.pth'), input);
    const before = readFileSync(input);
    oneLineError(repmlp(['export', input, '--arch', ARCH, '--onnx', input]), /--onnx .*in\.pth: is the input checkpoint/);
    oneLineError(repmlp(['export', input, '--arch', ARCH, '--tfjs', input]), /--tfjs .*in\.pth: is the input checkpoint/);
    // the same file by another path
    oneLineError(repmlp(['export', input, '--arch', ARCH, '--onnx', path.join(dir, '.', 'x', '..', 'in.pth')]), /is the input checkpoint/);
    assert.deepEqual(readFileSync(input), before);
    const file = path.join(dir, 'notes.txt');
    writeFileSync(file, 'my notes');
    oneLineError(repmlp(['export', input, '--arch', ARCH, '--tfjs', file]), /--tfjs .*notes\.txt: exists and is a file, not a folder/);
    assert.equal(readFileSync(file, 'utf8'), 'my notes');
    const foreign = path.join(dir, 'web');
    mkdirSync(foreign);
    writeFileSync(path.join(foreign, 'model.json'), '{"name": "my web app"}');
    oneLineError(repmlp(['export', input, '--arch', ARCH, '--tfjs', foreign]), /web[/\\]model\.json: exists and is not a TF\.js model\.json; not replaced/);
    assert.equal(readFileSync(path.join(foreign, 'model.json'), 'utf8'), '{"name": "my web app"}');
    const adir = path.join(dir, 'adir');
    mkdirSync(adir);
    oneLineError(repmlp(['export', input, '--arch', ARCH, '--onnx', adir]), /--onnx .*adir: is a folder; give a file name/);
    assert.deepEqual(hidden(dir), []);
  } finally {
    cleanup();
  }
});

test('run refuses --output that is the model or the input batch', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const model = path.join(dir, 'm.pth');
    copyFileSync(path.join(DIR, 'train.pth'), model);
    const x = path.join(dir, 'x.npy');
    copyFileSync(path.join(DIR, 'x2.npy'), x);
    const before = readFileSync(model);
    oneLineError(repmlp(['run', model, '--arch', ARCH, '--input', x, '--output', model]), /run: --output .*m\.pth is the model; choose another name$/);
    oneLineError(repmlp(['run', model, '--arch', ARCH, '--input', x, '--output', x]), /run: --output .*x\.npy is the input batch; choose another name$/);
    assert.deepEqual(readFileSync(model), before);
  } finally {
    cleanup();
  }
});

test('export --tfjs into an existing folder replaces only model.json and its shards; other files stay', () => {
  const { dir, cleanup } = tempDir();
  try {
    const out = path.join(dir, 'site');
    mkdirSync(out);
    writeFileSync(path.join(out, 'index.html'), '<p>mine</p>');
    writeFileSync(path.join(out, 'group1-shard7of9.bin'), 'not listed by any model.json: not ours');
    let r = repmlp(['export', path.join(DIR, 'train.pth'), '--arch', ARCH, '--tfjs', out]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(readdirSync(out).sort(), ['group1-shard1of1.bin', 'group1-shard7of9.bin', 'index.html', 'model.json']);
    // An old export with more shards: its shards are ours (listed by its model.json), replaced/removed.
    const mj = JSON.parse(readFileSync(path.join(out, 'model.json'), 'utf8'));
    mj.weightsManifest[0].paths = ['group1-shard1of2.bin', 'group1-shard2of2.bin', '../outside.bin'];
    writeFileSync(path.join(out, 'model.json'), JSON.stringify(mj));
    for (const f of ['group1-shard1of2.bin', 'group1-shard2of2.bin']) writeFileSync(path.join(out, f), 'old shard');
    writeFileSync(path.join(dir, 'outside.bin'), 'outside the folder: never touched');
    r = repmlp(['export', path.join(DIR, 'train.pth'), '--arch', ARCH, '--tfjs', out]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(readdirSync(out).sort(), ['group1-shard1of1.bin', 'group1-shard7of9.bin', 'index.html', 'model.json']);
    assert.equal(readFileSync(path.join(out, 'index.html'), 'utf8'), '<p>mine</p>');
    assert.equal(readFileSync(path.join(dir, 'outside.bin'), 'utf8'), 'outside the folder: never touched');
    assert.deepEqual(hidden(dir), []);
    assert.deepEqual(hidden(out), []);
  } finally {
    cleanup();
  }
});

test('a failed export check (before the rename) leaves the old ONNX file and TF.js folder as they were', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const { loadDeploy, exportDeploy } = await import('../src/export/pipeline.js');
    const onnx = path.join(dir, 'm.onnx');
    const tfjs = path.join(dir, 'tfjs');
    const m = await loadDeploy(path.join(DIR, 'train.pth'), ARCH);
    await exportDeploy(m.config, m.stateDict, { onnx, tfjs });
    const oldOnnx = readFileSync(onnx);
    const oldJson = readFileSync(path.join(tfjs, 'model.json'));
    // Another model's weights into the same place, with a check that cannot pass.
    const sd = new Map([...m.stateDict].map(([k, t]) => [k, Tensor.fromArray(t.toFloat32().map((v) => v * 0.5), t.shape)]));
    await assert.rejects(exportDeploy(m.config, sd, { onnx, tfjs, tolerance: 0 }), (e: Error) => e.name === 'ExportCheckError' && /existing outputs left as they were/.test(e.message));
    assert.deepEqual(readFileSync(onnx), oldOnnx);
    assert.deepEqual(readFileSync(path.join(tfjs, 'model.json')), oldJson);
    assert.deepEqual(readdirSync(dir).sort(), ['m.onnx', 'tfjs']);
    // and into fresh names: nothing appears
    await assert.rejects(exportDeploy(m.config, sd, { onnx: path.join(dir, 'new.onnx'), tfjs: path.join(dir, 'new-tfjs'), tolerance: 0 }));
    assert.deepEqual(readdirSync(dir).sort(), ['m.onnx', 'tfjs']);
  } finally {
    cleanup();
  }
});

test('convert IN IN and prefix IN IN work and say that they replaced the input', () => {
  const { dir, cleanup } = tempDir();
  try {
    const a = path.join(dir, 'a.pth');
    copyFileSync(path.join(DIR, 'train.pth'), a);
    let r = repmlp(['convert', a, a, '--arch', ARCH]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /a\.pth -> .*a\.pth \(pth, replaced the input\)/);
    r = repmlp(['inspect', a, '--json']);
    assert.equal(JSON.parse(r.stdout).mode, 'deploy');
    const d = path.join(dir, 'd.pth');
    copyFileSync(path.join(FIXTURES, 'ckpt', 'ddp.pth'), d);
    r = repmlp(['prefix', d, d]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /d\.pth \(torch zip, replaced the input\)/);
    r = repmlp(['prefix', path.join(FIXTURES, 'ckpt', 'ddp.pth'), path.join(dir, 'e.pth'), '--json']);
    assert.equal(JSON.parse(r.stdout).replacedInput, false);
    assert.deepEqual(hidden(dir), []);
  } finally {
    cleanup();
  }
});

/** A ~256 MB checkpoint of lazily made storages: long enough to interrupt. */
async function bigCheckpoint(file: string): Promise<void> {
  const map = new Map<PyKey, PyValue>();
  for (let i = 0; i < 16; i++) map.set(`module.layer${i}.weight`, new Tensor(new Storage('float32', 4 << 20, () => new Uint8Array(16 << 20)), [4 << 20]));
  await writeCheckpoint(file, new PyDict(map, true));
}

/** Waits until process `pid` holds an anonymous (O_TMPFILE) file in `dir` open. */
async function waitForAnonymousTemp(pid: number, dir: string, ms = 60_000): Promise<boolean> {
  const t0 = Date.now();
  while (Date.now() - t0 < ms) {
    try {
      for (const fd of readdirSync(`/proc/${pid}/fd`)) {
        let target = '';
        try {
          target = readlinkSync(`/proc/${pid}/fd/${fd}`);
        } catch {
          continue;
        }
        if (target.startsWith(dir + '/#') && target.endsWith('(deleted)')) return true;
      }
    } catch {
      return false;
    }
    await new Promise((r) => setTimeout(r, 2));
  }
  return false;
}

const linux = process.platform === 'linux' ? false : 'O_TMPFILE is Linux-only';

test('SIGKILL during a long write leaves nothing behind: the temporary file is anonymous until committed', { skip: linux, timeout: 120_000 }, async () => {
  const { dir, cleanup } = tempDir();
  try {
    const input = path.join(dir, 'big.pth');
    await bigCheckpoint(input);
    const out = path.join(dir, 'out.pth');
    writeFileSync(out, 'old output');
    for (const sig of ['SIGKILL', 'SIGTERM'] as const) {
      const child = spawn(process.execPath, [MAIN, 'prefix', input, out], { stdio: 'ignore' });
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal, at: Date.now() })));
      assert.ok(await waitForAnonymousTemp(child.pid!, dir), 'no anonymous temporary file seen');
      const sent = Date.now();
      child.kill(sig);
      const r = await exited;
      assert.ok(r.signal === sig || r.code === 143, `${sig}: ${JSON.stringify(r)}`);
      assert.ok(r.at - sent < 1000, `${sig} honoured after ${r.at - sent} ms`);
      assert.deepEqual(readdirSync(dir).sort(), ['big.pth', 'out.pth'], sig);
      assert.equal(readFileSync(out, 'utf8'), 'old output');
    }
  } finally {
    cleanup();
  }
});

test('named temporaries (the fallback) left by a killed run are swept by the next write into that folder', { timeout: 120_000 }, async () => {
  const { dir, cleanup } = tempDir();
  try {
    const input = path.join(dir, 'big.pth');
    await bigCheckpoint(input);
    const out = path.join(dir, 'out.pth');
    const child = spawn(process.execPath, [MAIN, 'prefix', input, out], { stdio: 'ignore', env: { ...process.env, REPMLP_NAMED_TEMPS: '1' } });
    const exited = new Promise((resolve) => child.on('exit', resolve));
    const t0 = Date.now();
    while (Date.now() - t0 < 60_000 && !hidden(dir).length) await new Promise((r) => setTimeout(r, 2));
    child.kill('SIGKILL');
    await exited;
    const left = hidden(dir);
    assert.equal(left.length, 1, 'SIGKILL cannot be caught: the named temporary stays');
    assert.match(left[0]!, /^\.out\.pth\.tmp-\d+-[0-9a-f]{8}$/);
    // A live process's temporary and a look-alike user file are not touched.
    const live = path.join(dir, `.x.tmp-${process.pid}-0123abcd`);
    writeFileSync(live, 'in use');
    writeFileSync(path.join(dir, '.notes.tmp'), 'mine');
    await writeBytesAtomic(path.join(dir, 'small.bin'), new Uint8Array([1, 2, 3]));
    assert.deepEqual(hidden(dir).sort(), ['.notes.tmp', path.basename(live)]);
    assert.deepEqual(sweepStaleTemps(dir), []);
  } finally {
    cleanup();
  }
});

test('writeBytesAtomic: the file appears complete or not at all; a folder as target is refused', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const f = path.join(dir, 'a.bin');
    await writeBytesAtomic(f, [new Uint8Array([1, 2]), new Uint8Array([3])]);
    assert.deepEqual([...readFileSync(f)], [1, 2, 3]);
    await assert.rejects(writeBytesAtomic(f, new Uint8Array(4), { verify: async () => { throw new Error('bad'); } }));
    assert.deepEqual([...readFileSync(f)], [1, 2, 3]);
    mkdirSync(path.join(dir, 'd'));
    await assert.rejects(writeBytesAtomic(path.join(dir, 'd'), new Uint8Array(1)), /is a folder, not a file/);
    assert.deepEqual(readdirSync(dir).sort(), ['a.bin', 'd']);
    assert.ok(existsSync(f));
  } finally {
    cleanup();
  }
});

test('demo leaves nothing in the temporary folder; one killed outright is swept by the next', { timeout: 300_000 }, async () => {
  const { dir, cleanup } = tempDir();
  try {
    const env = { TMPDIR: dir };
    // (other tools in the environment may leave their own files there; ours start with repmlp-)
    const ours = () => readdirSync(dir).filter((n) => n.startsWith('repmlp-') || n.startsWith('.repmlp'));
    const r = repmlp(['demo', '--limit', '10'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(ours(), []);
    const child = spawn(process.execPath, [MAIN, 'demo', '--limit', '10'], { stdio: 'ignore', env: { ...process.env, ...env } });
    const exited = new Promise((resolve) => child.on('exit', resolve));
    const t0 = Date.now();
    while (Date.now() - t0 < 60_000 && !readdirSync(dir).some((n) => n.startsWith('repmlp-demo-'))) await new Promise((res) => setTimeout(res, 5));
    child.kill('SIGKILL');
    await exited;
    assert.equal(ours().length, 1, 'SIGKILL cannot be caught: its scratch folder stays');
    const { sweepScratch } = await import('../src/io/scratch.js');
    assert.equal(sweepScratch('repmlp-demo', dir).length, 1);
    assert.deepEqual(ours(), []);
  } finally {
    cleanup();
  }
});

test('bench keeps its work files only with --dir, and says where and how big', { timeout: 300_000 }, () => {
  const { dir, cleanup } = tempDir();
  try {
    const args = ['bench', path.join(DIR, 'train.pth'), '--arch', ARCH, '--jobs', 'io', '--repeat', '1', '--iters', '1', '--quick'];
    let r = repmlp(args, { TMPDIR: dir });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /work files \([\d.]+ MB\) removed; --dir DIR keeps them for the next run\n$/);
    assert.deepEqual(readdirSync(dir).filter((n) => n.startsWith('repmlp-')), []);
    const keep = path.join(dir, 'cache');
    r = repmlp([...args, '--dir', keep, '--json'], { TMPDIR: dir });
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout) as { work: { dir: string; bytes: number; kept: boolean } };
    assert.equal(j.work.dir, keep);
    assert.equal(j.work.kept, true);
    assert.ok(j.work.bytes > 0 && existsSync(keep));
  } finally {
    cleanup();
  }
});

test('when ln -L cannot link the anonymous file, its bytes are copied into place instead', { skip: linux }, async () => {
  const { dir, cleanup } = tempDir();
  try {
    const { _breakLinkForTest } = await import('../src/io/atomic.js');
    _breakLinkForTest();
    const f = path.join(dir, 'a.bin');
    const data = Uint8Array.from({ length: 20 << 20 }, (_, i) => i % 251);
    await writeBytesAtomic(f, data);
    assert.deepEqual(readFileSync(f), Buffer.from(data));
    await writeBytesAtomic(f, new Uint8Array([9]));
    assert.deepEqual([...readFileSync(f)], [9]);
    assert.deepEqual(readdirSync(dir), ['a.bin']);
  } finally {
    cleanup();
  }
});
