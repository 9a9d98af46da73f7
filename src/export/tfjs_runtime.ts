/**
 * Loading an exported TF.js graph model from disk with the stock loader: an IOHandler
 * that reads model.json and its shards feeds `tf.loadGraphModel`; nothing is registered.
 */
import { readFile } from 'node:fs/promises';
import { dirname, join, basename } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { loadGraphModel, type GraphModel } from '@tensorflow/tfjs-converter';
import { RepmlpError } from '../errors.js';
import { inChunks } from '../model/memory.js';

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

/**
 * Logits for an NCHW float32 batch (the model takes NHWC; the transpose happens here),
 * split into chunks that fit TF.js memory (src/model/memory.ts). A batch whose image
 * shape is not the graph's is refused with expected vs found.
 */
export async function runTfjsGraph(model: GraphModel, input: Float32Array, shape: readonly number[]): Promise<{ data: Float32Array; shape: number[] }> {
  const want = model.inputs[0]?.shape;
  if (shape.length !== 4) throw new TfjsLoadError(`input has shape [${shape.join(', ')}], expected a 4-D NCHW batch`);
  const [n, c, h, w] = shape as [number, number, number, number];
  if (want && want.length === 4) {
    const [, H, W, C] = want;
    const bad = [[c, C], [h, H], [w, W]].some(([got, exp]) => typeof exp === 'number' && exp > 0 && got !== exp);
    if (bad) throw new TfjsLoadError(`TF.js graph model: input has shape [${n}, ${c}, ${h}, ${w}] (NCHW), expected [N, ${C}, ${H}, ${W}]`);
  }
  let outShape: number[] = [];
  const data = await inChunks(model, input, [n, c, h, w], async (x, s) => {
    const out = tf.tidy(() => {
      const t = tf.transpose(tf.tensor4d(x, s, 'float32'), [0, 2, 3, 1]);
      return model.execute(t) as tf.Tensor;
    });
    try {
      outShape = out.shape;
      return (await out.data()) as Float32Array;
    } finally {
      out.dispose();
    }
  });
  return { data, shape: [n, ...outShape.slice(1)] };
}
