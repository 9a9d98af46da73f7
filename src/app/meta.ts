/**
 * What a classifier needs besides its weights: how to prepare an image for it and what
 * its output classes are called. Checkpoints, .onnx files and TF.js graphs do not say,
 * so `repmlp predict/eval/demo` look for a model card, in this order:
 *
 *   1. --meta FILE
 *   2. a sidecar next to the model: `<model minus extension>.meta.json`
 *      (`demo.pth` -> `demo.meta.json`, `out/model.json` -> `out/model.meta.json`,
 *      a TF.js folder -> `<folder>/model.meta.json`)
 *   3. a checkpoint wrapper's `meta` entry (a dict with the same fields) and `arch`
 *      entry (a dict of RepMLPResNet arguments), as tools/train_demo.py saves them
 *   4. a sidecar next to the --arch JSON: `<arch minus .json>.meta.json`
 *   5. defaults: the release's ImageNet pipeline (scaled to the model's input size when
 *      that is not 224) and the 1000 ImageNet class names for 1000 outputs, else
 *      "class N".
 *
 * The card (JSON, all fields optional): `name`, `arch` (preset name or config JSON path,
 * relative to the card; used for checkpoints when --arch is not given), `preprocess`
 * ({mode: 'RGB'|'L', resize: shorter side or null, crop: side or [h, w], mean, std}),
 * `classes` (one name per output).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import { RepmlpError } from '../errors.js';
import { IMAGENET_PREPROCESS, PreprocessSchema, type Preprocess } from '../io/image.js';
import { IMAGENET_CLASSES } from '../io/imagenet-classes.js';
import { PyDict, PyTuple, type PyValue } from '../pth/pyobj.js';

export class MetaError extends RepmlpError {
  override name = 'MetaError';
}

export const ModelCardSchema = z
  .object({
    name: z.string().optional(),
    arch: z.string().min(1).optional(),
    preprocess: PreprocessSchema.optional(),
    classes: z.array(z.string()).min(1).optional(),
  })
  .strict();

export type ModelCard = z.output<typeof ModelCardSchema>;

/** A card and where it came from (for messages and `--json` output). */
export interface FoundCard {
  card: ModelCard;
  source: string;
}

/** Validates a card; the error names the file and the field. */
export function parseCard(raw: unknown, where: string): ModelCard {
  const r = ModelCardSchema.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new MetaError(`${where}: field '${issue.path.join('.') || '(root)'}': ${issue.message}`);
  }
  const card = r.data;
  // A relative arch path is relative to the card, not to the working folder.
  if (card.arch && /\.json$/i.test(card.arch) && !path.isAbsolute(card.arch)) card.arch = path.join(path.dirname(where), card.arch);
  return card;
}

