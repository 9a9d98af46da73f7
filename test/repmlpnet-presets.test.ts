/**
 * All six RepMLPNet presets are told by name from a checkpoint's keys and shapes, in both
 * forms, as the released files come (`RepMLPNet-D256-train-acc80.828.pth`: a plain state
 * dict or `{'model': sd}`; DDP `module.` keys). The state dicts are made with real torch
 * from tools/repmlpnet_ref.py with every float tensor an expanded view of one element, so
 * each file holds the full preset's keys and shapes in ~150 KB (inspect reads metadata
 * only). Skipped without torch.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { runPython, tempDir, torchSkip } from './helpers/torch.js';
import { repmlpJson } from './helpers/repmlpnet.js';

const PRESETS = ['RepMLPNet-T224', 'RepMLPNet-B224', 'RepMLPNet-T256', 'RepMLPNet-B256', 'RepMLPNet-D256', 'RepMLPNet-L256'];
const skip = torchSkip();
let dir = '';
let cleanup = () => {};
let made: Record<string, { train: number; deploy: number; prefix: string | null }> = {};

before(() => {
  if (skip) return;
  ({ dir, cleanup } = tempDir('repmlpnet-presets-'));
  made = JSON.parse(runPython(['-c', [
    'import json, os, sys, torch',
    'from repmlpnet_ref import PRESETS, build_model',
    'one, out = torch.zeros(1), {}',
    'def light(sd):',
    '    return {k: (one.expand(v.shape) if v.is_floating_point() else v) for k, v in sd.items()}',
    'for i, name in enumerate(PRESETS):',
    '    t = light(build_model(name).state_dict())',
    '    d = light(build_model(name, deploy=True).state_dict())',
    '    # Released names and forms: train plain (DDP keys for every other preset), deploy as {"model": sd}.',
    "    p = 'module.' if i % 2 else None",
    "    torch.save({(p or '') + k: v for k, v in t.items()}, os.path.join(sys.argv[1], f'{name}-train-acc0.000.pth'))",
    "    torch.save({'model': d}, os.path.join(sys.argv[1], f'{name}-deploy.pth'))",
    "    out[name] = {'train': len(t), 'deploy': len(d), 'prefix': p}",
    'print(json.dumps(out))',
  ].join('\n'), dir])) as typeof made;
});
after(() => cleanup());

interface InspectJson {
  wrapper: string[] | null;
  prefix: string | null;
  arch: string | null;
  mode: string | null;
  tensors: number;
}

for (const name of PRESETS) {
  test(`${name}: inspect names the preset, training-time (plain, or DDP keys) and deploy ({'model'})`, { skip }, () => {
    const t = repmlpJson<InspectJson>('inspect', path.join(dir, `${name}-train-acc0.000.pth`));
    assert.deepEqual([t.arch, t.mode, t.tensors, t.wrapper, t.prefix], [name, 'train', made[name]!.train, [], made[name]!.prefix]);
    const d = repmlpJson<InspectJson>('inspect', path.join(dir, `${name}-deploy.pth`));
    assert.deepEqual([d.arch, d.mode, d.tensors, d.wrapper], [name, 'deploy', made[name]!.deploy, ['model']]);
  });
}
