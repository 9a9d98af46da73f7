/**
 * `repmlp convert` and `repmlp verify` as a user runs them (the built CLI in a child
 * process): outputs against PyTorch's exact conversion (relative 1e-5), the summary and
 * --json fields, hint errors as one line with no output left behind, safetensors output,
 * in-place conversion, and verify's exit status.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { FIXTURES, ROOT, tempDir } from './helpers/torch.js';
import { loadStateDictFile } from '../src/pth/index.js';
import { assertSameStateDict } from './reparam-helpers.js';

const CLI = path.join(ROOT, 'dist', 'src', 'cli', 'main.js');
const DIR = path.join(FIXTURES, 'reparam');
const fx = (name: string) => path.join(DIR, name);

function repmlp(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

async function sameAsReference(out: string, ref: string): Promise<void> {
  assertSameStateDict((await loadStateDictFile(out)).stateDict, (await loadStateDictFile(ref)).stateDict, 1e-5, out);
}

test('convert: DDP-wrapped checkpoint -> plain state dict equal to PyTorch\'s exact conversion; summary', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const out = path.join(dir, 'deploy.pth');
    const r = repmlp('convert', fx('resnet_ddp.train.pth'), out);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /RepMLP blocks converted: 1\n/);
    assert.match(r.stdout, /conv\+BN pairs fused: 19\n/);
    assert.match(r.stdout, /tensors: 137 in -> 46 out/);
    assert.match(r.stdout, /verified: re-read/);
    assert.match(r.stdout, /time: read .* total/);
    const loaded = await loadStateDictFile(out);
    assert.deepEqual(loaded.wrapper, []);
    assert.equal(loaded.prefix, null);
    await sameAsReference(out, fx('resnet_ddp.deploy.pth'));
  } finally {
    cleanup();
  }
});

test('convert --json: counts, blocks, timings', () => {
  const { dir, cleanup } = tempDir();
  try {
    const r = repmlp('convert', fx('resnet_bottleneck.train.pth'), path.join(dir, 'o.pth'), '--json');
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.equal(j.blocks.length, 2);
    assert.deepEqual(j.blocks.map((b: { name: string }) => b.name), ['stage2.1.btnk_repmlp', 'stage3.1.btnk_repmlp']);
    assert.equal(j.blocks[0].fc3Groups, 2);
    assert.equal(j.verified, true);
    for (const k of ['read', 'convert', 'write', 'verify', 'total']) assert.equal(typeof j.timings[k], 'number');
    assert.equal(j.tensorsIn > j.tensorsOut, true);
  } finally {
    cleanup();
  }
});

test('convert: a block the shapes cannot decide -> one-line error naming block and flag, no output left', () => {
  const { dir, cleanup } = tempDir();
  try {
    const out = path.join(dir, 'deploy.pth');
    const r = repmlp('convert', fx('resnet_light_p2x4.train.pth'), out);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^repmlp: error: RepMLP stage2\.1\.light_repmlp: partition size cannot be read from the shapes \(h\*w = 8 is not a square\); give --partition HxW or --arch ARCH\n$/);
    const r2 = repmlp('convert', fx('repmlp_local_only.train.pth'), out);
    assert.equal(r2.code, 1);
    assert.match(r2.stderr, /^repmlp: error: RepMLP \(root\): fc3 groups cannot be read .*--fc3-groups G/);
    assert.deepEqual(readdirSync(dir), []);
  } finally {
    cleanup();
  }
});

test('convert: hints by flag or by --arch give the exact conversion; contradicting hints are refused', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const a = path.join(dir, 'a.pth');
    const b = path.join(dir, 'b.pth');
    assert.equal(repmlp('convert', fx('resnet_light_p2x4.train.pth'), a, '--partition', '2x4', '--fc3-groups', '2').code, 0);
    await sameAsReference(a, fx('resnet_light_p2x4.deploy.pth'));
    assert.equal(repmlp('convert', fx('resnet_light_p2x4.train.pth'), b, '--arch', fx('resnet_light_p2x4.arch.json')).code, 0);
    await sameAsReference(b, fx('resnet_light_p2x4.deploy.pth'));
    const bad = repmlp('convert', fx('resnet_light_p2x4.train.pth'), path.join(dir, 'c.pth'), '--partition', '4x2', '--arch', fx('resnet_light_p2x4.arch.json'));
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /contradict --arch/);
    const wrong = repmlp('convert', fx('repmlp_c4_o6_p4x6.train.pth'), path.join(dir, 'd.pth'), '--partition', '5x5');
    assert.match(wrong.stderr, /partition 5x5 given, but fc3 has h\*w = 24 positions per channel/);
    const arch = repmlp('convert', fx('resnet_ddp.train.pth'), path.join(dir, 'e.pth'), '--arch', 'RepMLP-Res50-light-224');
    assert.equal(arch.code, 1);
    assert.match(arch.stderr, /--arch RepMLP-Res50-light-224 \(training-time form\) does not fit this checkpoint: \d+ key\(s\) missing/);
    assert.equal(existsSync(path.join(dir, 'e.pth')), false);
  } finally {
    cleanup();
  }
});

test('convert --format safetensors, and in place (OUT == IN)', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const st = path.join(dir, 'deploy.safetensors');
    assert.equal(repmlp('convert', fx('user_net.train.pth'), st).code, 0);
    assert.equal((await loadStateDictFile(st)).format, 'safetensors');
    await sameAsReference(st, fx('user_net.deploy.pth'));
    const inPlace = path.join(dir, 'model.pth');
    copyFileSync(fx('repmlp_c8_o4_g4.train.pth'), inPlace);
    const r = repmlp('convert', inPlace, inPlace);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /, replaced the input\)/);
    await sameAsReference(inPlace, fx('repmlp_c8_o4_g4.deploy.pth'));
    const again = repmlp('convert', inPlace, path.join(dir, 'x.pth'));
    assert.equal(again.code, 1);
    assert.match(again.stderr, /already in deploy form/);
  } finally {
    cleanup();
  }
});

test('verify: converted model equals the training model on a random batch; exit 1 above the tolerance', () => {
  const ok = repmlp('verify', fx('resnet_light_p2x4.train.pth'), '--arch', fx('resnet_light_p2x4.arch.json'), '--json');
  assert.equal(ok.code, 0, ok.stderr);
  const j = JSON.parse(ok.stdout);
  assert.equal(j.ok, true);
  assert.ok(j.results[0].maxRelDiff <= 1e-4 && j.results[0].maxRelDiff > 0);
  const strict = repmlp('verify', fx('resnet_ddp.train.pth'), '--tolerance', '1e-12');
  assert.equal(strict.code, 1);
  assert.match(strict.stdout, /max abs diff .* max rel diff .* > 1e-12 +FAIL/);
  assert.match(strict.stdout, /NOT equivalent/);
  const user = repmlp('verify', fx('user_net.train.pth'));
  assert.equal(user.code, 1);
  assert.match(user.stderr, /not a RepMLP-ResNet the toolkit can run/);
});
