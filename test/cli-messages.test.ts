/**
 * Every input gets a clean answer (issue 14, CLI side): our own one-line usage errors for
 * every parse failure, user input never reaching plain-object lookups, a wrong --arch
 * said briefly with the architecture the keys do match, shape errors with expected vs
 * found from every runtime, --debug without "rerun with --debug", and a note naming the
 * preprocessing assumed for a model without a model card.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { FIXTURES, ROOT, tempDir } from './helpers/torch.js';
import { writeNpy } from '../src/io/npy.js';
import { errorLine } from '../src/cli/args.js';
import { UsageError } from '../src/errors.js';

const MAIN = path.join(ROOT, 'dist/src/cli/main.js');
const CUSTOM = path.join(FIXTURES, 'export', 'custom');
const ARCH = path.join(FIXTURES, 'export', 'custom.json');

function repmlp(...args: string[]) {
  const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function error(r: ReturnType<typeof repmlp>, want: string | RegExp): void {
  assert.equal(r.code, 1, r.stderr);
  const lines = r.stderr.split('\n').filter(Boolean);
  assert.equal(lines.length, 1, r.stderr);
  assert.doesNotMatch(lines[0]!, /internal error|To specify a positional|ambiguous/);
  if (typeof want === 'string') assert.equal(lines[0], `repmlp: error: ${want}`);
  else assert.match(lines[0]!, want);
}

test('parse failures are our own one-line usage errors', () => {
  error(repmlp('convert', 'a.pth', 'b.pth', '--bogus'), 'convert: unknown option --bogus (see repmlp convert --help)');
  error(repmlp('inspect', '-z', 'x'), 'inspect: unknown option -z (see repmlp inspect --help)');
  error(repmlp('verify', 'x.pth', '--batch'), 'verify: --batch needs a value (see repmlp verify --help)');
  error(repmlp('inspect', 'x.pth', '--json=yes'), 'inspect: --json is a flag and takes no value (see repmlp inspect --help)');
  // a value starting with '-' is the value, and its own check answers
  error(repmlp('verify', 'x.pth', '--batch', '-3'), '--batch -3: expected a positive integer');
  error(repmlp('eval', 'm.onnx', 'dir', '--batch', '-1'), '--batch -1: expected a positive integer');
});

test("user input never reaches plain-object lookups: 'constructor', 'toString', '__proto__'", async () => {
  for (const name of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) error(repmlp(name), `unknown command '${name}' (try repmlp --help)`);
  for (const arch of ['toString', 'constructor', '__proto__']) {
    error(repmlp('verify', path.join(CUSTOM, 'train.pth'), '--arch', arch), new RegExp(`^repmlp: error: --arch ${arch}: not a preset \\(.*\\) nor a readable JSON file$`));
  }
  const { dir, cleanup } = tempDir();
  try {
    // an .npy whose dtype is 'constructor'
    const header = "{'descr': 'constructor', 'fortran_order': False, 'shape': (1,), }";
    const pad = 64 - ((10 + header.length + 1) % 64);
    const npy = Buffer.concat([Buffer.from([0x93]), Buffer.from('NUMPY'), Buffer.from([1, 0]), Buffer.from(new Uint16Array([header.length + pad + 1]).buffer), Buffer.from(header + ' '.repeat(pad) + '\n'), Buffer.alloc(8)]);
    const f = path.join(dir, 'x.npy');
    writeFileSync(f, npy);
    error(repmlp('run', path.join(CUSTOM, 'train.pth'), '--arch', ARCH, '--input', f, '--output', path.join(dir, 'y.npy')), `${f}: dtype 'constructor' is not supported (float32, float64, int64, int32, uint8)`);
  } finally {
    cleanup();
  }
});

test('a wrong --arch: counts, one example each, and the architecture the keys do match, in one short line', () => {
  const ckpt = path.join(FIXTURES, 'model', 'light_g1_r2.train.pth');
  for (const cmd of [['verify'], ['convert', '/tmp/never-written.pth'], ['export', '--onnx', '/tmp/never-written.onnx']]) {
    const [name, ...rest] = cmd;
    const r = repmlp(name!, ckpt, ...rest, '--arch', 'RepMLP-Res50-bottleneck-224');
    error(r, /: --arch RepMLP-Res50-bottleneck-224 \(\w[\w-]* form\) does not fit this checkpoint: \d+ key\(s\) missing \(e\.g\. '[^']+'\).*; the keys fit a custom configuration read from their shapes: leave --arch out$/);
    assert.ok(r.stderr.length - ckpt.length < 400, `${name}: ${r.stderr.length} characters`);
  }
});

test('shape errors give expected vs found from every runtime (checkpoint, ONNX Runtime, TF.js graph)', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const onnx = path.join(dir, 'm.onnx');
    const tfjs = path.join(dir, 'tfjs');
    assert.equal(repmlp('export', path.join(CUSTOM, 'train.pth'), '--arch', ARCH, '--onnx', onnx, '--tfjs', tfjs).code, 0);
    const x = path.join(dir, 'x.npy');
    await writeNpy(x, { shape: [3, 3, 32, 32], data: new Float32Array(3 * 3 * 32 * 32) });
    const y = path.join(dir, 'y.npy');
    error(repmlp('run', path.join(CUSTOM, 'train.pth'), '--arch', ARCH, '--input', x, '--output', y), 'input shape [3, 3, 32, 32] does not match the model: expected [N, 3, 64, 96]');
    error(repmlp('run', onnx, '--input', x, '--output', y), `${onnx}: input 'input' has shape [3, 3, 32, 32], expected [N, 3, 64, 96] (index 2: 32 instead of 64)`);
    error(repmlp('run', path.join(tfjs, 'model.json'), '--input', x, '--output', y), 'TF.js graph model: input has shape [3, 3, 32, 32] (NCHW), expected [N, 3, 64, 96]');
  } finally {
    cleanup();
  }
});

test('--debug: the stack, then the error line without "rerun with --debug"', () => {
  assert.equal(errorLine(new TypeError('x is undefined'), true), 'repmlp: error: internal error: x is undefined\n');
  assert.equal(errorLine(new TypeError('x is undefined'), false), 'repmlp: error: internal error: x is undefined (rerun with --debug for details)\n');
  assert.equal(errorLine(new UsageError('bad'), true), 'repmlp: error: bad\n');
  const r = repmlp('inspect', 'x.pth', '--bogus', '--debug');
  assert.doesNotMatch(r.stderr, /rerun with --debug/);
});

test('a model without a model card: a note says which preprocessing and class names were assumed', () => {
  const { dir, cleanup } = tempDir();
  try {
    const onnx = path.join(dir, 'm.onnx');
    assert.equal(repmlp('export', path.join(CUSTOM, 'train.pth'), '--arch', ARCH, '--onnx', onnx).code, 0);
    const img = path.join(FIXTURES, 'demo', 'samples', 'ankle-boot.jpg');
    const r = repmlp('predict', onnx, img, '--top', '1');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /^repmlp: note: no model card for .*m\.onnx \(looked for .*m\.meta\.json, a 'meta' entry, --meta\): assumed ImageNet preprocessing \(RGB, shorter side resized to 73, center crop 64x96, mean \[0\.485, 0\.456, 0\.406\], std \[0\.229, 0\.224, 0\.225\]\) and class names 'class 0'\.\.'class 6'; give --meta FILE/);
    // with a card: no note
    writeFileSync(path.join(dir, 'm.meta.json'), JSON.stringify({ classes: ['a', 'b', 'c', 'd', 'e', 'f', 'g'] }));
    const r2 = repmlp('predict', onnx, img, '--top', '1');
    assert.equal(r2.code, 0, r2.stderr);
    assert.equal(r2.stderr, '');
  } finally {
    cleanup();
  }
});
