/**
 * The TF.js RepMLP-ResNet against PyTorch's outputs stored in fixtures/model (made by
 * tools/make_model_fixtures.py): logits within relative 1e-4 (max|a-b| / max|ref|), keys
 * and order as PyTorch's, strict-load errors worded as PyTorch's.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { Tensor } from '../src/tensor.js';
import { loadStateDictFile } from '../src/pth/index.js';
import type { StateDict } from '../src/pth/pyobj.js';
import { readNpy } from '../src/io/npy.js';
import {
  buildModel, detectArch, detectMode, initBackend, loadStateDict, networkEntries, parseConfig, predictLogits, PRESETS,
  RepMLP, RepMLPResNet, StateDictError, tf, type RepMLPParams,
} from '../src/model/index.js';
import { FIXTURES, hasTorch, NO_TORCH, ROOT, runPython, tempDir } from './helpers/torch.js';

const DIR = path.join(FIXTURES, 'model');
const TOL = 1e-4;

interface Case { name: string; kind: 'resnet' | 'repmlp'; input_shape: [number, number, number, number] }
const manifest = JSON.parse(readFileSync(path.join(DIR, 'manifest.json'), 'utf8')) as { cases: Case[]; forms: Array<'train' | 'deploy'> };
const file = (c: string, suffix: string) => path.join(DIR, `${c}.${suffix}`);

function relErr(got: ArrayLike<number>, want: ArrayLike<number>): number {
  assert.equal(got.length, want.length);
  let diff = 0;
  let ref = 0;
  for (let i = 0; i < got.length; i++) {
    diff = Math.max(diff, Math.abs(got[i]! - want[i]!));
    ref = Math.max(ref, Math.abs(want[i]!));
  }
  return diff / ref;
}

function repmlpParams(name: string): RepMLPParams {
  const p = JSON.parse(readFileSync(file(name, 'config.json'), 'utf8'));
  return { C: p.C, O: p.O, H: p.H, W: p.W, h: p.h, w: p.w, reparamConvK: p.reparam_conv_k, fc1fc2Reduction: p.fc1_fc2_reduction, fc3Groups: p.fc3_groups };
}

const resnetConfig = (name: string) => parseConfig(JSON.parse(readFileSync(file(name, 'config.json'), 'utf8')), name);

/** Runs one fixture case on the current backend; returns the relative error. */
async function runCase(c: Case, form: 'train' | 'deploy'): Promise<number> {
  const x = await readNpy(file(c.name, 'input.npy'));
  const want = await readNpy(file(c.name, `${form}.output.npy`));
  const { stateDict } = await loadStateDictFile(file(c.name, `${form}.pth`));
  let got: Float32Array;
  if (c.kind === 'resnet') {
    const model = new RepMLPResNet(resnetConfig(c.name), form === 'deploy');
    loadStateDict(model, stateDict);
    got = await predictLogits(model, x.data as Float32Array, c.input_shape);
    model.dispose();
  } else {
    const m = new RepMLP(repmlpParams(c.name), form === 'deploy');
    loadStateDict(m, stateDict);
    const xt = tf.tensor4d(x.data as Float32Array, c.input_shape);
    const y = m.forward(xt);
    assert.deepEqual(y.shape, want.shape);
    got = (await y.data()) as Float32Array;
    tf.dispose([xt, y]);
    m.dispose();
  }
  return relErr(got, want.data as Float32Array);
}

test('every fixture matches PyTorch on wasm (training-time and deploy, batch 2)', async () => {
  assert.equal(await initBackend('wasm'), 'wasm');
  const before = tf.memory().numTensors;
  for (const c of manifest.cases) {
    for (const form of manifest.forms) {
      const err = await runCase(c, form);
      assert.ok(err <= TOL, `${c.name} ${form}: relative error ${err.toExponential(2)} > ${TOL}`);
    }
  }
  assert.equal(tf.memory().numTensors, before, 'no TF.js tensors leaked (models disposed)');
});

test('a small case matches PyTorch on the cpu backend too', async () => {
  await initBackend('cpu');
  try {
    for (const name of ['light_nonsquare_g2', 'repmlp_c8_o12_g4']) {
      const c = manifest.cases.find((k) => k.name === name)!;
      for (const form of manifest.forms) {
        const err = await runCase(c, form);
        assert.ok(err <= TOL, `${name} ${form} on cpu: relative error ${err.toExponential(2)}`);
      }
    }
  } finally {
    await initBackend('wasm');
  }
});

