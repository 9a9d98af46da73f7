/**
 * `repmlp convert IN OUT`: training-time -> deploy re-parameterization (shared/spec/cli.md),
 * exact for every RepMLP (also C != O) and every conv+BN pair; OUT is re-read and
 * compared with what was converted before the command reports success.
 */
import { READ_OPTIONS, readOptions } from './read-options.js';
import { performance } from 'node:perf_hooks';
import { closeSync, openSync, readSync } from 'node:fs';
import { ZipReader } from '../pth/zip.js';
import { FileSource } from '../pth/source.js';
import { type Command, int, printJson, str } from './command.js';
import { UsageError } from '../errors.js';
import { loadStateDictFile, stateDictToPy, writeCheckpoint, type StateDict } from '../pth/index.js';
import { convertTrainingStateDict, type BlockHint, type PipelineResult } from '../reparam/index.js';
import { ReparamError } from '../reparam/numeric.js';
import { BLOCK_FAMILIES, DEFAULT_FAMILY, NETWORK_FAMILIES } from '../family/registry.js';
import { progress } from './progress.js';
import { OUTPUT_OPTIONS, TORCH_SAFETENSORS_METADATA, outputBounds, outputFormatFor, sameFile } from './output-options.js';
import { PyDict } from '../pth/pyobj.js';
import type { Tensor } from '../tensor.js';

/** --fc3-groups G and --partition HxW as one hint for every block. */
export function hintFromFlags(values: Record<string, unknown>): BlockHint | undefined {
  const hint: BlockHint = {};
  const g = int(values as never, 'fc3-groups');
  if (g !== undefined) hint.fc3Groups = g;
  const p = str(values as never, 'partition');
  if (p !== undefined) {
    const m = /^(\d+)x(\d+)$/i.exec(p);
    if (!m || Number(m[1]) < 1 || Number(m[2]) < 1) throw new UsageError(`--partition ${p}: expected HxW, e.g. 7x7`);
    hint.h = Number(m[1]);
    hint.w = Number(m[2]);
  }
  return Object.keys(hint).length ? hint : undefined;
}

function outputFormat(values: Record<string, unknown>, out: string, inputFormat?: 'zip' | 'legacy' | 'safetensors'): 'zip' | 'safetensors' {
  return outputFormatFor(values as never, out, inputFormat, 'convert');
}

function bytesOf(t: Tensor): Uint8Array {
  // Uncached: a pass-through tensor is read once more from its file (its own range of a
  // shared storage only), not kept.
  if (!t.isContiguous()) return t.contiguousBytes();
  const item = t.storage.byteLength / Math.max(1, t.storage.numel);
  return t.storage.bytesInRange(t.offset * item, t.numel * item);
}

/**
 * Re-reads the written file at `path` (the temporary file, before it replaces OUT; named
 * `shown` in messages): same keys in the same order, dtypes and shapes (from its own
 * pickle or header), and the same bytes. For the zip format the records are streamed
 * through one reused buffer (no second copy of a 350 MB checkpoint in memory);
 * safetensors files are compared tensor by tensor.
 */
async function verifyWritten(path: string, shown: string, want: StateDict, format: 'zip' | 'safetensors'): Promise<void> {
  const got = (await loadStateDictFile(path)).stateDict;
  const a = [...want.keys()];
  const b = [...got.keys()];
  if (a.length !== b.length || a.some((k, i) => k !== b[i])) throw new ReparamError(`${shown}: re-read keys differ from what was written (${b.length} vs ${a.length})`);
  for (const [k, t] of want) {
    const u = got.get(k)!;
    if (u.dtype !== t.dtype || u.shape.join() !== t.shape.join()) throw new ReparamError(`${shown}: ${k} re-read as ${u.dtype}[${u.shape}], written ${t.dtype}[${t.shape}]`);
  }
  if (format === 'zip') compareZipRecords(path, shown, want, got);
  else for (const [k, t] of want) if (Buffer.compare(bytesOf(got.get(k)!), bytesOf(t)) !== 0) throw new ReparamError(`${shown}: ${k} re-read with different values`);
}

const CHUNK = 16 << 20;