export function readCard(file: string): ModelCard {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new MetaError(`${file}: cannot read model card: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new MetaError(`${file}: invalid JSON: ${(e as Error).message}`);
  }
  return parseCard(raw, file);
}

/** `a/demo.pth` -> `a/demo.meta.json`; a folder -> `folder/model.meta.json`. */
export function sidecarPath(modelPath: string): string {
  if (existsSync(modelPath) && statSync(modelPath).isDirectory()) return path.join(modelPath, 'model.meta.json');
  const base = path.basename(modelPath).replace(/\.(pth\.tar|pth|pt|ckpt|bin|safetensors|onnx|json|tar)$/i, '');
  return path.join(path.dirname(modelPath), `${base}.meta.json`);
}

/** The lookup above; `wrapper` is step 3, what the checkpoint loader found inside the file. */
export function findCard(modelPath: string, opts: { meta?: string; arch?: string; wrapper?: FoundCard | null }): FoundCard | null {
  if (opts.meta) return { card: readCard(opts.meta), source: opts.meta };
  const side = sidecarPath(modelPath);
  if (existsSync(side)) return { card: readCard(side), source: side };
  if (opts.wrapper) return opts.wrapper;
  if (opts.arch && /\.json$/i.test(opts.arch)) {
    const archSide = sidecarPath(opts.arch);
    if (existsSync(archSide)) return { card: readCard(archSide), source: archSide };
  }
  return null;
}

/** How deep a model card read from a checkpoint may nest (real cards are 2-3 levels). */
const MAX_CARD_DEPTH = 64;

/**
 * Plain JSON from unpickled Python values (dicts with string keys, lists, numbers...).
 * Keys come from the file: set as own properties (a '__proto__' key stays a key, as
 * JSON.parse makes it), and nesting is bounded so a hostile entry is one clear error.
 */
export function pyToJson(v: PyValue, depth = 0): unknown {
  if (depth > MAX_CARD_DEPTH) throw new MetaError(`model card nested deeper than ${MAX_CARD_DEPTH} levels`);
  if (v instanceof PyDict) {
    const o: Record<string, unknown> = {};
    for (const [k, x] of v.map) {
      if (typeof k === 'string') Object.defineProperty(o, k, { value: pyToJson(x, depth + 1), enumerable: true, writable: true, configurable: true });
    }
    return o;
  }
  if (v instanceof PyTuple) return v.items.map((x) => pyToJson(x, depth + 1));
  if (Array.isArray(v)) return v.map((x) => pyToJson(x, depth + 1));
  if (typeof v === 'bigint') return Number(v);
  if (v === null || typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean') return v;
  return undefined;
}

/** The release's pipeline for 224x224 RGB; other sizes keep the 256/224 resize ratio. */
export function defaultPreprocess(channels: number, H: number, W: number): Preprocess {
  if (channels !== 1 && channels !== 3) throw new MetaError(`model takes ${channels} input channels: give a model card (--meta) with a preprocess entry`);
  const crop: Preprocess['crop'] = H === W ? H : [H, W];
  const resize = Math.round((Math.min(H, W) * IMAGENET_PREPROCESS.resize!) / 224);
  // One channel: PIL's luma of the ImageNet mean/std is the natural stand-in.
  if (channels === 1) return { mode: 'L', resize, crop, mean: [0.449], std: [0.226] };
  return { ...IMAGENET_PREPROCESS, resize, crop };
}

export function defaultClasses(n: number): string[] {
  if (n === IMAGENET_CLASSES.length) return [...IMAGENET_CLASSES];
  return Array.from({ length: n }, (_, i) => `class ${i}`);
}

/** What a runner ends up using: the card's entries checked against the model's shape. */
export interface ResolvedMeta {
  name: string | null;
  preprocess: Preprocess;
  classes: string[];
  /** Where the card came from, or null for defaults. */
  source: string | null;
}

/** `resize`: the shorter side the model family's test script resizes to (checkpoints; else the 256/224 ratio). */
export function resolveMeta(found: FoundCard | null, model: { channels: number; H: number; W: number; numClasses: number; resize?: number }): ResolvedMeta {
  const card = found?.card ?? {};
  const where = found?.source ?? 'defaults';
  const byFamily = (p: Preprocess): Preprocess => (model.resize === undefined ? p : { ...p, resize: model.resize });
  const preprocess = card.preprocess ?? byFamily(defaultPreprocess(model.channels, model.H, model.W));
  const [ch, h, w] = [preprocess.mode === 'RGB' ? 3 : 1, ...(typeof preprocess.crop === 'number' ? [preprocess.crop, preprocess.crop] : preprocess.crop)];
  if (ch !== model.channels || h !== model.H || w !== model.W) {
    throw new MetaError(`${where}: preprocess makes ${ch}x${h}x${w} inputs but the model takes ${model.channels}x${model.H}x${model.W}`);
  }
  const classes = card.classes ?? defaultClasses(model.numClasses);
  if (classes.length !== model.numClasses) throw new MetaError(`${where}: field 'classes' has ${classes.length} names but the model has ${model.numClasses} outputs`);
  return { name: card.name ?? null, preprocess, classes, source: found?.source ?? null };
}

/** What a preprocessing does, in words (for the note on models without a card). */
export function describePreprocess(p: Preprocess): string {
  const crop = typeof p.crop === 'number' ? `${p.crop}x${p.crop}` : `${p.crop[0]}x${p.crop[1]}`;
  const r = (v: readonly number[]) => `[${v.map((x) => +x.toFixed(3)).join(', ')}]`;
  return `${p.mode}, ${p.resize ? `shorter side resized to ${p.resize}, ` : ''}center crop ${crop}, mean ${r(p.mean)}, std ${r(p.std)}`;
}

/**
 * One line for a model that came without a model card: the preprocessing and class
 * names that were assumed, and how to give the right ones. Null when a card was found.
 */
export function assumedNote(modelPath: string, meta: ResolvedMeta): string | null {
  if (meta.source !== null) return null;
  const imagenet = meta.preprocess.mode === 'RGB' && meta.preprocess.mean[0] === IMAGENET_PREPROCESS.mean[0];
  const names = meta.classes.length === IMAGENET_CLASSES.length ? 'ImageNet class names' : `class names 'class 0'..'class ${meta.classes.length - 1}'`;
  return `no model card for ${modelPath} (looked for ${sidecarPath(modelPath)}, a 'meta' entry, --meta): assumed ${imagenet ? 'ImageNet ' : ''}preprocessing (${describePreprocess(meta.preprocess)}) and ${names}; give --meta FILE if the model was trained otherwise`;
}
