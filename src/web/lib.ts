/**
 * repmlp in the browser (`dist/web/repmlp.mjs`): the Node entry points with Blob / File /
 * ArrayBuffer / Uint8Array where Node takes paths, and Uint8Array where Node writes a
 * file. It is the library itself, bundled: inputs are mounted on a small in-memory file
 * system (shim/vfs.ts) and the CLI's own readers, converter and writers run on them.
 *
 * In a worker, a File is read lazily (Blob.slice + FileReaderSync: a 350 MB checkpoint
 * is never copied whole); on a page's main thread it is read into memory once first.
 */
import * as vfs from './shim/vfs.js';
import { RepmlpError, UsageError } from '../errors.js';
import { readCheckpoint as readCheckpointPath, loadStateDictFile as loadStateDictPath, type Checkpoint, type LoadedStateDict } from '../pth/checkpoint.js';
import { writeCheckpoint as writeCheckpointPath, type WriteOptions } from '../pth/write.js';
import { findStateDict, stripPrefix, addPrefix, stateDictToPy } from '../pth/statedict.js';
import { PyDict, type PyValue, type StateDict } from '../pth/pyobj.js';
import { Tensor } from '../tensor.js';
import { inspectFile, type InspectReport } from '../cli/inspect.js';
export { formatReport as formatInspect } from '../cli/inspect.js';
import { replaceAt } from '../cli/prefix.js';
import { convertTrainingStateDict, type BlockHint } from '../reparam/index.js';
import { detectMode, resolveModel } from '../model/detect.js';
import { networkInfo } from '../family/registry.js';
import { loadDeploy, type DeployModel } from '../export/pipeline.js';
import { buildGraph } from '../export/graph.js';
import { writeOnnx, type OnnxOptions } from '../export/onnx.js';
import { writeTfjs } from '../export/tfjs.js';
import type { WeightEncoding } from '../export/tfjs_weights.js';
import { ZipWriter } from '../pth/zip-writer.js';
import { difference, type Difference } from '../util/compare.js';
import { normalBatch } from '../util/random.js';
import { parseCard, pyToJson, resolveMeta, type FoundCard, type ResolvedMeta } from '../app/meta.js';
import { softmax, topK, type Ranked } from '../app/classify.js';
import { decodeImage, fromRgba, preprocessImage, sniffFormat, type ColorMode, type RawImage } from '../io/image.js';

export type Input = Blob | ArrayBuffer | ArrayBufferView;
export type Progress = (done: number, total: number) => void;

// The pure library, as in Node (nothing here touches a file).
export { RepmlpError, UsageError } from '../errors.js';
export { Tensor, Storage } from '../tensor.js';
export { PyDict, PyTuple, PyOther } from '../pth/pyobj.js';
export { findStateDict, toStateDict, stateDictToPy, stripPrefix, addPrefix, detectPrefix } from '../pth/statedict.js';
export { convertStateDict, convertTrainingStateDict, equivalentFc1Fc3 } from '../reparam/index.js';
export { detectArch, detectMode, inferConfig, resolveModel } from '../model/detect.js';
export { PRESETS, parseConfig } from '../model/config.js';
// ARCH of any family (a preset name of either family, or a config object / JSON with "family").
export { resolveArch, parseArchConfig, presetNames } from '../family/registry.js';
export { buildGraph } from '../export/graph.js';
export { onnxBytes } from '../export/onnx.js';
export { tfjsArtifacts } from '../export/tfjs.js';
export { packWeights, toHalf, defaultShardBytes, WEIGHT_ENCODINGS } from '../export/tfjs_weights.js';
export { softmax, topK } from '../app/classify.js';
// TF.js itself (the same instance the models run on), and the stock graph loader.
export { tf } from '../model/backend.js';
export { loadGraphModel } from '@tensorflow/tfjs-converter';
export type { InspectReport, Checkpoint, LoadedStateDict, Difference, Ranked };

let seq = 0;

function nameOf(input: Input, fallback: string): string {
  const n = (input as { name?: unknown }).name;
  return typeof n === 'string' && n && !n.includes('/') ? n : fallback;
}