test('stateDict(): PyTorch keys, order, shapes and dtypes (num_batches_tracked int64 0-d)', async () => {
  for (const c of manifest.cases) {
    for (const form of manifest.forms) {
      const { stateDict } = await loadStateDictFile(file(c.name, `${form}.pth`));
      const model = c.kind === 'resnet' ? new RepMLPResNet(resnetConfig(c.name), form === 'deploy') : new RepMLP(repmlpParams(c.name), form === 'deploy');
      loadStateDict(model, stateDict);
      const mine = model.stateDict();
      assert.deepEqual([...mine.keys()], [...stateDict.keys()], `${c.name} ${form}: key order`);
      for (const [k, t] of mine) {
        const ref = stateDict.get(k)!;
        assert.deepEqual(t.shape, ref.shape, k);
        assert.equal(t.dtype, ref.dtype, k);
        if (t.dtype === 'float32') assert.deepEqual(t.toFloat32(), ref.toFloat32(), k);
      }
      const nbt = [...mine].find(([k]) => k.endsWith('num_batches_tracked'));
      if (form === 'train') assert.ok(nbt && nbt[1].dtype === 'int64' && nbt[1].shape.length === 0);
      else assert.equal(nbt, undefined);
    }
  }
});

test('preset layouts: tensor and element counts as architecture.md states', () => {
  const count = (name: string, deploy: boolean) => {
    const e = networkEntries(parseConfig(PRESETS[name]!), deploy);
    return [e.length, e.reduce((a, x) => a + x.shape.reduce((p, d) => p * d, 1), 0)];
  };
  assert.deepEqual(count('RepMLP-Res50-light-224', false), [536, 87_174_653]);
  assert.equal(count('RepMLP-Res50-light-224', true)[1], 86_142_440);
  assert.deepEqual(count('RepMLP-Res50-bottleneck-224', false), [632, 41_179_661]);
  assert.equal(count('RepMLP-Res50-bottleneck-224', true)[1], 40_871_528);
});

/** The light fixture's state dict with edits, for strict-load errors. */
async function editedStateDict(edit: (sd: StateDict) => void): Promise<StateDict> {
  const { stateDict } = await loadStateDictFile(file('light_g1_r2', 'train.pth'));
  const sd = new Map(stateDict);
  edit(sd);
  return sd;
}

test('strict load: missing, unexpected and wrong-shape keys in one PyTorch-worded error', async () => {
  const sd = await editedStateDict((m) => {
    m.delete('stage2.1.light_repmlp.fc3.weight');
    m.delete('stage1.0.conv1.bn.bias');
    m.set('extra.weight', Tensor.fromArray(new Float32Array(2), [2]));
    m.set('linear.weight', Tensor.fromArray(new Float32Array(3 * 32), [3, 32]));
  });
  const model = new RepMLPResNet(resnetConfig('light_g1_r2'));
  assert.throws(() => loadStateDict(model, sd, { where: 'ckpt.pth' }), (e: unknown) => {
    assert.ok(e instanceof StateDictError);
    assert.equal(e.message, 'ckpt.pth: Error(s) in loading state_dict for RepMLPResNet: '
      + 'Missing key(s) in state_dict: "stage1.0.conv1.bn.bias", "stage2.1.light_repmlp.fc3.weight". '
      + 'Unexpected key(s) in state_dict: "extra.weight". '
      + 'size mismatch for linear.weight: copying a param with shape torch.Size([3, 32]) from checkpoint, the shape in current model is torch.Size([5, 32]).');
    assert.deepEqual(e.unexpectedKeys, ['extra.weight']);
    return true;
  });
  // Not strict: missing/unexpected are returned, shape mismatches still refused (as PyTorch).
  assert.throws(() => loadStateDict(model, sd, { strict: false }), /: Error\(s\) in loading state_dict for RepMLPResNet: size mismatch for linear\.weight/);
  sd.set('linear.weight', Tensor.fromArray(new Float32Array(5 * 32), [5, 32]));
  const r = loadStateDict(model, sd, { strict: false });
  assert.deepEqual(r.missingKeys, ['stage1.0.conv1.bn.bias', 'stage2.1.light_repmlp.fc3.weight']);
});

test('a checkpoint of another architecture: strict error, never NaNs', async () => {
  const { stateDict } = await loadStateDictFile(file('bottleneck_noglobal_g4', 'train.pth'));
  const model = new RepMLPResNet(resnetConfig('light_g1_r2'));
  assert.throws(() => loadStateDict(model, stateDict), (e: unknown) => {
    assert.ok(e instanceof StateDictError);
    assert.match(e.message, /^Error\(s\) in loading state_dict for RepMLPResNet: Missing key\(s\) in state_dict: "stage2\.1\.light_conv1\.conv\.weight", .* \(68 in all\)\. Unexpected key\(s\) in state_dict: "stage2\.1\.btnk_conv1\.conv\.weight", .* \(81 in all\)\.$/);
    assert.ok(!e.message.includes('\n'), 'one line');
    assert.equal(e.missingKeys.length, 68);
    return true;
  });
  // A deploy checkpoint into a training-time model: BN keys missing, conv biases unexpected.
  const dep = (await loadStateDictFile(file('light_g1_r2', 'deploy.pth'))).stateDict;
  assert.throws(() => loadStateDict(model, dep), /Missing key\(s\) in state_dict: "stage0\.0\.bn\.weight".*Unexpected key\(s\) in state_dict: "stage0\.0\.conv\.bias"/);
});

