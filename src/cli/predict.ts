/**
 * `repmlp predict MODEL IMAGE... [--arch ARCH] [--top K] [--json]`: top-K classes of
 * JPEG/PNG files, with softmax probabilities, from a checkpoint, an .onnx or a TF.js
 * model.json. Preprocessing and class names come from the model card (src/app/meta.ts):
 * the release's ImageNet pipeline and names by default.
 */
import type { Command } from './command.js';
import { int, printJson, str } from './command.js';
import { UsageError } from '../errors.js';
import { openClassifier, type OpenOptions } from '../app/classifier.js';
import { READ_OPTIONS, readOptions } from './read-options.js';
import { predictFiles } from '../app/classify.js';
import { assumedNote } from '../app/meta.js';
import { assertReadableFile } from '../io/image.js';

/** --arch, --meta, --backend as openClassifier takes them (shared by eval). */
export function openOptions(values: Record<string, unknown>): OpenOptions {
  const v = values as Record<string, string | boolean | string[] | undefined>;
  const backend = str(v, 'backend');
  // Checked here rather than with model/backend.ts, which would load TF.js at start-up.
  if (backend !== undefined && backend !== 'wasm' && backend !== 'cpu' && backend !== 'tensorflow') throw new UsageError(`--backend ${backend}: expected wasm, cpu or tensorflow`);
  const arch = str(v, 'arch');
  const meta = str(v, 'meta');
  return { ...(arch ? { arch } : {}), ...(meta ? { meta } : {}), ...(backend ? { backend } : {}), read: readOptions(v) };
}

export const MODEL_OPTIONS = {
  arch: { type: 'string', help: 'ARCH  preset name or config JSON (checkpoints; detected when left out)' },
  meta: { type: 'string', help: 'FILE  model card JSON: preprocessing and class names (default: MODEL.meta.json if present, else ImageNet)' },
  backend: { type: 'string', help: 'NAME  TF.js backend for checkpoints and model.json: wasm (default) or cpu' },
  ...READ_OPTIONS,
} as const;

function percent(p: number): string {
  return `${(p * 100).toFixed(2)}%`.padStart(7);
}

export const command: Command = {
  name: 'predict',
  summary: 'classify JPEG/PNG images with a checkpoint, an .onnx or a TF.js model.json (top-K with probabilities)',
  usage: 'repmlp predict MODEL IMAGE... [--arch ARCH] [--top K] [--meta FILE] [--json]',
  example: 'repmlp predict fixtures/demo/repmlp-fmnist.pth fixtures/demo/samples/ankle-boot.jpg --top 3',
  options: {
    ...MODEL_OPTIONS,
    top: { type: 'string', help: 'K  how many classes to list per image (default 5)' },
  },
  positionals: [2, Infinity],
  async run({ positionals, values, json }) {
    const [model, ...images] = positionals as [string, ...string[]];
    const k = int(values, 'top', 5)!;
    const open = openOptions(values);
    for (const f of images) assertReadableFile(f); // before a possibly large model loads
    const clf = await openClassifier(model, open);
    try {
      const note = assumedNote(model, clf.meta);
      if (note) process.stderr.write(`repmlp: note: ${note}\n`);
      const results = await predictFiles(clf, images, k);
      if (json) {
        printJson(results);
        return;
      }
      const lines: string[] = [];
      for (const r of results) {
        lines.push(r.file);
        r.top.forEach((t, i) => lines.push(`  ${String(i + 1).padStart(2)}. ${percent(t.probability)}  ${t.label} (${t.index})`));
      }
      process.stdout.write(lines.join('\n') + '\n');
    } finally {
      await clf.close();
    }
  },
};
