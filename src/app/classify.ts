/**
 * Classifying files and evaluating folders with any Classifier: the Node equivalent of
 * the release's test.py (ImageFolder, top-1 / top-5) and of a predict script.
 */
import { readdirSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { RepmlpError } from '../errors.js';
import { loadBatch } from '../io/image.js';
import type { Classifier } from './classifier.js';

export class FolderError extends RepmlpError {
  override name = 'FolderError';
}

export interface Ranked {
  index: number;
  label: string;
  probability: number;
}

/** Softmax of one row of logits, in float64 (max subtracted first for stability). */
export function softmax(logits: ArrayLike<number>): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i]!);
  const p = new Float64Array(logits.length);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += p[i] = Math.exp(logits[i]! - max);
  for (let i = 0; i < p.length; i++) p[i]! /= sum;
  return p;
}

/** Indices of the k largest values, largest first; ties keep the lower index first. */
export function topK(values: ArrayLike<number>, k: number): number[] {
  const idx = Array.from({ length: values.length }, (_, i) => i);
  idx.sort((a, b) => values[b]! - values[a]! || a - b);
  return idx.slice(0, Math.min(k, values.length));
}

export interface Prediction {
  file: string;
  top: Ranked[];
}

/** Top-k labels with softmax probabilities for each file, in the order given. */
export async function predictFiles(clf: Classifier, files: readonly string[], k: number, batchSize = 32): Promise<Prediction[]> {
  const out: Prediction[] = [];
  for (let i = 0; i < files.length; i += batchSize) {
    const chunk = files.slice(i, i + batchSize);
    const logits = await clf.logits(loadBatch(chunk, clf.meta.preprocess).data, chunk.length);
    chunk.forEach((file, j) => {
      const p = softmax(logits.subarray(j * clf.numClasses, (j + 1) * clf.numClasses));
      out.push({ file, top: topK(p, k).map((index) => ({ index, label: clf.meta.classes[index]!, probability: p[index]! })) });
    });
  }
  return out;
}

/** The files ImageFolder reads (test.py's loader: JPEG and PNG here). */
const READABLE = /\.(jpe?g|png)$/i;
/** Extensions torchvision's ImageFolder would read but this toolkit cannot decode. */
const UNSUPPORTED = /\.(ppm|bmp|pgm|tiff?|webp)$/i;

export interface ImageFolder {
  /** Sub-folder names, sorted: position = class index. */
  classes: string[];
  files: { file: string; label: number }[];
}

function walk(dir: string, out: string[]): void {
  for (const name of readdirSync(dir).sort()) {
    const p = path.join(dir, name);
    const st = statSync(p);
    if (st.isDirectory()) walk(p, out);
    else if (READABLE.test(name)) out.push(p);
    else if (UNSUPPORTED.test(name)) throw new FolderError(`${p}: ${path.extname(name)} images are not supported (JPEG and PNG are); remove or convert it`);
  }
}

/**
 * torchvision's ImageFolder layout: one sub-folder per class, sorted names are the class
 * indices, images found recursively inside each (sorted), empty classes an error.
 */
export function listImageFolder(root: string): ImageFolder {
  let entries: string[];
  try {
    if (!statSync(root).isDirectory()) throw new FolderError(`${root}: not a folder (eval takes an ImageFolder tree: one sub-folder per class)`);
    entries = readdirSync(root);
  } catch (e) {
    if (e instanceof FolderError) throw e;
    throw new FolderError(`${root}: cannot read folder (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const classes = entries.filter((n) => statSync(path.join(root, n)).isDirectory()).sort();
  if (classes.length === 0) throw new FolderError(`${root}: no class sub-folders (eval takes an ImageFolder tree: ${root}/<class>/<image>.png)`);
  const files: ImageFolder['files'] = [];
  classes.forEach((c, label) => {
    const found: string[] = [];
    walk(path.join(root, c), found);
    if (found.length === 0) throw new FolderError(`${path.join(root, c)}: class folder holds no JPEG or PNG images`);
    for (const file of found) files.push({ file, label });
  });
  return { classes, files };
}

export interface EvalResult {
  images: number;
  classes: number;
  top1: number;
  top5: number;
  correct1: number;
  correct5: number;
  /** Wall time of the whole evaluation (decode + preprocess + inference). */
  seconds: number;
  imagesPerSecond: number;
  /** Inference alone. */
  inferenceSeconds: number;
  /** Top-1 class per image, in file order. */
  predictions: number[];
}

/** Accumulates top-1 / top-5 hits over batches of logits. */
export class Scorer {
  correct1 = 0;
  correct5 = 0;
  predictions: number[] = [];
  constructor(readonly numClasses: number) {}

  add(logits: Float32Array, labels: readonly number[]): void {
    labels.forEach((label, j) => {
      const row = logits.subarray(j * this.numClasses, (j + 1) * this.numClasses);
      const top = topK(row, 5);
      this.predictions.push(top[0]!);
      if (top[0] === label) this.correct1++;
      if (top.includes(label)) this.correct5++;
    });
  }
}

/** test.py in Node: top-1 / top-5 over an ImageFolder tree, in batches. */
export async function evaluateFolder(clf: Classifier, root: string, opts: { batch?: number; onProgress?: (done: number, total: number) => void } = {}): Promise<EvalResult> {
  const folder = listImageFolder(root);
  if (folder.classes.length > clf.numClasses) {
    throw new FolderError(`${root}: ${folder.classes.length} class folders but the model has ${clf.numClasses} outputs`);
  }
  const batch = opts.batch ?? 32;
  const scorer = new Scorer(clf.numClasses);
  const t0 = performance.now();
  let inference = 0;
  for (let i = 0; i < folder.files.length; i += batch) {
    const chunk = folder.files.slice(i, i + batch);
    const x = loadBatch(chunk.map((f) => f.file), clf.meta.preprocess).data;
    const t1 = performance.now();
    const logits = await clf.logits(x, chunk.length);
    inference += performance.now() - t1;
    scorer.add(logits, chunk.map((f) => f.label));
    opts.onProgress?.(i + chunk.length, folder.files.length);
  }
  const seconds = (performance.now() - t0) / 1000;
  const n = folder.files.length;
  return {
    images: n, classes: folder.classes.length, top1: scorer.correct1 / n, top5: scorer.correct5 / n,
    correct1: scorer.correct1, correct5: scorer.correct5, seconds, imagesPerSecond: n / seconds,
    inferenceSeconds: inference / 1000, predictions: scorer.predictions,
  };
}