function compareZipRecords(path: string, shown: string, want: StateDict, got: StateDict): void {
  const zip = new ZipReader(new FileSource(path));
  const byKey = new Map(zip.names.map((n) => [n.slice(n.lastIndexOf('/data/') + 6), n]));
  const buf = Buffer.allocUnsafe(CHUNK);
  const fd = openSync(path, 'r');
  try {
    for (const [k, t] of want) {
      const u = got.get(k)!;
      const record = u.storage.key !== undefined ? byKey.get(u.storage.key) : undefined;
      if (!record) throw new ReparamError(`${shown}: ${k}: no data record for storage ${u.storage.key}`);
      const item = u.storage.byteLength / Math.max(1, u.storage.numel);
      const start = zip.dataOffset(record) + u.offset * item;
      const mine = bytesOf(t);
      if (mine.byteLength !== u.numel * item) throw new ReparamError(`${shown}: ${k}: re-read with ${u.numel * item} bytes, written ${mine.byteLength}`);
      if (!u.isContiguous()) {
        // A view kept as torch keeps it (whole storage, strides): compared element-wise.
        if (Buffer.compare(u.contiguousBytes(), mine) !== 0) throw new ReparamError(`${shown}: ${k} re-read with different values`);
        continue;
      }
      for (let off = 0; off < mine.byteLength; off += CHUNK) {
        const n = Math.min(CHUNK, mine.byteLength - off);
        if (readSync(fd, buf, 0, n, start + off) !== n) throw new ReparamError(`${shown}: ${k}: file ends early`);
        if (buf.compare(mine, off, off + n, 0, n) !== 0) throw new ReparamError(`${shown}: ${k} re-read with different values`);
      }
    }
  } finally {
    closeSync(fd);
  }
}

const secs = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

function summary(inPath: string, outPath: string, format: string, r: PipelineResult, t: Record<string, number>, replacedInput: boolean): string {
  const lines = [`converted ${inPath} -> ${outPath} (${format === 'zip' ? 'pth' : format}${replacedInput ? ', replaced the input' : ''})`];
  if (r.arch) lines.push(`  architecture: ${r.arch.name ?? `custom ${r.arch.family}`}${r.arch.detected ? ' (detected from the keys)' : ''}`);
  // The 2021 blocks' line is shown unless the model folds only other kinds (RepMLPNet).
  if (r.blocks.length || !r.units.length) lines.push(`  RepMLP blocks converted: ${r.blocks.length}`);
  for (const b of r.blocks) {
    const geo = b.h !== undefined ? `, partition ${b.h}x${b.w}` : '';
    const local = b.reparamConvK.length ? `, local k=${b.reparamConvK.join(',')}` : '';
    lines.push(`    ${b.name}: C=${b.C ?? '?'} O=${b.O ?? '?'} fc3_groups=${b.fc3Groups ?? '?'}${geo}${local}${b.globalPerceptron ? ', global' : ''}`);
  }
  lines.push(`  conv+BN pairs fused: ${r.convBnPairs.length}`);
  if (r.units.length) {
    const kinds = [...new Set(r.units.map((u) => u.kind))].join(', ');
    lines.push(`  other blocks folded: ${r.units.length} (${kinds})`);
    for (const u of r.units.slice(0, 8)) lines.push(`    ${u.path}${u.detail ? `: ${u.detail}` : ''}`);
    if (r.units.length > 8) lines.push(`    ... (${r.units.length - 8} more)`);
  }
  lines.push(`  tensors: ${r.tensorsIn} in -> ${r.tensorsOut} out; elements ${r.elementsIn.toLocaleString('en-US')} -> ${r.elementsOut.toLocaleString('en-US')}`);
  const assumed = r.blocks.flatMap((b) => b.assumed.map((a) => `${b.name}: ${a}`));
  if (assumed.length) lines.push(`  assumed (give --partition HxW or --arch to override): ${assumed.length > 3 ? `${assumed.slice(0, 3).join('; ')}; ... (${assumed.length} blocks)` : assumed.join('; ')}`);
  lines.push(`  verified: re-read ${outPath}, ${r.tensorsOut} tensors equal to the converted ones`);
  lines.push(`  time: read ${secs(t.read!)}, plan ${secs(t.convert!)}, convert+write ${secs(t.write!)} (compute ${secs(r.timings.repmlp + r.timings.convBn)}; verify ${secs(t.verify!)} of it, during the flush), total ${secs(t.total!)}`);
  return lines.join('\n');
}

