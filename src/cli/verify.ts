/**
 * `repmlp verify IN`: the training-time model and its conversion (and, where asked,
 * exported files) run on the same seeded random batch; the largest absolute and relative
 * differences of the logits against the training model's are printed, and the exit status
 * is 1 when any relative difference exceeds --tolerance (shared/spec/cli.md). Without
 * --tolerance, the checkpoint's dtype sets it: 1e-4 for float32, more for float16 and
 * bfloat16 weights (src/reparam/tolerance.ts), and the output says why.
 * Relative difference: max|a - ref| / max|ref|.
 */
import { READ_OPTIONS, readOptions } from './read-options.js';
import { performance } from 'node:perf_hooks';
import { type Command, type OptionValues, int, printJson, str } from './command.js';
import { UsageError } from '../errors.js';
import { loadStateDictFile, type StateDict } from '../pth/index.js';
import { convertTrainingStateDict, ReparamError } from '../reparam/index.js';
import { hintFromFlags } from './convert.js';
import { NETWORK_FAMILIES, networkInfo } from '../family/registry.js';
import { normalBatch } from '../util/random.js';
import { difference } from '../util/compare.js';
import { describeTolerance, dtypeTolerance } from '../reparam/tolerance.js';

/** One model whose logits are compared with the training model's. */
export interface Candidate {
  name: string;
  run(input: Float32Array, shape: [number, number, number, number]): Promise<Float32Array>;
}

export interface VerifyContext {
  values: OptionValues;
  /** The architecture's configuration (any family). */
  config: object;
  /** The converted (deploy) state dict. */
  converted: StateDict;
}

/**
 * The models checked against the training model. Exporters add theirs here
 * (`--onnx FILE`, `--tfjs DIR`): each is one more Candidate on the same batch.
 */
async function candidates(ctx: VerifyContext): Promise<Candidate[]> {
  const { buildModel, loadStateDict, predictLogits } = await import('../model/index.js');
  const deploy = buildModel(ctx.config, { deploy: true, init: false });
  loadStateDict(deploy, ctx.converted, { where: 'converted' });
  const list: Candidate[] = [{ name: 'converted (TF.js)', run: (x, shape) => predictLogits(deploy, x, shape) }];
  const onnx = str(ctx.values, 'onnx');
  if (onnx) {
    const { runOnnx } = await import('../export/onnx_runtime.js');
    list.push({ name: `ONNX ${onnx} (onnxruntime)`, run: async (x, shape) => (await runOnnx(onnx, x, shape)).data });
  }
  const tfjs = str(ctx.values, 'tfjs');
  if (tfjs) {
    const { loadTfjsGraph, runTfjsGraph } = await import('../export/tfjs_runtime.js');
    list.push({
      name: `TF.js graph ${tfjs} (tf.loadGraphModel)`,
      run: async (x, shape) => {
        const model = await loadTfjsGraph(tfjs);
        try {
          return (await runTfjsGraph(model, x, shape)).data;
        } finally {
          model.dispose();
        }
      },
    });
  }
  return list;
}

/** --tolerance when given, else undefined (then the checkpoint's dtype decides). */
function tolerance(values: OptionValues): number | undefined {
  const t = str(values, 'tolerance');
  if (t === undefined) return undefined;
  const v = Number(t);
  if (!Number.isFinite(v) || v <= 0) throw new UsageError(`--tolerance ${t}: expected a positive number, e.g. 1e-4`);
  return v;
}

/** 1e-4 as typed; a derived tolerance to two digits. */
function fmtTol(t: number): string {
  return String(t).length > 8 ? t.toExponential(1) : String(t);
}

