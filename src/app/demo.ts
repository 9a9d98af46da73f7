/**
 * The whole chain on one training-time checkpoint (by default the bundled Fashion-MNIST
 * RepMLP-ResNet): inspect -> convert -> verify -> export ONNX and TF.js -> evaluate the
 * four runtimes on the same preprocessed images. Library functions throughout (the CLI
 * is not shelled out to), so `repmlp demo` is also a worked example of the API.
 */
import { existsSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { scratchDir } from '../io/scratch.js';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { RepmlpError } from '../errors.js';
import { loadBatch } from '../io/image.js';
import { loadStateDictFile, writeCheckpoint, stateDictToPy } from '../pth/index.js';
import { convertTrainingStateDict } from '../reparam/index.js';
import { buildGraph } from '../export/graph.js';
import { writeOnnx } from '../export/onnx.js';
import { writeTfjs } from '../export/tfjs.js';
import { inspectFile, type InspectReport } from '../cli/inspect.js';
import { openClassifier, type Classifier, type OpenOptions } from './classifier.js';
import { listImageFolder, Scorer } from './classify.js';
import type { ModelCard } from './meta.js';
import { normalBatch } from '../util/random.js';
import { difference } from '../util/compare.js';

export class DemoError extends RepmlpError {
  override name = 'DemoError';
}

const DEMO_DIR = fileURLToPath(new URL('../../../fixtures/demo/', import.meta.url));
export const DEMO_CHECKPOINT = path.join(DEMO_DIR, 'repmlp-fmnist.pth');
export const DEMO_TEST_FOLDER = path.join(DEMO_DIR, 'test');
export const DEMO_REFERENCE = path.join(DEMO_DIR, 'reference.json');

export interface DemoOptions extends OpenOptions {
  checkpoint?: string;
  folder?: string;
  /** Evaluate only the first N images (sorted ImageFolder order). */
  limit?: number;
  batch?: number;
  /** Keep the converted checkpoint and exports here (default: a temporary folder, removed). */
  out?: string;
  /** Largest relative logit difference verify accepts (default 1e-4). */
  tolerance?: number;
  /** Step messages as they happen. */
  log?: (line: string) => void;
  /** Progress of the long steps (convert, evaluate per runtime), for a CLI's bars. */
  onProgress?: (stage: string, done: number, total: number) => void;
}

export interface RuntimeRow {
  runtime: string;
  kind: 'checkpoint' | 'onnx' | 'tfjs' | 'pytorch';
  file: string | null;
  top1: number;
  top5: number | null;
  correct1: number;
  imagesPerSecond: number | null;
}

export interface DemoResult {
  checkpoint: string;
  folder: string;
  images: number;
  /** Outputs of the model and class folders evaluated (they differ for a model of another task). */
  classes: { model: number; folder: number };
  inspect: Pick<InspectReport, 'format' | 'tensors' | 'elements' | 'arch' | 'mode'>;
  convert: { tensorsIn: number; tensorsOut: number; elementsIn: number; elementsOut: number; blocks: number; convBnPairs: number; ms: number };
  verify: { maxAbs: number; maxRel: number; tolerance: number; batch: number; passed: boolean; perRuntime: { runtime: string; maxAbs: number; maxRel: number }[] };
  exports: { onnx: { file: string; bytes: number }; tfjs: { dir: string; bytes: number; shards: number } };
  rows: RuntimeRow[];
  /** The PyTorch accuracy recorded when the bundled model was trained, when it applies. */
  reference: RuntimeRow | null;
  /** All four runtimes have the same accuracy (and the same top-1 on every image). */
  agree: boolean;
  samePredictions: number;
  outDir: string | null;
}

/** Paths in messages: relative to the working folder when inside it. */
function shown(p: string): string {
  const r = path.relative(process.cwd(), p);
  return r && !r.startsWith('..') && !path.isAbsolute(r) ? r : p;
}

/** Seeded uniform numbers for the verify batch (reproducible runs). */
export async function runDemo(opts: DemoOptions = {}): Promise<DemoResult> {
  const log = opts.log ?? (() => {});
  const checkpoint = opts.checkpoint ?? DEMO_CHECKPOINT;
  const folder = opts.folder ?? DEMO_TEST_FOLDER;
  // Not kept unless asked (--out): a scratch folder, removed at the end, at exit, and by
  // the next demo when this process was killed.
  const scratch = opts.out ? null : scratchDir('repmlp-demo');
  const work = opts.out ?? scratch!.dir;
  if (opts.out) mkdirSync(work, { recursive: true });
  const opened: Classifier[] = [];
  try {
    // 1. inspect
    const info = await inspectFile(checkpoint, opts.read);
    log(`inspect  ${shown(checkpoint)}: ${info.format} checkpoint, ${info.tensors} tensors, ${info.elements.toLocaleString('en-US')} elements, arch ${info.arch ?? 'custom'}, mode ${info.mode ?? 'unknown'}`);
    const train = await openClassifier(checkpoint, opts);
    opened.push(train);
    if (train.mode !== 'train') throw new DemoError(`${checkpoint}: demo needs a training-time checkpoint (this one is in deploy form); try repmlp eval on it`);
    const config = train.config!;
    // The architecture as a file: what convert's --arch and the deploy card point to.
    const archFile = path.join(work, 'arch.json');
    writeFileSync(archFile, JSON.stringify(config, null, 2) + '\n');

    // 2. convert
    const t0 = performance.now();
    const loaded = await loadStateDictFile(checkpoint, opts.read);
    const conv = convertTrainingStateDict(loaded.stateDict, {
      arch: archFile, where: checkpoint, onProgress: (d, t) => opts.onProgress?.('convert', d, t),
    });
    const deployFile = path.join(work, 'deploy.pth');
    await writeCheckpoint(deployFile, stateDictToPy(conv.stateDict));
    const convertMs = performance.now() - t0;
    log(`convert  ${conv.blocks.length} RepMLP blocks${conv.units.length ? `, ${conv.units.length} other blocks` : ''} and ${conv.convBnPairs.length} conv+BN pairs fused: ${conv.tensorsIn} -> ${conv.tensorsOut} tensors, ${conv.elementsIn.toLocaleString('en-US')} -> ${conv.elementsOut.toLocaleString('en-US')} elements (${convertMs.toFixed(0)} ms) -> ${shown(deployFile)}`);

    // 3. export, each with a model card so predict/eval on the files need no flags
    const card: ModelCard = { ...(train.meta.name ? { name: train.meta.name } : {}), arch: 'arch.json', preprocess: train.meta.preprocess, classes: train.meta.classes };
    const g = buildGraph(config, conv.stateDict);
    const onnxFile = path.join(work, 'model.onnx');
    const onnx = await writeOnnx(onnxFile, g);
    const tfjsDir = path.join(work, 'tfjs');
    const tfjs = await writeTfjs(tfjsDir, g);
    for (const f of ['deploy.meta.json', 'model.meta.json']) writeFileSync(path.join(work, f), JSON.stringify(card, null, 2) + '\n');
    writeFileSync(path.join(tfjsDir, 'model.meta.json'), JSON.stringify({ ...card, arch: '../arch.json' }, null, 2) + '\n');
    log(`export   ONNX ${shown(onnxFile)} (${(onnx.bytes / 1e6).toFixed(2)} MB, opset ${onnx.opset}); TF.js ${shown(tfjsDir)}/model.json (${tfjs.shards} shard(s), ${(tfjs.bytes / 1e6).toFixed(2)} MB)`);

    const runtimes = [train];
    for (const f of [deployFile, onnxFile, path.join(tfjsDir, 'model.json')]) {
      const c = await openClassifier(f, { ...(opts.backend ? { backend: opts.backend } : {}) });
      opened.push(c);
      runtimes.push(c);
    }

    // 4. verify: the same random batch through all four
    const tolerance = opts.tolerance ?? 1e-4;
    const vn = 4;
    const vx = normalBatch(vn * train.inputShape.reduce((a, b) => a * b, 1), 1);
    const ref = await train.logits(vx, vn);
    const perRuntime = [];
    for (const c of runtimes.slice(1)) {
      const d = difference(await c.logits(vx, vn), ref);
      perRuntime.push({ runtime: c.runtime, maxAbs: d.maxAbs, maxRel: d.rel });
    }
    const maxAbs = Math.max(...perRuntime.map((p) => p.maxAbs));
    const maxRel = Math.max(...perRuntime.map((p) => p.maxRel));
    const passed = maxRel <= tolerance;
    log(`verify   ${vn} random inputs, training-time vs deploy / ONNX / TF.js: max |diff| ${maxAbs.toExponential(2)}, relative ${maxRel.toExponential(2)} (tolerance ${tolerance}) ${passed ? 'OK' : 'FAILED'}`);
    if (!passed) throw new DemoError(`verify: relative logit difference ${maxRel.toExponential(2)} above tolerance ${tolerance}`);

    // 5. evaluate: decode and preprocess once, then time each runtime on the same tensors
    const list = listImageFolder(folder);
    const files = opts.limit ? list.files.slice(0, opts.limit) : list.files;
    if (list.classes.length > train.numClasses) throw new DemoError(`${folder}: ${list.classes.length} class folders but the model has ${train.numClasses} outputs`);
    const batch = opts.batch ?? 50;
    const batches: { x: Float32Array; labels: number[] }[] = [];
    for (let i = 0; i < files.length; i += batch) {
      const chunk = files.slice(i, i + batch);
      batches.push({ x: loadBatch(chunk.map((f) => f.file), train.meta.preprocess).data, labels: chunk.map((f) => f.label) });
    }
    log(`evaluate ${files.length} images of ${shown(folder)} (${list.classes.length} classes) on 4 runtimes`);
    const rows: RuntimeRow[] = [];
    const preds: number[][] = [];
    for (const c of runtimes) {
      await c.logits(batches[0]!.x.subarray(0, train.inputShape.reduce((a, b) => a * b, 1)), 1); // warm-up
      const scorer = new Scorer(c.numClasses);
      const t = performance.now();
      let done = 0;
      for (const b of batches) {
        scorer.add(await c.logits(b.x, b.labels.length), b.labels);
        opts.onProgress?.(c.runtime, (done += b.labels.length), files.length);
      }
      const s = (performance.now() - t) / 1000;
      const label = c === train ? c.runtime : c.runtime.replace('deploy checkpoint', 'deploy checkpoint, converted');
      rows.push({ runtime: label, kind: c.kind, file: c.path, top1: scorer.correct1 / files.length, top5: scorer.correct5 / files.length, correct1: scorer.correct1, imagesPerSecond: files.length / s });
      preds.push(scorer.predictions);
    }
    const samePredictions = preds[0]!.filter((p, i) => preds.every((q) => q[i] === p)).length;
    const agree = rows.every((r) => r.correct1 === rows[0]!.correct1) && samePredictions === files.length;
    return {
      checkpoint, folder, images: files.length, classes: { model: train.numClasses, folder: list.classes.length },
      inspect: { format: info.format, tensors: info.tensors, elements: info.elements, arch: info.arch, mode: info.mode },
      convert: { tensorsIn: conv.tensorsIn, tensorsOut: conv.tensorsOut, elementsIn: conv.elementsIn, elementsOut: conv.elementsOut, blocks: conv.blocks.length, convBnPairs: conv.convBnPairs.length, ms: convertMs },
      verify: { maxAbs, maxRel, tolerance, batch: vn, passed, perRuntime },
      exports: { onnx: { file: onnxFile, bytes: onnx.bytes }, tfjs: { dir: tfjsDir, bytes: tfjs.bytes, shards: tfjs.shards } },
      rows, reference: reference(checkpoint, folder, files.length), agree, samePredictions,
      outDir: opts.out ? work : null,
    };
  } finally {
    for (const c of opened) await c.close();
    scratch?.remove();
  }
}

/** PyTorch's accuracy on the bundled images, recorded by tools/train_demo.py. */
function reference(checkpoint: string, folder: string, images: number): RuntimeRow | null {
  const same = (a: string, b: string) => path.resolve(a) === path.resolve(b);
  if (!same(checkpoint, DEMO_CHECKPOINT) || !same(folder, DEMO_TEST_FOLDER) || !existsSync(DEMO_REFERENCE)) return null;
  const ref = JSON.parse(readFileSync(DEMO_REFERENCE, 'utf8')) as { images: number; top1: number; top5: number; correct: number; torch: string };
  if (ref.images !== images) return null;
  return { runtime: `PyTorch ${ref.torch} (recorded by tools/train_demo.py)`, kind: 'pytorch', file: null, top1: ref.top1, top5: ref.top5, correct1: ref.correct, imagesPerSecond: null };
}
