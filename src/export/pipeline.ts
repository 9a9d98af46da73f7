/**
 * Checkpoint -> deploy state dict -> IR -> ONNX / TF.js, then a check of what was
 * written: the files are re-opened (onnxruntime, stock tf.loadGraphModel), run on one
 * seeded batch and compared with the TF.js RepMLPResNet built from the same deploy
 * weights. Used by `repmlp export` and the tests.
 */
import { existsSync, statSync } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { OutputSet, linkView, sameFile } from '../io/atomic.js';
import { RepmlpError } from '../errors.js';
import { loadStateDictFile, type StateDict } from '../pth/index.js';
import type { LoadOptions } from '../pth/checkpoint.js';
import { detectMode, resolveModel } from '../model/detect.js';
import { networkInfo } from '../family/registry.js';
import { buildGraph } from './graph.js';
import type { Graph } from './ir.js';
import { writeOnnxInto, type OnnxOptions, type OnnxWriteResult } from './onnx.js';
import { writeTfjsInto, type TfjsWriteResult } from './tfjs.js';
import type { WeightOptions } from './tfjs_weights.js';
import { normalBatch } from '../util/random.js';
import { IMAGENET_PREPROCESS } from '../io/image.js';
import { difference as valueDifference, type Difference } from '../util/compare.js';

export type { Difference };

export class ExportCheckError extends RepmlpError {
  override name = 'ExportCheckError';
}

export class ExportTargetError extends RepmlpError {
  override name = 'ExportTargetError';
}

export const DEFAULT_TOLERANCE = 1e-4;

export interface DeployModel {
  stateDict: StateDict;
  /** The architecture's configuration (any family). */
  config: any;
  arch: string | null;
  /** True when the input was training-time and was converted here. */
  converted: boolean;
  format: string;
}

/** Reads IN and returns the deploy state dict with its architecture (converting first when needed). */
export async function loadDeploy(file: string, arch?: string, read: LoadOptions = {}): Promise<DeployModel> {
  const loaded = await loadStateDictFile(file, read);
  const sd = loaded.stateDict;
  const mode = detectMode(sd);
  if (mode === 'train') {
    const { convertTrainingStateDict } = await import('../reparam/index.js');
    const r = convertTrainingStateDict(sd, { where: file, ...(arch !== undefined ? { arch } : {}) });
    if (!r.arch) throw new RepmlpError(`${file}: architecture not recognized from its keys; give --arch (a preset name or a config JSON)`);
    return { stateDict: r.stateDict, config: r.arch.config, arch: r.arch.name, converted: true, format: loaded.format };
  }
  const r = resolveModel(sd, file, arch);
  return { stateDict: sd, config: r.config, arch: r.arch, converted: false, format: loaded.format };
}


/** As util/compare's difference, with a length mismatch reported as a failed check. */
export function difference(got: Float32Array, ref: Float32Array): Difference {
  if (got.length !== ref.length) throw new ExportCheckError(`output has ${got.length} values, reference ${ref.length}`);
  return valueDifference(got, ref);
}

/** A seeded N(0, 1) batch of the given shape. */
export function randomBatch(shape: readonly number[], seed = 1): Float32Array {
  return normalBatch(shape.reduce((x, y) => x * y, 1), seed);
}

/** Logits of the TF.js network (src/model) for a deploy state dict: the check's reference. */
export async function referenceLogits(config: object, sd: StateDict, input: Float32Array, shape: readonly [number, number, number, number]): Promise<Float32Array> {
  const m = await import('../model/index.js');
  const model = m.buildModel(config, { deploy: true, init: false });
  m.loadStateDict(model, sd, { where: 'deploy state dict' });
  try {
    return await m.predictLogits(model, input, shape);
  } finally {
    model.dispose();
  }
}

export interface CheckResult {
  batch: number;
  reference: string;
  onnx?: Difference;
  tfjs?: Difference;
  backend?: string;
}

/**
 * Where the exports to check are: final paths, or (before they are committed) maps of
 * final base names to paths that open the temporary files.
 */
