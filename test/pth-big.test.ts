/**
 * Files over 4 GB (zip64): inspected and prefix-rewritten with bounded memory, read back
 * by torch. Slow and disk-hungry (~18 GB in the temp folder), so gated:
 *   REPMLP_BIG_TESTS=1 node --test dist/test/pth-big.test.js
 * Prints the measured times and peak RSS.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync, statSync, statfsSync } from 'node:fs';
import * as path from 'node:path';
import { readCheckpoint, writeCheckpoint } from '../src/pth/index.js';
import { PyDict, type PyKey, type PyValue } from '../src/pth/pyobj.js';
import { Storage, Tensor } from '../src/tensor.js';
import { ROOT, hasTorch, runPython, tempDir } from './helpers/torch.js';

const MAIN = path.join(ROOT, 'dist/src/cli/main.js');
const GB = 2 ** 30;
const STORAGES = 17;
const STORAGE_BYTES = 256 << 20; // 17 x 256 MB = 4.25 GiB > 4 GiB

function skipReason(): string | false {
  if (process.env.REPMLP_BIG_TESTS !== '1') return 'set REPMLP_BIG_TESTS=1 to run the > 4 GB tests (~18 GB of temp disk, a few minutes)';
  if (!existsSync('/usr/bin/time')) return '/usr/bin/time is needed to measure peak memory';
  const fsStat = statfsSync(process.env.TMPDIR ?? '/tmp');
  if (fsStat.bavail * fsStat.bsize < 20 * GB) return 'less than 20 GB free in the temp folder';
  return false;
}

/** Runs the CLI under /usr/bin/time; returns wall seconds and peak RSS in bytes. */
function measured(...args: string[]): { stdout: string; stderr: string; seconds: number; rss: number } {
  const r = spawnSync('/usr/bin/time', ['-f', 'TIME %e %M', process.execPath, MAIN, ...args], { encoding: 'utf8', maxBuffer: 1 << 26 });
  const m = /TIME ([\d.]+) (\d+)\s*$/.exec(r.stderr);
  assert.ok(m, r.stderr);
  assert.equal(r.status, 0, r.stderr);
  return { stdout: r.stdout, stderr: r.stderr.slice(0, m.index), seconds: Number(m[1]), rss: Number(m[2]) * 1024 };
}

function fill(i: number): () => Uint8Array {
  return () => new Uint8Array(STORAGE_BYTES).fill(i + 1);
}

