/**
 * One face for the three model kinds `predict`, `eval` and `demo` accept:
 *   - a checkpoint (.pth / .safetensors, training-time or deploy): the TF.js RepMLPResNet
 *   - an .onnx file: onnxruntime-node
 *   - a TF.js graph model (model.json or its folder): stock tf.loadGraphModel
 * Each is opened with its input shape and class count, and the model card (meta.ts)
 * that says how to preprocess images for it and what its classes are called.
 */
import { cpus } from 'node:os';
import { existsSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { RepmlpError } from '../errors.js';
import { loadStateDictFile } from '../pth/index.js';
import type { LoadOptions } from '../pth/checkpoint.js';
import type { StateDict } from '../pth/pyobj.js';
import { PyDict } from '../pth/pyobj.js';
import { networkInfo, parseArchConfig } from '../family/registry.js';
import { findCard, parseCard, pyToJson, resolveMeta, type FoundCard, type ResolvedMeta } from './meta.js';

export class ClassifierError extends RepmlpError {
  override name = 'ClassifierError';
}

export type ModelKind = 'checkpoint' | 'onnx' | 'tfjs';

export interface Classifier {
  kind: ModelKind;
  path: string;
  /** Human name of what runs it, e.g. 'TF.js wasm (training-time checkpoint)'. */
  runtime: string;
  /** Checkpoints only: training-time or deploy form. */
  mode: 'train' | 'deploy' | null;
  /** Checkpoints only: the architecture it was loaded with (a configuration of its family). */
  config: any;
  /** One image: [C, H, W]. */
  inputShape: [number, number, number];
  numClasses: number;
  meta: ResolvedMeta;
  /** Logits [n, numClasses] for an NCHW float32 batch of n images. */
  logits(batch: Float32Array, n: number): Promise<Float32Array>;
  close(): Promise<void>;
}

export interface OpenOptions {
  /** --arch: preset name or config JSON (checkpoints). */
  arch?: string;
  /** --meta: model card JSON. */
  meta?: string;
  /** TF.js backend for checkpoints and graph models (default wasm, falling back to cpu). */
  backend?: 'wasm' | 'cpu' | 'tensorflow';
  /** --entry / --strict-globals: how the checkpoint is read. */
  read?: LoadOptions;
}

/** .onnx -> onnx; model.json, any other .json or a folder -> TF.js graph; else a checkpoint. */
export function modelKind(modelPath: string): ModelKind {
  if (/\.onnx$/i.test(modelPath)) return 'onnx';
  if (/\.json$/i.test(modelPath)) return 'tfjs';
  if (existsSync(modelPath) && statSync(modelPath).isDirectory()) return 'tfjs';
  return 'checkpoint';
}

export async function openClassifier(modelPath: string, opts: OpenOptions = {}): Promise<Classifier> {
  if (!existsSync(modelPath)) throw new ClassifierError(`${modelPath}: no such file or folder`);
  switch (modelKind(modelPath)) {
    case 'onnx':
      return openOnnxClassifier(modelPath, opts);
    case 'tfjs':
      return openTfjsClassifier(modelPath, opts);
    default:
      return openCheckpointClassifier(modelPath, opts);
  }
}

/** [C, H, W] from an NCHW (onnx) or NHWC (tfjs) shape whose batch may be symbolic. */
function imageShape(dims: readonly (number | string | null | undefined)[] | undefined, layout: 'NCHW' | 'NHWC', where: string): [number, number, number] {
  const ok = dims && dims.length === 4 && dims.slice(1).every((d) => typeof d === 'number' && d > 0);
  if (!ok) throw new ClassifierError(`${where}: input shape ${JSON.stringify(dims)} is not [batch, ${layout === 'NCHW' ? 'C, H, W' : 'H, W, C'}] with fixed image dimensions`);
  const [a, b, c] = dims.slice(1) as number[];
  return layout === 'NCHW' ? [a!, b!, c!] : [c!, a!, b!];
}

function classCount(dims: readonly (number | string | null | undefined)[] | undefined, where: string): number {
  const n = dims?.[dims.length - 1];
  if (!dims || dims.length !== 2 || typeof n !== 'number' || n < 1) throw new ClassifierError(`${where}: output shape ${JSON.stringify(dims)} is not [batch, classes]`);
  return n;
}

function meta(found: FoundCard | null, shape: [number, number, number], numClasses: number): ResolvedMeta {
  return resolveMeta(found, { channels: shape[0], H: shape[1], W: shape[2], numClasses });
}

// ---------------------------------------------------------------------------------------

/** The wrapper's `meta` / `arch` entries, when the checkpoint was saved as a dict of them. */
function wrapperEntries(root: unknown, wrapper: string[], file: string): { card: FoundCard | null; arch: object | null } {
  if (!(root instanceof PyDict) || wrapper.length === 0) return { card: null, arch: null };
  const m = root.map.get('meta');
  const a = root.map.get('arch');
  const card = m instanceof PyDict ? { card: parseCard(pyToJson(m), `${file}: entry 'meta'`), source: `${file} (entry 'meta')` } : null;
  const arch = a instanceof PyDict ? (parseArchConfig(pyToJson(a), `${file}: entry 'arch'`).config as object) : null;
  return { card, arch };
}

async function openCheckpointClassifier(file: string, opts: OpenOptions): Promise<Classifier> {
  // The TF.js stack loads only when a checkpoint is run (start-up cost).
  const { initBackend, predictLogits, resolveModel, networkFor, loadStateDict, detectMode } = await import('../model/index.js');
  const loaded = await loadStateDictFile(file, opts.read);
  const inner = wrapperEntries(loaded.checkpoint.root, loaded.wrapper, file);
  const found = findCard(file, { ...opts, wrapper: inner.card });
  const archName = opts.arch ?? found?.card.arch;
  let config: object;
  let mode: 'train' | 'deploy';
  if (archName === undefined && inner.arch) {
    config = inner.arch;
    mode = detectMode(loaded.stateDict as StateDict) ?? 'train';
  } else {
    ({ config, mode } = resolveModel(loaded.stateDict, file, archName));
  }
  const model = networkFor(config, mode === 'deploy');
  loadStateDict(model, loaded.stateDict, { where: file });
  const backend = await initBackend(opts.backend);
  const info = networkInfo(config);
  const shape: [number, number, number] = [info.input.C, info.input.H, info.input.W];
  return {
    kind: 'checkpoint', path: file, mode, config, inputShape: shape, numClasses: info.numClasses,
    runtime: `TF.js ${backend} (${mode === 'train' ? 'training-time' : 'deploy'} checkpoint)`,
    meta: resolveMeta(found, { channels: shape[0], H: shape[1], W: shape[2], numClasses: info.numClasses, resize: info.resizeShorter }),
    logits: (batch, n) => predictLogits(model, batch, [n, ...shape]),
    async close() {},
  };
}

async function openOnnxClassifier(file: string, opts: OpenOptions): Promise<Classifier> {
  const { ort, OnnxRuntimeError, oneLine } = await import('../export/onnx_runtime.js');
  const o = await ort();
  let session: import('onnxruntime-node').InferenceSession;
  try {
    // As src/export/onnx_runtime.ts: all graph optimizations, intra-op threads = cores.
    session = await o.InferenceSession.create(file, {
      intraOpNumThreads: Math.max(1, Math.min(cpus().length, 8)), interOpNumThreads: 1,
      executionMode: 'sequential', graphOptimizationLevel: 'all',
    });
  } catch (e) {
    throw new OnnxRuntimeError(`${file}: onnxruntime cannot load it: ${(e as Error).message.split('\n')[0]}`, { cause: e });
  }
  const inMeta = session.inputMetadata[0];
  const outMeta = session.outputMetadata[0];
  const shape = imageShape(inMeta && inMeta.isTensor ? inMeta.shape : undefined, 'NCHW', file);
  const numClasses = classCount(outMeta && outMeta.isTensor ? outMeta.shape : undefined, file);
  const inputName = session.inputNames[0]!;
  const outputName = session.outputNames[0]!;
  return {
    kind: 'onnx', path: file, mode: null, config: null, inputShape: shape, numClasses, runtime: 'ONNX Runtime (CPU)',
    meta: meta(findCard(file, opts), shape, numClasses),
    async logits(batch, n) {
      try {
        const out = await session.run({ [inputName]: new o.Tensor('float32', batch, [n, ...shape]) });
        return out[outputName]!.data as Float32Array;
      } catch (e) {
        throw new OnnxRuntimeError(`${file}: onnxruntime: ${oneLine((e as Error).message)}`, { cause: e });
      }
    },
    close: () => session.release(),
  };
}

async function openTfjsClassifier(target: string, opts: OpenOptions): Promise<Classifier> {
  const { initBackend } = await import('../model/backend.js');
  const { loadTfjsGraph, runTfjsGraph } = await import('../export/tfjs_runtime.js');
  const backend = await initBackend(opts.backend);
  const graph = await loadTfjsGraph(target);
  const where = path.basename(target) === 'model.json' ? target : path.join(target, 'model.json');
  const shape = imageShape(graph.inputs[0]?.shape, 'NHWC', where);
  // Graph outputs often carry no shape: ask the signature, else run one blank image.
  let outShape: readonly (number | string | null | undefined)[] | undefined = graph.outputs[0]?.shape;
  if (!outShape) {
    const sig = Object.values((graph.modelSignature as { outputs?: Record<string, { tensorShape?: { dim?: { size?: string | number }[] } }> })?.outputs ?? {})[0];
    outShape = sig?.tensorShape?.dim?.map((d) => Number(d.size ?? -1));
    if (outShape) outShape = outShape.map((d, i) => (i === 0 ? null : d));
  }
  if (!outShape || outShape.slice(1).some((d) => typeof d !== 'number' || d < 1)) {
    outShape = [null, ...(await runTfjsGraph(graph, new Float32Array(shape[0] * shape[1] * shape[2]), [1, ...shape])).shape.slice(1)];
  }
  const numClasses = classCount(outShape, where);
  return {
    kind: 'tfjs', path: target, mode: null, config: null, inputShape: shape, numClasses, runtime: `TF.js ${backend} (graph model)`,
    meta: meta(findCard(target, opts), shape, numClasses),
    async logits(batch, n) {
      return (await runTfjsGraph(graph, batch, [n, ...shape])).data;
    },
    async close() {
      graph.dispose();
    },
  };
}
