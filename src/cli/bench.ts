import * as path from 'node:path';
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
  usage: 'repmlp bench [MODEL] [--arch ARCH] [--jobs LIST] [--iters N] [--repeat N] [--quick] [--dir DIR] [--json]',
  example: 'repmlp bench --quick',
  options: {
    arch: { type: 'string', help: 'ARCH  preset or config JSON (needed with MODEL)' },
    iters: { type: 'string', help: 'N  timed inference rounds, all runtimes in rotation (default 10)' },
    repeat: { type: 'string', help: 'N  rounds of each whole-process job, medians reported (default 3)' },
    quick: { type: 'boolean', help: "skip the release's convert.py steps in PyTorch" },
    jobs: { type: 'string', help: `LIST  jobs to time, comma-separated: ${BENCH_JOBS.join(',')} (default all)` },
    dir: { type: 'string', help: 'DIR  work folder for made checkpoints and outputs (default .bench)' },
    preset: { type: 'string', multiple: true, help: 'NAME  preset(s) to run without MODEL (default: RepMLP-Res50-light-224, RepMLP-Res50-bottleneck-224, RepMLPNet-T224)' },
  },
  positionals: [0, 1],
  async run({ positionals, values, json }) {
    const presets = values.preset as string[] | undefined;
    const jobs = jobsFlag(str(values, 'jobs'));
    const report = await runBench({
      ...(positionals[0] ? { model: positionals[0] } : {}),
      ...(str(values, 'arch') ? { arch: str(values, 'arch')! } : {}),
      ...(presets?.length ? { presets } : {}),
      iters: int(values, 'iters', 10)!,
      repeat: int(values, 'repeat', 3)!,
      quick: values.quick === true,
      ...(jobs ? { jobs } : {}),
      dir: path.resolve(str(values, 'dir') ?? '.bench'),
      onStep: json ? undefined : (s) => process.stderr.write(`... ${s}\n`),
    });
    if (json) printJson(report);
    else process.stdout.write(formatBench(report) + '\n');
  },
};