function asBytes(input: Input): Blob | Uint8Array | ArrayBuffer {
  if (input instanceof Blob || input instanceof ArrayBuffer) return input;
  if (ArrayBuffer.isView(input)) return new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
  throw new UsageError('expected a Blob, File, ArrayBuffer or Uint8Array');
}

/**
 * Runs `fn` with `input` mounted at a fresh path; messages name the file as the user
 * knows it (its name), not the mount point. Everything written under the mount's folder
 * is removed afterwards.
 */
async function withFile<T>(input: Input, fallback: string, fn: (path: string, dir: string) => Promise<T>): Promise<T> {
  const dir = `/w${++seq}`;
  const file = `${dir}/${nameOf(input, fallback)}`;
  await vfs.mount(file, asBytes(input));
  try {
    return await fn(file, dir);
  } catch (e) {
    if (e instanceof Error) e.message = e.message.split(`${dir}/`).join('');
    throw e;
  } finally {
    vfs.remove(dir);
  }
}

/** The input's mount point is kept while its lazily read tensors may still be read. */
async function mountKept(input: Input, fallback: string): Promise<string> {
  const file = `/k${++seq}/${nameOf(input, fallback)}`;
  await vfs.mount(file, asBytes(input));
  return file;
}

function unmountedError(e: unknown, path: string): never {
  if (e instanceof Error) e.message = e.message.split(path.slice(0, path.lastIndexOf('/') + 1)).join('');
  throw e;
}

// ---------------------------------------------------------------------------------------
// Reading.

/** As Node's readCheckpoint: the unpickled object, tensors read lazily from the Blob. */
export async function readCheckpoint(input: Input): Promise<Checkpoint> {
  const p = await mountKept(input, 'checkpoint.pth');
  try {
    return await readCheckpointPath(p);
  } catch (e) {
    vfs.remove(p);
    return unmountedError(e, p);
  }
}

/** As Node's loadStateDictFile: the state dict found inside wrappers, `module.` stripped. */
export async function loadStateDictFile(input: Input): Promise<LoadedStateDict> {
  const p = await mountKept(input, 'checkpoint.pth');
  try {
    return await loadStateDictPath(p);
  } catch (e) {
    vfs.remove(p);
    return unmountedError(e, p);
  }
}

/** `repmlp inspect --json`: format, wrapper, prefix, counts, arch, mode, entries, others. */
export async function inspect(input: Input): Promise<InspectReport> {
  return withFile(input, 'checkpoint.pth', async (p) => ({ ...(await inspectFile(p)), file: nameOf(input, 'checkpoint.pth') }));
}

// ---------------------------------------------------------------------------------------
// Writing.

/** Runs a writer on a scratch path and returns what it wrote. */
async function written(name: string, write: (path: string) => Promise<void>): Promise<Uint8Array> {
  const dir = `/o${++seq}`;
  vfs.mkdirSync(dir);
  try {
    await write(`${dir}/${name}`);
    return vfs.take(`${dir}/${name}`) as Uint8Array;
  } finally {
    vfs.remove(dir);
  }
}

/** As Node's writeCheckpoint, returning the file's bytes (torch zip, or safetensors). */
export async function writeCheckpoint(obj: PyValue, opts: Omit<WriteOptions, 'verify'> = {}): Promise<Uint8Array> {
  return written('out', (p) => writeCheckpointPath(p, obj, opts));
}

export interface PrefixOptions {
  /** Leading prefix to remove (default 'module.' when `add` is not given). */
  strip?: string;
  add?: string;
  format?: 'zip' | 'safetensors';
  onProgress?: Progress;
}

export interface PrefixResult {
  bytes: Uint8Array;
  wrapper: string[];
  renamed: number;
  tensors: number;
  first: string | null;
}

