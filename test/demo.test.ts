/**
 * `npm start` end to end: the demo command as a user runs it (a child process of the
 * built CLI), on the bundled checkpoint and test images. ~5-10 s on the 2-core machine.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { ROOT, FIXTURES, tempDir } from './helpers/torch.js';
import { formatTable } from '../src/cli/demo.js';
import type { DemoResult } from '../src/app/demo.js';

const CLI = path.join(ROOT, 'dist/src/cli/main.js');
const ref = JSON.parse(readFileSync(path.join(FIXTURES, 'demo/reference.json'), 'utf8')) as { correct: number; images: number };

function cli(args: string[]) {
  return spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', cwd: ROOT, timeout: 300_000 });
}

test('demo: four runtimes agree with each other and with PyTorch, >= 85% top-1', (t) => {
  const { dir, cleanup } = tempDir('repmlp-demo-test-');
  try {
    const t0 = Date.now();
    const r = cli(['demo', '--json', '--out', dir]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, '');
    const out = JSON.parse(r.stdout) as DemoResult & { seconds: number };
    assert.equal(out.images, ref.images);
    assert.equal(out.rows.length, 4);
    assert.deepEqual(out.rows.map((x) => x.kind), ['checkpoint', 'checkpoint', 'onnx', 'tfjs']);
    assert.ok(out.agree, JSON.stringify(out.rows));
    assert.equal(out.samePredictions, out.images);
    for (const row of out.rows) {
      assert.equal(row.correct1, ref.correct, row.runtime);
      assert.ok(row.top1 >= 0.85, `${row.runtime}: ${row.top1}`);
      assert.ok(row.imagesPerSecond! > 0);
    }
    assert.equal(out.reference?.correct1, ref.correct);
    assert.ok(out.verify.passed && out.verify.maxRel < 1e-4, JSON.stringify(out.verify));
    assert.equal(out.inspect.mode, 'train');
    for (const f of ['deploy.pth', 'model.onnx', 'tfjs/model.json', 'model.meta.json', 'tfjs/model.meta.json', 'arch.json']) assert.ok(existsSync(path.join(dir, f)), f);
    const table = formatTable(out);
    assert.match(table, /^runtime +\| +top-1 accuracy \| +top-5 \| images\/s\n/);
    assert.match(table, /The four runtimes agree: same accuracy, same top-1 on all 300 images, equal to PyTorch\.$/);
    t.diagnostic(`demo took ${((Date.now() - t0) / 1000).toFixed(1)} s (${out.seconds.toFixed(1)} s inside)`);
  } finally {
    cleanup();
  }
});

test('demo: human output is the step log and one table', () => {
  const r = cli(['demo', '--limit', '20']);
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.split('\n');
  for (const step of ['inspect', 'convert', 'export', 'verify', 'evaluate']) assert.ok(lines.some((l) => l.startsWith(step)), step);
  assert.equal(lines.filter((l) => /^(TF\.js|ONNX Runtime|PyTorch)/.test(l)).length, 4, 'four runtime rows (no PyTorch row for a subset)');
});

test('demo: a deploy checkpoint or a bad --arch is refused with one line', () => {
  const { dir, cleanup } = tempDir('repmlp-demo-test-');
  try {
    const keep = cli(['demo', '--limit', '1', '--out', dir, '--json']);
    assert.equal(keep.status, 0, keep.stderr);
    const r = cli(['demo', path.join(dir, 'deploy.pth')]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^repmlp: error: .*deploy\.pth: demo needs a training-time checkpoint/);
    const a = cli(['demo', '--arch', 'RepMLP-Res50-light-224']);
    assert.equal(a.status, 1);
    assert.match(a.stderr, /^repmlp: error: demo: --arch applies to a checkpoint you give/);
  } finally {
    cleanup();
  }
});