test('strict errors match PyTorch\'s own load_state_dict report', { skip: hasTorch() ? false : NO_TORCH }, async () => {
  const { dir, cleanup } = tempDir();
  try {
    const out = runPython(['-c', [
      'import json, sys, torch',
      'from repmlp_ref import build_model',
      `cfg = json.load(open(${JSON.stringify(file('light_g1_r2', 'config.json'))}))`,
      `sd = torch.load(${JSON.stringify(file('bottleneck_noglobal_g4', 'train.pth'))})`,
      'sd["linear.weight"] = torch.zeros(3, 32); sd["stage0.0.bn.bias"] = torch.zeros(7)',
      'm = build_model(cfg)',
      'try:\n    m.load_state_dict(sd)\nexcept RuntimeError as e:\n    print(json.dumps(str(e)))',
    ].join('\n')]);
    const torchMsg = (JSON.parse(out) as string).replace(/\s*\n\s*/g, ' ').trim();
    const { stateDict } = await loadStateDictFile(file('bottleneck_noglobal_g4', 'train.pth'));
    stateDict.set('linear.weight', Tensor.fromArray(new Float32Array(3 * 32), [3, 32]));
    stateDict.set('stage0.0.bn.bias', Tensor.fromArray(new Float32Array(7), [7]));
    const model = new RepMLPResNet(resnetConfig('light_g1_r2'));
    const e = (() => { try { loadStateDict(model, stateDict); } catch (err) { return err as StateDictError; } return null; })()!;
    // Same lists in the same order; the one-line message cuts long lists, so compare them.
    const keysIn = (section: string) => (new RegExp(`${section} key\\(s\\) in state_dict: (.*?)\\.(?: Unexpected| size|$)`).exec(torchMsg)?.[1] ?? '').split(', ').map((s) => s.replace(/"/g, ''));
    assert.deepEqual(e.missingKeys, keysIn('Missing'));
    assert.deepEqual(e.unexpectedKeys, keysIn('Unexpected'));
    const torchSizes = [...torchMsg.matchAll(/size mismatch for (\S+): copying a param with shape (torch\.Size\(\[[^\]]*\]\)) from checkpoint, the shape in current model is (torch\.Size\(\[[^\]]*\]\))/g)].map((m) => m.slice(1).join(' '));
    const mine = e.sizeMismatches.map((m) => `${m.key} torch.Size([${m.checkpoint.join(', ')}]) torch.Size([${m.model.join(', ')}])`);
    assert.equal(mine.length, 2);
    assert.deepEqual(mine, torchSizes);
  } finally {
    cleanup();
  }
});

test('float64 / bfloat16 / float16 weights are promoted to float32 on load', async () => {
  const { stateDict } = await loadStateDictFile(file('light_g1_r2', 'train.pth'));
  const as = (conv: (a: Float32Array) => Tensor['typedArray'] extends () => infer R ? R : never, dtype: 'float64' | 'bfloat16' | 'float16') => {
    const sd: StateDict = new Map();
    for (const [k, t] of stateDict) sd.set(k, t.dtype === 'float32' ? Tensor.fromArray(conv(t.toFloat32()), t.shape, dtype) : t);
    return sd;
  };
  const f64 = as((a) => Float64Array.from(a), 'float64');
  const model = new RepMLPResNet(resnetConfig('light_g1_r2'));
  loadStateDict(model, f64);
  await initBackend('wasm');
  const x = await readNpy(file('light_g1_r2', 'input.npy'));
  const want = await readNpy(file('light_g1_r2', 'train.output.npy'));
  const got = await predictLogits(model, x.data as Float32Array, [2, 3, 32, 32]);
  assert.ok(relErr(got, want.data as Float32Array) <= TOL);
  // bfloat16: the upper half of each float32; float16: a few exact values.
  const bf = as((a) => new Uint16Array(new Uint32Array(a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength)).map((u) => u >>> 16)), 'bfloat16');
  loadStateDict(model, bf);
  const w = stateDict.get('linear.weight')!.toFloat32();
  const loaded = model.stateDict().get('linear.weight')!.toFloat32();
  for (let i = 0; i < w.length; i++) assert.ok(Math.abs(loaded[i]! - w[i]!) <= Math.abs(w[i]!) * 2 ** -7, `bf16 ${i}`);
  const sd16: StateDict = new Map([...stateDict].map(([k, t]) => [k, t]));
  sd16.set('linear.bias', Tensor.fromArray(Uint16Array.from([0x3c00, 0xc000, 0x3800, 0x0000, 0x7bff]), [5], 'float16'));
  loadStateDict(model, sd16);
  assert.deepEqual(Array.from(model.stateDict().get('linear.bias')!.toFloat32()), [1, -2, 0.5, 0, 65504]);
  model.dispose();
});

