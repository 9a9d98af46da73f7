/**
 * `repmlp demo [CKPT] [--arch ARCH]` (`npm start`): inspect, convert, verify, export
 * ONNX and TF.js, then one table of accuracy and images/s for the training-time model,
 * the deploy model, the ONNX file and the TF.js graph model on the bundled test images.
 * Exits 1 when the four disagree.
 */
import * as path from 'node:path';
import type { Command } from './command.js';
import { int, printJson, str } from './command.js';
import { UsageError } from '../errors.js';
import { runDemo, type DemoResult, type RuntimeRow } from '../app/demo.js';
import { MODEL_OPTIONS, openOptions } from './predict.js';
import { progress, type Progress } from './progress.js';

function rel(p: string): string {
  const r = path.relative(process.cwd(), p);
  return r && !r.startsWith('..') ? r : p;
}

function pct(x: number | null): string {
  return x === null ? '-' : `${(x * 100).toFixed(2)}%`;
}

export function formatTable(r: DemoResult): string {
  const rows: RuntimeRow[] = [...(r.reference ? [r.reference] : []), ...r.rows];
  const cells = rows.map((x) => [x.runtime, `${pct(x.top1)} (${x.correct1}/${r.images})`, pct(x.top5), x.imagesPerSecond === null ? '-' : x.imagesPerSecond.toFixed(1)]);
  const head = ['runtime', 'top-1 accuracy', 'top-5', 'images/s'];
  const width = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) => c.map((v, i) => (i === 0 ? v.padEnd(width[i]!) : v.padStart(width[i]!))).join(' | ');
  const out = [line(head), width.map((w) => '-'.repeat(w)).join('-|-'), ...cells.map(line)];
  const verdict = r.agree
    ? `The four runtimes agree: same accuracy, same top-1 on all ${r.images} images${r.reference ? (r.reference.correct1 === r.rows[0]!.correct1 ? ', equal to PyTorch' : ` (PyTorch recorded ${r.reference.correct1})`) : ''}.`
    : `MISMATCH: the runtimes disagree (same top-1 on ${r.samePredictions}/${r.images} images).`;
  const note = r.classes.model !== r.classes.folder
    ? [`(The model has ${r.classes.model} classes and the folder ${r.classes.folder}: the accuracy itself means little here, the agreement does.)`]
    : [];
  return [...out, '', verdict, ...note].join('\n');
}

export const command: Command = {
  name: 'demo',
  summary: 'the whole chain on the bundled trained model (or CKPT): inspect, convert, verify, export, evaluate 4 runtimes',
  usage: 'repmlp demo [CKPT] [--arch ARCH] [--folder DIR] [--limit N] [--out DIR] [--json]',
  example: 'npm start   (= repmlp demo; any other: npm start -- my_train.pth --arch RepMLP-Res50-light-224 --limit 20)',
  options: {
    ...MODEL_OPTIONS,
    folder: { type: 'string', help: 'DIR  ImageFolder tree to evaluate on (default: the bundled Fashion-MNIST test images)' },
    limit: { type: 'string', help: 'N  evaluate only the first N images' },
    batch: { type: 'string', help: 'N  images per forward pass (default 50)' },
    out: { type: 'string', help: 'DIR  keep the deploy checkpoint, model.onnx and tfjs/ here (default: a temporary folder)' },
  },
  positionals: [0, 1],
  async run({ positionals, values, json }) {
    const limit = int(values, 'limit');
    const batch = int(values, 'batch');
    const folder = str(values, 'folder');
    const out = str(values, 'out');
    if (positionals[0] === undefined && str(values, 'arch')) throw new UsageError('demo: --arch applies to a checkpoint you give (repmlp demo CKPT --arch ARCH); the bundled one carries its own');
    const log = json ? undefined : (l: string) => process.stdout.write(l + '\n');
    // One bar per long stage, on a terminal only (progress() is silent otherwise).
    let bar: { stage: string; p: Progress } | undefined;
    const onProgress = (stage: string, done: number, total: number) => {
      if (bar?.stage !== stage) {
        bar?.p.stop();
        bar = { stage, p: progress(stage.replace(/^TF\.js \w+ \((.*)\)$/, 'TF.js $1'), total) };
      }
      bar.p.update(done);
      if (done >= total) {
        bar.p.stop();
        bar = undefined;
      }
    };
    const t0 = performance.now();
    const r = await runDemo({
      onProgress,
      ...openOptions(values),
      ...(positionals[0] ? { checkpoint: positionals[0] } : {}),
      ...(folder ? { folder } : {}), ...(limit ? { limit } : {}), ...(batch ? { batch } : {}), ...(out ? { out } : {}),
      ...(log ? { log } : {}),
    });
    const seconds = (performance.now() - t0) / 1000;
    if (json) printJson({ ...r, checkpoint: rel(r.checkpoint), folder: rel(r.folder), seconds });
    else process.stdout.write(`\n${formatTable(r)}\n(${seconds.toFixed(1)} s${r.outDir ? `; files kept in ${r.outDir}` : ''})\n`);
    return r.agree ? 0 : 1;
  },
};