/** `repmlp prefix`: strip and/or add a leading key prefix; wrappers and other entries kept. */
export async function prefix(input: Input, opts: PrefixOptions = {}): Promise<PrefixResult> {
  const where = nameOf(input, 'checkpoint.pth');
  return withFile(input, 'checkpoint.pth', async (p) => {
    const ck = await readCheckpointPath(p);
    const { path, dict } = findStateDict(ck.root);
    const strip = opts.strip ?? (opts.add === undefined ? 'module.' : undefined);
    let out = dict;
    let renamed = 0;
    if (strip !== undefined) {
      const keys = [...dict.map.keys()].filter((k): k is string => typeof k === 'string');
      renamed = keys.filter((k) => k.startsWith(strip)).length;
      if (renamed === 0) throw new RepmlpError(`${where}: no state-dict key starts with '${strip}' (keys look like ${keys.slice(0, 3).map((k) => `'${k}'`).join(', ')}); nothing to strip`);
      out = stripPrefix(out, strip);
    }
    if (opts.add !== undefined) {
      if (!opts.add) throw new UsageError('add: needs a non-empty prefix');
      out = addPrefix(out, opts.add);
      renamed = out.map.size;
    }
    let root = opts.format === 'safetensors' ? out : replaceAt(ck.root, path, out);
    if (opts.format !== 'safetensors' && ck.format === 'safetensors' && root instanceof PyDict) root = new PyDict(root.map, root.ordered);
    const tensors = [...out.map.values()].filter((v) => v instanceof Tensor).length;
    const bytes = await writeCheckpoint(root, { format: opts.format ?? 'zip', ...(opts.onProgress ? { onProgress: opts.onProgress } : {}) });
    return { bytes, wrapper: path, renamed, tensors, first: [...out.map.keys()].map(String)[0] ?? null };
  });
}

// ---------------------------------------------------------------------------------------
// Architecture, conversion, export.

/** --arch: a preset name, or a config object (written where resolveArch can read it). */
export type ArchInput = string | Record<string, unknown>;

function archPath(arch: ArchInput | undefined): string | undefined {
  if (arch === undefined || typeof arch === 'string') return arch;
  const p = `/arch/${++seq}.json`;
  vfs.mkdirSync('/arch', { recursive: true });
  vfs.writeFileSync(p, JSON.stringify(arch));
  return p;
}

/** A checkpoint wrapper's own `arch` dict (as tools/train_demo.py saves it), if any. */
function wrapperArch(loaded: LoadedStateDict): Record<string, unknown> | undefined {
  const root = loaded.checkpoint.root;
  if (!(root instanceof PyDict) || loaded.wrapper.length === 0) return undefined;
  const a = root.map.get('arch');
  return a instanceof PyDict ? (pyToJson(a) as Record<string, unknown>) : undefined;
}

export interface ConvertOptions {
  arch?: ArchInput;
  fc3Groups?: number;
  /** Partition size [h, w]. */
  partition?: [number, number];
  format?: 'pth' | 'safetensors';
  onProgress?: Progress;
}

export interface ConvertResult {
  bytes: Uint8Array;
  format: 'pth' | 'safetensors';
  arch: string | null;
  blocks: number;
  convBnPairs: number;
  /** Folded blocks of other kinds (e.g. RepMLPNet's locality injection). */
  units: number;
  tensorsIn: number;
  tensorsOut: number;
  /** Wall-clock milliseconds: reading the checkpoint's metadata, converting + writing. */
  timings: { read: number; convertAndWrite: number };
}

function hintOf(opts: ConvertOptions): BlockHint | undefined {
  const h: BlockHint = {};
  if (opts.fc3Groups !== undefined) h.fc3Groups = opts.fc3Groups;
  if (opts.partition) [h.h, h.w] = opts.partition;
  return Object.keys(h).length ? h : undefined;
}

