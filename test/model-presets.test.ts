/**
 * The full presets (not committed: ~350 MB each) built on the fly by real PyTorch from
 * tools/repmlp_ref.py with randomized BN statistics, training-time and deploy form (the
 * deploy one random, not converted). TF.js on wasm must match PyTorch's eval logits within
 * relative 1e-4 on a batch of 2, with the architecture and mode detected from the file.
 * One forward per model keeps this to a minute or two.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { encodeNpy, readNpy } from '../src/io/npy.js';
import { writeFileSync } from 'node:fs';
import { fromCheckpoint, initBackend, predictLogits } from '../src/model/index.js';
import { hasTorch, NO_TORCH, presetCheckpoint, runPython, tempDir } from './helpers/torch.js';

const PRESETS = ['RepMLP-Res50-light-224', 'RepMLP-Res50-bottleneck-224'];
const MODES = ['train', 'deploy'] as const;
const TOL = 1e-4;

test('full presets, training-time and deploy: TF.js (wasm) logits match PyTorch within 1e-4', { skip: hasTorch() ? false : NO_TORCH, timeout: 900_000 }, async (t) => {
  const { dir, cleanup } = tempDir();
  try {
    const shape: [number, number, number, number] = [2, 3, 224, 224];
    const x = Float32Array.from({ length: 2 * 3 * 224 * 224 }, (_, i) => Math.sin(i * 0.37) + 0.5 * Math.cos(i * 0.011));
    const input = path.join(dir, 'x.npy');
    writeFileSync(input, encodeNpy({ shape, data: x }));
    const jobs = PRESETS.flatMap((p) => MODES.map((m) => ({ preset: p, mode: m, file: presetCheckpoint(p, m), out: path.join(dir, `${p}-${m}.npy`) })));
    // One python process for all four reference forwards.
    runPython(['-c', [
      'import json, sys, torch, numpy as np',
      'from repmlp_ref import build_model',
      `x = torch.from_numpy(np.load(${JSON.stringify(input)}))`,
      `for j in json.loads(${JSON.stringify(JSON.stringify(jobs))}):`,
      '    m = build_model(j["preset"], deploy=j["mode"] == "deploy")',
      '    m.load_state_dict(torch.load(j["file"]))',
      '    with torch.no_grad():',
      '        np.save(j["out"], m.eval()(x).numpy())',
    ].join('\n')]);
    await initBackend('wasm');
    for (const j of jobs) {
      const loaded = await fromCheckpoint(j.file);
      assert.equal(loaded.arch, j.preset);
      assert.equal(loaded.mode, j.mode);
      const got = await predictLogits(loaded.model, x, shape);
      loaded.model.dispose();
      const want = (await readNpy(j.out)).data as Float32Array;
      let diff = 0;
      let ref = 0;
      for (let i = 0; i < want.length; i++) {
        diff = Math.max(diff, Math.abs(got[i]! - want[i]!));
        ref = Math.max(ref, Math.abs(want[i]!));
      }
      t.diagnostic(`${j.preset} ${j.mode}: relative error ${(diff / ref).toExponential(2)}`);
      assert.ok(diff / ref <= TOL, `${j.preset} ${j.mode}: relative error ${(diff / ref).toExponential(2)}`);
    }
  } finally {
    cleanup();
  }
});
