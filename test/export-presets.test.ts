/**
 * Both full presets, end to end against real PyTorch: tools/torch_onnx_export.py builds
 * tools/repmlp_ref.py's deploy model (randomize, seeded), saves its state dict and
 * PyTorch's logits for a batch of 1 and of 2 in a temp folder; we export from that
 * checkpoint and compare, relative 1e-4 (max|a-b| / max|ref|):
 * - ONNX: onnx.checker, then onnxruntime-node at batch 1 and 2;
 * - TF.js: stock tf.loadGraphModel on wasm at batch 1 and 2, and on cpu at batch 1 (the
 *   pure-JS cpu backend takes ~30 s per ResNet-50-sized forward; the graph is the same).
 * Skipped without torch. About 2 minutes on 2 cores.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { TOOLS, runPython, tempDir, torchSkip } from './helpers/torch.js';
import { loadStateDictFile } from '../src/pth/index.js';
import { readNpy, npyToFloat32 } from '../src/io/npy.js';
import { resolveArch } from '../src/model/config.js';
import { initBackend } from '../src/model/backend.js';
import { buildGraph } from '../src/export/graph.js';
import { writeOnnx } from '../src/export/onnx.js';
import { writeTfjs } from '../src/export/tfjs.js';
import { openOnnx } from '../src/export/onnx_runtime.js';
import { loadTfjsGraph, runTfjsGraph } from '../src/export/tfjs_runtime.js';
import { difference } from '../src/export/pipeline.js';

const TOL = 1e-4;
const TOOL = path.join(TOOLS, 'torch_onnx_export.py');

for (const [preset, seed] of [['RepMLP-Res50-light-224', 11], ['RepMLP-Res50-bottleneck-224', 12]] as const) {
  test(`${preset}: ONNX (checker, onnxruntime) and TF.js graph (wasm, cpu) give PyTorch's logits`, { skip: torchSkip(), timeout: 600_000 }, async (t) => {
    const tmp = tempDir();
    t.after(tmp.cleanup);
    runPython([TOOL, 'prepare', preset, '--seed', String(seed), '--out', tmp.dir, '--batches', '1,2']);
    const io = await Promise.all([1, 2].map(async (b) => {
      const x = await readNpy(path.join(tmp.dir, `x${b}.npy`));
      return { b, x: npyToFloat32(x), shape: x.shape, y: npyToFloat32(await readNpy(path.join(tmp.dir, `y${b}.npy`))) };
    }));
    let graph = buildGraph(resolveArch(preset).config, (await loadStateDictFile(path.join(tmp.dir, 'deploy.pth'))).stateDict);

    const onnx = path.join(tmp.dir, 'model.onnx');
    await writeOnnx(onnx, graph);
    const info = JSON.parse(runPython([TOOL, 'check', onnx])) as { ir_version: number; opset: number[] };
    assert.deepEqual([info.ir_version, info.opset], [8, [17]]);
    const session = await openOnnx(onnx, { threads: 2 });
    try {
      for (const { b, x, shape, y } of io) {
        const d = difference((await session.run(x, shape)).data, y);
        assert.ok(d.rel <= TOL, `onnxruntime batch ${b}: relative ${d.rel}`);
      }
    } finally {
      await session.release();
    }

    const dir = path.join(tmp.dir, 'tfjs');
    await writeTfjs(dir, graph);
    graph = undefined as never; // let the float32 copies go before TF.js loads its own
    for (const backend of ['wasm', 'cpu'] as const) {
      await initBackend(backend);
      const model = await loadTfjsGraph(dir);
      try {
        for (const { b, x, shape, y } of backend === 'wasm' ? io : io.slice(0, 1)) {
          const d = difference((await runTfjsGraph(model, x, shape)).data, y);
          assert.ok(d.rel <= TOL, `tf.loadGraphModel ${backend} batch ${b}: relative ${d.rel}`);
        }
      } finally {
        model.dispose();
      }
    }
    await initBackend('wasm');
  });
}
