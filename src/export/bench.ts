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

/**
 * Several ONNX files timed in alternation (one run of each per round, the order rotating
 * every round), so that on a shared machine every file sees the same background load.
 * Per file: min and median, and the median over rounds of its time divided by the first
 * file's in the same round (a paired ratio, far steadier than a ratio of medians).
 */
export async function compareOnnx(
  files: readonly string[],
  shape: readonly number[],
  opts: { threads?: number; iters?: number; warmup?: number } = {},
): Promise<Map<string, LatencyResult & { ratioToFirst: number }>> {
  const threads = opts.threads ?? 2;
  const sessions = [];
  const loads: number[] = [];
  for (const f of files) {
    const t0 = performance.now();
    sessions.push(await openOnnx(f, { threads }));
    loads.push(performance.now() - t0);
  }
  try {
    const n = shape.reduce((a, b) => a * b, 1);
    const x = Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.7));
    for (const s of sessions) for (let i = 0; i < (opts.warmup ?? 2); i++) await s.run(x, shape);
    const times = sessions.map((): number[] => []);
    for (let i = 0; i < (opts.iters ?? 10); i++) {
      for (let k = 0; k < sessions.length; k++) {
        const j = (k + i) % sessions.length;
        const t = performance.now();
        await sessions[j]!.run(x, shape);
        times[j]!.push(performance.now() - t);
      }
    }
    const median = (v: number[]): number => [...v].sort((a, b) => a - b)[v.length >> 1]!;
    const out = new Map<string, LatencyResult & { ratioToFirst: number }>();
    for (const [j, f] of files.entries()) {
      const t = times[j]!;
      out.set(f, {
        medianMs: median(t), minMs: Math.min(...t), iters: t.length, threads, loadMs: loads[j]!,
        ratioToFirst: median(t.map((v, i) => v / times[0]![i]!)),
      });
    }
    return out;
  } finally {
    for (const s of sessions) await s.release();
  }
}
