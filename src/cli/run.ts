/**
 * `repmlp run MODEL --input X.npy --output Y.npy [--arch ARCH] [--backend wasm|cpu]`:
 * a forward pass. MODEL kinds are told apart by their name: `.onnx` (ONNX Runtime) and
 * `model.json` (TF.js graph model) go to their runners; anything else is read as a
 * checkpoint (.pth zip or legacy, .safetensors), training-time or deploy by its keys.
 */
import { READ_OPTIONS, readOptions } from './read-options.js';
import type { LoadOptions } from '../pth/checkpoint.js';
import * as path from 'node:path';
import { type Command, str } from './command.js';
import { UsageError, RepmlpError } from '../errors.js';
import { npyToFloat32, readNpy, writeNpy } from '../io/npy.js';
import { sameFile } from '../io/atomic.js';

export class RunError extends RepmlpError {
  override name = 'RunError';
}

type ModelKind = 'checkpoint' | 'onnx' | 'tfjs';

export function modelKind(file: string): ModelKind {
  if (file.toLowerCase().endsWith('.onnx')) return 'onnx';
  if (path.basename(file) === 'model.json' || file.toLowerCase().endsWith('.json')) return 'tfjs';
  return 'checkpoint';
}

/** Reads X.npy as a float32 NCHW batch. */
async function readInput(file: string): Promise<{ data: Float32Array; shape: [number, number, number, number] }> {
  const x = await readNpy(file);
  if (x.shape.length !== 4) throw new RunError(`${file}: expected a 4-D NCHW array, found shape (${x.shape.join(', ')})`);
  if (x.dtype !== 'float32' && x.dtype !== 'float64') throw new RunError(`${file}: expected float32 values, found ${x.dtype}`);
  return { data: npyToFloat32(x), shape: x.shape as [number, number, number, number] };
}

async function runCheckpoint(file: string, x: { data: Float32Array; shape: [number, number, number, number] }, arch: string | undefined, backend: string | undefined, read: LoadOptions = {}): Promise<{ logits: Float32Array; classes: number; info: Record<string, unknown> }> {
  const m = await import('../model/index.js');
  if (backend !== undefined && !m.isBackendName(backend)) throw new UsageError(`--backend ${backend}: expected one of ${m.BACKENDS.join(', ')}`);
  const used = await m.initBackend(backend as 'wasm' | 'cpu' | 'tensorflow' | undefined);
  const loaded = await m.fromCheckpoint(file, { ...read, ...(arch !== undefined ? { arch } : {}) });
  try {
    const logits = await m.predictLogits(loaded.model, x.data, x.shape);
    return { logits, classes: loaded.model.desc.numClasses, info: { arch: loaded.arch, mode: loaded.mode, backend: used } };
  } finally {
    loaded.model.dispose();
  }
}

/** An exported model: .onnx by onnxruntime-node, model.json by stock tf.loadGraphModel (NHWC inside; NCHW in and out here). */
async function runExported(kind: 'onnx' | 'tfjs', file: string, x: { data: Float32Array; shape: [number, number, number, number] }, backend: string | undefined): Promise<{ logits: Float32Array; classes: number; info: Record<string, unknown> }> {
  if (kind === 'onnx') {
    const { runOnnx } = await import('../export/onnx_runtime.js');
    const out = await runOnnx(file, x.data, x.shape);
    if (out.shape.length !== 2 || out.shape[0] !== x.shape[0]) throw new RunError(`${file}: output has shape [${out.shape}], expected [${x.shape[0]}, classes]`);
    return { logits: out.data, classes: out.shape[1]!, info: { arch: null, mode: 'deploy', backend: 'onnxruntime' } };
  }
  const m = await import('../model/backend.js');
  if (backend !== undefined && !m.isBackendName(backend)) throw new UsageError(`--backend ${backend}: expected one of ${m.BACKENDS.join(', ')}`);
  const used = await m.initBackend(backend as 'wasm' | 'cpu' | 'tensorflow' | undefined);
  const { loadTfjsGraph, runTfjsGraph } = await import('../export/tfjs_runtime.js');
  const model = await loadTfjsGraph(file);
  try {
    const out = await runTfjsGraph(model, x.data, x.shape);
    if (out.shape.length !== 2 || out.shape[0] !== x.shape[0]) throw new RunError(`${file}: output has shape [${out.shape}], expected [${x.shape[0]}, classes]`);
    return { logits: out.data, classes: out.shape[1]!, info: { arch: null, mode: 'deploy', backend: `tf.loadGraphModel on ${used}` } };
  } finally {
    model.dispose();
  }
}

export const command: Command = {
  name: 'run',
  summary: 'forward pass of a checkpoint (TensorFlow.js), .onnx or model.json on an .npy batch',
  usage: 'repmlp run MODEL --input X.npy --output Y.npy [--arch ARCH] [--backend wasm|cpu]',
  example: 'repmlp run RepMLP-Res50-light-224_train.pth --input x.npy --output logits.npy',
  options: {
    input: { type: 'string', help: 'X.npy  float32 NCHW input batch' },
    output: { type: 'string', help: 'Y.npy  where to write float32 logits [N, classes]' },
    arch: { type: 'string', help: 'ARCH  preset name or config JSON (default: detected)' },
    backend: { type: 'string', help: 'NAME  TF.js backend: wasm (default), cpu, tensorflow' },
    ...READ_OPTIONS,
  },
  positionals: [1, 1],
  async run(ctx) {
    const file = ctx.positionals[0]!;
    const input = str(ctx.values, 'input');
    const output = str(ctx.values, 'output');
    if (!input) throw new UsageError('run: --input X.npy is required');
    if (!output) throw new UsageError('run: --output Y.npy is required');
    // The logits must not replace the model or the input they came from.
    if (sameFile(output, file)) throw new UsageError(`run: --output ${output} is the model; choose another name`);
    if (sameFile(output, input)) throw new UsageError(`run: --output ${output} is the input batch; choose another name`);
    const x = await readInput(input);
    const kind = modelKind(file);
    const t0 = performance.now();
    const r = kind === 'checkpoint'
      ? await runCheckpoint(file, x, str(ctx.values, 'arch'), str(ctx.values, 'backend'), readOptions(ctx.values))
      : await runExported(kind, file, x, str(ctx.values, 'backend'));
    const ms = performance.now() - t0;
    await writeNpy(output, { shape: [x.shape[0], r.classes], data: r.logits });
    if (ctx.json) process.stdout.write(JSON.stringify({ model: file, kind, input, output, shape: [x.shape[0], r.classes], ...r.info, ms: Math.round(ms) }) + '\n');
    else {
      // Exported models carry no architecture name: say what ran, not 'custom'.
      const what = kind === 'checkpoint' ? `${r.info.mode} form (${r.info.arch ?? 'custom config'})` : `exported ${kind === 'onnx' ? 'ONNX' : 'TF.js graph'} model`;
      process.stderr.write(`${file}: ${what} on ${r.info.backend}: wrote logits [${x.shape[0]}, ${r.classes}] to ${output}\n`);
    }
    return 0;
  },
};