/** `repmlp convert`: the exact deploy state dict, as a .pth (torch zip) or .safetensors file. */
export async function convert(input: Input, opts: ConvertOptions = {}): Promise<ConvertResult> {
  return withFile(input, 'checkpoint.pth', async (p) => {
    const t0 = performance.now();
    const loaded = await loadStateDictPath(p);
    const t1 = performance.now();
    const arch = archPath(opts.arch ?? wrapperArch(loaded));
    const hint = hintOf(opts);
    const r = convertTrainingStateDict(loaded.stateDict, { where: nameOf(input, 'checkpoint.pth'), lazy: true, ...(arch !== undefined ? { arch } : {}), ...(hint ? { hint } : {}) });
    const format = opts.format ?? 'pth';
    let done = 0;
    const total = [...r.stateDict.values()].reduce((s, t) => s + t.numel, 0);
    const bytes = await writeCheckpoint(stateDictToPy(r.stateDict), {
      format: format === 'pth' ? 'zip' : 'safetensors',
      onProgress: (d) => opts.onProgress?.((done = d), Math.max(done, total * 4)),
    });
    return {
      bytes, format, arch: r.arch ? (r.arch.name ?? 'custom') : null, blocks: r.blocks.length, convBnPairs: r.convBnPairs.length, units: r.units.length,
      tensorsIn: r.tensorsIn, tensorsOut: r.tensorsOut, timings: { read: t1 - t0, convertAndWrite: performance.now() - t1 },
    };
  });
}

// The deploy model of an input, kept for the steps that follow (export, predict, verify
// all start from it): keyed by the input object and the architecture asked for.
const deployCache = new WeakMap<object, Map<string, Promise<DeployModel & { wrapperMeta: FoundCard | null }>>>();

/** As Node's loadDeploy: the deploy state dict and config (converted first when training-time). */
export async function loadDeploy_(input: Input, arch?: ArchInput): Promise<DeployModel & { wrapperMeta: FoundCard | null }> {
  const key = typeof arch === 'object' ? JSON.stringify(arch) : String(arch);
  let m = deployCache.get(input as object);
  if (!m) deployCache.set(input as object, (m = new Map()));
  let got = m.get(key);
  if (!got) {
    got = withFile(input, 'checkpoint.pth', async (p) => {
      const loaded = await loadStateDictPath(p);
      const a = archPath(arch ?? wrapperArch(loaded));
      const d = await loadDeploy(p, a);
      // Deploy tensors of a deploy input still read from the mount: load them now.
      for (const t of d.stateDict.values()) t.storage.bytes();
      return { ...d, wrapperMeta: wrapperCard(loaded, nameOf(input, 'checkpoint.pth')) };
    });
    m.set(key, got);
    got.catch(() => m!.delete(key));
  }
  return got;
}
export { loadDeploy_ as loadDeploy };

function wrapperCard(loaded: LoadedStateDict, where: string): FoundCard | null {
  const root = loaded.checkpoint.root;
  if (!(root instanceof PyDict) || loaded.wrapper.length === 0) return null;
  const m = root.map.get('meta');
  return m instanceof PyDict ? { card: parseCard(pyToJson(m), `${where}: entry 'meta'`), source: `${where} (entry 'meta')` } : null;
}

export interface ExportOptions extends Pick<OnnxOptions, 'opset'> {
  arch?: ArchInput;
  /** TF.js: bytes per weight shard (default: at most 6 shards of >= 4 MiB). */
  shardSize?: number;
  /** TF.js: weight storage, dequantized by tf.loadGraphModel (default float32). */
  weights?: WeightEncoding;
  onProgress?: Progress;
}

/** `repmlp export --onnx`: the ONNX file's bytes (input `input` NCHW, output `logits`). */
export async function exportOnnx(input: Input, opts: ExportOptions = {}): Promise<Uint8Array> {
  const m = await loadDeploy_(input, opts.arch);
  const g = buildGraph(m.config, m.stateDict);
  const total = [...g.initializers.values()].reduce((s, t) => s + t.data.byteLength, 0);
  return written('model.onnx', async (p) => {
    await writeOnnx(p, g, opts.opset !== undefined ? { opset: opts.opset } : {}, (n) => opts.onProgress?.(n, total));
  });
}

export interface TfjsExport {
  /** model.json and the shards, by file name. */
  files: Map<string, Uint8Array>;
  modelJson: unknown;
}

