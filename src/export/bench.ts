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

/** One timed batch-1 forward; resolves to milliseconds. */
export type Runner = () => Promise<number>;

/** A timed onnxruntime run on a fixed input. */
export function onnxRunner(session: Awaited<ReturnType<typeof openOnnx>>, shape: readonly number[]): Runner {
  const x = Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(i * 0.7));
  return async () => {
    const t = performance.now();
    await session.run(x, shape);
    return performance.now() - t;
  };
}

/**
 * PyTorch eager in a child process (tools/torch_onnx_export.py serve), driven one
 * forward at a time so its runs can be interleaved with ours; the child reports its
 * own in-process time, so pipe overhead is not counted.
 */
export async function eagerRunner(python: string, tool: string, arch: string, weights: string, threads = 2): Promise<{ run: Runner; close: () => void }> {
  const { spawn } = await import('node:child_process');
  const { createInterface } = await import('node:readline');
  const child = spawn(python, [tool, 'serve', arch, '--weights', weights, '--threads', String(threads)], {
    env: { ...process.env, OMP_NUM_THREADS: String(threads) }, stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async (): Promise<string> => {
    const r = await lines.next();
    if (r.done) throw new Error(`${tool} serve exited`);
    return r.value;
  };
  if ((await next()) !== 'ready') throw new Error(`${tool} serve did not start`);
  return {
    run: async () => {
      child.stdin.write('run\n');
      return Number(await next());
    },
    close: () => child.stdin.end(),
  };
}

/**
 * Paired timing: each round runs every runner once, in an order that rotates, so all
 * see the same background load; per runner min, median and the median paired ratio to
 * the first runner.
 */
export async function pairedLatency(runners: Record<string, Runner>, iters = 20, warmup = 2): Promise<Record<string, { minMs: number; medianMs: number; ratioToFirst: number }>> {
  const names = Object.keys(runners);
  for (const r of Object.values(runners)) for (let i = 0; i < warmup; i++) await r();
  const t: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  for (let i = 0; i < iters; i++) {
    for (let k = 0; k < names.length; k++) {
      const n = names[(k + i) % names.length]!;
      t[n]!.push(await runners[n]!());
    }
  }
  const median = (v: number[]): number => [...v].sort((a, b) => a - b)[v.length >> 1]!;
  const first = t[names[0]!]!;
  return Object.fromEntries(names.map((n) => [n, { minMs: Math.min(...t[n]!), medianMs: median(t[n]!), ratioToFirst: median(t[n]!.map((v, i) => v / first[i]!)) }]));
}
