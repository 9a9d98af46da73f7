/**
 * The family framework (docs/families.md): every unit kind a family uses has its layout,
 * TF.js module, IR lowering and (where it folds) fold rule; the converter refuses block
 * patterns no family claims (a RepVGG-style state dict, built here); the "family" field
 * of config JSONs; and input sizes beyond multiples of 32 (fixtures/model light_64,
 * light_112_p7, base_odd_50x70, made by tools/make_model_fixtures.py with real PyTorch)
 * through detection, conversion and both exports.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { FIXTURES, ROOT, tempDir } from './helpers/torch.js';
import { Tensor } from '../src/tensor.js';
import { loadStateDictFile, stateDictToPy, writeCheckpoint, type StateDict } from '../src/pth/index.js';
import { readNpy, npyToFloat32 } from '../src/io/npy.js';
import { descEntries, unitEntries, unitFolds } from '../src/family/layout.js';
import { KIND_LAYOUTS } from '../src/family/kinds/index.js';
import { NETWORK_FAMILIES, detectArch, parseArchConfig, resolveArch } from '../src/family/registry.js';
import { ConfigError } from '../src/family/errors.js';
import { MODEL_UNITS } from '../src/model/units/index.js';
import { EXPORT_UNITS } from '../src/export/units/index.js';
import { REPARAM_UNITS } from '../src/reparam/units/index.js';
import { convertTrainingStateDict, ReparamError } from '../src/reparam/index.js';
import { exportDeploy, difference } from '../src/export/pipeline.js';
import { runOnnx } from '../src/export/onnx_runtime.js';
import { initBackend } from '../src/model/backend.js';
import { loadTfjsGraph, runTfjsGraph } from '../src/export/tfjs_runtime.js';

const CLI = path.join(ROOT, 'dist', 'src', 'cli', 'main.js');
const MODEL = path.join(FIXTURES, 'model');

function repmlp(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('every unit kind of every family preset has a layout, a TF.js module, an IR lowering and, where it folds, a fold rule', () => {
  for (const family of NETWORK_FAMILIES) {
    for (const name of family.presets) {
      const config = family.presetConfig(name);
      for (const mode of ['train', 'deploy'] as const) {
        const d = family.describe(config, mode);
        assert.equal(d.mode, mode);
        const paths = new Set(d.units.map((u) => u.path));
        assert.equal(paths.size, d.units.length, `${name}: unit paths are unique`);
        for (const op of d.forward) if (op.op === 'unit') assert.ok(paths.has(op.unit), `${name}: forward runs unknown unit ${op.unit}`);
        for (const u of d.units) {
          assert.ok(KIND_LAYOUTS.has(u.kind), `${u.kind}: layout`);
          assert.ok(MODEL_UNITS.has(u.kind), `${u.kind}: TF.js module`);
          if (mode === 'train' && unitFolds(u)) assert.ok(REPARAM_UNITS.has(u.kind), `${u.kind} folds: needs a rule`);
          // A unit that does not fold keeps its training keys in deploy (nothing folded that the deploy model keeps).
          if (!unitFolds(u)) assert.deepEqual(unitEntries(u, 'deploy'), unitEntries(u, 'train'), `${u.path}: kept as is`);
        }
        if (mode === 'deploy') for (const u of d.units) assert.ok(EXPORT_UNITS.has(u.kind), `${u.kind}: IR lowering`);
        // Detection finds the preset back from its own layout.
        const sd: StateDict = new Map(descEntries(d).map((e) => [e.name, { shape: e.shape, dtype: e.dtype } as unknown as Tensor]));
        const found = detectArch(sd);
        assert.equal(found?.name, name, `${name} ${mode}`);
        assert.equal(found?.mode, mode);
      }
    }
  }
});

const f32 = (shape: number[], seed = 1) => Tensor.fromArray(Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(i + seed) * 0.1 + (shape.length === 1 ? 1 : 0)), shape);

function bn(sd: StateDict, p: string, C: number): void {
  sd.set(`${p}weight`, f32([C], 2));
  sd.set(`${p}bias`, f32([C], 3));
  sd.set(`${p}running_mean`, f32([C], 4));
  sd.set(`${p}running_var`, f32([C], 5));
  sd.set(`${p}num_batches_tracked`, Tensor.scalarInt64(3n));
}

/** RepVGG (Ding et al. 2021) training-time layout: stage0 downsamples (no identity), stage1.0 has one. */
function repvggStateDict(names = { dense: 'rbr_dense', one: 'rbr_1x1', id: 'rbr_identity' }): StateDict {
  const sd: StateDict = new Map();
  sd.set(`stage0.${names.dense}.conv.weight`, f32([8, 3, 3, 3]));
  bn(sd, `stage0.${names.dense}.bn.`, 8);
  sd.set(`stage0.${names.one}.conv.weight`, f32([8, 3, 1, 1]));
  bn(sd, `stage0.${names.one}.bn.`, 8);
  bn(sd, `stage1.0.${names.id}.`, 8);
  sd.set(`stage1.0.${names.dense}.conv.weight`, f32([8, 8, 3, 3]));
  bn(sd, `stage1.0.${names.dense}.bn.`, 8);
  sd.set(`stage1.0.${names.one}.conv.weight`, f32([8, 8, 1, 1]));
  bn(sd, `stage1.0.${names.one}.bn.`, 8);
  sd.set('linear.weight', f32([4, 8]));
  sd.set('linear.bias', f32([4]));
  return sd;
}