/** `repmlp export --tfjs`: model.json + weight shards, in memory. */
export async function exportTfjs(input: Input, opts: ExportOptions = {}): Promise<TfjsExport> {
  const m = await loadDeploy_(input, opts.arch);
  const g = buildGraph(m.config, m.stateDict);
  const total = [...g.initializers.values()].reduce((s, t) => s + t.data.byteLength, 0);
  const dir = `/o${++seq}`;
  vfs.mkdirSync(dir);
  try {
    await writeTfjs(`${dir}/tfjs`, g, { ...(opts.shardSize !== undefined ? { shardBytes: opts.shardSize } : {}), ...(opts.weights ? { weights: opts.weights } : {}) }, (n) => opts.onProgress?.(n, total));
    const files = new Map<string, Uint8Array>();
    for (const f of vfs.list(`${dir}/tfjs`)) files.set(f, vfs.take(`${dir}/tfjs/${f}`) as Uint8Array);
    return { files, modelJson: JSON.parse(new TextDecoder().decode(files.get('model.json')!)) };
  } finally {
    vfs.remove(dir);
  }
}

/** A zip archive (STORED records, written by the checkpoint writer's ZipWriter) of `files`. */
export async function zipFiles(files: Map<string, Uint8Array>): Promise<Uint8Array> {
  return written('out.zip', async (p) => {
    const { promises } = vfs;
    const fh = await promises.open(p, 'w');
    const zip = new ZipWriter(fh as never);
    for (const [name, data] of files) await zip.add(name, data);
    await zip.finish();
    await fh.close();
  });
}

// ---------------------------------------------------------------------------------------
// Running models (TF.js in the page).

export type WebBackend = 'webgl' | 'wasm' | 'cpu';

let backendReady: Promise<string> | undefined;
let wasmPath: string | undefined;

/** Where the TF.js wasm binaries are served (default: next to repmlp.mjs). */
export function setWasmPaths(prefix: string): void {
  wasmPath = prefix;
}

/**
 * Activates a TF.js backend: webgl (where the browser has WebGL, in a worker through
 * OffscreenCanvas), else wasm, else cpu. Returns the one in use.
 */
export async function setBackend(preferred?: WebBackend): Promise<string> {
  const { tf } = await import('../model/backend.js');
  await import('@tensorflow/tfjs-backend-webgl');
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  wasm.setWasmPaths(wasmPath ?? new URL('./', import.meta.url).href);
  const order: WebBackend[] = preferred ? [preferred] : ['webgl', 'wasm', 'cpu'];
  for (const b of order) {
    try {
      if (await tf.setBackend(b)) {
        await tf.ready();
        // webgl can register and still fail its first kernel (no GPU, blocked context).
        tf.tidy(() => tf.add(tf.scalar(1), tf.scalar(1)).dataSync());
        // A software rasterizer (SwiftShader, llvmpipe: headless, no GPU) runs these
        // models far slower than wasm SIMD (light-224, one image: ~40 s vs ~1 s here).
        if (b === 'webgl' && !preferred && softwareGl(tf)) continue;
        return b;
      }
    } catch {
      /* next */
    }
  }
  throw new RepmlpError(`no TF.js backend available (tried ${order.join(', ')})`);
}

/** The WebGL backend's renderer string names a software rasterizer. */
function softwareGl(tf: { backend(): unknown }): boolean {
  try {
    const gl = (tf.backend() as { gpgpu?: { gl?: WebGLRenderingContext } }).gpgpu?.gl;
    if (!gl) return false;
    const ext = gl.getExtension('WEBGL_debug_renderer_info');
    const renderer = String(gl.getParameter(ext ? ext.UNMASKED_RENDERER_WEBGL : gl.RENDERER));
    return /swiftshader|llvmpipe|softpipe|software/i.test(renderer);
  } catch {
    return false;
  }
}

async function ensureBackend(): Promise<string> {
  backendReady ??= setBackend();
  return backendReady;
}

/**
 * What the page needs to know of an architecture: input [C, H, W] and class count. The
 * one place that reads the RepMLPResNet config's fields; once RepMLPNet lands (family
 * branch), this becomes `networkInfo(config)` from the family registry.
 */
/** Input shape, classes and the family's resize, from the network description (any family). */
function inputOf(config: object): { shape: [number, number, number]; numClasses: number; resize: number | undefined } {
  const info = networkInfo(config);
  return { shape: [info.input.C, info.input.H, info.input.W], numClasses: info.numClasses, resize: info.resizeShorter };
}

