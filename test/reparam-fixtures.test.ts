/**
 * Every fixture of tools/make_reparam_fixtures.py: the TypeScript conversion against
 * PyTorch's exact one (tools/reparam_ref.py). Keys and order equal; every tensor within
 * relative 1e-5 of the reference (max|a-b| / max|ref|); and the converted model run by
 * TF.js gives the training model's PyTorch output within relative 1e-4.
 * Needs no Python: the references are committed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { FIXTURES } from './helpers/torch.js';
import { loadStateDictFile, type StateDict } from '../src/pth/index.js';
import { convertTrainingStateDict, equivalentFc1Fc3, ReparamError, type BlockHint } from '../src/reparam/index.js';
import { readNpy, npyToFloat32 } from '../src/io/npy.js';
import { buildModel, initBackend, loadStateDict, predictLogits, RepMLP, tf } from '../src/model/index.js';
import { parseConfig } from '../src/model/config.js';
import { assertSameStateDict, relErr } from './reparam-helpers.js';

const DIR = path.join(FIXTURES, 'reparam');

interface Case {
  name: string;
  kind: 'repmlp' | 'resnet' | 'user';
  hints: BlockHint;
  args?: { C: number; O: number; H: number; W: number; h: number; w: number; reparam_conv_k: number[] | null; fc1_fc2_reduction: number; fc3_groups: number };
  arch?: string;
  input_shape: [number, number, number, number];
}
const manifest = JSON.parse(readFileSync(path.join(DIR, 'manifest.json'), 'utf8')) as { cases: Case[] };
const file = (c: Case, suffix: string) => path.join(DIR, `${c.name}.${suffix}`);

const hasHint = (h: BlockHint) => Object.keys(h).length > 0;

async function convertCase(c: Case, hint?: BlockHint): Promise<StateDict> {
  const { stateDict } = await loadStateDictFile(file(c, 'train.pth'));
  return convertTrainingStateDict(stateDict, { where: c.name, ...(hint && hasHint(hint) ? { hint } : {}) }).stateDict;
}

for (const c of manifest.cases) {
  test(`fixture ${c.name}: converted tensors equal PyTorch's exact conversion (rel 1e-5), keys and order too`, async () => {
    const ref = (await loadStateDictFile(file(c, 'deploy.pth'))).stateDict;
    const got = await convertCase(c, c.hints);
    assertSameStateDict(got, ref, 1e-5, c.name);
    if (c.arch) {
      const { stateDict } = await loadStateDictFile(file(c, 'train.pth'));
      const viaArch = convertTrainingStateDict(stateDict, { where: c.name, arch: path.join(DIR, c.arch) });
      assertSameStateDict(viaArch.stateDict, ref, 1e-5, `${c.name} with --arch`);
    }
  });

  if (hasHint(c.hints)) {
    test(`fixture ${c.name}: without hints, the error names the block and the flag`, async () => {
      // The first block that needs a hint is named, with the flag that block needs.
      const flag = new RegExp([c.hints.fc3Groups !== undefined ? '--fc3-groups G' : '', c.hints.h !== undefined ? '--partition HxW' : ''].filter(Boolean).join('|'));
      await assert.rejects(convertCase(c), (e: Error) => e instanceof ReparamError && flag.test(e.message) && /RepMLP (\(root\)|stage\d\.\d\.\w+):/.test(e.message));
    });
  }
}

test('fixtures: the converted models run by TF.js give the training model\'s PyTorch output (rel 1e-4)', async () => {
  await initBackend('cpu');
  for (const c of manifest.cases) {
    if (c.kind === 'user') continue; // no TF.js model for the user's own network
    const sd = await convertCase(c, c.hints);
    const x = npyToFloat32(await readNpy(file(c, 'input.npy')));
    const want = npyToFloat32(await readNpy(file(c, 'output.npy')));
    let got: Float32Array;
    if (c.kind === 'resnet') {
      const model = buildModel(parseConfig(JSON.parse(readFileSync(path.join(DIR, c.arch!), 'utf8'))), { deploy: true, init: false });
      loadStateDict(model, sd, { where: c.name });
      got = await predictLogits(model, x, c.input_shape);
    } else {
      const a = c.args!;
      const model = new RepMLP({ C: a.C, O: a.O, H: a.H, W: a.W, h: a.h, w: a.w, reparamConvK: [], fc1fc2Reduction: a.fc1_fc2_reduction, fc3Groups: a.fc3_groups }, true);
      loadStateDict(model, sd, { where: c.name });
      const y = model.forward(tf.tensor4d(x, c.input_shape));
      got = (await y.data()) as Float32Array;
      y.dispose();
    }
    const e = relErr(got, want);
    assert.ok(e <= 1e-4, `${c.name}: logits relative error ${e}`);
  }
});

test('equivalentFc1Fc3: the deploy fc1/fc3 of one block, from the training state dict alone', async () => {
  const c = manifest.cases.find((x) => x.name === 'user_net')!;
  const { stateDict } = await loadStateDictFile(file(c, 'train.pth'));
  const ref = (await loadStateDictFile(file(c, 'deploy.pth'))).stateDict;
  const eq = equivalentFc1Fc3(stateDict, 'mixer.mlp');
  assert.ok(relErr(eq.fc3Weight.toFloat64(), ref.get('mixer.mlp.fc3.weight')!.toFloat64()) <= 1e-5);
  assert.ok(relErr(eq.fc3Bias.toFloat64(), ref.get('mixer.mlp.fc3.bias')!.toFloat64()) <= 1e-5);
  assert.ok(relErr(eq.fc1Weight!.toFloat64(), ref.get('mixer.mlp.fc1_fc2.fc1.weight')!.toFloat64()) <= 1e-5);
  assert.ok(relErr(eq.fc1Bias!.toFloat64(), ref.get('mixer.mlp.fc1_fc2.fc1.bias')!.toFloat64()) <= 1e-5);
  assert.throws(() => equivalentFc1Fc3(stateDict, 'mixer'), /no training-time RepMLP at 'mixer'/);
});

test('the input state dict is not modified, untouched tensors are passed through as they are', async () => {
  const c = manifest.cases.find((x) => x.name === 'user_net')!;
  const { stateDict } = await loadStateDictFile(file(c, 'train.pth'));
  const before = new Map([...stateDict].map(([k, t]) => [k, Buffer.from(t.contiguousBytes()).toString('base64')]));
  const out = convertTrainingStateDict(stateDict, { where: c.name }).stateDict;
  assert.deepEqual(new Map([...stateDict].map(([k, t]) => [k, Buffer.from(t.contiguousBytes()).toString('base64')])), before);
  for (const k of ['head.weight', 'norm.weight', 'norm.num_batches_tracked', 'mixer.mlp.fc1_fc2.fc2.weight']) assert.equal(out.get(k), stateDict.get(k), k);
});
