/**
 * `repmlp export IN [--arch ARCH] [--onnx FILE] [--tfjs DIR] [--opset N]`
 * (shared/spec/cli.md): training-time checkpoints are converted first; both exports are
 * written from one deploy graph (src/export/graph.ts), atomically, then re-opened, run on
 * one batch and compared with the TF.js model; the differences are reported.
 */
import { READ_OPTIONS, readOptions } from './read-options.js';
import { performance } from 'node:perf_hooks';
import { type Command, int, printJson, str } from './command.js';
import { UsageError } from '../errors.js';
import { progress, type Progress } from './progress.js';

const fmtBytes = (n: number): string => (n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : `${(n / 1024).toFixed(1)} KiB`);
const fmtDiff = (d: { maxAbs: number; rel: number }): string => `max abs ${d.maxAbs.toExponential(2)}, relative ${d.rel.toExponential(2)}`;

/** --shard-size BYTES and --weights float32|float16|uint8 (src/export/tfjs_weights.ts). */
function tfjsWeightFlags(values: Record<string, unknown>): { shardBytes?: number; weights?: 'float32' | 'float16' | 'uint8' } {
  const shard = int(values as never, 'shard-size');
  const w = str(values as never, 'weights');
  if (w !== undefined && w !== 'float32' && w !== 'float16' && w !== 'uint8') throw new UsageError(`--weights ${w}: expected float32, float16 or uint8`);
  return { ...(shard !== undefined ? { shardBytes: shard } : {}), ...(w !== undefined ? { weights: w } : {}) };
}

export const command: Command = {
  name: 'export',
  summary: 'export a checkpoint (converted first if training-time) to ONNX and/or a TF.js graph model',
  usage: 'repmlp export IN [--arch ARCH] [--onnx FILE] [--tfjs DIR] [--opset N] [--shard-size BYTES] [--weights float32|float16|uint8] [--no-check] [--json]',
  example: 'repmlp export RepMLP-Res50-light-224.pth --onnx light.onnx --tfjs light-tfjs',
  options: {
    arch: { type: 'string', help: 'ARCH  preset name or config JSON (default: detected from the keys)' },
    onnx: { type: 'string', help: 'FILE  write an ONNX model (input `input` NCHW, output `logits`, dynamic batch)' },
    tfjs: { type: 'string', help: 'DIR  write a TF.js graph model (DIR/model.json + 4 MiB shards, input NHWC)' },
    opset: { type: 'string', help: 'N  ONNX opset (default 17; 11..23)' },
    'shard-size': { type: 'string', help: 'BYTES  TF.js weight shard size (default: at most 6 shards of >= 4 MiB)' },
    weights: { type: 'string', help: 'DTYPE  TF.js weights: float32 (default), float16 or uint8 (quantized, dequantized on load)' },
    'no-check': { type: 'boolean', help: 'skip re-opening the exports and comparing them with the TF.js model' },

    ...READ_OPTIONS,
  },
  positionals: [1, 1],
  async run({ positionals, values, json }) {
    const input = positionals[0]!;
    const onnx = str(values, 'onnx');
    const tfjs = str(values, 'tfjs');
    if (!onnx && !tfjs) throw new UsageError('export: give --onnx FILE and/or --tfjs DIR');
    const arch = str(values, 'arch');
    const opset = int(values, 'opset');
    const tfjsWeights = tfjsWeightFlags(values);
    const t0 = performance.now();
    const { loadDeploy, exportDeploy, checkTargets } = await import('../export/pipeline.js');
    const { checkOpset, DEFAULT_OPSET } = await import('../export/onnx.js');
    checkOpset(opset ?? DEFAULT_OPSET);
    checkTargets(input, { ...(onnx ? { onnx } : {}), ...(tfjs ? { tfjs } : {}) }); // before a long load
    const m = await loadDeploy(input, arch, readOptions(values));
    const t1 = performance.now();
    const bars: Partial<Record<'onnx' | 'tfjs', Progress>> = {};
    let r;
    try {
      r = await exportDeploy(m.config, m.stateDict, {
        input,
        ...(onnx ? { onnx } : {}), ...(tfjs ? { tfjs } : {}), ...(opset ? { opset } : {}),
        check: !values['no-check'], tfjsWeights,
        onPhase: (phase, done, total) => {
          for (const [k, b] of Object.entries(bars)) if (k !== phase) b.stop();
          (bars[phase] ??= progress(`write ${phase}`, total, 'bytes')).update(Math.min(done, total));
        },
      });
    } finally {
      for (const b of Object.values(bars)) b.stop();
    }
    const t2 = performance.now();
    const c = r.check;
    if (json) {
      printJson({
        input, arch: m.arch, converted: m.converted, inputFormat: m.format,
        onnx: r.onnx ? { ...r.onnx, ...(c?.onnx ? { maxAbsDiff: c.onnx.maxAbs, relDiff: c.onnx.rel } : {}) } : null,
        tfjs: r.tfjs ? { ...r.tfjs, ...(c?.tfjs ? { maxAbsDiff: c.tfjs.maxAbs, relDiff: c.tfjs.rel } : {}) } : null,
        check: c ? { batch: c.batch, reference: c.reference } : null,
        timings: { load: Math.round(t1 - t0), exportAndCheck: Math.round(t2 - t1) },
      });
      return 0;
    }
    const lines = [`exported ${input} (${m.arch ?? 'custom architecture'}${m.converted ? ', converted from training-time form' : ', deploy form'})`];
    if (r.onnx) lines.push(`  ONNX: ${r.onnx.file} (${fmtBytes(r.onnx.bytes)}, opset ${r.onnx.opset}, IR ${r.onnx.irVersion}, ${r.onnx.nodes} nodes${r.onnx.externalData ? `, weights in ${r.onnx.externalData}` : ''})`);
    if (r.tfjs) lines.push(`  TF.js: ${r.tfjs.dir}/model.json (${r.tfjs.nodes} nodes, ${r.tfjs.shards} shards, ${fmtBytes(r.tfjs.bytes)})`);
    if (c) {
      lines.push(`  checked on a random batch of ${c.batch} against the ${c.reference}:`);
      if (c.onnx) lines.push(`    onnxruntime: ${fmtDiff(c.onnx)}`);
      if (c.tfjs) lines.push(`    tf.loadGraphModel: ${fmtDiff(c.tfjs)}`);
    } else lines.push('  not checked (--no-check)');
    lines.push(`  time: load ${((t1 - t0) / 1000).toFixed(1)} s, export${c ? ' + check' : ''} ${((t2 - t1) / 1000).toFixed(1)} s`);
    process.stdout.write(lines.join('\n') + '\n');
    return 0;
  },
};
