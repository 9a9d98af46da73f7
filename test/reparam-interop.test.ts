/**
 * Interop with real PyTorch (skipped with a clear message without it):
 * - converted .pth files written by the toolkit load with load_state_dict(strict=True)
 *   into tools/repmlp_ref.py's deploy models (release-style) and give the training
 *   model's output (relative 1e-4);
 * - the full RepMLP-Res50-light-224 preset (randomized BN, made on the fly) converts to
 *   PyTorch's exact conversion (every tensor within relative 1e-5, same keys and order).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { FIXTURES, TOOLS, presetCheckpoint, runPython, tempDir, torchSkip } from './helpers/torch.js';
import { loadStateDictFile, stateDictToPy, writeCheckpoint } from '../src/pth/index.js';
import { convertTrainingStateDict, type BlockHint } from '../src/reparam/index.js';
import { assertSameStateDict } from './reparam-helpers.js';

const DIR = path.join(FIXTURES, 'reparam');
const manifest = JSON.parse(readFileSync(path.join(DIR, 'manifest.json'), 'utf8')) as { cases: { name: string; kind: string; hints: BlockHint; args?: Record<string, unknown>; arch?: string }[] };

const CHECK = `
import json, sys, numpy as np, torch
sys.path.insert(0, ${JSON.stringify(TOOLS)})
from repmlp_ref import RepMLP, build_model
from reparam_ref import exact_model_convert, rel_err
from make_reparam_fixtures import UserNet
cases = json.load(sys.stdin)
out = {}
for c in cases:
    if c['kind'] == 'resnet':
        m = build_model(json.load(open(c['arch'])), deploy=True)
    elif c['kind'] == 'repmlp':
        m = RepMLP(**c['args'], deploy=True)
    else:
        m = exact_model_convert(UserNet())  # the user's deploy structure
    sd = torch.load(c['converted'])
    m.load_state_dict(sd, strict=True)
    m.eval()
    x = torch.from_numpy(np.load(c['input']))
    y = torch.from_numpy(np.load(c['output']))
    with torch.no_grad():
        out[c['name']] = dict(err=rel_err(m(x), y), same_order=list(sd.keys()) == list(m.state_dict().keys()))
print(json.dumps(out))
`;

test('converted .pth files load strictly into the release-style deploy models and match the training output', { skip: torchSkip() }, async () => {
  const { dir, cleanup } = tempDir();
  try {
    const cases = [];
    for (const c of manifest.cases) {
      const { stateDict } = await loadStateDictFile(path.join(DIR, `${c.name}.train.pth`));
      const hint = Object.keys(c.hints).length ? { hint: c.hints } : {};
      const r = convertTrainingStateDict(stateDict, { where: c.name, ...hint });
      const converted = path.join(dir, `${c.name}.pth`);
      await writeCheckpoint(converted, stateDictToPy(r.stateDict));
      cases.push({
        ...c, converted, ...(c.arch ? { arch: path.join(DIR, c.arch) } : {}),
        input: path.join(DIR, `${c.name}.input.npy`), output: path.join(DIR, `${c.name}.output.npy`),
      });
    }
    const res = JSON.parse(runPython(['-c', CHECK], { input: JSON.stringify(cases) })) as Record<string, { err: number; same_order: boolean }>;
    for (const c of manifest.cases) {
      assert.ok(res[c.name]!.err <= 1e-4, `${c.name}: PyTorch output of the converted model, relative error ${res[c.name]!.err}`);
      assert.ok(res[c.name]!.same_order, `${c.name}: key order differs from the deploy model's state_dict`);
    }
  } finally {
    cleanup();
  }
});

test('full RepMLP-Res50-light-224 (torch-made, randomized BN): every tensor equals PyTorch\'s exact conversion', { skip: torchSkip(), timeout: 300_000 }, async () => {
  const train = presetCheckpoint('RepMLP-Res50-light-224', 'train', 0);
  const { dir, cleanup } = tempDir();
  try {
    const ref = path.join(dir, 'ref.pth');
    // The reference's conv->FC by index assignment (tools/reparam_ref.py `scatter`, checked
    // equal to the F.conv2d-on-identity construction by its --selftest): fast at full size.
    runPython([path.join(TOOLS, 'reparam_ref.py'), 'convert', train, ref, 'RepMLP-Res50-light-224', 'scatter']);
    const { stateDict } = await loadStateDictFile(train);
    const r = convertTrainingStateDict(stateDict, { where: train });
    assert.equal(r.arch?.name, 'RepMLP-Res50-light-224');
    assert.equal(r.blocks.length, 8);
    assert.equal(r.elementsOut, 86_142_440);
    const worst = assertSameStateDict(r.stateDict, (await loadStateDictFile(ref)).stateDict, 1e-5, 'light-224');
    assert.ok(worst <= 1e-5);
  } finally {
    cleanup();
  }
});

test('float16 checkpoint: converted in float64, written back as float16, within half precision of the exact conversion', { skip: torchSkip() }, async () => {
  const { dir, cleanup } = tempDir();
  try {
    runPython(['-c', `
import sys, torch
sys.path.insert(0, ${JSON.stringify(TOOLS)})
from repmlp_ref import RepMLP, randomize
from reparam_ref import exact_model_convert
m = randomize(RepMLP(4, 6, 8, 12, 4, 6, (1, 3), 1, 2), 7).half()
torch.save(m.state_dict(), ${JSON.stringify(path.join(dir, 'train16.pth'))})
ref = exact_model_convert(m.float()).half()
torch.save(ref.state_dict(), ${JSON.stringify(path.join(dir, 'ref16.pth'))})
`]);
    const { stateDict } = await loadStateDictFile(path.join(dir, 'train16.pth'));
    const r = convertTrainingStateDict(stateDict, { where: 'train16.pth', hint: { h: 4, w: 6 } });
    assert.equal(r.stateDict.get('fc3.weight')!.dtype, 'float16');
    // One float16 rounding (2^-11 relative) on each side.
    assertSameStateDict(r.stateDict, (await loadStateDictFile(path.join(dir, 'ref16.pth'))).stateDict, 1e-3, 'float16');
  } finally {
    cleanup();
  }
});