test('convert refuses a RepVGG-style state dict, naming the pattern, its keys and the families tried; no output', async (t) => {
  const tmp = tempDir();
  t.after(tmp.cleanup);
  const input = path.join(tmp.dir, 'repvgg.pth');
  const out = path.join(tmp.dir, 'out.pth');
  await writeCheckpoint(input, stateDictToPy(repvggStateDict()));
  const r = repmlp('convert', input, out);
  assert.notEqual(r.code, 0);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, /^repmlp: error: .*stage0: unknown block pattern: RepVGG block/);
  assert.match(r.stderr, /stage0\.rbr_dense\.conv\.weight/);
  assert.match(r.stderr, /tried RepMLPNet, RepMLPResNet, RepMLP building blocks/);
  assert.match(r.stderr, /1 more such block/);
  assert.equal(existsSync(out), false);
  // The same structure under other names: parallel conv+BN branches beside an identity BatchNorm.
  const sd = repvggStateDict({ dense: 'branch3x3', one: 'branch1x1', id: 'identity' });
  assert.throws(() => convertTrainingStateDict(sd, { where: 'x.pth' }), (e: unknown) => e instanceof ReparamError && /stage1\.0: unknown block pattern: parallel conv\+BN branches branch3x3, branch1x1 beside an identity BatchNorm identity/.test(e.message));
});

