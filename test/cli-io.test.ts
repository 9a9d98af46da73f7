/**
 * `repmlp inspect` and `repmlp prefix` as a user runs them (child processes), and the
 * output guarantees: one-line errors, atomic writes (old output intact on failure, output
 * over input safe, clear errors for missing/unwritable folders), nothing left behind
 * after SIGINT during a long write.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, readdirSync, readFileSync, statSync, truncateSync, writeFileSync, mkdirSync } from 'node:fs';
import * as path from 'node:path';
import { readCheckpoint, writeCheckpoint } from '../src/pth/index.js';
import { PyDict, type PyKey, type PyValue } from '../src/pth/pyobj.js';
import { Storage, Tensor } from '../src/tensor.js';
import { ROOT, tempDir } from './helpers/torch.js';
import { CKPT } from './pth-describe.js';
import { PickleAsm, zipWith } from './hostile-build.js';
import { WOP } from '../src/pth/pickler.js';

const MAIN = path.join(ROOT, 'dist/src/cli/main.js');

function repmlp(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Asserts a failed run: exit 1, exactly one stderr line `repmlp: error: <message>`, nothing on stdout. */
function assertError(r: ReturnType<typeof repmlp>, message: string | RegExp): void {
  assert.equal(r.code, 1, `exit code (stderr: ${r.stderr})`);
  assert.equal(r.stdout, '');
  const lines = r.stderr.split('\n').filter(Boolean);
  assert.equal(lines.length, 1, `one line: ${r.stderr}`);
  if (typeof message === 'string') assert.equal(lines[0], `repmlp: error: ${message}`);
  else assert.match(lines[0]!, message);
}

const leftovers = (dir: string) => readdirSync(dir).filter((f) => f.includes('.tmp-'));

test('inspect --json: the fields of cli.md, entries in file order, every format', () => {
  const want = {
    'wrapped.pth': { format: 'zip', wrapper: ['state_dict'], prefix: null, tensors: 8 },
    'wrapped.legacy.pth': { format: 'legacy', wrapper: ['state_dict'], prefix: null, tensors: 8 },
    'ddp_wrapped.pth': { format: 'zip', wrapper: ['state_dict'], prefix: 'module.', tensors: 8 },
    'model_wrapped.legacy.pth': { format: 'legacy', wrapper: ['model'], prefix: null, tensors: 8 },
    'small.safetensors': { format: 'safetensors', wrapper: [], prefix: null, tensors: 16 },
  } as const;
  for (const [file, w] of Object.entries(want)) {
    const r = repmlp('inspect', path.join(CKPT, file), '--json');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    const j = JSON.parse(r.stdout);
    for (const k of ['format', 'wrapper', 'prefix', 'tensors', 'elements', 'dtypes', 'arch', 'mode', 'entries']) assert.ok(k in j, `${file}: field ${k}`);
    assert.equal(j.format, w.format);
    assert.deepEqual(j.wrapper, w.wrapper);
    assert.equal(j.prefix, w.prefix);
    assert.equal(j.tensors, w.tensors);
    assert.equal(j.entries.length, w.tensors);
    assert.equal(j.arch, null);
    const sum = Object.values(j.dtypes as Record<string, number>).reduce((a, b) => a + b, 0);
    assert.equal(sum, w.tensors);
  }
  const j = JSON.parse(repmlp('inspect', path.join(CKPT, 'ddp_wrapped.pth'), '--json').stdout);
  assert.deepEqual(j.entries.slice(0, 2), [{ name: 'module.conv.weight', dtype: 'float32', shape: [3, 2, 3, 3] }, { name: 'module.bn.weight', dtype: 'float32', shape: [3] }]);
  assert.equal(j.mode, 'train');
  assert.equal(j.elements, 75);
  assert.deepEqual(j.dtypes, { float32: 7, int64: 1 });
});

