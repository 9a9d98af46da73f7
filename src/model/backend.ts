/**
 * TensorFlow.js backend selection. In Node the wasm backend (SIMD, single thread) is the
 * default: it ships its .wasm in the npm package and is 10-30x faster than the pure-JS cpu
 * backend on convs and matmuls (tfjs-onnx-notes.md). `@tensorflow/tfjs-node` is used only
 * when asked for and installed; it is an optional dependency that cannot be installed
 * offline, so it is imported dynamically.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { RepmlpError } from '../errors.js';

export class BackendError extends RepmlpError {
  override name = 'BackendError';
}

export type BackendName = 'wasm' | 'cpu' | 'tensorflow';
export const BACKENDS: readonly BackendName[] = ['wasm', 'cpu', 'tensorflow'];

export function isBackendName(s: string): s is BackendName {
  return (BACKENDS as readonly string[]).includes(s);
}

async function tryNode(): Promise<boolean> {
  try {
    // A variable specifier keeps TypeScript from requiring the package's types.
    const name = '@tensorflow/tfjs-node';
    await import(name);
    return await tf.setBackend('tensorflow');
  } catch {
    return false;
  }
}

/**
 * Activates `preferred` (default wasm) and returns the backend actually in use. An
 * explicit request that cannot be met is an error; the default falls back to cpu.
 */
export async function initBackend(preferred?: BackendName): Promise<BackendName> {
  const want = preferred ?? 'wasm';
  if (tf.getBackend() === want) return want;
  let ok = false;
  if (want === 'tensorflow') ok = await tryNode();
  else {
    try {
      ok = await tf.setBackend(want);
    } catch {
      ok = false;
    }
  }
  if (ok) {
    await tf.ready();
    return want;
  }
  if (preferred !== undefined) {
    throw new BackendError(`backend '${want}' is not available${want === 'tensorflow' ? ' (install @tensorflow/tfjs-node)' : ''}`);
  }
  await tf.setBackend('cpu');
  await tf.ready();
  return 'cpu';
}

export { tf };
