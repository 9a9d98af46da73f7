/**
 * Exports of the committed small non-square model (fixtures/export/custom*, made by
 * tools/make_export_fixtures.py with real PyTorch) against PyTorch's logits, relative
 * 1e-4 (max|a-b| / max|ref|), at batch 1 and 2: onnxruntime-node, and stock
 * tf.loadGraphModel on the wasm and cpu backends. Python is needed only for the
 * onnx.checker / byte-identity checks, which skip without it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { FIXTURES, ROOT, TOOLS, runPython, tempDir, torchSkip } from './helpers/torch.js';
import { loadStateDictFile } from '../src/pth/index.js';
import { readNpy, npyToFloat32 } from '../src/io/npy.js';
import { resolveArch } from '../src/model/config.js';
import { initBackend } from '../src/model/backend.js';
import { buildGraph } from '../src/export/graph.js';
import { writeOnnx, onnxBytes, OnnxExportError } from '../src/export/onnx.js';
import { writeTfjs, SHARD_BYTES } from '../src/export/tfjs.js';
import { runOnnx } from '../src/export/onnx_runtime.js';
import { loadTfjsGraph, runTfjsGraph } from '../src/export/tfjs_runtime.js';
import { difference } from '../src/export/pipeline.js';

const DIR = path.join(FIXTURES, 'export', 'custom');
const ARCH = path.join(FIXTURES, 'export', 'custom.json');
const TOL = 1e-4;
const CLI = path.join(ROOT, 'dist', 'src', 'cli', 'main.js');

async function fixture(b: number): Promise<{ x: Float32Array; shape: number[]; y: Float32Array }> {
  const x = await readNpy(path.join(DIR, `x${b}.npy`));
  const y = await readNpy(path.join(DIR, `y${b}.npy`));
  return { x: npyToFloat32(x), shape: x.shape, y: npyToFloat32(y) };
}

async function graph() {
  const { config } = resolveArch(ARCH);
  const { stateDict } = await loadStateDictFile(path.join(DIR, 'deploy.pth'));
  return buildGraph(config, stateDict);
}

test('custom: ONNX in onnxruntime-node matches PyTorch at batch 1 and 2; passes onnx.checker', async (t) => {
  const tmp = tempDir();
  t.after(tmp.cleanup);
  const file = path.join(tmp.dir, 'custom.onnx');
  const r = await writeOnnx(file, await graph());
  assert.equal(r.opset, 17);
  assert.equal(r.irVersion, 8);
  assert.equal(r.externalData, null);
  for (const b of [1, 2]) {
    const f = await fixture(b);
    const out = await runOnnx(file, f.x, f.shape, { threads: 2 });
    assert.deepEqual(out.shape, [b, 7]);
    const d = difference(out.data, f.y);
    assert.ok(d.rel <= TOL, `batch ${b}: relative ${d.rel}`);
  }
  await t.test('onnx.checker and protoc round trip (byte-identical)', { skip: torchSkip() }, () => {
    const info = JSON.parse(runPython([path.join(TOOLS, 'torch_onnx_export.py'), 'check', file])) as { ir_version: number; opset: number[]; inputs: string[]; outputs: string[] };
    assert.deepEqual([info.ir_version, info.opset, info.inputs, info.outputs], [8, [17], ['input'], ['logits']]);
    // protoc-generated code re-serializes our bytes unchanged: field order and encodings match.
    const same = runPython(['-c', `import onnx,sys; b=open(sys.argv[1],'rb').read(); print(onnx.load_from_string(b).SerializeToString()==b)`, file]);
    assert.equal(same.trim(), 'True');
  });
});

test('custom: --opset and in-memory bytes; out-of-range opset is refused', async () => {
  const g = await graph();
  const f = await fixture(1);
  const bytes = onnxBytes(g, { opset: 13 });
  const d = difference((await runOnnx(bytes, f.x, f.shape)).data, f.y);
  assert.ok(d.rel <= TOL, `opset 13: relative ${d.rel}`);
  assert.throws(() => onnxBytes(g, { opset: 7 }), (e: unknown) => e instanceof OnnxExportError && /supported opsets are 11\.\.23/.test(e.message));
});

test('custom: external data (forced by a low threshold) loads from the path', async (t) => {
  const tmp = tempDir();
  t.after(tmp.cleanup);
  const file = path.join(tmp.dir, 'ext.onnx');
  const r = await writeOnnx(file, await graph(), { externalDataThreshold: 1000 });
  assert.equal(r.externalData, `${file}.data`);
  assert.ok(statSync(file).size < 40_000, 'weights moved out of the model file');
  const f = await fixture(2);
  const d = difference((await runOnnx(file, f.x, f.shape)).data, f.y);
  assert.ok(d.rel <= TOL, `relative ${d.rel}`);
});

test('custom: TF.js graph model via stock tf.loadGraphModel, wasm and cpu, batch 1 and 2', async (t) => {
  const tmp = tempDir();
  t.after(tmp.cleanup);
  const dir = path.join(tmp.dir, 'tfjs');
  const r = await writeTfjs(dir, await graph());
  const json = JSON.parse(readFileSync(path.join(dir, 'model.json'), 'utf8'));
  assert.equal(json.format, 'graph-model');
  assert.deepEqual(json.modelTopology.versions, {});
  const ops = new Set<string>(json.modelTopology.node.map((n: { op: string }) => n.op));
  // Only ops the stock executors run on cpu and wasm, in the forms tfjs-onnx-notes.md vouches for.
  const allowed = ['Placeholder', 'Const', '_FusedConv2D', '_FusedMatMul', 'AddV2', 'Relu', 'PadV2', 'MaxPool', 'AvgPool', 'Mean', 'Reshape', 'Transpose', 'Unpack', 'Pack', 'ConcatV2'];
  assert.deepEqual([...ops].filter((o) => !allowed.includes(o)), []);
  assert.ok(ops.has('Unpack') && ops.has('ConcatV2'), 'grouped fc3 with a global perceptron');
  for (const n of json.modelTopology.node) if (n.op === '_FusedConv2D') assert.ok(n.attr.dilations, `${n.name}: dilations`);
  assert.equal(r.shards, json.weightsManifest[0].paths.length);
  for (const backend of ['wasm', 'cpu'] as const) {
    await initBackend(backend);
    const model = await loadTfjsGraph(dir);
    try {
      for (const b of [1, 2]) {
        const f = await fixture(b);
        const out = await runTfjsGraph(model, f.x, f.shape);
        assert.deepEqual(out.shape, [b, 7]);
        const d = difference(out.data, f.y);
        assert.ok(d.rel <= TOL, `${backend} batch ${b}: relative ${d.rel}`);
      }
    } finally {
      model.dispose();
    }
  }
  await initBackend('wasm');
});

test('TF.js shards: every shard but the last is exactly 4 MiB, and their sum is the manifest', async (t) => {
  const tmp = tempDir();
  t.after(tmp.cleanup);
  const g = await graph();
  // Grow the classifier so the weights span several shards: 128 x 40000 floats = 19.5 MiB.
  const big = new Float32Array(128 * 40000).map((_, i) => Math.sin(i));
  g.initializers.set('linear.weight', { shape: [40000, 128], data: big });
  g.initializers.set('linear.bias', { shape: [40000], data: new Float32Array(40000) });
  g.values.set('logits', { kind: 'vector', F: 40000 });
  const dir = path.join(tmp.dir, 'big');
  await writeTfjs(dir, g);
  const json = JSON.parse(readFileSync(path.join(dir, 'model.json'), 'utf8'));
  const paths: string[] = json.weightsManifest[0].paths;
  assert.ok(paths.length >= 5, `${paths.length} shards`);
  const sizes = paths.map((p) => statSync(path.join(dir, p)).size);
  sizes.slice(0, -1).forEach((s, i) => assert.equal(s, SHARD_BYTES, `shard ${i}`));
  const want = json.weightsManifest[0].weights.reduce((s: number, w: { shape: number[] }) => s + 4 * w.shape.reduce((a, b) => a * b, 1), 0);
  assert.equal(sizes.reduce((a, b) => a + b, 0), want);
  assert.deepEqual(readdirSync(dir).sort(), [...paths, 'model.json'].sort());
});

test('repmlp export: a training-time DDP checkpoint is converted, exported, checked; run/verify accept the exports; outputs match PyTorch', async (t) => {
  const tmp = tempDir();
  t.after(tmp.cleanup);
  const onnx = path.join(tmp.dir, 'm.onnx');
  const tfjs = path.join(tmp.dir, 'm-tfjs');
  assert.ok(existsSync(CLI), 'build first');
  const r = spawnSync(process.execPath, [CLI, 'export', path.join(DIR, 'train.pth'), '--arch', ARCH, '--onnx', onnx, '--tfjs', tfjs, '--json'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.converted, true);
  assert.ok(out.onnx.relDiff <= TOL && out.tfjs.relDiff <= TOL, r.stdout);
  const x = await readNpy(path.join(DIR, 'x2.npy'));
  const ref = npyToFloat32(await readNpy(path.join(DIR, 'train_y2.npy')));
  const d = difference((await runOnnx(onnx, npyToFloat32(x), x.shape)).data, ref);
  assert.ok(d.rel <= TOL, `converted+exported vs PyTorch training model: relative ${d.rel}`);

  // The exports as `repmlp run` models, and as `repmlp verify` candidates.
  for (const model of [onnx, path.join(tfjs, 'model.json')]) {
    const y = path.join(tmp.dir, 'y.npy');
    const rr = spawnSync(process.execPath, [CLI, 'run', model, '--input', path.join(DIR, 'x2.npy'), '--output', y], { encoding: 'utf8' });
    assert.equal(rr.status, 0, rr.stderr);
    const got = await readNpy(y);
    assert.deepEqual(got.shape, [2, 7]);
    const dd = difference(npyToFloat32(got), ref);
    assert.ok(dd.rel <= TOL, `repmlp run ${model}: relative ${dd.rel}`);
  }
  const v = spawnSync(process.execPath, [CLI, 'verify', path.join(DIR, 'train.pth'), '--arch', ARCH, '--onnx', onnx, '--tfjs', tfjs, '--json'], { encoding: 'utf8' });
  assert.equal(v.status, 0, v.stderr + v.stdout);
  const names = (JSON.parse(v.stdout) as { results: { name: string; ok: boolean }[] }).results.filter((c) => c.ok).map((c) => c.name);
  assert.equal(names.length, 3, names.join('; '));
});

test('repmlp export: errors are one line and leave nothing behind', async (t) => {
  const tmp = tempDir();
  t.after(tmp.cleanup);
  const onnx = path.join(tmp.dir, 'x.onnx');
  const run = (...args: string[]) => spawnSync(process.execPath, [CLI, 'export', ...args], { encoding: 'utf8' });
  let r = run(path.join(DIR, 'deploy.pth'), '--arch', ARCH);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /^repmlp: error: export: give --onnx FILE and\/or --tfjs DIR\n$/);
  r = run(path.join(DIR, 'deploy.pth'), '--arch', 'RepMLP-Res50-light-224', '--onnx', onnx);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /^repmlp: error: .*deploy\.pth: --arch RepMLP-Res50-light-224 \(deploy form\) does not fit this checkpoint: .*'stage0\.0\.conv\.weight': \[8, 3, 7, 7\] in the file, \[64, 3, 7, 7\] for this arch/);
  r = run(path.join(DIR, 'deploy.pth'), '--arch', ARCH, '--onnx', onnx, '--opset', '99');
  assert.match(r.stderr, /--opset 99: supported opsets are 11\.\.23/);
  assert.deepEqual(readdirSync(tmp.dir), []);
});

for (const groups of [1, 2]) test(`bottleneck blocks, a single-partition RepMLP (no global perceptron), fc3 groups ${groups}: exports agree with the TF.js model`, async (t) => {
  const tmp = tempDir();
  t.after(tmp.cleanup);
  const { parseConfig } = await import('../src/model/config.js');
  const { deployKeyShapes } = await import('../src/export/graph.js');
  const { Tensor } = await import('../src/tensor.js');
  const { exportDeploy } = await import('../src/export/pipeline.js');
  const cfg = parseConfig({
    num_blocks: [1, 2, 2, 1], num_classes: 5, block_type: 'bottleneck', img_H: 64, img_W: 128, h: 4, w: 8,
    reparam_conv_k: [1, 3], fc1_fc2_reduction: 1, fc3_groups: groups, widths: [16, 32, 64, 128], stem_width: 8,
  });
  let s = 12345;
  const rnd = () => ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32 - 0.5);
  const sd = new Map();
  for (const [k, shape] of deployKeyShapes(cfg)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const fanIn = shape.length > 1 ? n / shape[0]! : 1;
    sd.set(k, Tensor.fromArray(Float32Array.from({ length: n }, () => rnd() * (shape.length > 1 ? 3.4 / Math.sqrt(fanIn) : 0.2)), shape));
  }
  const r = await exportDeploy(cfg, sd, { onnx: path.join(tmp.dir, 'b.onnx'), tfjs: path.join(tmp.dir, 'b-tfjs') });
  assert.ok(r.check!.onnx!.rel <= TOL && r.check!.tfjs!.rel <= TOL, JSON.stringify(r.check));
});