test('convert --help lists the families it knows', () => {
  const r = repmlp('convert', '--help');
  assert.equal(r.code, 0);
  assert.match(r.stdout, /Families/);
  assert.match(r.stdout, /RepMLPResNet: RepMLP-Res50-light-224/);
  assert.match(r.stdout, /RepMLP building blocks \(2021/);
});

test('config JSON "family" field: RepMLPResNet accepted, an unknown family named', (t) => {
  const tmp = tempDir();
  t.after(tmp.cleanup);
  const cfg = JSON.parse(readFileSync(path.join(MODEL, 'light_64.config.json'), 'utf8'));
  const file = path.join(tmp.dir, 'arch.json');
  writeFileSync(file, JSON.stringify({ ...cfg, family: 'RepMLPResNet' }));
  const r = resolveArch(file);
  assert.equal(r.family.name, 'RepMLPResNet');
  assert.equal(r.name, null);
  assert.deepEqual(descEntries(r.family.describe(r.config, 'train')), descEntries(parseArchConfig(cfg, 'x').family.describe(parseArchConfig(cfg, 'x').config, 'train')));
  assert.throws(() => parseArchConfig({ ...cfg, family: 'RepVGG' }, 'my.json'), (e: unknown) => e instanceof ConfigError && /my\.json: field 'family': expected one of/.test(e.message));
  assert.throws(() => parseArchConfig({ ...cfg, img_H: 100 }, 'my.json'), (e: unknown) => e instanceof ConfigError && /field 'img_H'.*not a multiple of 8/.test(e.message));
});

for (const name of ['light_64', 'light_112_p7', 'base_odd_50x70']) {
  test(`sizes: ${name} detected, converted and exported (ONNX, TF.js graph) with PyTorch's logits`, async (t) => {
    const tmp = tempDir();
    t.after(tmp.cleanup);
    const config = JSON.parse(readFileSync(path.join(MODEL, `${name}.config.json`), 'utf8'));
    const arch = parseArchConfig(config, name);
    const { stateDict } = await loadStateDictFile(path.join(MODEL, `${name}.train.pth`));
    const found = detectArch(stateDict);
    // A base network's image size is not in its weights (any size runs): only the RepMLP nets are told apart.
    if (config.block_type !== 'base') assert.deepEqual(found?.config, arch.config, 'custom configuration inferred from the shapes');
    const conv = convertTrainingStateDict(stateDict, { where: name, arch: path.join(MODEL, `${name}.config.json`) });
    const onnx = path.join(tmp.dir, 'm.onnx');
    const tfjs = path.join(tmp.dir, 'tfjs');
    const r = await exportDeploy(arch.config as object, conv.stateDict, { onnx, tfjs });
    assert.ok(r.check!.onnx!.rel <= 1e-4 && r.check!.tfjs!.rel <= 1e-4);
    const x = await readNpy(path.join(MODEL, `${name}.input.npy`));
    const want = npyToFloat32(await readNpy(path.join(MODEL, `${name}.train.output.npy`)));
    const got = await runOnnx(onnx, npyToFloat32(x), x.shape, { threads: 2 });
    assert.ok(difference(got.data, want).rel <= 1e-4, `ONNX vs PyTorch: ${difference(got.data, want).rel}`);
    await initBackend('wasm');
    const g = await loadTfjsGraph(tfjs);
    try {
      const y = await runTfjsGraph(g, npyToFloat32(x), x.shape);
      assert.ok(difference(y.data, want).rel <= 1e-4, `TF.js graph vs PyTorch: ${difference(y.data, want).rel}`);
    } finally {
      g.dispose();
    }
  });
}

test('layers: family/ imports no TF.js and nothing above it; no layer imports a higher one', () => {
  const SRC = path.join(ROOT, 'src');
  const rank: Record<string, number> = { pth: 0, io: 0, util: 0, family: 1, model: 2, reparam: 3, export: 4, app: 5, cli: 6 };
  const files = (dir: string): string[] => readdirSync(dir, { withFileTypes: true }).flatMap((d) => (d.isDirectory() ? files(path.join(dir, d.name)) : d.name.endsWith('.ts') ? [path.join(dir, d.name)] : []));
  for (const layer of ['family', 'model', 'reparam', 'export']) {
    for (const f of files(path.join(SRC, layer))) {
      const text = readFileSync(f, 'utf8');
      for (const m of text.matchAll(/(?:from|import\()\s*'([^']+)'/g)) {
        const spec = m[1]!;
        if (layer === 'family') assert.ok(!spec.startsWith('@tensorflow'), `${path.relative(ROOT, f)} imports ${spec}`);
        if (!spec.startsWith('.')) continue;
        const target = path.relative(SRC, path.resolve(path.dirname(f), spec)).split(path.sep)[0]!;
        const r = rank[target];
        if (r !== undefined) assert.ok(r <= rank[layer]!, `${path.relative(ROOT, f)} (${layer}) imports ${spec} (${target}, a higher layer)`);
      }
    }
  }
});