export const command: Command = {
  name: 'convert',
  summary: 'training-time -> deploy re-parameterization (exact; the families below, or a model built from the 2021 blocks)',
  usage: 'repmlp convert IN OUT [--arch ARCH] [--fc3-groups G] [--partition HxW] [--format pth|safetensors] [--max-output SIZE] [--entry PATH] [--json]',
  example: 'repmlp convert RepMLP-Res50-light-224_train.pth RepMLP-Res50-light-224_deploy.pth',
  options: {
    arch: { type: 'string', help: 'ARCH  preset name or config JSON (default: detected from the keys)' },
    'fc3-groups': { type: 'string', help: 'G  fc3 groups of RepMLPs whose shapes do not tell (no global perceptron)' },
    partition: { type: 'string', help: 'HxW  partition size of RepMLPs whose h*w is not a square' },
    format: { type: 'string', help: "FMT  pth (torch zip) or safetensors (default: OUT's extension, else IN's format)" },
    ...OUTPUT_OPTIONS,

    ...READ_OPTIONS,
  },
  details: () => [
    'Families (a block pattern none of them claims is refused, never fused by a guess):',
    ...NETWORK_FAMILIES.map((f) => `  ${f.name}: ${f.presets.join(', ')}, or a config JSON${f.name === DEFAULT_FAMILY ? '' : ` with "family": "${f.name}"`}`),
    ...BLOCK_FAMILIES.map((f) => `  ${f.name}: a user's own model built from them (no --arch)`),
  ],
  positionals: [2, 2],
  async run({ positionals, values, json }) {
    const [inPath, outPath] = positionals as [string, string];
    const t0 = performance.now();
    const cpu: number[] = [cpuMs()];
    outputFormat(values, outPath); // a bad --format is reported before anything is read
    const bounds = outputBounds(values, inPath);
    const hint = hintFromFlags(values);
    const arch = str(values, 'arch');
    const loaded = await loadStateDictFile(inPath, readOptions(values));
    const format = outputFormat(values, outPath, loaded.format);
    const metadata = safetensorsMetadata(loaded.checkpoint.root);
    if (metadata && format !== 'safetensors') process.stderr.write(`repmlp: note: safetensors __metadata__ (${metadata.size} entries) has no place in a torch file; not written (write a .safetensors to keep it)\n`);
    const t1 = performance.now();
    cpu.push(cpuMs());
    // Lazy: the conversion runs inside the write, block k+1 computed while block k is
    // being copied to the file, so the bar of the write covers both.
    const r = convertTrainingStateDict(loaded.stateDict, {
      where: inPath, lazy: true, ...(arch !== undefined ? { arch } : {}), ...(hint ? { hint } : {}),
    });
    const t2 = performance.now();
    cpu.push(cpuMs());
    const replacedInput = sameFile(inPath, outPath);
    const wbar = progress('convert+write', r.elementsOut * 4, 'bytes');
    // Verified before OUT is replaced, while the file is flushed to disk: a conversion
    // whose file does not read back leaves OUT as it was.
    let verifyMs = 0;
    let verifyCpu = 0;
    const verify = async (tmp: string): Promise<void> => {
      const v0 = performance.now();
      const c0 = cpuMs();
      await verifyWritten(tmp, outPath, r.stateDict, format);
      verifyMs = performance.now() - v0;
      verifyCpu = cpuMs() - c0;
    };
    try {
      // compact: storages shared with dropped training tensors (a flat buffer) are cut
      // down to what the deploy tensors use.
      await writeCheckpoint(outPath, stateDictToPy(r.stateDict), {
        format, verify, compact: true, ...bounds, ...(format === 'safetensors' ? { metadata: metadata ?? TORCH_SAFETENSORS_METADATA } : {}),
        onProgress: (d) => wbar.update(d),
      });
    } finally {
      wbar.stop();
    }
    const t3 = performance.now();
    cpu.push(cpuMs());
    const cpuTimings = { read: cpu[1]! - cpu[0]!, convert: cpu[2]! - cpu[1]!, write: cpu[3]! - cpu[2]! - verifyCpu, verify: verifyCpu, process: cpu[3]! };
    const timings = { read: t1 - t0, convert: t2 - t1, write: t3 - t2, verify: verifyMs, total: t3 - t0 };
    if (json) {
      printJson({
        input: inPath, output: outPath, format: format === 'zip' ? 'pth' : format,
        inputFormat: loaded.format, prefix: loaded.prefix, wrapper: loaded.wrapper,
        arch: r.arch?.name ?? null, archDetected: r.arch?.detected ?? false,
        blocks: r.blocks, convBnPairs: r.convBnPairs.length, units: r.units, tensorsIn: r.tensorsIn, tensorsOut: r.tensorsOut,
        elementsIn: r.elementsIn, elementsOut: r.elementsOut, verified: true,
        metadataKept: metadata && format === 'safetensors' ? metadata.size : 0, replacedInput,
        // Wall-clock milliseconds per phase, and CPU (user + system) milliseconds per phase,
        // `process` being the whole process's so far. The conversion runs lazily inside the
        // write phase, and so does the verification (during the flush, before the rename);
        // `steps` give the conversion's own compute milliseconds.
        timings: { ...mapRound(timings), steps: mapRound(r.timings) },
        cpuTimings: mapRound(cpuTimings),
        peakRssMB: Math.round(process.resourceUsage().maxRSS / 1024),
      });
    } else {
      process.stdout.write(summary(inPath, outPath, format, r, timings, replacedInput) + '\n');
    }
    return 0;
  },
};

/** A safetensors input's `__metadata__`, kept for a safetensors output. */
function safetensorsMetadata(root: unknown): Map<string, string> | undefined {
  const m = root instanceof PyDict ? root.attrs.get('__metadata__') : undefined;
  if (!(m instanceof PyDict) || m.map.size === 0) return undefined;
  return new Map([...m.map].filter((e): e is [string, string] => typeof e[0] === 'string' && typeof e[1] === 'string'));
}

function mapRound(o: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, Math.round(v)]));
}

function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}