async function modelFor(config: object, sd: StateDict, deploy: boolean, where: string) {
  const m = await import('../model/index.js');
  const model = m.buildModel(config, { deploy, init: false });
  m.loadStateDict(model, sd, { where });
  return { model, run: (x: Float32Array, shape: [number, number, number, number]) => m.predictLogits(model, x, shape) };
}

export interface VerifyOptions {
  arch?: ArchInput;
  batch?: number;
  seed?: number;
  tolerance?: number;
}

export interface VerifyResult {
  arch: string;
  backend: string;
  batch: number;
  seed: number;
  tolerance: number;
  maxAbsDiff: number;
  maxRelDiff: number;
  ok: boolean;
  /** TF.js graph export (tf.loadGraphModel from memory) vs the training-time model. */
  tfjs?: { maxAbsDiff: number; maxRelDiff: number; ok: boolean };
}

/** `repmlp verify`: training-time vs converted model on one seeded random batch. */
export async function verify(input: Input, opts: VerifyOptions & { tfjs?: boolean } = {}): Promise<VerifyResult> {
  const tol = opts.tolerance ?? 1e-4;
  const batch = opts.batch ?? 2;
  const seed = opts.seed ?? 0;
  const backend = await ensureBackend();
  const where = nameOf(input, 'checkpoint.pth');
  const loaded = await loadStateDictFile(input);
  if (detectMode(loaded.stateDict) !== 'train') throw new RepmlpError(`${where}: not a training-time checkpoint; verify compares the training-time model with its conversion`);
  const d = await loadDeploy_(input, opts.arch);
  const config = d.config;
  const shape: [number, number, number, number] = [batch, ...inputOf(config).shape];
  const x = normalBatch(shape.reduce((a, b) => a * b, 1), seed);
  const train = await modelFor(config, loaded.stateDict, false, where);
  const ref = await train.run(x, shape);
  train.model.dispose();
  const dep = await modelFor(config, d.stateDict, true, `converted ${where}`);
  const diff = difference(await dep.run(x, shape), ref);
  dep.model.dispose();
  const result: VerifyResult = { arch: d.arch ?? 'custom', backend, batch, seed, tolerance: tol, maxAbsDiff: diff.maxAbs, maxRelDiff: diff.rel, ok: diff.rel <= tol };
  if (opts.tfjs) {
    const t = await exportTfjs(input, opts.arch !== undefined ? { arch: opts.arch } : {});
    const gd = difference(await runTfjsFiles(t.files, x, shape), ref);
    result.tfjs = { maxAbsDiff: gd.maxAbs, maxRelDiff: gd.rel, ok: gd.rel <= tol };
  }
  return result;
}

/** Stock tf.loadGraphModel on in-memory files (tf.io.fromMemory), logits for an NCHW batch. */
export async function runTfjsFiles(files: Map<string, Uint8Array>, x: Float32Array, shape: readonly number[]): Promise<Float32Array> {
  await ensureBackend();
  const { tf } = await import('../model/backend.js');
  const { loadGraphModel } = await import('@tensorflow/tfjs-converter');
  const { runTfjsGraph } = await import('../export/tfjs_runtime.js');
  const json = JSON.parse(new TextDecoder().decode(files.get('model.json')!)) as { modelTopology: object; weightsManifest: { paths: string[]; weights: import('@tensorflow/tfjs-core').io.WeightsManifestEntry[] }[] };
  const group = json.weightsManifest[0]!;
  const parts = group.paths.map((p) => files.get(p)!);
  const all = new Uint8Array(parts.reduce((s, b) => s + b.byteLength, 0));
  let at = 0;
  for (const b of parts) {
    all.set(b, at);
    at += b.byteLength;
  }
  const model = await loadGraphModel(tf.io.fromMemory({ modelTopology: json.modelTopology, weightSpecs: group.weights, weightData: all.buffer }));
  try {
    return (await runTfjsGraph(model, x, shape)).data;
  } finally {
    model.dispose();
  }
}

