/**
 * Every command on checkpoints as training scripts save them (issue 13): a whole
 * pickled nn.Module (`torch.save(model)`), timm's EMA wrapper chosen with --entry, keys
 * prefixed by torch.compile under DDP. Made on the fly by real torch from a committed
 * training-time fixture; `convert` of each must equal `convert` of the plain state dict,
 * and `run` of the pickled module must give PyTorch's logits.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { loadStateDictFile } from '../src/pth/index.js';
import { readNpy } from '../src/io/npy.js';
import { FIXTURES, ROOT, runPython, tempDir, torchSkip } from './helpers/torch.js';

const MAIN = path.join(ROOT, 'dist/src/cli/main.js');
const MODEL = path.join(FIXTURES, 'model');
const CASE = 'light_g1_r2';

function repmlp(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', timeout: 300_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const MAKE = `
import argparse, collections, json, sys, torch, repmlp_ref
cfg, sd_path, out = sys.argv[1], sys.argv[2], sys.argv[3]
m = repmlp_ref.build_model(json.load(open(cfg)))
m.load_state_dict(torch.load(sd_path))
torch.save(m, out + '/module.pth')
torch.save(m, out + '/module.legacy.pth', _use_new_zipfile_serialization=False)
sd = m.state_dict()
other = collections.OrderedDict((k, torch.zeros_like(v)) for k, v in sd.items())
torch.save({'epoch': 3, 'state_dict': other, 'state_dict_ema': sd, 'args': argparse.Namespace(model='repmlp', lr=0.1)}, out + '/ema.pth')
compiled = collections.OrderedDict(('module._orig_mod.' + k, v) for k, v in sd.items())
torch.save({'model': compiled, 'epoch': 3}, out + '/compiled.pth')
`;

test('every command reads a pickled nn.Module, --entry state_dict_ema and module._orig_mod. keys', { skip: torchSkip() }, async () => {
  const { dir, cleanup } = tempDir();
  try {
    runPython(['-c', MAKE, path.join(MODEL, `${CASE}.config.json`), path.join(MODEL, `${CASE}.train.pth`), dir]);
    const ok = (r: ReturnType<typeof repmlp>, what: string) => assert.equal(r.code, 0, `${what}: ${r.stderr}`);
    ok(repmlp('convert', path.join(MODEL, `${CASE}.train.pth`), path.join(dir, 'ref.pth')), 'convert reference');
    const ref = (await loadStateDictFile(path.join(dir, 'ref.pth'))).stateDict;
    const runs: [string, string[]][] = [
      ['module.pth', []], ['module.legacy.pth', []], ['ema.pth', ['--entry', 'state_dict_ema']], ['compiled.pth', []],
    ];
    for (const [file, flags] of runs) {
      const out = path.join(dir, `deploy-${file}`);
      ok(repmlp('convert', path.join(dir, file), out, ...flags), `convert ${file}`);
      const got = (await loadStateDictFile(out)).stateDict;
      assert.deepEqual([...got.keys()], [...ref.keys()], file);
      for (const [k, t] of ref) assert.deepEqual(got.get(k)!.contiguousBytes(), t.contiguousBytes(), `${file}: ${k}`);
    }
    // the default of the EMA file is state_dict (zeros here): not the same weights
    ok(repmlp('convert', path.join(dir, 'ema.pth'), path.join(dir, 'deploy-ema-default.pth')), 'convert ema default');
    const zeros = (await loadStateDictFile(path.join(dir, 'deploy-ema-default.pth'))).stateDict;
    assert.notDeepEqual([...zeros.values()].map((t) => t.contiguousBytes()), [...ref.values()].map((t) => t.contiguousBytes()));
    // run: the pickled module's logits are PyTorch's
    const y = path.join(dir, 'y.npy');
    ok(repmlp('run', path.join(dir, 'module.pth'), '--input', path.join(MODEL, `${CASE}.input.npy`), '--output', y, '--backend', 'cpu'), 'run module.pth');
    const want = (await readNpy(path.join(MODEL, `${CASE}.train.output.npy`))).data as Float32Array;
    const got = (await readNpy(y)).data as Float32Array;
    let max = 0;
    let diff = 0;
    for (let i = 0; i < want.length; i++) {
      max = Math.max(max, Math.abs(want[i]!));
      diff = Math.max(diff, Math.abs(want[i]! - got[i]!));
    }
    assert.ok(diff <= 1e-4 * max, `run module.pth: max diff ${diff} vs max ${max}`);
    // inspect tells what it did; --strict-globals refuses what torch's weights_only refuses
    const insp = JSON.parse(repmlp('inspect', path.join(dir, 'module.pth'), '--json').stdout);
    assert.equal(insp.mode, 'train');
    assert.ok(insp.inertGlobals.includes('repmlp_ref.RepMLPResNet'));
    const strict = repmlp('convert', path.join(dir, 'module.pth'), path.join(dir, 'strict.pth'), '--strict-globals');
    assert.equal(strict.code, 1);
    assert.match(strict.stderr, /^repmlp: error: .*module\.pth: module\/data\.pkl: refusing global 'repmlp_ref\.RepMLPResNet': not in torch's weights_only allow-list\n$/);
    const wrong = repmlp('inspect', path.join(dir, 'ema.pth'), '--entry', 'state_dict_emaa');
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /--entry 'state_dict_emaa': no entry 'state_dict_emaa' \(it holds: epoch, state_dict, state_dict_ema, args\)\n$/);
  } finally {
    cleanup();
  }
});
