import * as path from 'node:path';
import { existsSync } from 'node:fs';
import { folderBytes, scratchDir } from '../io/scratch.js';
import type { Command } from './command.js';
import { int, printJson, str } from './command.js';
import { BENCH_JOBS, type BenchJob, formatBench, runBench } from '../app/bench.js';
import { UsageError } from '../errors.js';

function jobsFlag(v: string | undefined): Set<BenchJob> | undefined {
  if (v === undefined) return undefined;
  const jobs = v.split(',').map((j) => j.trim()).filter(Boolean);
  const bad = jobs.find((j) => !(BENCH_JOBS as readonly string[]).includes(j));
  if (bad !== undefined || jobs.length === 0) throw new UsageError(`--jobs ${v}: expected a comma-separated list of ${BENCH_JOBS.join(', ')}`);
  return new Set(jobs as BenchJob[]);
}

export const command: Command = {
  name: 'bench',
  summary: 'time read/write, convert, export and inference, side by side with PyTorch',
  usage: 'repmlp bench [MODEL] [--arch ARCH] [--jobs LIST] [--iters N] [--repeat N] [--quick] [--dir DIR (keep work files)] [--json]',
  example: 'repmlp bench --quick',
  options: {
    arch: { type: 'string', help: 'ARCH  preset or config JSON (needed with MODEL)' },
    iters: { type: 'string', help: 'N  timed inference rounds, all runtimes in rotation (default 10)' },
    repeat: { type: 'string', help: 'N  rounds of each whole-process job, medians reported (default 3)' },
    quick: { type: 'boolean', help: "skip the release's convert.py steps in PyTorch" },
    jobs: { type: 'string', help: `LIST  jobs to time, comma-separated: ${BENCH_JOBS.join(',')} (default all)` },
    dir: { type: 'string', help: 'DIR  keep made checkpoints and outputs here, reused next time (default: a temporary folder, removed)' },
    preset: { type: 'string', multiple: true, help: 'NAME  preset(s) to run without MODEL (default: RepMLP-Res50-light-224, RepMLP-Res50-bottleneck-224, RepMLPNet-T224)' },
  },
  positionals: [0, 1],
  async run({ positionals, values, json }) {
    const presets = values.preset as string[] | undefined;
    const jobs = jobsFlag(str(values, 'jobs'));
    // The work files (checkpoints of 165-350 MB each, exports) are kept only where asked.
    const keep = str(values, 'dir');
    const scratch = keep ? null : scratchDir('repmlp-bench');
    const dir = keep ? path.resolve(keep) : scratch!.dir;
    if (!keep && existsSync('.bench')) process.stderr.write(`repmlp: note: .bench (${fmtSize(folderBytes('.bench'))}, from an earlier version's default) is not used; remove it, or pass --dir .bench to reuse it\n`);
    let report;
    let bytes = 0;
    try {
      report = await runBench({
        ...(positionals[0] ? { model: positionals[0] } : {}),
        ...(str(values, 'arch') ? { arch: str(values, 'arch')! } : {}),
        ...(presets?.length ? { presets } : {}),
        iters: int(values, 'iters', 10)!,
        repeat: int(values, 'repeat', 3)!,
        quick: values.quick === true,
        ...(jobs ? { jobs } : {}),
        dir,
        onStep: json ? undefined : (s) => process.stderr.write(`... ${s}\n`),
      });
    } finally {
      bytes = folderBytes(dir);
      scratch?.remove();
    }
    const work = { dir, bytes, kept: keep !== undefined };
    if (json) printJson({ ...report, work });
    else {
      process.stdout.write(formatBench(report) + '\n');
      process.stdout.write(work.kept ? `\nwork files kept in ${dir} (${fmtSize(bytes)}; reused by the next --dir ${keep})\n` : `\nwork files (${fmtSize(bytes)}) removed; --dir DIR keeps them for the next run\n`);
    }
  },
};

function fmtSize(n: number): string {
  return n >= 1e9 ? `${(n / 1e9).toFixed(2)} GB` : `${(n / 1e6).toFixed(1)} MB`;
}
