/**
 * Batches that fit TF.js memory. The wasm backend's heap is one WebAssembly.Memory of at
 * most 4 GiB; a forward pass that needs more dies inside wasm (`memory access out of
 * bounds`, `Aborted()`), and the module is unusable afterwards. Measured on the light
 * training-time preset (224x224, wasm): peak = 332 MB of weights + 207 MB per image, and
 * the heap ends ~400 MB above the peak (fragmentation), so 14 images ran and 16 died.
 *
 * So each model's need is measured, not guessed: the first image of its first batch runs
 * alone under tf.profile, which reports the peak bytes it held; what stays after
 * (weights, uploaded on first use) is resident. Every later batch is then split into
 * chunks of `(budget - resident) / perImage` images, the logits joined in order. Any
 * `--batch` works; only a model whose single image does not fit gets an error, one line
 * saying how much it needs.
 */
import * as tf from '@tensorflow/tfjs-core';
import { RepmlpError } from '../errors.js';

export class MemoryError extends RepmlpError {
  override name = 'MemoryError';
}

/** What one model needs, measured on its first image. */
interface Need {
  perImage: number;
  resident: number;
}

const needs = new WeakMap<object, Need>();

const MB = 2 ** 20;
/** wasm32's address space, less the slack its allocator was measured to need. */
const WASM_LIMIT = 4096 * MB - 640 * MB;

/**
 * Bytes of TF.js tensors a batch may hold at its peak. Default 1.5 GiB (measured: batch
 * 4 of the light training model runs at 1.16 GB; larger chunks gain < 10% images/s on
 * wasm while the heap, which never shrinks, grows with them). REPMLP_TF_MEMORY_MB
 * overrides it; on wasm it is capped at the 4 GiB address space.
 */
export function memoryBudget(): number {
  const env = Number(process.env.REPMLP_TF_MEMORY_MB);
  const want = Number.isFinite(env) && env > 0 ? env * MB : 1536 * MB;
  return tf.getBackend() === 'wasm' ? Math.min(want, WASM_LIMIT) : want;
}

const OOM = /memory access out of bounds|Aborted\(|out of memory|Array buffer allocation failed|Cannot enlarge memory|WebAssembly\.Memory|Invalid typed array length|Invalid array buffer length/i;

function fmt(bytes: number): string {
  return bytes >= 1024 * MB ? `${(bytes / (1024 * MB)).toFixed(2)} GiB` : `${Math.ceil(bytes / MB)} MB`;
}

/** A TF.js allocation failure as a one-line error (the wasm module does not survive one). */
export function memoryError(e: unknown, images: number, need: Need | undefined): RepmlpError | null {
  if (e instanceof RepmlpError) return e;
  const msg = (e as Error)?.message ?? String(e);
  if (!OOM.test(msg)) return null;
  const backend = tf.getBackend();
  const per = need ? `; it measured ${fmt(need.resident)} of weights + ${fmt(need.perImage)} per image` : '';
  return new MemoryError(
    `TF.js ${backend} ran out of memory on ${images} image(s)${per}` +
      `${backend === 'wasm' ? ' (wasm memory is at most 4 GiB)' : ''}; try REPMLP_TF_MEMORY_MB lower, --backend cpu, or the ONNX export`,
    { cause: e },
  );
}

/** The chunk size for a model whose need is known. */
export function chunkFor(need: Need, budget = memoryBudget()): number {
  // What is resident now (other models loaded since) counts too.
  const resident = Math.max(need.resident, tf.memory().numBytes);
  return Math.max(1, Math.floor((budget - resident) / Math.max(1, need.perImage)));
}

/**
 * Runs `run` over an NCHW batch in chunks that fit the memory budget; `key` identifies
 * the model (its need is measured once and remembered). `run` gets a sub-batch and
 * returns its outputs (`outPerImage` values per image, e.g. the class count).
 */
export async function inChunks(
  key: object,
  input: Float32Array,
  shape: readonly [number, number, number, number],
  run: (x: Float32Array, shape: [number, number, number, number]) => Promise<Float32Array>,
): Promise<Float32Array> {
  const [n, c, h, w] = shape;
  const img = c * h * w;
  if (input.length !== n * img) throw new MemoryError(`input has ${input.length} values, expected ${n}x${c}x${h}x${w} = ${n * img}`);
  const parts: Float32Array[] = [];
  let need = needs.get(key);
  let done = 0;
  const call = async (k: number): Promise<Float32Array> => {
    try {
      return await run(input.subarray(done * img, (done + k) * img), [k, c, h, w]);
    } catch (e) {
      // A shape error names the sub-batch; the user gave the whole batch.
      if (e instanceof RepmlpError && k !== n) e.message = e.message.replace(`[${k}, ${c}, ${h}, ${w}]`, `[${n}, ${c}, ${h}, ${w}]`);
      throw memoryError(e, k, need) ?? e;
    }
  };
  if (!need && n > 1) {
    // The measuring run: one image, its peak and what stays resident after it.
    const before = tf.memory().numBytes;
    let out: Float32Array | undefined;
    const info = await tf.profile(async () => {
      out = await call(1);
      return [];
    });
    const after = tf.memory().numBytes;
    need = { perImage: Math.max(1, info.peakBytes - Math.max(before, after)), resident: after };
    needs.set(key, need);
    parts.push(out!);
    done = 1;
    if (tf.getBackend() === 'wasm' && need.resident + need.perImage > WASM_LIMIT) {
      throw new MemoryError(`one image needs ${fmt(need.resident + need.perImage)} of TF.js wasm memory (${fmt(need.resident)} weights + ${fmt(need.perImage)} activations), over the 4 GiB wasm limit; use --backend cpu or the ONNX export`);
    }
  }
  const chunk = need ? chunkFor(need) : n;
  while (done < n) {
    const k = Math.min(chunk, n - done);
    parts.push(await call(k));
    done += k;
  }
  if (parts.length === 1) return parts[0]!;
  const total = parts.reduce((s, p) => s + p.length, 0);
  const out = new Float32Array(total);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}
