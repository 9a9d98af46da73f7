/**
 * The full RepMLPNet-T224 preset (38M parameters), made on the fly with real PyTorch by
 * tools/torch_repmlpnet_export.py (randomized BN statistics; training-time state dict, the
 * reference's locality_injection() of it, the training script's checkpoint of it, logits)
 * and shared by the test run through test/helpers/repmlpnet.ts. Skipped with a message
 * when torch is absent. Issue 12's criteria for the preset: inspect names it, run gives
 * PyTorch's logits (training-time and deploy), convert equals the reference's deploy state
 * dict exactly in keys/order/shapes and within 1e-5 in values, both exports run in stock
 * runtimes with PyTorch's logits and pass onnx.checker, predict uses 224 / 224.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { NO_TORCH, hasTorch, tempDir } from './helpers/torch.js';
import { fx, npy, onnxCheck, rel, repmlp, repmlpJson, runRel, t224, torchOnnx, RMN_TOOL, type T224Set } from './helpers/repmlpnet.js';
import { runPython } from './helpers/torch.js';
import { assertSameStateDict } from './reparam-helpers.js';
import { loadStateDictFile } from '../src/pth/index.js';
import { runOnnx } from '../src/export/onnx_runtime.js';
import { loadTfjsGraph, runTfjsGraph } from '../src/export/tfjs_runtime.js';
import { initBackend } from '../src/model/backend.js';

const skip = hasTorch() ? false : NO_TORCH;
const LOGITS_TOL = 1e-4;
const TENSOR_TOL = 1e-5;
const T = { timeout: 1_200_000 };
let s: T224Set;

interface InspectJson {
  wrapper: string[] | null;
  arch: string | null;
  mode: string | null;
  tensors: number;
  entries: { name: string; shape: number[] }[];
  others: { key: string; value: string }[];
}

before(() => {
  if (!skip) s = t224();
});

test('RepMLPNet-T224: inspect names the preset and tells train / deploy', { skip, ...T }, () => {
  const tr = repmlpJson<InspectJson>('inspect', s.train);
  assert.deepEqual([tr.arch, tr.mode, tr.tensors], ['RepMLPNet-T224', 'train', s.meta.train.length]);
  assert.deepEqual(tr.entries.map((e) => [e.name, e.shape]), s.meta.train);
  const de = repmlpJson<InspectJson>('inspect', s.deploy);
  assert.deepEqual([de.arch, de.mode, de.tensors], ['RepMLPNet-T224', 'deploy', s.meta.deploy.length]);
});

test("RepMLPNet-T224: inspect the training script's checkpoint (CfgNode config shown, never executed)", { skip, ...T }, () => {
  const sc = repmlpJson<InspectJson>('inspect', s.script);
  assert.deepEqual([sc.wrapper, sc.arch, sc.mode], [['model'], 'RepMLPNet-T224', 'train']);
  const others = new Map(sc.others.map((o) => [o.key, o.value]));
  for (const k of ['optimizer', 'lr_scheduler', 'max_accuracy', 'epoch', 'config']) assert.ok(others.has(k), `others: ${k}`);
  assert.match(others.get('config')!, /CfgNode/);
});

test("RepMLPNet-T224: run (detected) gives PyTorch's logits, training-time and deploy", { skip, ...T }, async (t) => {
  const tmp = tempDir();
  t.after(tmp.cleanup);
  const y = path.join(tmp.dir, 'y.npy');
  for (const [model, ref] of [[s.train, s.trainY1], [s.deploy, s.y1]] as const) {
    const e = await runRel(model, s.x1, ref, y);
    assert.ok(e <= LOGITS_TOL, `${path.basename(model)}: relative ${e}`);
  }
  const e = await runRel(s.train, s.x1, s.trainY1, y, '--arch', 'RepMLPNet-T224');
  assert.ok(e <= LOGITS_TOL, `--arch RepMLPNet-T224: relative ${e}`);
});

test("RepMLPNet-T224: run the training script's checkpoint", { skip, ...T }, async (t) => {
  const tmp = tempDir();
  t.after(tmp.cleanup);
  const e = await runRel(s.script, s.x1, s.trainY1, path.join(tmp.dir, 'y.npy'));
  assert.ok(e <= LOGITS_TOL, `relative ${e}`);
});

async function convertsToReference(src: string, out: string, t: { diagnostic: (m: string) => void }): Promise<void> {
  const r = repmlp('convert', src, out, '--json');
  assert.equal(r.code, 0, r.stderr);
  assert.equal((JSON.parse(r.stdout) as { verified: boolean }).verified, true);
  const got = await loadStateDictFile(out);
  assert.deepEqual([got.wrapper, got.prefix], [[], null]);
  assert.deepEqual([...got.stateDict].map(([k, v]) => [k, [...v.shape]]), s.meta.deploy);
  const worst = assertSameStateDict(got.stateDict, (await loadStateDictFile(s.deploy)).stateDict, TENSOR_TOL, out);
  t.diagnostic(`${path.basename(src)}: worst tensor relative difference ${worst.toExponential(2)}`);
}

test("RepMLPNet-T224: convert = the reference's locality_injection() (keys, order, shapes; values <= 1e-5, also vs float64)", { skip, ...T }, async (t) => {
  const tmp = tempDir();
  t.after(tmp.cleanup);
  const ours = path.join(tmp.dir, 'deploy.pth');
  await convertsToReference(s.train, ours, t);
  const exact = path.join(tmp.dir, 'exact.pth');
  runPython([RMN_TOOL, 'convert', s.train, exact, 'RepMLPNet-T224', 'exact']);
  assertSameStateDict((await loadStateDictFile(ours)).stateDict, (await loadStateDictFile(exact)).stateDict, TENSOR_TOL, 'vs exact');
});

test("RepMLPNet-T224: convert the training script's checkpoint", { skip, ...T }, async (t) => {
  const tmp = tempDir();
  t.after(tmp.cleanup);
  await convertsToReference(s.script, path.join(tmp.dir, 'deploy.pth'), t);
});

test("RepMLPNet-T224: export --onnx --tfjs; onnxruntime and stock tf.loadGraphModel give PyTorch's logits; onnx.checker", { skip, ...T }, async (t) => {
  const tmp = tempDir();
  t.after(tmp.cleanup);
  const onnx = path.join(tmp.dir, 't224.onnx');
  const tfjs = path.join(tmp.dir, 't224-tfjs');
  const j = repmlpJson<{ converted: boolean; onnx: { relDiff: number }; tfjs: { relDiff: number } }>('export', s.train, '--onnx', onnx, '--tfjs', tfjs);
  assert.equal(j.converted, true);
  assert.ok(j.onnx.relDiff <= LOGITS_TOL && j.tfjs.relDiff <= LOGITS_TOL, JSON.stringify(j));
  const x = await npy(s.x1);
  const ref = await npy(s.trainY1);
  const o = await runOnnx(onnx, x.data, x.shape, { threads: 2 });
  assert.deepEqual(o.shape, [1, 1000]);
  assert.ok(rel(o.data, ref.data) <= LOGITS_TOL, `onnxruntime: ${rel(o.data, ref.data)}`);
  const info = onnxCheck(onnx);
  assert.deepEqual([info.inputs, info.outputs], [['input'], ['logits']]);
  await initBackend('wasm');
  const g = await loadTfjsGraph(tfjs);
  try {
    const y = await runTfjsGraph(g, x.data, x.shape);
    assert.ok(rel(y.data, ref.data) <= LOGITS_TOL, `tf.loadGraphModel: ${rel(y.data, ref.data)}`);
  } finally {
    g.dispose();
  }
  // The benchmark's comparison file: torch.onnx.export of the same deploy model runs too.
  const theirs = torchOnnx('RepMLPNet-T224', s.deploy, path.join(tmp.dir, 'torch.onnx'));
  const ot = await runOnnx(theirs, x.data, x.shape, { threads: 2 });
  assert.ok(rel(ot.data, (await npy(s.y1)).data) <= LOGITS_TOL, "onnxruntime on torch.onnx.export's file");
});

test('RepMLPNet-T224: predict with test.py preprocessing (224 / 224) matches PyTorch', { skip, ...T }, () => {
  const img = fx('sample.png');
  const want = (JSON.parse(runPython([RMN_TOOL, 'predict', 'RepMLPNet-T224', '--weights', s.deploy, img])) as { top: { index: number; probability: number }[] }[])[0]!.top;
  const got = repmlpJson<{ top: { index: number; probability: number }[] }[]>('predict', s.deploy, img, '--top', '5')[0]!.top;
  assert.equal(got[0]!.index, want[0]!.index, `top-1: ${JSON.stringify(got)} vs ${JSON.stringify(want)}`);
  assert.ok(Math.abs(got[0]!.probability - want[0]!.probability) <= 1e-3, 'top-1 probability');
});

test('RepMLPNet-T224: verify (detected) — training-time vs converted within tolerance, exit 0', { skip, ...T }, () => {
  const v = repmlpJson<{ ok: boolean; results: { name: string; ok: boolean; maxRelDiff: number }[] }>('verify', s.train);
  assert.equal(v.ok, true, JSON.stringify(v.results));
  for (const r of v.results) assert.ok(r.ok && r.maxRelDiff <= LOGITS_TOL, JSON.stringify(r));
});
