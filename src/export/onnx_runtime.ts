/**
 * Running an exported .onnx with onnxruntime-node (CPU).
 *
 * Session options, chosen by measurement on the 2-core CI machine:
 * - graphOptimizationLevel 'all': besides constant folding and Conv+Relu / Gemm+Relu
 *   fusion, 'all' enables the NCHWc layout transform that blocks Conv channels for the
 *   AVX kernels. Light preset, batch 1, 2 threads, one file in three sessions timed in
 *   rotation (src/export/bench.ts pairedLatency, 12 rounds, shared machine): 'extended'
 *   and 'basic' took 1.24x and 1.22x the time of 'all' (paired medians).
 * - intraOpNumThreads = cores (default 2 here); interOpNumThreads 1 and sequential
 *   execution: the network is a chain, so parallel node execution only adds contention.
 */
import { RepmlpError } from '../errors.js';
import { cpus } from 'node:os';

export class OnnxRuntimeError extends RepmlpError {
  override name = 'OnnxRuntimeError';
}

type Ort = typeof import('onnxruntime-node');
let ortModule: Promise<Ort> | undefined;

/** onnxruntime-node is loaded on first use (its native binding costs ~100 ms). */
export function ort(): Promise<Ort> {
  ortModule ??= import('onnxruntime-node');
  return ortModule;
}

export interface OnnxSessionOptions {
  threads?: number;
  optimization?: 'disabled' | 'basic' | 'extended' | 'all';
}

export interface OnnxSession {
  run(input: Float32Array, shape: readonly number[]): Promise<{ data: Float32Array; shape: number[] }>;
  inputName: string;
  outputName: string;
  release(): Promise<void>;
}

/** Opens a model from a path (external data resolves next to it) or from bytes. */
export async function openOnnx(model: string | Uint8Array, opts: OnnxSessionOptions = {}): Promise<OnnxSession> {
  const o = await ort();
  const options = {
    intraOpNumThreads: opts.threads ?? Math.max(1, Math.min(cpus().length, 8)),
    interOpNumThreads: 1,
    executionMode: 'sequential' as const,
    graphOptimizationLevel: opts.optimization ?? 'all',
  };
  let session: import('onnxruntime-node').InferenceSession;
  try {
    session = typeof model === 'string' ? await o.InferenceSession.create(model, options) : await o.InferenceSession.create(model, options);
  } catch (e) {
    throw new OnnxRuntimeError(`${typeof model === 'string' ? model : 'ONNX model'}: onnxruntime cannot load it: ${(e as Error).message.split('\n')[0]}`, { cause: e });
  }
  const inputName = session.inputNames[0]!;
  const outputName = session.outputNames[0]!;
  const meta = session.inputMetadata?.[0];
  const declared = meta && meta.isTensor ? meta.shape : undefined;
  const where = typeof model === 'string' ? model : 'ONNX model';
  return {
    inputName,
    outputName,
    async run(input, shape) {
      checkOnnxShape(where, inputName, declared, shape);
      const feeds = { [inputName]: new o.Tensor('float32', input, [...shape]) };
      let out;
      try {
        out = (await session.run(feeds))[outputName]!;
      } catch (e) {
        throw new OnnxRuntimeError(`${where}: onnxruntime: ${oneLine((e as Error).message)}`, { cause: e });
      }
      return { data: out.data as Float32Array, shape: out.dims.map(Number) };
    },
    release: () => session.release(),
  };
}

/** onnxruntime's messages span lines (the part naming the bad index comes second): one line. */
export function oneLine(message: string): string {
  return message.split('\n').map((l) => l.trim()).filter(Boolean).join('; ');
}

/**
 * The batch's shape against the model's declared input (symbolic dimensions match
 * anything), before onnxruntime sees it: expected vs found, which index.
 */
export function checkOnnxShape(where: string, name: string, declared: readonly (number | string | null | undefined)[] | undefined, shape: readonly number[]): void {
  if (!declared) return;
  const show = declared.map((d) => (typeof d === 'number' && d >= 0 ? String(d) : typeof d === 'string' && d ? d : 'N')).join(', ');
  if (declared.length !== shape.length) throw new OnnxRuntimeError(`${where}: input '${name}' has shape [${shape.join(', ')}], expected ${declared.length} dimensions [${show}]`);
  const i = declared.findIndex((d, k) => typeof d === 'number' && d > 0 && d !== shape[k]);
  if (i >= 0) throw new OnnxRuntimeError(`${where}: input '${name}' has shape [${shape.join(', ')}], expected [${show}] (index ${i}: ${shape[i]} instead of ${declared[i]})`);
}

/** One forward pass: NCHW float32 input -> logits. */
export async function runOnnx(model: string | Uint8Array, input: Float32Array, shape: readonly number[], opts: OnnxSessionOptions = {}): Promise<{ data: Float32Array; shape: number[] }> {
  const s = await openOnnx(model, opts);
  try {
    return await s.run(input, shape);
  } finally {
    await s.release();
  }
}