test('detectMode and detectArch: modes, presets by layout, custom configs inferred where the shapes allow', async () => {
  for (const c of manifest.cases.filter((k) => k.kind === 'resnet')) {
    for (const form of manifest.forms) {
      const { stateDict } = await loadStateDictFile(file(c.name, `${form}.pth`));
      assert.equal(detectMode(stateDict), form, `${c.name} ${form}`);
      const found = detectArch(stateDict);
      if (c.name === 'light_g1_r2') assert.deepEqual(found, { name: null, config: resnetConfig(c.name) });
      // Non-square partitions (h*w = 6 or 8) cannot be told from the shapes: a hint is needed.
      if (c.name === 'light_nonsquare_g2' || c.name === 'bottleneck_noglobal_g4') assert.equal(found, null);
      if (c.name === 'base_small') assert.equal(found?.config.block_type, 'base');
    }
  }
  for (const [name, raw] of Object.entries(PRESETS)) {
    for (const deploy of [false, true]) {
      const cfg = parseConfig(raw);
      // A layout-only state dict (zero-size storage is not needed: shapes are all detect reads).
      const sd: StateDict = new Map(networkEntries(cfg, deploy).map((e) => [e.name, { shape: e.shape, dtype: e.dtype } as unknown as Tensor]));
      const found = detectArch(sd);
      assert.equal(detectMode(sd), deploy ? 'deploy' : 'train');
      // The base preset's layout does not depend on fc3_groups etc.: same name either way.
      assert.equal(found?.name, name, `${name} deploy=${deploy}`);
    }
  }
  assert.equal(detectMode(new Map([['fc.weight', Tensor.fromArray(new Float32Array(1), [1])]])), null);
});

test('buildModel + initParams give a runnable model with finite logits; wrong input shape is refused', async () => {
  await initBackend('wasm');
  const model = buildModel(resnetConfig('light_nonsquare_g2'), { deploy: true, seed: 3 });
  const x = new Float32Array(2 * 3 * 32 * 96).map((_, i) => Math.sin(i));
  const y = await predictLogits(model, x, [2, 3, 32, 96]);
  assert.equal(y.length, 10);
  assert.ok(y.every(Number.isFinite));
  await assert.rejects(predictLogits(model, x, [2, 3, 96, 32]), /input shape \[2, 3, 96, 32\] does not match the model: expected \[N, 3, 32, 96\]/);
  model.dispose();
});

test('repmlp run: a fixture checkpoint gives PyTorch\'s logits; errors are one line', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const main = path.join(ROOT, 'dist', 'src', 'cli', 'main.js');
    const out = path.join(dir, 'y.npy');
    const run = (...args: string[]) => spawnSync(process.execPath, [main, 'run', ...args], { encoding: 'utf8' });
    let r = run(file('bottleneck_noglobal_g4', 'deploy.pth'), '--input', file('bottleneck_noglobal_g4', 'input.npy'), '--output', out, '--arch', file('bottleneck_noglobal_g4', 'config.json'));
    assert.equal(r.status, 0, r.stderr);
    const y = await readNpy(out);
    assert.deepEqual(y.shape, [2, 5]);
    assert.ok(relErr(y.data as Float32Array, (await readNpy(file('bottleneck_noglobal_g4', 'deploy.output.npy'))).data as Float32Array) <= TOL);
    r = run(file('light_g1_r2', 'train.pth'), '--input', file('light_g1_r2', 'input.npy'), '--output', out, '--arch', 'RepMLP-Res50-light-224');
    assert.equal(r.status, 1);
    // A wrong --arch: counts and one example, and the architecture the keys do fit.
    assert.match(r.stderr, /^repmlp: error: .*light_g1_r2\.train\.pth: --arch RepMLP-Res50-light-224 \(training-time form\) does not fit this checkpoint: \d+ key\(s\) missing \(e\.g\. '[^']+'\).*; the keys fit a custom configuration read from their shapes: leave --arch out\n$/);
    assert.ok(r.stderr.length < 400, r.stderr);
    assert.equal(r.stderr.trim().split('\n').length, 1);
    r = run(file('light_nonsquare_g2', 'train.pth'), '--input', file('light_nonsquare_g2', 'input.npy'), '--output', out);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /architecture not recognized .* give --arch/);
    r = run(path.join(dir, 'missing.pth'), '--input', file('light_g1_r2', 'input.npy'), '--output', out);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^repmlp: error: .*missing\.pth/);
    assert.equal(r.stderr.trim().split('\n').length, 1);
  } finally {
    cleanup();
  }
});