export interface CheckTargets {
  onnx?: string;
  tfjs?: string;
  onnxFiles?: ReadonlyMap<string, string>;
  tfjsFiles?: ReadonlyMap<string, string>;
}

/** Re-opens the written exports and compares them with the reference on one batch. */
export async function checkExports(
  config: object,
  sd: StateDict,
  out: CheckTargets,
  opts: { batch?: number; backend?: 'wasm' | 'cpu'; seed?: number } = {},
): Promise<CheckResult> {
  const batch = opts.batch ?? 2;
  const info = networkInfo(config);
  const shape = [batch, info.input.C, info.input.H, info.input.W] as const;
  const x = randomBatch(shape, opts.seed ?? 1);
  const { initBackend } = await import('../model/backend.js');
  const backend = await initBackend(opts.backend ?? 'wasm');
  const ref = await referenceLogits(config, sd, x, shape);
  const result: CheckResult = { batch, reference: `TF.js ${info.typeName} (${backend})`, backend };
  if (out.onnx) {
    const { runOnnx } = await import('./onnx_runtime.js');
    const files = out.onnxFiles;
    if (files && files.size > 1) {
      // External data is found by name next to the model: look through a folder of links.
      const view = linkView(new Map(files), dirname(resolve(out.onnx)));
      try {
        result.onnx = difference((await runOnnx(join(view.dir, basename(out.onnx)), x, shape)).data, ref);
      } finally {
        view.remove();
      }
    } else result.onnx = difference((await runOnnx(files?.get(basename(out.onnx)) ?? out.onnx, x, shape)).data, ref);
  }
  if (out.tfjs) {
    const { loadTfjsGraph, runTfjsGraph } = await import('./tfjs_runtime.js');
    const model = await loadTfjsGraph(out.tfjs, out.tfjsFiles);
    try {
      result.tfjs = difference((await runTfjsGraph(model, x, shape)).data, ref);
    } finally {
      model.dispose();
    }
  }
  return result;
}

/**
 * Refuses export targets that would destroy something: the input checkpoint as an
 * output, a file where a folder is expected (--tfjs) or a folder where a file is (--onnx).
 */
export function checkTargets(input: string | undefined, out: { onnx?: string; tfjs?: string }): void {
  if (out.onnx) {
    if (input && sameFile(out.onnx, input)) throw new ExportTargetError(`--onnx ${out.onnx}: is the input checkpoint; choose another output name`);
    if (existsSync(out.onnx) && statSync(out.onnx).isDirectory()) throw new ExportTargetError(`--onnx ${out.onnx}: is a folder; give a file name (e.g. ${join(out.onnx, 'model.onnx')})`);
    if (existsSync(`${out.onnx}.data`) && input && sameFile(`${out.onnx}.data`, input)) throw new ExportTargetError(`--onnx ${out.onnx}: its external data file would replace the input checkpoint`);
  }
  if (out.tfjs) {
    if (input && sameFile(out.tfjs, input)) throw new ExportTargetError(`--tfjs ${out.tfjs}: is the input checkpoint; --tfjs takes a folder`);
    if (existsSync(out.tfjs) && !statSync(out.tfjs).isDirectory()) throw new ExportTargetError(`--tfjs ${out.tfjs}: exists and is a file, not a folder; --tfjs takes a folder (new, or one holding a TF.js model)`);
    if (input && resolve(dirname(input)) === resolve(out.tfjs) && ['model.json'].includes(basename(input))) throw new ExportTargetError(`--tfjs ${out.tfjs}: holds the input`);
  }
  if (out.onnx && out.tfjs && resolve(out.onnx) === resolve(join(out.tfjs, 'model.json'))) throw new ExportTargetError(`--onnx ${out.onnx}: is the TF.js model.json`);
}

