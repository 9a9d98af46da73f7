/**
 * Loading an exported TF.js graph model from disk with the stock loader: an IOHandler
 * that reads model.json and its shards feeds `tf.loadGraphModel`; nothing is registered.
 */
import { readFile } from 'node:fs/promises';
import { dirname, join, basename } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { loadGraphModel, type GraphModel } from '@tensorflow/tfjs-converter';
import { RepmlpError } from '../errors.js';

export class TfjsLoadError extends RepmlpError {
  override name = 'TfjsLoadError';
}

/**
 * An IOHandler over a local `model.json` (or the folder holding it). `files` maps names
 * in the folder to other paths (an export's check reads its not-yet-committed files).
 */
export function fileHandler(pathOrDir: string, files?: ReadonlyMap<string, string>): tf.io.IOHandler {
  const file = basename(pathOrDir) === 'model.json' || pathOrDir.endsWith('.json') ? pathOrDir : join(pathOrDir, 'model.json');
  const dir = dirname(file);
  const at = (name: string, full: string): string => files?.get(name) ?? full;
  return {
    async load() {
      let json: tf.io.ModelJSON;
      try {
        json = JSON.parse(await readFile(at(basename(file), file), 'utf8')) as tf.io.ModelJSON;
      } catch (e) {
        throw new TfjsLoadError(`${file}: cannot read a TF.js model.json: ${(e as Error).message}`, { cause: e });
      }
      return tf.io.getModelArtifactsForJSON(json, async (manifest) => {
        const specs: tf.io.WeightsManifestEntry[] = [];
        const buffers: ArrayBuffer[] = [];
        for (const group of manifest) {
          specs.push(...group.weights);
          for (const p of group.paths) {
            let b: Buffer;
            try {
              b = await readFile(at(p, join(dir, p)));
            } catch (e) {
              throw new TfjsLoadError(`${file}: weight shard ${p}: ${(e as Error).message}`, { cause: e });
            }
            buffers.push(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer);
          }
        }
        return [specs, buffers];
      });
    },
  };
}

/** `tf.loadGraphModel` on a folder or model.json path. The backend must be set already. */
export async function loadTfjsGraph(pathOrDir: string, files?: ReadonlyMap<string, string>): Promise<GraphModel> {
  try {
    return await loadGraphModel(fileHandler(pathOrDir, files));
  } catch (e) {
    if (e instanceof RepmlpError) throw e;
    throw new TfjsLoadError(`${pathOrDir}: tf.loadGraphModel failed: ${(e as Error).message}`, { cause: e });
  }
}

/** Logits for an NCHW float32 batch (the model takes NHWC; the transpose happens here). */
export async function runTfjsGraph(model: GraphModel, input: Float32Array, shape: readonly number[]): Promise<{ data: Float32Array; shape: number[] }> {
  const out = tf.tidy(() => {
    const x = tf.transpose(tf.tensor4d(input, shape as [number, number, number, number], 'float32'), [0, 2, 3, 1]);
    return model.execute(x) as tf.Tensor;
  });
  try {
    return { data: (await out.data()) as Float32Array, shape: out.shape };
  } finally {
    out.dispose();
  }
}