test('a > 4 GB checkpoint (zip64) is inspected and prefix-rewritten in bounded memory', { skip: skipReason(), timeout: 1_800_000 }, async () => {
  const { dir, cleanup } = tempDir('repmlp-big-');
  try {
    const map = new Map<PyKey, PyValue>();
    for (let i = 0; i < STORAGES; i++) map.set(`module.layer${i}.weight`, new Tensor(new Storage('float32', STORAGE_BYTES / 4, fill(i)), [STORAGE_BYTES / 4]));
    map.set('module.tail.bias', Tensor.fromArray(new Float32Array([1, 2, 3]), [3])); // its record lies past 4 GB
    const input = path.join(dir, 'big.pth');
    let t = performance.now();
    await writeCheckpoint(input, new PyDict(new Map<PyKey, PyValue>([['state_dict', new PyDict(map, true)], ['epoch', 7n]])));
    const writeSeconds = (performance.now() - t) / 1000;
    const size = statSync(input).size;
    assert.ok(size > 4 * GB);

    const ins = measured('inspect', input, '--json');
    const j = JSON.parse(ins.stdout);
    assert.equal(j.tensors, STORAGES + 1);
    assert.deepEqual(j.wrapper, ['state_dict']);
    assert.equal(j.prefix, 'module.');
    assert.ok(ins.rss < 200 << 20, `inspect peak RSS ${ins.rss}`);

    const out = path.join(dir, 'out.pth');
    const pre = measured('prefix', input, out);
    assert.ok(pre.rss < GB, `prefix peak RSS ${pre.rss}`);
    rmSync(input);

    // read back lazily: names, the zip64 offsets, a few values
    const back = (await readCheckpoint(out)).root as PyDict;
    const sd = back.map.get('state_dict') as PyDict;
    assert.deepEqual([...sd.map.keys()].slice(-2), [`layer${STORAGES - 1}.weight`, 'tail.bias']);
    assert.deepEqual([...(sd.map.get('tail.bias') as Tensor).toFloat32()], [1, 2, 3]);
    assert.equal((sd.map.get(`layer${STORAGES - 1}.weight`) as Tensor).contiguousBytes()[12345], STORAGES);
    const zipInfo = JSON.parse(runPython(['-c', `import zipfile, json; z = zipfile.ZipFile(${JSON.stringify(out)}); print(json.dumps([[i.filename, i.header_offset, i.file_size] for i in z.infolist()]))`])) as [string, number, number][];
    assert.ok(zipInfo.at(-2)![1] > 2 ** 32, 'the last records lie past 4 GB');
    console.log(`big: ${(size / GB).toFixed(2)} GiB written in ${writeSeconds.toFixed(1)} s; inspect ${ins.seconds} s, peak ${(ins.rss / 2 ** 20).toFixed(0)} MB; prefix ${pre.seconds} s, peak ${(pre.rss / 2 ** 20).toFixed(0)} MB`);

    if (hasTorch()) {
      t = performance.now();
      const got = runPython(['-c', `import torch; d = torch.load(${JSON.stringify(out)}, weights_only=True)['state_dict']; v = list(d.values()); print(len(d), [int(t.view(torch.uint8)[12345]) for t in v[-3:-1]], v[-1].tolist())`], { timeoutMs: 1_200_000 });
      assert.equal(got.trim(), `${STORAGES + 1} [${STORAGES - 1}, ${STORAGES}] [1.0, 2.0, 3.0]`);
      console.log(`big: torch.load(weights_only=True) of our ${(size / GB).toFixed(2)} GiB zip64 file: ${((performance.now() - t) / 1000).toFixed(1)} s`);
    }
  } finally {
    cleanup();
  }
});

test('a > 4 GB checkpoint written by torch itself is inspected and rewritten', { skip: skipReason() || (!hasTorch() && 'torch not found'), timeout: 1_800_000 }, async () => {
  const { dir, cleanup } = tempDir('repmlp-big-');
  try {
    const input = path.join(dir, 'torch_big.pth');
    let t = performance.now();
    runPython(['-c', `import torch, collections
sd = collections.OrderedDict(('module.l%d.weight' % i, torch.full((${STORAGE_BYTES / 4},), float(i))) for i in range(${STORAGES}))
sd['module.tail.bias'] = torch.tensor([1., 2., 3.])
torch.save({'state_dict': sd, 'epoch': 7}, ${JSON.stringify(input)})`], { timeoutMs: 1_200_000 });
    console.log(`big: torch.save of ${(statSync(input).size / GB).toFixed(2)} GiB: ${((performance.now() - t) / 1000).toFixed(1)} s`);
    const ins = measured('inspect', input, '--json');
    assert.equal(JSON.parse(ins.stdout).tensors, STORAGES + 1);
    const out = path.join(dir, 'out.pth');
    t = performance.now();
    const pre = measured('prefix', input, out);
    assert.ok(pre.rss < GB, `prefix peak RSS ${pre.rss}`);
    const sd = ((await readCheckpoint(out)).root as PyDict).map.get('state_dict') as PyDict;
    assert.deepEqual([...(sd.map.get('tail.bias') as Tensor).toFloat32()], [1, 2, 3]);
    assert.equal((sd.map.get(`l${STORAGES - 1}.weight`) as Tensor).toFloat32()[999], STORAGES - 1);
    console.log(`big: torch-made file: inspect ${ins.seconds} s, peak ${(ins.rss / 2 ** 20).toFixed(0)} MB; prefix ${pre.seconds} s, peak ${(pre.rss / 2 ** 20).toFixed(0)} MB`);
  } finally {
    cleanup();
  }
});