test('inspect: human summary; errors are one line', async () => {
  const r = repmlp('inspect', path.join(CKPT, 'ddp_wrapped.legacy.pth'));
  assert.equal(r.code, 0);
  assert.match(r.stdout, /PyTorch legacy checkpoint/);
  assert.match(r.stdout, /state dict: under \['state_dict'\], keys prefixed 'module\.'/);
  assert.match(r.stdout, /other entries: epoch=90/);
  const { dir, cleanup } = tempDir();
  try {
    assertError(repmlp('inspect', path.join(dir, 'nope.pth')), `${path.join(dir, 'nope.pth')}: no such file`);
    const cut = path.join(dir, 'cut.pth');
    writeFileSync(cut, readFileSync(path.join(CKPT, 'state_dict.pth')).subarray(0, 1000));
    assertError(repmlp('inspect', cut), `${cut}: no end-of-central-directory record (truncated or not a zip archive)`);
    const cutLegacy = path.join(dir, 'cut.legacy.pth');
    writeFileSync(cutLegacy, readFileSync(path.join(CKPT, 'state_dict.legacy.pth')).subarray(0, 1400));
    assertError(repmlp('inspect', cutLegacy), /^repmlp: error: .*cut\.legacy\.pth: storage \d+: \d+ bytes at offset \d+ run past the end of the file \(1400 bytes\)$/);
    const evil = path.join(dir, 'evil.pth');
    writeFileSync(evil, await zipWith(new PickleAsm().global('posix', 'system').str('id').op(WOP.TUPLE1, WOP.REDUCE).stop()));
    assertError(repmlp('inspect', evil), `${evil}: archive/data.pkl: refusing global 'posix.system': only an attack uses it (code execution, processes, files, network, imports or pickle loading); see docs/safety.md`);
    assertError(repmlp('inspect'), 'inspect: expected 1 argument(s), got 0; usage: repmlp inspect FILE [--json]');
  } finally {
    cleanup();
  }
});

test('prefix: default strip of module., wrappers and other entries kept; --strip P; --add P', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const out = path.join(dir, 'out.pth');
    let r = repmlp('prefix', path.join(CKPT, 'ddp_wrapped.legacy.pth'), out);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    assert.match(r.stdout, /stripped 'module\.' from 8 key\(s\); wrapper \['state_dict'\] and its other entries kept; re-read 8 tensors/);
    const root = (await readCheckpoint(out)).root as PyDict;
    assert.deepEqual([...root.map.keys()], ['state_dict', 'epoch']);
    assert.equal(root.map.get('epoch'), 90n);
    const sd = root.map.get('state_dict') as PyDict;
    assert.deepEqual([...sd.map.keys()].slice(0, 2), ['conv.weight', 'bn.weight']);
    assert.deepEqual([...sd.metadata!.map.keys()], ['', 'conv', 'bn', 'fc']);
    // the three spellings of --strip, and --add
    for (const args of [['--strip'], ['--strip', 'module.'], ['--strip=module.']]) {
      r = repmlp('prefix', ...(args[0] === '--strip' && args.length === 2 ? [...args, path.join(CKPT, 'ddp.pth'), out] : [path.join(CKPT, 'ddp.pth'), out, ...args]));
      assert.equal(r.code, 0, `${args}: ${r.stderr}`);
      assert.deepEqual([...((await readCheckpoint(out)).root as PyDict).map.keys()].slice(0, 1), ['conv.weight']);
    }
    r = repmlp('prefix', path.join(CKPT, 'state_dict.pth'), out, '--add', 'module.', '--json');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).renamed, 8);
    const added = (await readCheckpoint(out)).root as PyDict;
    assert.deepEqual([...added.map.keys()].slice(0, 1), ['module.conv.weight']);
    assert.deepEqual([...added.metadata!.map.keys()], ['module', 'module.conv', 'module.bn', 'module.fc']);
    assert.deepEqual(leftovers(dir), []);
  } finally {
    cleanup();
  }
});

