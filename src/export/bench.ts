/**
 * Latency measurement for the benchmark: runners (one timed batch-1 forward each) for
 * onnxruntime sessions and for PyTorch eager in a child process, timed in rotation so
 * every runtime sees the same background load (`repmlp bench`).
 */
import type { openOnnx } from './onnx_runtime.js';

/** One timed batch-1 forward; resolves to milliseconds. */
export type Runner = () => Promise<number>;

/** The fixed, non-trivial input every timed runtime gets (values do not affect timing). */
export function benchInput(shape: readonly number[]): Float32Array {
  return Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(i * 0.7));
}

/** A timed onnxruntime run on a fixed input. */
export function onnxRunner(session: Awaited<ReturnType<typeof openOnnx>>, shape: readonly number[]): Runner {
  const x = benchInput(shape);
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
export async function eagerRunner(python: string, tool: string, arch: string, weights: string, threads = 2, train = false): Promise<{ run: Runner; close: () => void }> {
  const { spawn } = await import('node:child_process');
  const { createInterface } = await import('node:readline');
  const child = spawn(python, [tool, 'serve', arch, '--weights', weights, '--threads', String(threads), ...(train ? ['--train'] : [])], {
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
 * Paired timing: each round runs every runner once, in an order that rotates (and
 * reverses every other round), so all see the same background load and no runner always
 * follows the same one; per runner min, median and the median paired ratio to the first.
 *
 * `settleMs` pauses before each run. Without it, a runner inherits its predecessor's
 * spinning threads (onnxruntime's pool and PyTorch's OpenMP workers spin-wait after a
 * run) on a 2-core machine. Measured with two onnxruntime sessions (our file and
 * torch.onnx.export's) back to back: paired ratios 1.22 and 1.40 with spinning, 0.92 and
 * 0.95 with it off; with spinning and this pause, 0.91-0.99.
 */
export async function pairedLatency(runners: Record<string, Runner>, iters = 20, warmup = 2, settleMs = 25): Promise<Record<string, { minMs: number; medianMs: number; ratioToFirst: number }>> {
  const names = Object.keys(runners);
  const settle = () => new Promise((r) => setTimeout(r, settleMs));
  for (const r of Object.values(runners)) for (let i = 0; i < warmup; i++) await r();
  const t: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  for (let i = 0; i < iters; i++) {
    for (let k = 0; k < names.length; k++) {
      const step = i % 2 === 0 ? k : names.length - 1 - k;
      const n = names[(step + i) % names.length]!;
      if (settleMs > 0) await settle();
      t[n]!.push(await runners[n]!());
    }
  }
  const median = (v: number[]): number => [...v].sort((a, b) => a - b)[v.length >> 1]!;
  const first = t[names[0]!]!;
  return Object.fromEntries(names.map((n) => [n, { minMs: Math.min(...t[n]!), medianMs: median(t[n]!), ratioToFirst: median(t[n]!.map((v, i) => v / first[i]!)) }]));
}