export const command: Command = {
  name: 'verify',
  summary: 'run the training-time and the converted model on one random batch and compare logits',
  usage: 'repmlp verify IN [--arch ARCH] [--onnx FILE] [--tfjs DIR] [--tolerance 1e-4] [--batch N] [--seed S] [--json]',
  example: 'repmlp verify RepMLP-Res50-light-224_train.pth --batch 2',
  options: {
    arch: { type: 'string', help: 'ARCH  preset name or config JSON (default: detected from the keys)' },
    tolerance: { type: 'string', help: 'T  largest relative difference allowed (default 1e-4 for float32 weights; for float16 / bfloat16 derived from the dtype, and said so)' },
    batch: { type: 'string', help: 'N  images in the random batch (default 2)' },
    seed: { type: 'string', help: 'S  seed of the random batch (default 0)' },
    'fc3-groups': { type: 'string', help: 'G  as for convert' },
    partition: { type: 'string', help: 'HxW  as for convert' },
    onnx: { type: 'string', help: 'FILE  also compare an exported ONNX model (onnxruntime-node)' },
    tfjs: { type: 'string', help: 'DIR  also compare an exported TF.js graph model (tf.loadGraphModel)' },

    ...READ_OPTIONS,
  },
  positionals: [1, 1],
  async run({ positionals, values, json }) {
    const inPath = positionals[0]!;
    const given = tolerance(values);
    const batch = int(values, 'batch', 2)!;
    const seedText = str(values, 'seed') ?? '0';
    if (!/^\d+$/.test(seedText)) throw new UsageError(`--seed ${seedText}: expected a non-negative integer`);
    const seed = Number(seedText);
    const arch = str(values, 'arch');
    const hint = hintFromFlags(values);
    const t0 = performance.now();
    const { stateDict } = await loadStateDictFile(inPath, readOptions(values));
    const conv = convertTrainingStateDict(stateDict, { where: inPath, ...(arch !== undefined ? { arch } : {}), ...(hint ? { hint } : {}) });
    if (!conv.arch) throw new ReparamError(`${inPath}: not a RepMLP-ResNet the toolkit can run, nor a network of the other families it knows (${NETWORK_FAMILIES.map((f) => f.name).filter((n) => n !== 'RepMLPResNet').join(', ')}): architecture not recognized; give --arch ARCH`);
    const config = conv.arch.config;
    // The stored dtype bounds how exact a correct conversion can be (src/reparam/tolerance.ts).
    const byDtype = dtypeTolerance(conv.stateDict, conv.blocks.length + conv.convBnPairs.length + conv.units.length);
    const tol = given ?? byDtype.tolerance;
    const why = given !== undefined ? `tolerance ${given} (given)` : describeTolerance(byDtype);
    const t1 = performance.now();

    const { buildModel, initBackend, loadStateDict, predictLogits } = await import('../model/index.js');
    const backend = await initBackend();
    const train = buildModel(config, { deploy: false, init: false });
    loadStateDict(train, stateDict, { where: inPath });
    const info = networkInfo(config);
    const shape: [number, number, number, number] = [batch, info.input.C, info.input.H, info.input.W];
    const x = normalBatch(shape.reduce((a, b) => a * b, 1), seed);
    const ref = await predictLogits(train, x, shape);
    const results = [];
    for (const c of await candidates({ values, config, converted: conv.stateDict })) {
      const got = await c.run(x, shape);
      const d = difference(got, ref);
      results.push({ name: c.name, maxAbsDiff: d.maxAbs, maxRelDiff: d.rel, ok: d.rel <= tol });
    }
    const ok = results.every((r) => r.ok);
    const seconds = (performance.now() - t0) / 1000;
    if (json) {
      printJson({
        input: inPath, arch: conv.arch.name ?? 'custom', backend, batch, seed, tolerance: tol,
        toleranceFrom: given !== undefined ? 'given' : byDtype.fromDtype ? 'dtype' : 'default',
        dtype: byDtype.dtype, unitRoundoff: byDtype.unitRoundoff, fusedLayers: byDtype.layers,
        reference: 'training-time (TF.js)', results, ok, convertSeconds: (t1 - t0) / 1000, seconds,
      });
    } else {
      const lines = [`verify ${inPath}: ${conv.arch.name ?? 'custom architecture'}, batch ${batch} (seed ${seed}), backend ${backend}`,
        `  reference: training-time model, logits [${batch}, ${info.numClasses}], max |logit| ${ref.reduce((m, v) => Math.max(m, Math.abs(v)), 0).toPrecision(4)}`,
        `  ${why}`];
      for (const r of results) {
        lines.push(`  ${r.name}: max abs diff ${r.maxAbsDiff.toExponential(2)}, max rel diff ${r.maxRelDiff.toExponential(2)} ${r.ok ? '<=' : '>'} ${fmtTol(tol)}  ${r.ok ? 'OK' : 'FAIL'}`);
      }
      lines.push(`  ${ok ? 'equivalent' : 'NOT equivalent'} within relative ${fmtTol(tol)}${given === undefined && byDtype.fromDtype ? ` (${byDtype.dtype} weights)` : ''} (${seconds.toFixed(1)} s)`);
      process.stdout.write(lines.join('\n') + '\n');
    }
    return ok ? 0 : 1;
  },
};
