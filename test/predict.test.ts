/**
 * predict and eval on the bundled demo model (fixtures/demo, made by tools/train_demo.py):
 * the three model kinds (checkpoint, .onnx, TF.js model.json) give the same top-1 on a
 * JPEG and a PNG, and eval over the bundled 300 images reproduces what PyTorch recorded,
 * image by image. No Python needed: PyTorch's numbers are in fixtures/demo/reference.json.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync, mkdirSync, copyFileSync } from 'node:fs';
import * as path from 'node:path';
import { ROOT, FIXTURES, tempDir } from './helpers/torch.js';
import { loadStateDictFile, writeCheckpoint, stateDictToPy } from '../src/pth/index.js';
import { convertTrainingStateDict } from '../src/reparam/index.js';
import { resolveArch } from '../src/model/config.js';
import { buildGraph } from '../src/export/graph.js';
import { writeOnnx } from '../src/export/onnx.js';
import { writeTfjs } from '../src/export/tfjs.js';
import { openClassifier } from '../src/app/classifier.js';
import { evaluateFolder, listImageFolder, softmax, topK } from '../src/app/classify.js';
import { defaultPreprocess, resolveMeta, sidecarPath } from '../src/app/meta.js';
import { IMAGENET_PREPROCESS } from '../src/io/image.js';

const DEMO = path.join(FIXTURES, 'demo');
const CKPT = path.join(DEMO, 'repmlp-fmnist.pth');
const ARCH = path.join(DEMO, 'repmlp-fmnist.json');
const CLI = path.join(ROOT, 'dist/src/cli/main.js');

interface Reference {
  images: number;
  correct: number;
  top1: number;
  files: string[];
  labels: number[];
  predictions: number[];
  logits: number[][];
  samples: Record<string, { label: number; prediction: number }>;
}
const ref = JSON.parse(readFileSync(path.join(DEMO, 'reference.json'), 'utf8')) as Reference;

function cli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', cwd: ROOT, timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

// Exports made once with the library (what `repmlp export` does), cards copied next to them.
let dir = '';
let cleanup = () => {};
const models: Record<string, string> = {};
before(async () => {
  ({ dir, cleanup } = tempDir('repmlp-predict-'));
  const { config } = resolveArch(ARCH);
  const sd = (await loadStateDictFile(CKPT)).stateDict;
  const conv = convertTrainingStateDict(sd, { arch: ARCH, where: CKPT });
  const g = buildGraph(config, conv.stateDict);
  models.onnx = path.join(dir, 'demo.onnx');
  models.tfjs = path.join(dir, 'tfjs', 'model.json');
  models.deploy = path.join(dir, 'demo_deploy.pth');
  await writeOnnx(models.onnx, g);
  await writeTfjs(path.join(dir, 'tfjs'), g);
  await writeCheckpoint(models.deploy, stateDictToPy(conv.stateDict));
  const card = JSON.parse(readFileSync(path.join(DEMO, 'repmlp-fmnist.meta.json'), 'utf8')) as Record<string, unknown>;
  card.arch = ARCH;
  for (const m of [models.onnx, models.tfjs, models.deploy]) writeFileSync(sidecarPath(m), JSON.stringify(card));
});
after(() => cleanup());

test('predict --json on a JPEG and a PNG: same top-1 from checkpoint, .onnx and model.json', () => {
  const images = ['ankle-boot.jpg', 'trouser.png'].map((f) => path.join('fixtures/demo/samples', f));
  const tops: number[][] = [];
  for (const model of [CKPT, models.onnx!, models.tfjs!]) {
    const r = cli(['predict', model, ...images, '--top', '3', '--json']);
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { file: string; top: { index: number; label: string; probability: number }[] }[];
    assert.deepEqual(out.map((o) => o.file), images, 'one element per image, in the order given');
    for (const o of out) {
      assert.deepEqual(Object.keys(o), ['file', 'top']);
      assert.equal(o.top.length, 3);
      for (const t of o.top) assert.deepEqual(Object.keys(t), ['index', 'label', 'probability']);
      const p = o.top.map((t) => t.probability);
      assert.deepEqual(p, [...p].sort((a, b) => b - a), 'top sorted by probability');
      assert.ok(p.reduce((a, b) => a + b) <= 1 + 1e-9 && p[0]! > 0.5);
    }
    tops.push(out.map((o) => o.top[0]!.index));
    assert.deepEqual(out.map((o) => o.top[0]!.label), ['Ankle boot', 'Trouser'], `labels from the model card (${model})`);
  }
  assert.deepEqual(tops[1], tops[0]);
  assert.deepEqual(tops[2], tops[0]);
  // PyTorch (PIL decoding) predicted the same classes for these files.
  assert.deepEqual(tops[0], [ref.samples['ankle-boot.jpg']!.prediction, ref.samples['trouser.png']!.prediction]);
});

test('predict prints a readable ranking; --arch works on the checkpoint without its card', () => {
  const tmpCkpt = path.join(dir, 'nocard', 'copy.pth');
  mkdirSync(path.dirname(tmpCkpt), { recursive: true });
  copyFileSync(CKPT, tmpCkpt); // no sidecar here: the wrapper's meta/arch entries are used
  const r = cli(['predict', tmpCkpt, 'fixtures/demo/samples/trouser.png', '--top', '2']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^fixtures\/demo\/samples\/trouser\.png\n {3}1\. +\d+\.\d\d% {2}Trouser \(1\)\n {3}2\. /);
  const withArch = cli(['predict', models.deploy!, 'fixtures/demo/samples/trouser.png', '--arch', ARCH, '--json']);
  assert.equal(withArch.status, 0, withArch.stderr);
  assert.equal((JSON.parse(withArch.stdout) as { top: { label: string }[] }[])[0]!.top[0]!.label, 'Trouser');
});

test('eval on the bundled images equals PyTorch, image by image, for every model kind', async () => {
  const folder = path.join(DEMO, 'test');
  const list = listImageFolder(folder);
  assert.deepEqual(list.files.map((f) => path.relative(DEMO, f.file)), ref.files);
  assert.deepEqual(list.files.map((f) => f.label), ref.labels);
  for (const model of [CKPT, models.deploy!, models.onnx!, models.tfjs!]) {
    const clf = await openClassifier(model);
    try {
      const r = await evaluateFolder(clf, folder, { batch: 64 });
      assert.equal(r.correct1, ref.correct, `${clf.runtime}: top-1 ${r.correct1} vs PyTorch ${ref.correct}`);
      assert.deepEqual(r.predictions, ref.predictions, `${clf.runtime}: per-image predictions`);
      assert.ok(r.top1 >= 0.85);
    } finally {
      await clf.close();
    }
  }
});

test('logits of the checkpoint match PyTorch within 1e-4 on the first batch', async () => {
  const clf = await openClassifier(CKPT);
  try {
    const { loadBatch } = await import('../src/io/image.js');
    const files = ref.files.slice(0, 40).map((f) => path.join(DEMO, f));
    const logits = await clf.logits(loadBatch(files, clf.meta.preprocess).data, files.length);
    let max = 0;
    ref.logits.slice(0, 40).forEach((row, i) => row.forEach((v, j) => (max = Math.max(max, Math.abs(v - logits[i * 10 + j]!)))));
    // reference.json keeps 5 decimals; float32 TF.js vs PyTorch differ far less.
    assert.ok(max < 1e-4, `max |logit diff| ${max}`);
  } finally {
    await clf.close();
  }
});

test('eval CLI: --json fields and images/s', () => {
  const r = cli(['eval', CKPT, 'fixtures/demo/test', '--batch', '100', '--json']);
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as Record<string, number | string>;
  assert.equal(out.images, 300);
  assert.equal(out.correct1, ref.correct);
  assert.ok((out.top5 as number) >= (out.top1 as number));
  assert.ok((out.imagesPerSecond as number) > 0);
  assert.equal(r.stderr, '', 'no progress bar when stderr is not a terminal');
});

test('errors: one line naming the file or field', () => {
  const missing = cli(['predict', CKPT, 'fixtures/demo/samples/nope.png']);
  assert.equal(missing.status, 1);
  assert.equal(missing.stderr, 'repmlp: error: fixtures/demo/samples/nope.png: cannot read image (no such file)\n');
  const notFolder = cli(['eval', CKPT, 'fixtures/demo/samples']);
  assert.equal(notFolder.status, 1);
  assert.match(notFolder.stderr, /^repmlp: error: fixtures\/demo\/samples: no class sub-folders/);
  const badCard = path.join(dir, 'bad.meta.json');
  writeFileSync(badCard, JSON.stringify({ classes: ['a', 'b'] }));
  const bad = cli(['predict', CKPT, 'fixtures/demo/samples/trouser.png', '--meta', badCard]);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /bad\.meta\.json: field 'classes' has 2 names but the model has 10 outputs\n$/);
  const noModel = cli(['predict', 'nothing.pth', 'fixtures/demo/samples/trouser.png']);
  assert.match(noModel.stderr, /^repmlp: error: nothing\.pth: no such file or folder\n$/);
});

test('model cards: ImageNet defaults, scaled pipelines, sidecar names', () => {
  const m = resolveMeta(null, { channels: 3, H: 224, W: 224, numClasses: 1000 });
  assert.deepEqual(m.preprocess, IMAGENET_PREPROCESS);
  assert.equal(m.classes[0], 'tench, Tinca tinca');
  assert.equal(m.classes.length, 1000);
  assert.deepEqual(defaultPreprocess(3, 320, 320).resize, 366);
  assert.equal(resolveMeta(null, { channels: 1, H: 32, W: 64, numClasses: 3 }).classes[2], 'class 2');
  assert.equal(sidecarPath('a/b/x_train.pth'), path.join('a/b', 'x_train.meta.json'));
  assert.equal(sidecarPath('out/tfjs/model.json'), path.join('out/tfjs', 'model.meta.json'));
  assert.throws(() => resolveMeta({ card: { preprocess: { ...IMAGENET_PREPROCESS, crop: 32 } }, source: 'c.json' }, { channels: 3, H: 224, W: 224, numClasses: 1000 }), /c\.json: preprocess makes 3x32x32 inputs but the model takes 3x224x224/);
});

test('softmax and topK', () => {
  const p = softmax([1000, 1000, -Infinity]);
  assert.deepEqual([...p], [0.5, 0.5, 0]);
  assert.deepEqual(topK([0.1, 0.7, 0.7, 0.2], 3), [1, 2, 3]);
});
