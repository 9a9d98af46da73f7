/**
 * Formats kept, layouts written as torch would, precision (issue 13.6-13.8) and tiny
 * inputs with huge outputs (issue 14), on the fixtures of tools/make_format_fixtures.py
 * (made by real PyTorch), each result checked by torch itself where torch is present.
 * Before these fixes: `prefix x.safetensors y.safetensors` wrote a torch zip and dropped
 * __metadata__; `convert` refused transposed / channels_last tensors ("written as a
 * non-contiguous view"); a flat-buffer checkpoint converted to a deploy file carrying the
 * dropped training tensors; `verify` failed every fp16/bf16 checkpoint at 1e-4; and a
 * 744-byte `expand(2**30)` file made `prefix --format safetensors` write 4 GiB.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { readCheckpoint, writeCheckpoint } from '../src/pth/index.js';
import { PyDict, type PyKey, type PyValue } from '../src/pth/pyobj.js';
import { Storage, Tensor } from '../src/tensor.js';
import { LayoutError, compactStorage } from '../src/pth/layout.js';
import { FIXTURES, ROOT, TOOLS, runPython, tempDir, torchSkip } from './helpers/torch.js';

const MAIN = path.join(ROOT, 'dist/src/cli/main.js');
const F = path.join(FIXTURES, 'formats');
const TOOL = path.join(TOOLS, 'make_format_fixtures.py');
const ARCH = path.join(F, 'light.config.json');

function repmlp(...args: string[]): { code: number | null; stdout: string; stderr: string; ms: number } {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, ms: performance.now() - t0 };
}

interface DeployCheck {
  keys_equal: boolean;
  missing: string[];
  release_size: number;
  ours_size: number;
  max_rel: number;
  all_exact: boolean;
  tensors: Record<string, { rel: number; exact: boolean }>;
}

function checkDeploy(train: string, ours: string): DeployCheck {
  return JSON.parse(runPython([TOOL, 'check-deploy', train, ours])) as DeployCheck;
}

function leftovers(dir: string): string[] {
  return readdirSync(dir).filter((n) => n.includes('.tmp-'));
}

test('prefix keeps safetensors: OUT\'s extension decides the format, __metadata__ kept, every known prefix stripped', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const input = path.join(F, 'meta.safetensors');
    const out = path.join(dir, 'out.safetensors');
    let r = repmlp('prefix', input, out, '--json');
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.equal(j.format, 'safetensors');
    assert.equal(j.strip, 'module._orig_mod.');
    assert.equal(j.metadataKept, 3);
    const ck = await readCheckpoint(out);
    assert.equal(ck.format, 'safetensors');
    const root = ck.root as PyDict;
    const src = (await readCheckpoint(input)).root as PyDict;
    assert.deepEqual([...root.map.keys()], [...src.map.keys()].map((k) => String(k).slice('module._orig_mod.'.length)));
    const meta = root.attrs.get('__metadata__') as PyDict;
    assert.deepEqual([...meta.map], [['format', 'pt'], ['note', 'made by tools/make_format_fixtures.py'], ['epoch', '3']]);
    // --format overrides the extension; an unknown extension takes IN's format
    const forced = path.join(dir, 'forced.pth');
    r = repmlp('prefix', input, forced, '--format', 'safetensors');
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await readCheckpoint(forced)).format, 'safetensors');
    const other = path.join(dir, 'weights.data');
    r = repmlp('prefix', input, other);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await readCheckpoint(other)).format, 'safetensors');
    // to a .pth: a torch zip, and a note that __metadata__ has no place there
    const pth = path.join(dir, 'out.pth');
    r = repmlp('prefix', input, pth);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await readCheckpoint(pth)).format, 'zip');
    assert.match(r.stderr, /note: safetensors __metadata__ \(3 entries\) has no place in a torch file/);
    // from a torch file to safetensors: {"format": "pt"}, as transformers writes it
    const fromTorch = path.join(dir, 'from-torch.safetensors');
    r = repmlp('prefix', pth, fromTorch, '--add', 'm.');
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual([...(((await readCheckpoint(fromTorch)).root as PyDict).attrs.get('__metadata__') as PyDict).map], [['format', 'pt']]);
    assert.deepEqual(leftovers(dir), []);
  } finally {
    cleanup();
  }
});

test('prefix safetensors round trip, read back by torch: same values and metadata', { skip: torchSkip() }, () => {
  const { dir, cleanup } = tempDir();
  try {
    const out = path.join(dir, 'out.safetensors');
    const r = repmlp('prefix', path.join(F, 'meta.safetensors'), out);
    assert.equal(r.code, 0, r.stderr);
    const a = JSON.parse(runPython([TOOL, 'describe-st', path.join(F, 'meta.safetensors')]));
    const b = JSON.parse(runPython([TOOL, 'describe-st', out]));
    assert.deepEqual(b.metadata, a.metadata);
    assert.deepEqual(b.names, a.names.map((k: string) => k.slice('module._orig_mod.'.length)));
    for (const k of a.names) assert.deepEqual(b.values[k.slice('module._orig_mod.'.length)], a.values[k], k);
  } finally {
    cleanup();
  }
});

test('convert keeps safetensors __metadata__ from a safetensors input', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const st = path.join(dir, 'train.safetensors');
    let r = repmlp('prefix', path.join(F, 'light.train.pth'), st, '--add', 'module.');
    assert.equal(r.code, 0, r.stderr);
    // give it metadata (written by our writer: safetensors holds only strings)
    const ck = (await readCheckpoint(st)).root as PyDict;
    await writeCheckpoint(st, new PyDict(ck.map, true), { format: 'safetensors', metadata: { format: 'pt', run: 'a' } });
    const out = path.join(dir, 'deploy.safetensors');
    r = repmlp('convert', st, out, '--arch', ARCH, '--json');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).metadataKept, 2);
    const meta = ((await readCheckpoint(out)).root as PyDict).attrs.get('__metadata__') as PyDict;
    assert.deepEqual([...meta.map], [['format', 'pt'], ['run', 'a']]);
  } finally {
    cleanup();
  }
});

test('convert accepts transposed and channels_last tensors; torch agrees bit for bit', { skip: torchSkip() }, () => {
  const { dir, cleanup } = tempDir();
  try {
    const train = path.join(F, 'transposed.train.pth');
    for (const ext of ['pth', 'safetensors']) {
      const out = path.join(dir, `deploy.${ext}`);
      const r = repmlp('convert', train, out, '--arch', ARCH);
      assert.equal(r.code, 0, r.stderr);
      const c = checkDeploy(train, out);
      assert.ok(c.keys_equal, `keys: missing ${c.missing}`);
      assert.ok(c.all_exact, `${ext}: max rel ${c.max_rel}`);
    }
    // a non-contiguous pass-through (the Linear head, [5, 32] transposed) is written as torch keeps it: a view
    const out = path.join(dir, 'deploy.pth');
    const strides = JSON.parse(runPython(['-c', `import torch, json; sd = torch.load(${JSON.stringify(out)}, weights_only=True); print(json.dumps(list(sd['linear.weight'].stride())))`]));
    assert.deepEqual(strides, [1, 5]);
  } finally {
    cleanup();
  }
});

test('convert of a flat-buffer checkpoint: a deploy file of the bytes it uses; prefix keeps the sharing', { skip: torchSkip() }, () => {
  const { dir, cleanup } = tempDir();
  try {
    const train = path.join(F, 'flatbuf.train.pth');
    const out = path.join(dir, 'deploy.pth');
    let r = repmlp('convert', train, out, '--arch', ARCH);
    assert.equal(r.code, 0, r.stderr);
    const c = checkDeploy(train, out);
    assert.ok(c.keys_equal && c.all_exact, `max rel ${c.max_rel}`);
    // before: the flat buffer went along whole (training tensors inside)
    assert.ok(c.ours_size <= 1.1 * c.release_size, `deploy ${c.ours_size} bytes vs the release-style ${c.release_size}`);
    // prefix keeps every tensor, and torch's sharing: one storage for all float tensors
    const p = path.join(dir, 'prefixed.pth');
    r = repmlp('prefix', train, p, '--add', 'm.');
    assert.equal(r.code, 0, r.stderr);
    const shared = runPython(['-c', `import torch; sd = torch.load(${JSON.stringify(p)}, weights_only=True); print(len({v.storage().data_ptr() for v in sd.values() if v.is_floating_point()}))`]).trim();
    assert.equal(shared, '1');
    assert.ok(statSync(p).size <= statSync(train).size * 1.05);
  } finally {
    cleanup();
  }
});

test('compactStorage: ranges kept whole, views re-based, values equal', () => {
  const s = new Storage('float32', 10, new Uint8Array(Float32Array.from([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]).buffer));
  const a = new Tensor(s, [2], [1], 1); // 1, 2
  const b = new Tensor(s, [2, 2], [1, 2], 6); // transposed 2x2 over 6..9
  const c = new Tensor(s, [2], [1], 2); // overlaps a: 2, 3
  const cut = compactStorage(s, [a, b, c])!;
  assert.equal(cut.storage.numel, 3 + 4);
  for (const t of [a, b, c]) assert.deepEqual([...cut.views.get(t)!.toFloat32()], [...t.toFloat32()]);
  assert.equal(cut.views.get(a)!.storage, cut.views.get(b)!.storage, 'still one storage');
  assert.equal(compactStorage(s, [new Tensor(s, [10])]), null, 'a storage used whole is kept');
});

test('fp16 and bf16: converted in float64, rounded once like torch\'s .to(); verify passes with the dtype\'s tolerance and says so', { skip: torchSkip() }, () => {
  const { dir, cleanup } = tempDir();
  try {
    for (const [name, dtype] of [['fp16', 'float16'], ['bf16', 'bfloat16']] as const) {
      const train = path.join(F, `${name}.train.pth`);
      const out = path.join(dir, `${name}.deploy.pth`);
      let r = repmlp('convert', train, out, '--arch', ARCH);
      assert.equal(r.code, 0, r.stderr);
      const c = checkDeploy(train, out);
      assert.ok(c.keys_equal && c.all_exact, `${name}: torch's float64 conversion cast to ${dtype} differs: max rel ${c.max_rel}`);
      r = repmlp('verify', train, '--arch', ARCH, '--batch', '4');
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, new RegExp(`because the weights are ${dtype}: the converted tensors are rounded once to ${dtype}`));
      assert.match(r.stdout, /equivalent within relative .* \((float16|bfloat16) weights\)/);
      r = repmlp('verify', train, '--arch', ARCH, '--batch', '2', '--json');
      const j = JSON.parse(r.stdout);
      assert.equal(j.toleranceFrom, 'dtype');
      assert.equal(j.dtype, dtype);
      assert.ok(j.tolerance > 1e-3 && j.tolerance < 0.1, `tolerance ${j.tolerance}`);
      assert.ok(j.ok);
      // an explicit --tolerance still rules
      r = repmlp('verify', train, '--arch', ARCH, '--batch', '2', '--tolerance', '1e-4');
      assert.equal(r.code, 1, 'fp16 rounding is above 1e-4');
    }
    const r = repmlp('verify', path.join(F, 'light.train.pth'), '--arch', ARCH, '--batch', '2', '--json');
    assert.equal(JSON.parse(r.stdout).tolerance, 1e-4, 'float32 keeps the default');
  } finally {
    cleanup();
  }
});

test('tiny input, huge output: an expand(2**30) view is refused before anything is written, naming the limit', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const input = path.join(F, 'expand.pth');
    assert.ok(statSync(input).size < 1024);
    const out = path.join(dir, 'x.safetensors');
    let r = repmlp('prefix', input, out, '--add', 'm.', '--format', 'safetensors');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^repmlp: error: .*x\.safetensors: tensor 'm\.x': view \[1073741824\] stride \[0\] names 4\.0 GiB of a storage of 4 bytes .* more than 16x \(the limit on an expanded view\)/);
    assert.ok(r.ms < 20_000, `${r.ms} ms`);
    assert.ok(!existsSync(out));
    // an explicit --max-output lifts the expansion limit but bounds the total
    r = repmlp('prefix', input, out, '--add', 'm.', '--format', 'safetensors', '--max-output', '1GiB');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /would hold 4\.0 GiB of tensor data, more than the output limit 1\.0 GiB \(--max-output 1GiB\); nothing written/);
    assert.ok(!existsSync(out));
    assert.deepEqual(leftovers(dir), []);
    // as a torch file the view stays a view: 4 bytes of storage
    const pth = path.join(dir, 'x.pth');
    r = repmlp('prefix', input, pth, '--add', 'm.');
    assert.equal(r.code, 0, r.stderr);
    assert.ok(statSync(pth).size < 2048);
    const t = ((await readCheckpoint(pth)).root as PyDict).map.get('m.x') as Tensor;
    assert.deepEqual([t.shape, t.stride, t.storage.numel], [[2 ** 30], [0], 1]);
    if (!torchSkip()) {
      const v = runPython(['-c', `import torch; x = torch.load(${JSON.stringify(pth)}, weights_only=True)['m.x']; print(x.shape[0], x.stride(), x.storage().size())`]).trim();
      assert.equal(v, '1073741824 (0,) 1');
    }
    // bad sizes are usage errors
    r = repmlp('prefix', input, pth, '--max-output', 'lots');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /--max-output lots: expected a size such as 8GiB/);
  } finally {
    cleanup();
  }
});

test('library: maxOutput is checked before the file is opened (zip and safetensors)', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const t = Tensor.fromArray(new Float32Array(1000), [1000]);
    const obj = new PyDict(new Map<PyKey, PyValue>([['w', t]]), true);
    for (const format of ['zip', 'safetensors'] as const) {
      const out = path.join(dir, `o.${format}`);
      await assert.rejects(writeCheckpoint(out, obj, { format, maxOutput: 3999 }), (e: unknown) => {
        assert.ok(e instanceof LayoutError);
        assert.match((e as Error).message, /would hold 3\.9 KiB of tensor data, more than the output limit 3\.9 KiB/);
        return true;
      });
      assert.ok(!existsSync(out));
      await writeCheckpoint(out, obj, { format, maxOutput: 4000 });
      assert.ok(readFileSync(out).length > 4000);
    }
  } finally {
    cleanup();
  }
});

test('prefix writes inert objects back as the file built them (Namespace, numpy, CfgNode, DictConfig, a pickled module): torch reads them equal', { skip: torchSkip() }, () => {
  const { dir, cleanup } = tempDir();
  try {
    const names = ['namespace', 'numpy', 'cfgnode', 'dictconfig', 'module_wrapped'];
    const pairs: [string, string][] = [];
    for (const name of names) {
      const input = path.join(FIXTURES, 'ckpt', 'inert', `${name}.pth`);
      const out = path.join(dir, `${name}.pth`);
      const r = repmlp('prefix', input, out, '--add', 'm.');
      assert.equal(r.code, 0, `${name}: ${r.stderr}`);
      pairs.push([input, out]);
    }
    // tools/make_inert_fixtures.py puts its stand-in classes (yacs, omegaconf, the user's
    // repmlp_resnet module) in sys.modules on import, so torch.load can build them.
    const report = JSON.parse(runPython(['-c', [
      'import json, sys, torch, make_inert_fixtures',
      `pairs = json.loads(${JSON.stringify(JSON.stringify(pairs))})`,
      'def norm(x):',
      '    if isinstance(x, torch.nn.Module):',
      "        return ('module', type(x).__qualname__, [(k, v.tolist()) for k, v in x.state_dict().items()])",
      '    if torch.is_tensor(x):',
      "        return ('tensor', x.tolist())",
      '    if isinstance(x, dict) and x and all(torch.is_tensor(v) for v in x.values()):',
      "        return 'state dict'",
      '    if isinstance(x, dict):',
      "        return (type(x).__qualname__, {k: norm(v) for k, v in x.items()}, norm(vars(x)) if getattr(x, '__dict__', None) else None)",
      '    if isinstance(x, (list, tuple)):',
      '        return [norm(v) for v in x]',
      '    if hasattr(x, "__dict__") and not isinstance(x, type):',
      '        return (type(x).__qualname__, norm(vars(x)))',
      '    return repr(x)',
      'out = {}',
      'for a, b in pairs:',
      '    x, y = torch.load(a), torch.load(b)',
      '    # the state dict prefix rewrote (a pickled module there becomes its state dict, with a note)',
      '    for k in list(x) if isinstance(x, dict) else []:',
      "        if isinstance(y.get(k), dict) and y[k] and all(torch.is_tensor(v) for v in y[k].values()): x[k] = y[k] = 'state dict'",
      '    out[a] = norm(x) == norm(y) or [repr(norm(x))[:300], repr(norm(y))[:300]]',
      'print(json.dumps(out))',
    ].join('\n')]));
    for (const [input] of pairs) assert.equal(report[input], true, `${path.basename(input)}: ${JSON.stringify(report[input])}`);
  } finally {
    cleanup();
  }
});

test('safetensors from views of one large storage read lazily: each view its own range, values exact', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const n = 1 << 20; // 4 MiB of float32: views of >= 1 MiB are copied from the file
    const data = new Float32Array(n).map((_, i) => i * 0.5);
    const s = new Storage('float32', n, new Uint8Array(data.buffer));
    const a = new Tensor(s, [n / 2], [1], 0);
    const b = new Tensor(s, [n / 4, 2], [2, 1], n / 2); // contiguous, offset
    const c = new Tensor(s, [2, n / 8], [1, 2], n / 4); // transposed view
    const pth = path.join(dir, 'shared.pth');
    await writeCheckpoint(pth, new PyDict(new Map<PyKey, PyValue>([['a', a], ['b', b], ['c', c]]), true));
    const lazy = (await readCheckpoint(pth)).root as PyDict;
    assert.equal((lazy.map.get('a') as Tensor).storage, (lazy.map.get('b') as Tensor).storage, 'shared as written');
    const st = path.join(dir, 'shared.safetensors');
    await writeCheckpoint(st, lazy, { format: 'safetensors' });
    assert.ok(!(lazy.map.get('a') as Tensor).storage.loaded, 'the shared storage was never loaded whole');
    const back = (await readCheckpoint(st)).root as PyDict;
    for (const [k, t] of [['a', a], ['b', b], ['c', c]] as const) assert.deepEqual((back.map.get(k) as Tensor).toFloat32(), t.toFloat32(), k);
  } finally {
    cleanup();
  }
});

test('contiguousChunks: a view in bounded pieces equals its contiguous bytes; an allowed expanded view is written in pieces', async () => {
  const s = new Storage('float32', 15, new Uint8Array(Float32Array.from({ length: 15 }, (_, i) => i).buffer));
  const t = new Tensor(s, [5, 3], [1, 5], 0); // transposed 3x5
  for (const chunk of [4, 12, 20, 1000]) {
    const parts: Uint8Array[] = [];
    for (const p of t.contiguousChunks(chunk)) parts.push(Uint8Array.from(p)); // copied as they come: the buffer is reused
    assert.deepEqual(Buffer.concat(parts), Buffer.from(t.contiguousBytes()), `chunk ${chunk}`);
  }
  const { dir, cleanup } = tempDir();
  try {
    const one = new Storage('float32', 1, new Uint8Array(Float32Array.of(1.5).buffer));
    const big = new Tensor(one, [1 << 22], [0], 0); // 16 MiB as safetensors
    const out = path.join(dir, 'big.safetensors');
    const obj = new PyDict(new Map<PyKey, PyValue>([['x', big]]), true);
    await assert.rejects(writeCheckpoint(out, obj, { format: 'safetensors' }), /more than 16x \(the limit on an expanded view\)/);
    await writeCheckpoint(out, obj, { format: 'safetensors', maxExpansion: Infinity });
    const back = ((await readCheckpoint(out)).root as PyDict).map.get('x') as Tensor;
    const v = back.toFloat32();
    assert.equal(v.length, 1 << 22);
    assert.ok(v.every((x) => x === 1.5));
  } finally {
    cleanup();
  }
});

test('prefix keeps a bare storage (torch.save of t.storage()) as torch wrote it: one record, shared with its tensors', { skip: torchSkip() }, () => {
  const { dir, cleanup } = tempDir();
  try {
    const input = path.join(dir, 'bare.pth');
    const out = path.join(dir, 'out.pth');
    runPython(['-c', `import torch; t = torch.arange(6.0); torch.save({'state_dict': {'w': t, 'v': t[2:4]}, 's': t.storage()}, ${JSON.stringify(input)})`]);
    const r = repmlp('prefix', input, out, '--add', 'a.');
    assert.equal(r.code, 0, r.stderr);
    const got = runPython(['-c', [
      'import torch',
      `d = torch.load(${JSON.stringify(out)}, weights_only=True)`,
      "s, sd = d['s'], d['state_dict']",
      "print(type(s).__name__, list(s), sd['a.w'].storage().data_ptr() == s.data_ptr(), sd['a.v'].tolist())",
    ].join('\n')]).trim();
    assert.equal(got, 'TypedStorage [0.0, 1.0, 2.0, 3.0, 4.0, 5.0] True [2.0, 3.0]');
  } finally {
    cleanup();
  }
});
