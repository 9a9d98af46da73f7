/**
 * RepMLPNet through every command, as a user runs them (the built CLI in a child
 * process), on the committed small configurations of fixtures/repmlpnet (made by
 * tools/make_repmlpnet_fixtures.py from tools/repmlpnet_ref.py with real PyTorch; see
 * manifest.json): net_a has 2x2 partitions per map with C > S (the repository's partition
 * re-ordering matters), net_b is non-square everywhere (partition 4x6: h*w not a square),
 * net_c has no local perceptron and the nominal input. Issue 12's acceptance criteria:
 * inspect (arch/mode, the training script's CfgNode checkpoint), run (rel <= 1e-4),
 * convert (keys, order, shapes exactly; values <= 1e-5 of the tensor's max), export to
 * ONNX (onnxruntime, onnx.checker) and TF.js (stock tf.loadGraphModel), verify, predict.
 * Python is needed only for onnx.checker and PyTorch's strict load, which skip without it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { FIXTURES, TOOLS, runPython, tempDir, torchSkip } from './helpers/torch.js';
import { CLI, RMN_TOOL, fx, manifest, npy, onnxCheck, rel, repmlp, repmlpJson, rmnCase, runRel } from './helpers/repmlpnet.js';
import { assertSameStateDict } from './reparam-helpers.js';
import { loadStateDictFile } from '../src/pth/index.js';
import { runOnnx } from '../src/export/onnx_runtime.js';
import { loadTfjsGraph, runTfjsGraph } from '../src/export/tfjs_runtime.js';
import { initBackend } from '../src/model/backend.js';

const LOGITS_TOL = 1e-4;
const TENSOR_TOL = 1e-5;
const CASES = manifest.cases.map((c) => c.name);
const arch = (name: string) => fx(`${name}.json`);

interface InspectJson {
  format: string;
  wrapper: string[] | null;
  prefix: string | null;
  tensors: number;
  arch: string | null;
  mode: 'train' | 'deploy' | null;
  entries: { name: string; dtype: string; shape: number[] }[];
  others: { key: string; value: string }[];
}

test('fixtures are there and the CLI is built', () => {
  assert.ok(existsSync(CLI), 'build first (npx tsc -p tsconfig.json)');
  assert.deepEqual(CASES, ['net_a', 'net_b', 'net_c']);
  // The case the issue requires: a non-preset configuration with several partitions per map.
  assert.deepEqual(rmnCase('net_a').partitions.slice(0, 3), [[2, 2], [2, 2], [2, 2]]);
  assert.ok(rmnCase('net_a').groups.every((g) => g > 1), 'C > S in every stage of net_a');
});

// ---------------------------------------------------------------------------- inspect
for (const name of CASES) {
  test(`inspect ${name}: a custom configuration -> arch null; mode train / deploy from the keys`, () => {
    const c = rmnCase(name);
    const t = repmlpJson<InspectJson>('inspect', fx(`${name}.train.pth`));
    assert.deepEqual([t.format, t.wrapper, t.prefix, t.arch, t.mode, t.tensors], ['zip', [], null, null, 'train', c.train_keys]);
    const d = repmlpJson<InspectJson>('inspect', fx(`${name}.deploy.pth`));
    assert.deepEqual([d.arch, d.mode, d.tensors], [null, 'deploy', c.deploy_keys]);
    // The deploy form: no fc3_bn / repconv keys, a biased fc3 right after gp.*.
    const names = d.entries.map((e) => e.name);
    assert.ok(!names.some((n) => /\.fc3_bn\.|\.repconv\d+\./.test(n)), 'no fc3_bn/repconv in deploy');
    const i = names.indexOf('stages.0.0.repmlp_block.fc3.weight');
    assert.deepEqual(names.slice(i - 1, i + 2), ['stages.0.0.repmlp_block.gp.fc2.bias', 'stages.0.0.repmlp_block.fc3.weight', 'stages.0.0.repmlp_block.fc3.bias']);
  });
}

test("inspect: the training script's checkpoint (yacs CfgNode config, AdamW state) is read as inert data and shown", () => {
  const c = rmnCase('net_a');
  const j = repmlpJson<InspectJson>('inspect', fx('net_a.ckpt_epoch_3.pth'));
  assert.deepEqual([j.wrapper, j.prefix, j.arch, j.mode, j.tensors], [['model'], null, null, 'train', c.train_keys]);
  const others = new Map(j.others.map((o) => [o.key, o.value]));
  for (const k of ['optimizer', 'lr_scheduler', 'max_accuracy', 'epoch', 'config']) assert.ok(others.has(k), `others: ${k} (${[...others.keys()].join(', ')})`);
  assert.match(others.get('config')!, /CfgNode/);
  assert.match(others.get('epoch')!, /^3(\.0)?$/);
  assert.match(others.get('max_accuracy')!, /^12\.5$/);
  // The human summary tells the config too.
  const h = repmlp('inspect', fx('net_a.ckpt_epoch_3.pth'));
  assert.equal(h.code, 0, h.stderr);
  assert.match(h.stdout, /config/);
  assert.match(h.stdout, /CfgNode/);
});

test("inspect: save_latest's checkpoint with AMP and EMA; DDP prefix; the release's {'model'} wrapper", () => {
  const latest = repmlpJson<InspectJson>('inspect', fx('net_c.latest.pth'));
  assert.deepEqual([latest.wrapper, latest.mode, latest.tensors], [['model'], 'train', rmnCase('net_c').train_keys]);
  const keys = latest.others.map((o) => o.key);
  for (const k of ['optimizer', 'config', 'amp', 'ema']) assert.ok(keys.includes(k), `others: ${k}`);
  const ddp = repmlpJson<InspectJson>('inspect', fx('net_c.module.pth'));
  assert.deepEqual([ddp.wrapper, ddp.prefix, ddp.mode], [[], 'module.', 'train']);
  const rel = repmlpJson<InspectJson>('inspect', fx('net_c.model_wrapped.pth'));
  assert.deepEqual([rel.wrapper, rel.prefix, rel.mode], [['model'], null, 'train']);
});

// -------------------------------------------------------------------------------- run
for (const name of CASES) {
  test(`run ${name}: training-time and deploy TF.js models give PyTorch's logits (rel <= 1e-4)`, async (t) => {
    const tmp = tempDir();
    t.after(tmp.cleanup);
    const y = path.join(tmp.dir, 'y.npy');
    for (const form of ['train', 'deploy']) {
      const e = await runRel(fx(`${name}.${form}.pth`), fx(`${name}.input.npy`), fx(`${name}.${form}.logits.npy`), y, '--arch', arch(name));
      assert.ok(e <= LOGITS_TOL, `${name} ${form}: relative ${e}`);
    }
  });
}

for (const name of ['net_a', 'net_c']) {
  test(`run ${name} without --arch: the configuration is read from the shapes (square partitions)`, async (t) => {
    const tmp = tempDir();
    t.after(tmp.cleanup);
    for (const form of ['train', 'deploy']) {
      const e = await runRel(fx(`${name}.${form}.pth`), fx(`${name}.input.npy`), fx(`${name}.${form}.logits.npy`), path.join(tmp.dir, 'y.npy'));
      assert.ok(e <= LOGITS_TOL, `${name} ${form}: relative ${e}`);
    }
  });
}

for (const kind of ['training-script', 'ddp', 'release'] as const) {
  test(`run: ${kind} checkpoints as users hold them give the training-time logits`, async (t) => {
    const tmp = tempDir();
    t.after(tmp.cleanup);
    const y = path.join(tmp.dir, 'y.npy');
    for (const ck of manifest.checkpoints.filter((c) => c.kind === kind)) {
      const e = await runRel(fx(ck.file), fx(`${ck.case}.input.npy`), fx(ck.logits), y, '--arch', arch(ck.case));
      assert.ok(e <= LOGITS_TOL, `${ck.file}: relative ${e}`);
    }
  });
}

test("run --entry ema: save_latest's EMA copy instead of 'model'", async (t) => {
  const tmp = tempDir();
  t.after(tmp.cleanup);
  const e = await runRel(fx('net_c.latest.pth'), fx('net_c.input.npy'), fx('net_c.ema.logits.npy'), path.join(tmp.dir, 'y.npy'), '--arch', arch('net_c'), '--entry', 'ema');
  assert.ok(e <= LOGITS_TOL, `--entry ema: relative ${e}`);
});

test('configs: "family" selects RepMLPNet; a bad field is one line naming it; RepMLP-ResNet JSON with "family" still works', async (t) => {
  const tmp = tempDir();
  t.after(tmp.cleanup);
  const cfg = JSON.parse(readFileSync(arch('net_a'), 'utf8')) as Record<string, unknown>;
  const bad = (patch: Record<string, unknown>, re: RegExp) => {
    const f = path.join(tmp.dir, 'bad.json');
    writeFileSync(f, JSON.stringify({ ...cfg, ...patch }));
    const r = repmlp('run', fx('net_a.train.pth'), '--arch', f, '--input', fx('net_a.input.npy'), '--output', path.join(tmp.dir, 'y.npy'));
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /^repmlp: error: [^\n]+\n$/, 'one line');
    assert.match(r.stderr, re);
  };
  bad({ sharesets_nums: [3, 4, 4, 8] }, /sharesets_nums/);
  bad({ hidden_width: 7 }, /hidden_width/);
  bad({ channels: [8, 16, 16] }, /channels|num_blocks|stages/);
  bad({ input_size: 48 }, /input_size/); // stage-0 map 12 is not a multiple of the 8x8 partition
  assert.ok(!existsSync(path.join(tmp.dir, 'y.npy')), 'no output left behind');

  // The 2021 family's JSON with its family name (fixtures/export/custom.json).
  const resnet = JSON.parse(readFileSync(path.join(FIXTURES, 'export', 'custom.json'), 'utf8')) as Record<string, unknown>;
  const rf = path.join(tmp.dir, 'resnet.json');
  writeFileSync(rf, JSON.stringify({ ...resnet, family: 'RepMLPResNet' }));
  const dir = path.join(FIXTURES, 'export', 'custom');
  const e = await runRel(path.join(dir, 'deploy.pth'), path.join(dir, 'x2.npy'), path.join(dir, 'y2.npy'), path.join(tmp.dir, 'y2.npy'), '--arch', rf);
  assert.ok(e <= LOGITS_TOL, `RepMLPResNet with family: relative ${e}`);
});

// ---------------------------------------------------------------------------- convert
async function sameAsDeploy(out: string, name: string): Promise<void> {
  const got = await loadStateDictFile(out);
  assert.deepEqual([got.wrapper, got.prefix], [[], null], `${out}: a plain state dict`);
  assertSameStateDict(got.stateDict, (await loadStateDictFile(fx(`${name}.deploy.pth`))).stateDict, TENSOR_TOL, out);
}

for (const name of CASES) {
  test(`convert ${name}: locality injection with exactly the keys, order and shapes of the reference's deploy state dict`, async (t) => {
    const tmp = tempDir();
    t.after(tmp.cleanup);
    const out = path.join(tmp.dir, 'deploy.pth');
    const r = repmlp('convert', fx(`${name}.train.pth`), out, '--arch', arch(name), '--json');
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout) as { verified?: boolean; tensorsIn?: number; tensorsOut?: number };
    assert.equal(j.verified, true);
    assert.deepEqual([j.tensorsIn, j.tensorsOut], [rmnCase(name).train_keys, rmnCase(name).deploy_keys]);
    await sameAsDeploy(out, name);
    // The output is a deploy checkpoint to every other command.
    const d = repmlpJson<InspectJson>('inspect', out);
    assert.equal(d.mode, 'deploy');
  });
}

for (const name of ['net_a', 'net_c']) {
  test(`convert ${name} without --arch (square partitions: read from the shapes)`, async (t) => {
    const tmp = tempDir();
    t.after(tmp.cleanup);
    const out = path.join(tmp.dir, 'deploy.pth');
    const r = repmlp('convert', fx(`${name}.train.pth`), out);
    assert.equal(r.code, 0, r.stderr);
    await sameAsDeploy(out, name);
  });
}

test('convert net_b without --arch: partition 4x6 (h*w = 24) cannot come from the shapes -> one-line error, nothing written', (t) => {
  const tmp = tempDir();
  t.after(tmp.cleanup);
  const r = repmlp('convert', fx('net_b.train.pth'), path.join(tmp.dir, 'deploy.pth'));
  assert.notEqual(r.code, 0, 'a guessed partition size would be wrong for some user');
  assert.match(r.stderr, /^repmlp: error: [^\n]*stages\.0\.0\.repmlp_block[^\n]*(--arch|--partition)[^\n]*\n$/);
  assert.deepEqual(readdirSync(tmp.dir), []);
});

for (const kind of ['training-script', 'ddp', 'release'] as const) {
  test(`convert: ${kind} checkpoints -> the same plain deploy state dict`, async (t) => {
    const tmp = tempDir();
    t.after(tmp.cleanup);
    for (const ck of manifest.checkpoints.filter((c) => c.kind === kind)) {
      const out = path.join(tmp.dir, `${path.basename(ck.file, '.pth')}.deploy.pth`);
      const r = repmlp('convert', fx(ck.file), out, '--arch', arch(ck.case));
      assert.equal(r.code, 0, `${ck.file}: ${r.stderr}`);
      await sameAsDeploy(out, ck.case);
    }
  });
}

test('convert --help names the families it knows', () => {
  const r = repmlp('convert', '--help');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /RepMLPNet/);
  assert.match(r.stdout, /RepMLP-?ResNet/);
});

test('convert: PyTorch loads the output strictly into the deploy-built reference model, same logits', { skip: torchSkip() }, (t) => {
  const tmp = tempDir();
  t.after(tmp.cleanup);
  const args: string[] = [];
  for (const name of CASES) {
    const out = path.join(tmp.dir, `${name}.pth`);
    const r = repmlp('convert', fx(`${name}.train.pth`), out, '--arch', arch(name));
    assert.equal(r.code, 0, r.stderr);
    args.push(arch(name), out, fx(`${name}.input.npy`), fx(`${name}.train.logits.npy`));
  }
  // One interpreter for all cases (importing torch is the slow part).
  const errs = JSON.parse(runPython(['-c', [
    'import json, sys, torch, numpy as np',
    'from repmlpnet_ref import build_model',
    'a, out = sys.argv[1:], []',
    'for cfg, w, x, y in zip(a[0::4], a[1::4], a[2::4], a[3::4]):',
    '    m = build_model(cfg, deploy=True)',
    '    m.load_state_dict(torch.load(w), strict=True)',
    '    ref = torch.from_numpy(np.load(y))',
    '    with torch.no_grad(): got = m(torch.from_numpy(np.load(x)))',
    '    out.append(float((got - ref).abs().max() / ref.abs().max()))',
    'print(json.dumps(out))',
  ].join('\n'), ...args])) as number[];
  errs.forEach((e, i) => assert.ok(e <= LOGITS_TOL, `${CASES[i]}: PyTorch on our conversion vs the training model: relative ${e}`));
});

// ----------------------------------------------------------------------------- export
for (const name of ['net_a', 'net_b', 'net_c']) {
  test(`export ${name} --onnx --tfjs from the training checkpoint: onnxruntime and stock tf.loadGraphModel give PyTorch's logits`, async (t) => {
    const tmp = tempDir();
    t.after(tmp.cleanup);
    const onnx = path.join(tmp.dir, `${name}.onnx`);
    const tfjs = path.join(tmp.dir, `${name}-tfjs`);
    const j = repmlpJson<{ converted: boolean; onnx: { relDiff: number }; tfjs: { relDiff: number } }>(
      'export', fx(`${name}.train.pth`), '--arch', arch(name), '--onnx', onnx, '--tfjs', tfjs);
    assert.equal(j.converted, true);
    assert.ok(j.onnx.relDiff <= LOGITS_TOL && j.tfjs.relDiff <= LOGITS_TOL, JSON.stringify(j));
    const x = await npy(fx(`${name}.input.npy`));
    const ref = await npy(fx(`${name}.train.logits.npy`));
    const [N, C, H, W] = x.shape as [number, number, number, number];
    const K = ref.shape[1]!;
    // Batch 2 (the dynamic batch) and batch 1.
    const o2 = await runOnnx(onnx, x.data, x.shape, { threads: 2 });
    assert.deepEqual(o2.shape, [N, K]);
    assert.ok(rel(o2.data, ref.data) <= LOGITS_TOL, `onnxruntime batch 2: ${rel(o2.data, ref.data)}`);
    const o1 = await runOnnx(onnx, x.data.subarray(0, C * H * W), [1, C, H, W]);
    assert.ok(rel(o1.data, ref.data.subarray(0, K)) <= LOGITS_TOL, 'onnxruntime batch 1');
    for (const backend of ['wasm', 'cpu'] as const) {
      await initBackend(backend);
      const model = await loadTfjsGraph(tfjs);
      try {
        const g = await runTfjsGraph(model, x.data, x.shape);
        assert.deepEqual(g.shape, [N, K]);
        assert.ok(rel(g.data, ref.data) <= LOGITS_TOL, `tf.loadGraphModel ${backend}: ${rel(g.data, ref.data)}`);
      } finally {
        model.dispose();
      }
    }
    await initBackend('wasm');
    // The exports as `repmlp run` models.
    for (const m of [onnx, path.join(tfjs, 'model.json')]) {
      const e = await runRel(m, fx(`${name}.input.npy`), fx(`${name}.train.logits.npy`), path.join(tmp.dir, 'y.npy'));
      assert.ok(e <= LOGITS_TOL, `repmlp run ${m}: ${e}`);
    }
    await t.test('onnx.checker (full_check)', { skip: torchSkip() }, () => {
      const info = onnxCheck(onnx);
      assert.deepEqual([info.inputs, info.outputs], [['input'], ['logits']]);
    });
  });
}

test("export: the deploy checkpoint and the training script's checkpoint export to the same logits", async (t) => {
  const tmp = tempDir();
  t.after(tmp.cleanup);
  const ref = await npy(fx('net_a.deploy.logits.npy'));
  const x = await npy(fx('net_a.input.npy'));
  for (const src of ['net_a.deploy.pth', 'net_a.ckpt_epoch_3.pth']) {
    const onnx = path.join(tmp.dir, `${src}.onnx`);
    const j = repmlpJson<{ converted: boolean }>('export', fx(src), '--arch', arch('net_a'), '--onnx', onnx);
    assert.equal(j.converted, src !== 'net_a.deploy.pth');
    const o = await runOnnx(onnx, x.data, x.shape);
    assert.ok(rel(o.data, ref.data) <= LOGITS_TOL, `${src}: ${rel(o.data, ref.data)}`);
  }
});

// ------------------------------------------------------------------------------ verify
test('verify: training-time vs converted (net_b) and vs the exports too (net_a) within tolerance, exit 0', (t) => {
  const tmp = tempDir();
  t.after(tmp.cleanup);
  const onnx = path.join(tmp.dir, 'net_a.onnx');
  const tfjs = path.join(tmp.dir, 'net_a-tfjs');
  const e = repmlp('export', fx('net_a.train.pth'), '--arch', arch('net_a'), '--onnx', onnx, '--tfjs', tfjs);
  assert.equal(e.code, 0, e.stderr);
  for (const [name, extra, n] of [['net_a', ['--onnx', onnx, '--tfjs', tfjs], 3], ['net_b', [], 1]] as const) {
    const v = repmlpJson<{ ok: boolean; results: { name: string; ok: boolean; maxRelDiff: number }[] }>(
      'verify', fx(`${name}.train.pth`), '--arch', arch(name), ...extra);
    assert.equal(v.ok, true, JSON.stringify(v.results));
    assert.equal(v.results.length, n, JSON.stringify(v.results));
    for (const r of v.results) assert.ok(r.ok && r.maxRelDiff <= LOGITS_TOL, JSON.stringify(r));
  }
});

// ----------------------------------------------------------------------------- predict
for (const p of manifest.predict) {
  test(`predict ${p.case}: test.py's preprocessing (shorter side -> ${p.size}, centre crop, ImageNet mean/std) gives PyTorch's top-5`, async (t) => {
    const tmp = tempDir();
    t.after(tmp.cleanup);
    const img = path.join(tmp.dir, 'sample.png');
    copyFileSync(fx(p.image), img);
    for (const [form, want] of [['train', p.top], ['deploy', p.deploy_top]] as const) {
      const out = repmlpJson<{ file: string; top: { index: number; probability: number }[] }[]>(
        'predict', fx(`${p.case}.${form}.pth`), img, '--arch', arch(p.case), '--top', '5');
      assert.equal(out.length, 1);
      const top = out[0]!.top;
      assert.equal(top.length, 5);
      assert.equal(top[0]!.index, want[0]!.index, `${form}: top-1`);
      const got = new Map(top.map((e) => [e.index, e.probability]));
      for (const w of want) {
        // Near-ties may swap places; each of PyTorch's top-5 is there with its probability.
        if (w.probability < want[4]!.probability + 1e-3) continue;
        assert.ok(got.has(w.index), `${form}: class ${w.index} missing from ${JSON.stringify(top)}`);
        assert.ok(Math.abs(got.get(w.index)! - w.probability) <= 1e-3, `${form}: class ${w.index}: ${got.get(w.index)} vs ${w.probability}`);
      }
    }
  });
}

// The committed files are what the generator makes: the state dicts and inputs byte for byte
// (seeded), the logits to float32 rounding (they depend on the thread count of the run).
test('fixtures are reproducible from tools/make_repmlpnet_fixtures.py', { skip: torchSkip() }, async (t) => {
  const tmp = tempDir();
  t.after(tmp.cleanup);
  runPython([path.join(TOOLS, 'make_repmlpnet_fixtures.py'), tmp.dir]);
  for (const c of manifest.cases) {
    for (const n of [`${c.name}.train.pth`, `${c.name}.deploy.pth`, `${c.name}.input.npy`, `${c.name}.json`]) {
      assert.ok(readFileSync(path.join(tmp.dir, n)).equals(readFileSync(fx(n))), `${n} differs from a fresh run`);
    }
    for (const n of [`${c.name}.train.logits.npy`, `${c.name}.deploy.logits.npy`]) {
      const e = rel((await npy(path.join(tmp.dir, n))).data, (await npy(fx(n))).data);
      assert.ok(e <= 1e-6, `${n}: relative ${e} from a fresh run`);
    }
  }
});

// -------------------------------------------------------------------------------- eval
test("eval net_a over an ImageFolder tree: top-1 / top-5 as PyTorch's predictions give them", { skip: torchSkip() }, async (t) => {
  const tmp = tempDir();
  t.after(tmp.cleanup);
  const images = [fx('sample.png'), path.join(FIXTURES, 'demo', 'samples', 'trouser.png'), path.join(FIXTURES, 'demo', 'samples', 'ankle-boot.jpg')];
  const want = JSON.parse(runPython([RMN_TOOL, 'predict', arch('net_a'), '--weights', fx('net_a.train.pth'), '--train', ...images])) as { top: { index: number }[] }[];
  // ImageFolder labels are the sorted class folders c0..c9 -> 0..9, none may be empty: image
  // k % 3 in folder k, plus images 0 and 1 where PyTorch's top-1 puts them.
  const top5 = want.map((w) => w.top.map((e) => e.index));
  const placed: [number, number][] = [...Array(10).keys()].map((k) => [k % 3, k]);
  placed.push([0, top5[0]![0]!], [1, top5[1]![0]!]);
  for (const [n, [i, k]] of placed.entries()) {
    const d = path.join(tmp.dir, 'val', `c${k}`);
    mkdirSync(d, { recursive: true });
    copyFileSync(images[i]!, path.join(d, `img${n}${path.extname(images[i]!)}`));
  }
  const correct1 = placed.filter(([i, k]) => top5[i]![0] === k).length;
  const correct5 = placed.filter(([i, k]) => top5[i]!.includes(k)).length;
  const r = repmlpJson<{ images: number; correct1: number; correct5: number }>('eval', fx('net_a.train.pth'), path.join(tmp.dir, 'val'), '--arch', arch('net_a'));
  assert.deepEqual([r.images, r.correct1, r.correct5], [placed.length, correct1, correct5]);
});

// ------------------------------------------------------------------------------ safety
test('a checkpoint whose "config" is an attack (os.system by REDUCE) is refused by every command; nothing runs', { skip: torchSkip() }, (t) => {
  const tmp = tempDir();
  t.after(tmp.cleanup);
  const evil = path.join(tmp.dir, 'evil.pth');
  const marker = path.join(tmp.dir, 'pwned');
  // Made here, as a user could receive it: the training script's layout with a hostile config.
  runPython(['-c', [
    'import os, sys, torch',
    'class Evil:',
    '    def __reduce__(self):',
    "        return (os.system, ('touch ' + sys.argv[2],))",
    "torch.save({'model': torch.load(sys.argv[3]), 'epoch': 3, 'config': Evil()}, sys.argv[1])",
  ].join('\n'), evil, marker, fx('net_c.train.pth')]);
  const out = path.join(tmp.dir, 'out');
  for (const args of [['inspect', evil], ['convert', evil, `${out}.pth`, '--arch', arch('net_c')],
    ['run', evil, '--arch', arch('net_c'), '--input', fx('net_c.input.npy'), '--output', `${out}.npy`],
    ['export', evil, '--arch', arch('net_c'), '--onnx', `${out}.onnx`]]) {
    const r = repmlp(...args);
    assert.notEqual(r.code, 0, `${args[0]} accepted it`);
    assert.match(r.stderr, /^repmlp: error: [^\n]*system[^\n]*\n$/, `${args[0]}: one line naming the global`);
  }
  assert.ok(!existsSync(marker), 'the payload ran');
  assert.deepEqual(readdirSync(tmp.dir), ['evil.pth']);
});