test('prefix: errors leave no output and keep an old one intact; output over input is safe', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const out = path.join(dir, 'out.pth');
    const plain = path.join(CKPT, 'state_dict.pth');
    assertError(repmlp('prefix', plain, out), `${plain}: no known wrapper prefix (module., _orig_mod.) on the state-dict keys (keys look like 'conv.weight', 'bn.weight', 'bn.bias'); nothing to strip (give --strip PREFIX or --add PREFIX)`);
    assert.ok(!existsSync(out));
    writeFileSync(out, 'old output');
    assertError(repmlp('prefix', plain, out, '--strip', 'backbone.'), /nothing to strip$/);
    assert.equal(readFileSync(out, 'utf8'), 'old output');
    assertError(repmlp('prefix', path.join(CKPT, 'containers.pth'), out), /^repmlp: error: .*containers\.pth: no state dict \(a dict of name -> tensor\) found; top level holds: /);
    assert.equal(readFileSync(out, 'utf8'), 'old output');
    // missing folder, a folder as output, an unwritable place
    const nested = path.join(dir, 'nope', 'out.pth');
    assertError(repmlp('prefix', path.join(CKPT, 'ddp.pth'), nested), `${nested}: folder ${path.join(dir, 'nope')} does not exist`);
    mkdirSync(path.join(dir, 'adir'));
    assertError(repmlp('prefix', path.join(CKPT, 'ddp.pth'), path.join(dir, 'adir')), /^repmlp: error: .*adir: is a folder, not a file; give a file name$/);
    assertError(repmlp('prefix', path.join(CKPT, 'ddp.pth'), '/proc/repmlp-out.pth'), /^repmlp: error: \/proc\/repmlp-out\.pth: (folder \/proc is not writable|cannot write: .*)$/);
    assert.deepEqual(leftovers(dir), []);
    // OUT = IN
    const same = path.join(dir, 'same.pth');
    copyFileSync(path.join(CKPT, 'ddp_wrapped.pth'), same);
    const r = repmlp('prefix', same, same);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /replaced the input/);
    const back = (await readCheckpoint(same)).root as PyDict;
    assert.deepEqual([...(back.map.get('state_dict') as PyDict).map.keys()].slice(0, 1), ['conv.weight']);
    assert.deepEqual(leftovers(dir), []);
  } finally {
    cleanup();
  }
});

test('atomic write: an input that fails mid-write leaves the old output and no temp file', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const input = path.join(dir, 'in.pth');
    const out = path.join(dir, 'out.pth');
    copyFileSync(path.join(CKPT, 'views.pth'), input);
    writeFileSync(out, 'old output');
    const ck = await readCheckpoint(input); // lazy: tensor bytes not read yet
    truncateSync(input, 1200); // the file shrinks under us
    await assert.rejects(writeCheckpoint(out, ck.root), { name: 'SourceError' });
    assert.equal(readFileSync(out, 'utf8'), 'old output');
    assert.deepEqual(leftovers(dir), []);
  } finally {
    cleanup();
  }
});

test('SIGINT during a long write leaves no temp or partial file, and the old output intact (named temporaries, the fallback)', { timeout: 120_000 }, async () => {
  const { dir, cleanup } = tempDir();
  try {
    // ~256 MB of lazily made storages: long enough to interrupt
    const map = new Map<PyKey, PyValue>();
    for (let i = 0; i < 16; i++) map.set(`module.layer${i}.weight`, new Tensor(new Storage('float32', 4 << 20, () => new Uint8Array(16 << 20)), [4 << 20]));
    const input = path.join(dir, 'big.pth');
    await writeCheckpoint(input, new PyDict(map, true));
    const out = path.join(dir, 'out.pth');
    writeFileSync(out, 'old output');
    // The fallback path (no O_TMPFILE): a named temporary, removed by the signal handler.
    const child = spawn(process.execPath, [MAIN, 'prefix', input, out], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, REPMLP_NAMED_TEMPS: '1' } });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    // wait until the temporary file exists, then interrupt
    const t0 = Date.now();
    let sawTemp = false;
    while (Date.now() - t0 < 60_000) {
      if (leftovers(dir).length) {
        sawTemp = true;
        child.kill('SIGINT');
        break;
      }
      await new Promise((r) => setTimeout(r, 2));
    }
    const code = await exited;
    assert.ok(sawTemp, 'the temporary file never appeared');
    assert.equal(code, 130, stderr);
    assert.match(stderr, /interrupted \(SIGINT\); no output written/);
    assert.deepEqual(leftovers(dir), []);
    assert.equal(readFileSync(out, 'utf8'), 'old output');
    assert.equal(statSync(input).size > 250 << 20, true);
  } finally {
    cleanup();
  }
});
