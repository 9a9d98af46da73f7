/**
 * `repmlp eval MODEL FOLDER [--arch ARCH] [--batch N] [--json]`: top-1 / top-5 accuracy
 * over an ImageFolder tree (one sub-folder per class, sorted names = class indices), the
 * Node equivalent of the release's test.py. Progress bar on a terminal.
 */
import type { Command } from './command.js';
import { int, printJson } from './command.js';
import { progress } from './progress.js';
import { openClassifier } from '../app/classifier.js';
import { evaluateFolder } from '../app/classify.js';
import { assumedNote } from '../app/meta.js';
import { MODEL_OPTIONS, openOptions } from './predict.js';

export const command: Command = {
  name: 'eval',
  summary: 'top-1/top-5 accuracy over an ImageFolder tree (the release\'s test.py), with images/s',
  usage: 'repmlp eval MODEL FOLDER [--arch ARCH] [--batch N] [--meta FILE] [--json]',
  example: 'repmlp eval fixtures/demo/repmlp-fmnist.pth fixtures/demo/test',
  options: {
    ...MODEL_OPTIONS,
    batch: { type: 'string', help: 'N  images per forward pass (default 32)' },
  },
  positionals: [2, 2],
  async run({ positionals, values, json }) {
    const [model, folder] = positionals as [string, string];
    const batch = int(values, 'batch', 32)!;
    const clf = await openClassifier(model, openOptions(values));
    let bar: ReturnType<typeof progress> | undefined;
    try {
      const note = assumedNote(model, clf.meta);
      if (note) process.stderr.write(`repmlp: note: ${note}\n`);
      const r = await evaluateFolder(clf, folder, {
        batch,
        onProgress(done, total) {
          bar ??= progress('eval', total, 'images');
          bar.update(done);
        },
      });
      bar?.stop();
      bar = undefined;
      if (json) {
        const { predictions: _p, ...rest } = r;
        printJson({ model, folder, runtime: clf.runtime, card: clf.meta.source, preprocess: clf.meta.preprocess, ...rest });
        return;
      }
      process.stdout.write(
        `${model} on ${folder} (${r.images} images, ${r.classes} classes; ${clf.runtime})\n` +
          `  top-1 ${(r.top1 * 100).toFixed(2)}% (${r.correct1}/${r.images})   top-5 ${(r.top5 * 100).toFixed(2)}% (${r.correct5}/${r.images})\n` +
          `  ${r.imagesPerSecond.toFixed(1)} images/s overall (${r.seconds.toFixed(2)} s), inference alone ${(r.images / r.inferenceSeconds).toFixed(1)} images/s\n`,
      );
    } finally {
      bar?.stop();
      await clf.close();
    }
  },
};