export interface ExportOptions extends OnnxOptions {
  onnx?: string;
  tfjs?: string;
  /** The input checkpoint: refused as an output. */
  input?: string;
  /** Skip the re-open-and-compare step. */
  check?: boolean;
  tolerance?: number;
  onPhase?: (phase: 'onnx' | 'tfjs', bytes: number, total: number) => void;
  /** TF.js weight encoding and shard size (--weights, --shard-size; tfjs_weights.ts). */
  tfjsWeights?: WeightOptions;
}

export interface ExportResult {
  graph: Graph;
  onnx?: OnnxWriteResult;
  tfjs?: TfjsWriteResult;
  check?: CheckResult;
}

/**
 * Builds the graph, writes the requested exports aside, checks them (re-opened from the
 * temporary files), and only then puts them in place: when the check finds a difference
 * above the tolerance (or anything fails), ExportCheckError names the worst and every
 * old output is as it was.
 */
/**
 * A model card (app/meta.ts's format) for the exports when the family's test script
 * prepares images differently from the default (the 2021 release's shorter side at
 * 256/224 of the crop): RepMLPNet's test.py resizes to the crop size itself. predict /
 * eval read it next to an .onnx file or inside a TF.js folder. Null when the default fits.
 */
export function exportCard(config: object): string | null {
  const info = networkInfo(config);
  const { C, H, W } = info.input;
  const defaultResize = Math.round((Math.min(H, W) * IMAGENET_PREPROCESS.resize!) / 224);
  if (C !== 3 || info.resizeShorter === defaultResize) return null;
  const preprocess = { ...IMAGENET_PREPROCESS, resize: info.resizeShorter, crop: H === W ? H : [H, W] };
  return JSON.stringify({ name: `${info.family} export`, preprocess }, null, 2) + '\n';
}

/** `a/t224.onnx` -> `a/t224.meta.json` (app/meta.ts sidecarPath's rule). */
function onnxCardPath(file: string): string {
  return join(dirname(file), `${basename(file, extname(file))}.meta.json`);
}

export async function exportDeploy(config: object, sd: StateDict, opts: ExportOptions): Promise<ExportResult> {
  checkTargets(opts.input, opts);
  const graph = buildGraph(config, sd);
  const card = exportCard(config);
  const total = [...graph.initializers.values()].reduce((s, t) => s + t.data.byteLength, 0);
  const result: ExportResult = { graph };
  const set = new OutputSet();
  try {
    const targets: CheckTargets = {};
    if (opts.onnx) {
      const { files, ...r } = await writeOnnxInto(set, opts.onnx, graph, opts, (n) => opts.onPhase?.('onnx', n, total));
      result.onnx = r;
      Object.assign(targets, { onnx: opts.onnx, onnxFiles: files });
      // A card the user already keeps there is theirs: never replaced.
      const side = onnxCardPath(opts.onnx);
      if (card && !existsSync(side)) await set.bytes(side, new TextEncoder().encode(card));
    }
    if (opts.tfjs) {
      const { files, ...r } = await writeTfjsInto(set, opts.tfjs, graph, { ...(opts.tfjsWeights ?? {}), ...(card ? { extraFiles: { 'model.meta.json': card } } : {}) }, (n) => opts.onPhase?.('tfjs', n, total));
      result.tfjs = r;
      Object.assign(targets, { tfjs: opts.tfjs, tfjsFiles: files });
    }
    if (opts.check ?? true) {
      const c = await checkExports(config, sd, targets);
      result.check = c;
      const tol = opts.tolerance ?? DEFAULT_TOLERANCE;
      for (const [what, d] of [['ONNX', c.onnx], ['TF.js', c.tfjs]] as const) {
        // Quantized weights (float16, uint8) cost accuracy by design: reported, not failed.
        const quantized = what === 'TF.js' && (opts.tfjsWeights?.weights ?? 'float32') !== 'float32';
        if (d && !quantized && !(d.rel <= tol)) throw new ExportCheckError(`${what} export differs from the TF.js model: relative ${d.rel.toExponential(2)} (max abs ${d.maxAbs.toExponential(2)}) > tolerance ${tol}; nothing written, existing outputs left as they were`);
      }
    }
    await set.commit();
  } finally {
    await set.discard();
  }
  return result;
}