export interface Classifier {
  arch: string | null;
  mode: 'deploy';
  backend: string;
  inputShape: [number, number, number];
  meta: ResolvedMeta;
  /** Logits [n, classes] of an NCHW batch. */
  logits(batch: Float32Array, n: number): Promise<Float32Array>;
  /** Top-k of each image (File/Blob/bytes of a JPEG or PNG) with the card's preprocessing. */
  predict(images: Input[], k?: number): Promise<{ file: string; top: Ranked[] }[]>;
  close(): void;
}

/**
 * The converted (deploy) model of a checkpoint, ready to classify images: preprocessing
 * and class names from `meta` (a model card object), else the checkpoint wrapper's
 * `meta` entry, else the release's ImageNet pipeline and names.
 */
export async function openClassifier(input: Input, opts: { arch?: ArchInput; meta?: Record<string, unknown> } = {}): Promise<Classifier> {
  const backend = await ensureBackend();
  const d = await loadDeploy_(input, opts.arch);
  const c = d.config;
  const { shape: inputShape, numClasses, resize } = inputOf(c);
  const found = opts.meta ? { card: parseCard(opts.meta, 'model card'), source: 'model card' } : d.wrapperMeta;
  const meta = resolveMeta(found, { channels: inputShape[0], H: inputShape[1], W: inputShape[2], numClasses, ...(resize !== undefined ? { resize } : {}) });
  const m = await modelFor(c, d.stateDict, true, 'converted model');
  const logits = (batch: Float32Array, n: number) => m.run(batch, [n, ...inputShape]);
  return {
    arch: d.arch, mode: 'deploy', backend, inputShape, meta, logits,
    async predict(images, k = 5) {
      const per = inputShape[0] * inputShape[1] * inputShape[2];
      const x = new Float32Array(images.length * per);
      for (const [i, img] of images.entries()) preprocessImage(await decodeAny(img, meta.preprocess.mode), meta.preprocess, x, i * per);
      const out = await logits(x, images.length);
      return images.map((img, i) => {
        const p = softmax(out.subarray(i * numClasses, (i + 1) * numClasses));
        return { file: nameOf(img, `image ${i + 1}`), top: topK(p, k).map((index) => ({ index, label: meta.classes[index]!, probability: p[index]! })) };
      });
    },
    close: () => m.model.dispose(),
  };
}

/** `repmlp predict`: top-k classes of images with the converted model of a checkpoint. */
export async function predict(input: Input, images: Input[], opts: { arch?: ArchInput; meta?: Record<string, unknown>; top?: number } = {}) {
  const clf = await openClassifier(input, opts);
  try {
    return await clf.predict(images, opts.top ?? 5);
  } finally {
    clf.close();
  }
}

/**
 * JPEG: jpeg-js, as the CLI decodes it (same pixels). PNG: the browser's decoder
 * (createImageBitmap without colour conversion), which gives PIL's pixels for 8-bit
 * opaque PNGs; pngjs itself needs Node's zlib and streams.
 */
export async function decodeAny(input: Input, mode: ColorMode): Promise<RawImage> {
  const name = nameOf(input, 'image');
  const bytes = input instanceof Blob ? new Uint8Array(await input.arrayBuffer()) : (asBytes(input) instanceof ArrayBuffer ? new Uint8Array(asBytes(input) as ArrayBuffer) : (asBytes(input) as Uint8Array));
  if (sniffFormat(bytes) !== 'png') return decodeImage(bytes, name, mode);
  let bmp: ImageBitmap;
  try {
    bmp = await createImageBitmap(new Blob([bytes as BlobPart], { type: 'image/png' }), { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  } catch (e) {
    throw new RepmlpError(`${name}: broken PNG (${(e as Error).message})`);
  }
  const canvas = new OffscreenCanvas(bmp.width, bmp.height);
  const ctx = canvas.getContext('2d', { colorSpace: 'srgb' })!;
  ctx.drawImage(bmp, 0, 0);
  const rgba = ctx.getImageData(0, 0, bmp.width, bmp.height).data;
  return fromRgba(new Uint8Array(rgba.buffer, rgba.byteOffset, rgba.byteLength), bmp.width, bmp.height, mode);
}

export type { DeployModel, Difference as DifferenceT };
export { vfs };
