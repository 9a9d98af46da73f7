/**
 * Interop with real PyTorch: every fixture (both input formats) is read, written back in
 * torch's zip format, and loaded by torch.load (plain and weights_only=True); the result
 * must equal what torch recorded for the original. One Python process checks all files.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { readCheckpoint, writeCheckpoint } from '../src/pth/index.js';
import { PyDict } from '../src/pth/pyobj.js';
import { findStateDict } from '../src/pth/statedict.js';
import { CASES, CKPT, describe, fixtureJson, stripRepr, type Desc } from './pth-describe.js';
import { runPython, tempDir, torchSkip, TOOLS } from './helpers/torch.js';

interface TorchView {
  plain?: Desc;
  weights_only?: Desc;
  plain_error?: string;
  weights_only_error?: string;
  zip_bad_crc?: string | null;
  zip_names?: string[];
}

function hasFloat(d: unknown): boolean {
  if (Array.isArray(d)) return d.some(hasFloat);
  if (d && typeof d === 'object') return (d as Desc).type === 'float' || Object.values(d).some(hasFloat);
  return false;
}

test('interop: read -> write (zip) -> torch.load equals the original', { skip: torchSkip() }, async (t) => {
  const { dir, cleanup } = tempDir();
  try {
    const jobs: { out: string; expect: Desc; zip64?: boolean }[] = [];
    for (const name of CASES) {
      const expect = stripRepr(fixtureJson(name).object) as Desc;
      for (const file of [`${name}.pth`, `${name}.legacy.pth`]) {
        const ck = await readCheckpoint(path.join(CKPT, file));
        const out = path.join(dir, file.replace(/\.pth$/, '.out.pth'));
        await writeCheckpoint(out, ck.root);
        jobs.push({ out, expect });
      }
    }
    // zip64 fields and end records forced on a small file: torch (miniz) must still read it
    const views = await readCheckpoint(path.join(CKPT, 'views.pth'));
    const z64 = path.join(dir, 'views.zip64.pth');
    await writeCheckpoint(z64, views.root, { zip64: 'always' });
    jobs.push({ out: z64, expect: stripRepr(fixtureJson('views').object) as Desc, zip64: true });
    // safetensors: written from a safetensors file and from a torch state dict
    const st = await readCheckpoint(path.join(CKPT, 'small.safetensors'));
    const stOut = path.join(dir, 'small.out.safetensors');
    await writeCheckpoint(stOut, st.root, { format: 'safetensors' });

    const views2 = JSON.parse(runPython([path.join(TOOLS, 'make_ckpt_fixtures.py'), 'describe-many', ...jobs.map((j) => j.out), stOut])) as Record<string, TorchView>;
    for (const job of jobs) {
      await t.test(path.basename(job.out), () => {
        const v = views2[job.out]!;
        assert.equal(v.plain_error, undefined, `torch.load failed: ${v.plain_error}`);
        assert.deepEqual(stripRepr(v.plain), job.expect);
        if (v.weights_only_error !== undefined) {
          // torch 1.13's weights_only unpickler lacks BINFLOAT (added in 2.x): only files
          // holding Python floats may fail, and only for that reason.
          assert.ok(hasFloat(job.expect), `weights_only failed on a file without floats: ${v.weights_only_error}`);
          assert.match(v.weights_only_error, /Unsupported operand 71/);
        } else assert.deepEqual(stripRepr(v.weights_only), job.expect);
        assert.equal(v.zip_bad_crc, null, 'CRC mismatch found by Python zipfile');
        assert.deepEqual(v.zip_names!.slice(0, 2), ['archive/data.pkl', 'archive/byteorder']);
        assert.equal(v.zip_names!.at(-1), 'archive/version');
      });
    }
    await t.test('small.safetensors written back', () => {
      const want = JSON.parse(JSON.stringify(fixtureJson('small.safetensors').object));
      assert.deepEqual(views2[stOut]!.plain, want);
    });
  } finally {
    cleanup();
  }
});

test('interop: a state dict found in a wrapper is written as safetensors and read back', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const ck = await readCheckpoint(path.join(CKPT, 'wrapped.legacy.pth'));
    const { dict } = findStateDict(ck.root);
    const out = path.join(dir, 'sd.safetensors');
    await writeCheckpoint(out, dict, { format: 'safetensors', metadata: { format: 'pt' } });
    const back = await readCheckpoint(out);
    const root = back.root as PyDict;
    assert.deepEqual([...root.map.keys()], [...dict.map.keys()]);
    const a = describe(new PyDict(root.map, true)) as { items: [unknown, Desc][] };
    const b = describe(new PyDict(dict.map, true)) as { items: [unknown, Desc][] };
    for (let i = 0; i < a.items.length; i++) {
      assert.equal(a.items[i]![1].sha256, b.items[i]![1].sha256);
      assert.deepEqual(a.items[i]![1].shape, b.items[i]![1].shape);
      assert.equal(a.items[i]![1].dtype, b.items[i]![1].dtype);
    }
    assert.equal((root.attrs.get('__metadata__') as PyDict).map.get('format'), 'pt');
  } finally {
    cleanup();
  }
});

test('interop: repmlp prefix output equals torch\'s consume_prefix_in_state_dict_if_present, key order kept', { skip: torchSkip() }, async () => {
  const { dir, cleanup } = tempDir();
  try {
    const { spawnSync } = await import('node:child_process');
    const { ROOT } = await import('./helpers/torch.js');
    const cases: [string, string][] = [];
    for (const file of ['ddp.pth', 'ddp_wrapped.legacy.pth', 'ddp_wrapped.pth']) {
      const out = path.join(dir, file.replace(/\.pth$/, '.stripped.pth'));
      const r = spawnSync(process.execPath, [path.join(ROOT, 'dist/src/cli/main.js'), 'prefix', path.join(CKPT, file), out], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      cases.push([path.join(CKPT, file), out]);
    }
    const script = `
import sys, json, torch, collections
from torch.nn.modules.utils import consume_prefix_in_state_dict_if_present as consume
res = []
for src, out in json.loads(sys.argv[1]):
    a = torch.load(src); b = torch.load(out, weights_only=True)
    sa = a['state_dict'] if 'state_dict' in a else a
    sb = b['state_dict'] if 'state_dict' in b else b
    order = [k[len('module.'):] for k in sa.keys()]
    meta = collections.OrderedDict(sa._metadata)
    sa._metadata = meta
    consume(sa, 'module.')
    # torch 1.13 looks for '_metadata' as a key, not the attribute: strip it as it should
    m2 = collections.OrderedDict()
    for k, v in meta.items():
        if k == '': continue
        m2[k[len('module.'):] if k.startswith('module.') else ''] = v
    ok = (list(sb.keys()) == order and set(sa.keys()) == set(sb.keys())
          and all(torch.equal(sa[k], sb[k]) and sa[k].dtype == sb[k].dtype for k in sb)
          and dict(sb._metadata) == dict(m2) and list(sb._metadata.keys()) == list(m2.keys()))
    if 'state_dict' in a:
        ok = ok and {k: v for k, v in a.items() if k != 'state_dict'} == {k: v for k, v in b.items() if k != 'state_dict'}
    res.append([out, ok])
print(json.dumps(res))
`;
    const res = JSON.parse(runPython(['-c', script, JSON.stringify(cases)])) as [string, boolean][];
    for (const [out, ok] of res) assert.ok(ok, `${out} differs from torch's own prefix removal`);
  } finally {
    cleanup();
  }
});
