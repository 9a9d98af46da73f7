/**
 * TF.js memory (issue 14): batches are split to fit the wasm heap, measured per model
 * (src/model/memory.ts), so any batch size works, and the logits equal PyTorch's.
 * The full-size case builds the light training checkpoint with real torch (skipped
 * without it).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { ROOT, presetCheckpoint, runPython, tempDir, torchSkip } from './helpers/torch.js';
import { readNpy, npyToFloat32, writeNpy } from '../src/io/npy.js';
import { buildModel, initBackend, predictLogits } from '../src/model/index.js';
import { chunkFor, inChunks, memoryError } from '../src/model/memory.js';
import { writeCheckpoint, stateDictToPy } from '../src/pth/index.js';
import { normalBatch } from '../src/util/random.js';
import { difference } from '../src/util/compare.js';

const MAIN = path.join(ROOT, 'dist/src/cli/main.js');

const SMALL_1000 = {
  num_blocks: [1, 1, 1, 1], num_classes: 1000, block_type: 'light' as const, img_H: 32, img_W: 32, h: 2, w: 2,
  reparam_conv_k: [1, 3], fc1_fc2_reduction: 1, fc3_groups: 1, widths: [8, 16, 16, 16], stem_width: 4,
};

test('inChunks: a batch split by the budget gives the same logits as one pass, in order', async () => {
  await initBackend('wasm');
  const model = buildModel(SMALL_1000, { seed: 3 });
  try {
    const n = 9;
    const x = normalBatch(n * 3 * 32 * 32, 5);
    const whole = await predictLogits(model, x, [n, 3, 32, 32]); // measures, then chunks by the default budget
    const env = process.env.REPMLP_TF_MEMORY_MB;
    process.env.REPMLP_TF_MEMORY_MB = '0.0001'; // force one image per chunk
    try {
      const calls: number[] = [];
      const split = await inChunks(model, x, [n, 3, 32, 32], async (xx, s) => {
        calls.push(s[0]);
        return predictLogits(model, xx, s);
      });
      assert.ok(calls.every((k) => k === 1) && calls.length === n, `chunks ${calls}`);
      assert.ok(difference(split, whole).rel <= 1e-6);
    } finally {
      if (env === undefined) delete process.env.REPMLP_TF_MEMORY_MB;
      else process.env.REPMLP_TF_MEMORY_MB = env;
    }
    assert.equal(chunkFor({ perImage: 100 << 20, resident: 300 << 20 }, 1536 << 20), 12);
    assert.equal(chunkFor({ perImage: 4000 * 2 ** 20, resident: 300 << 20 }, 1536 << 20), 1);
    // wasm's failures become one honest line
    const e = memoryError(new Error('memory access out of bounds'), 16, { perImage: 207 << 20, resident: 332 << 20 });
    assert.equal(e?.name, 'MemoryError');
    assert.match(e!.message, /^TF\.js wasm ran out of memory on 16 image\(s\); it measured 332 MB of weights \+ 207 MB per image/);
    assert.equal(memoryError(new Error('some other bug'), 1, undefined), null);
  } finally {
    model.dispose();
  }
});

test('verify --batch 130 on a 1000-class model (was: internal error from a spread of 130k values)', async () => {
  const { dir, cleanup } = tempDir();
  try {
    await initBackend('wasm');
    const model = buildModel(SMALL_1000, { seed: 1 });
    const file = path.join(dir, 'train.pth');
    await writeCheckpoint(file, stateDictToPy(model.stateDict()));
    model.dispose();
    const arch = path.join(dir, 'arch.json');
    writeFileSync(arch, JSON.stringify(SMALL_1000));
    const r = spawnSync(process.execPath, [MAIN, 'verify', file, '--arch', arch, '--batch', '130'], { encoding: 'utf8', timeout: 300_000 });
    assert.equal(r.status, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /logits \[130, 1000\]/);
    assert.match(r.stdout, /equivalent within/);
  } finally {
    cleanup();
  }
});

test('run: a 32-image batch on the full-size light training checkpoint through TF.js wasm matches PyTorch (was: memory access out of bounds)', { skip: torchSkip(), timeout: 900_000 }, async () => {
  const { dir, cleanup } = tempDir();
  try {
    const ckpt = presetCheckpoint('RepMLP-Res50-light-224', 'train');
    const xFile = path.join(dir, 'x.npy');
    const refFile = path.join(dir, 'ref.npy');
    const n = 32;
    await writeNpy(xFile, { shape: [n, 3, 224, 224], data: normalBatch(n * 3 * 224 * 224, 7) });
    runPython(['-c', [
      'import torch, numpy as np',
      'from repmlp_ref import build_model',
      "m = build_model('RepMLP-Res50-light-224', deploy=False)",
      `m.load_state_dict(torch.load(${JSON.stringify(ckpt)}))`,
      'm.eval()',
      `x = torch.from_numpy(np.load(${JSON.stringify(xFile)}))`,
      'with torch.no_grad(): y = m(x)',
      `np.save(${JSON.stringify(refFile)}, y.numpy())`,
    ].join('\n')]);
    const out = path.join(dir, 'y.npy');
    const r = spawnSync(process.execPath, [MAIN, 'run', ckpt, '--input', xFile, '--output', out], { encoding: 'utf8', timeout: 900_000 });
    assert.equal(r.status, 0, r.stderr);
    const got = await readNpy(out);
    assert.deepEqual(got.shape, [n, 1000]);
    const d = difference(npyToFloat32(got), npyToFloat32(await readNpy(refFile)));
    assert.ok(d.rel <= 1e-4, `relative ${d.rel}`);
  } finally {
    cleanup();
  }
});
