/**
 * Latency of an ONNX file under onnxruntime-node: warm-up runs, then the median of timed
 * batch runs. Used by the benchmark (ours vs torch.onnx.export's file) and `repmlp bench`.
 */
import { openOnnx } from './onnx_runtime.js';

export interface LatencyResult {
  medianMs: number;
  minMs: number;
  iters: number;
  threads: number;
  /** Session creation (load + graph optimization). */
  loadMs: number;
}

export async function benchOnnx(
  model: string | Uint8Array,
  shape: readonly number[],
  opts: { threads?: number; iters?: number; warmup?: number; optimization?: 'disabled' | 'basic' | 'extended' | 'all' } = {},
): Promise<LatencyResult> {
  const threads = opts.threads ?? 2;
  const t0 = performance.now();
  const s = await openOnnx(model, { threads, ...(opts.optimization ? { optimization: opts.optimization } : {}) });
  const loadMs = performance.now() - t0;
  try {
    const n = shape.reduce((a, b) => a * b, 1);
    const x = new Float32Array(n);
    // Deterministic, non-trivial input; the values do not affect the timing.
    for (let i = 0; i < n; i++) x[i] = Math.sin(i * 0.7);
    for (let i = 0; i < (opts.warmup ?? 2); i++) await s.run(x, shape);
    const times: number[] = [];
    for (let i = 0; i < (opts.iters ?? 10); i++) {
      const t = performance.now();
      await s.run(x, shape);
      times.push(performance.now() - t);
    }
    times.sort((a, b) => a - b);
    return { medianMs: times[times.length >> 1]!, minMs: times[0]!, iters: times.length, threads, loadMs };
  } finally {
    await s.release();
  }
}
