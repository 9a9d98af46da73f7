/**
 * Large storages are copied from their source file through the writer's reused buffers
 * (src/io/copy.ts) instead of being loaded: the bytes, the CRC-32s (reused from a zip
 * source, computed on the way for legacy and safetensors sources, in the local header and
 * the central directory alike) and the failure paths.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { crc32 } from 'node:zlib';
import { RegionCopier } from '../src/io/copy.js';
import { FileSource, SourceError } from '../src/pth/source.js';
import { readCheckpoint, writeCheckpoint } from '../src/pth/index.js';
import { PyDict, type PyKey, type PyValue } from '../src/pth/pyobj.js';
import { ZipReader } from '../src/pth/zip.js';
import { Tensor } from '../src/tensor.js';
import { normalBatch } from '../src/util/random.js';
import { runPython, tempDir, torchSkip } from './helpers/torch.js';

function bytesOf(n: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (i * 131 + seed * 17 + (i >> 9)) & 0xff);
}

test('RegionCopier: head, then the region, through a ring smaller than the region; CRC on the way', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const src = path.join(dir, 'src.bin');
    const data = bytesOf(1000, 1);
    fs.writeFileSync(src, data);
    for (const [chunk, depth] of [[64, 2], [7, 3], [1000, 1], [4096, 3]] as const) {
      const out = path.join(dir, `out-${chunk}-${depth}.bin`);
      const fh = await fs.promises.open(out, 'w');
      const crc = await new RegionCopier({ chunk, depth }).copy({ source: new FileSource(src), offset: 37, length: 900 }, fh, { head: Uint8Array.of(1, 2, 3), crc: true });
      await fh.close();
      const got = fs.readFileSync(out);
      assert.deepEqual([...got.subarray(0, 3)], [1, 2, 3]);
      assert.ok(Buffer.from(data.subarray(37, 937)).equals(got.subarray(3)), `chunk ${chunk} depth ${depth}: bytes differ`);
      assert.equal(crc, crc32(data.subarray(37, 937)) >>> 0);
    }
  } finally {
    cleanup();
  }
});

test('RegionCopier: a source that shrank is a SourceError naming the file and offset', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const src = path.join(dir, 'src.bin');
    fs.writeFileSync(src, bytesOf(1000, 2));
    const source = new FileSource(src);
    fs.truncateSync(src, 500);
    const fh = await fs.promises.open(path.join(dir, 'out.bin'), 'w');
    try {
      await assert.rejects(new RegionCopier({ chunk: 64, depth: 3 }).copy({ source, offset: 0, length: 1000 }, fh), (e: Error) => {
        assert.ok(e instanceof SourceError);
        assert.match(e.message, /src\.bin: file shrank while reading \(offset 500\)/);
        return true;
      });
    } finally {
      await fh.close();
    }
  } finally {
    cleanup();
  }
});

/** Every record's CRC-32, as the central directory and the local header record it, equals its bytes'. */
function checkZipCrcs(file: string): number {
  const src = new FileSource(file);
  const zip = new ZipReader(src);
  for (const name of zip.names) {
    const e = zip.entry(name);
    const want = crc32(zip.read(name)) >>> 0;
    const head = src.read(e.localHeaderOffset, 30);
    const local = new DataView(head.buffer, head.byteOffset, head.byteLength).getUint32(14, true);
    assert.equal(e.crc32, want, `${name}: central directory CRC`);
    assert.equal(local, want, `${name}: local header CRC`);
  }
  return zip.names.length;
}

/** A state dict with storages above and below the copy threshold (1 MB). */
function mixedDict(): PyDict {
  const map = new Map<PyKey, PyValue>();
  map.set('big.weight', Tensor.fromArray(normalBatch(3 * 262144 + 5, 1), [3 * 262144 + 5])); // ~3 MB, odd size
  map.set('small.bias', Tensor.fromArray(normalBatch(10, 2), [10]));
  map.set('big2.weight', Tensor.fromArray(normalBatch(600 * 1024, 3), [600, 1024])); // 2.4 MB
  map.set('n', Tensor.scalarInt64(7n));
  return new PyDict(map, true);
}

function sameTensors(a: PyDict, b: PyDict): void {
  assert.deepEqual([...b.map.keys()], [...a.map.keys()]);
  for (const [k, v] of a.map) {
    const w = b.map.get(k) as Tensor;
    assert.deepEqual(w.shape, (v as Tensor).shape, `${String(k)} shape`);
    assert.ok(Buffer.from((v as Tensor).contiguousBytes()).equals(w.contiguousBytes()), `${String(k)} bytes`);
  }
}

test('zip -> zip, safetensors -> zip and zip -> safetensors: large storages copied, bytes and CRCs right', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const orig = mixedDict();
    const a = path.join(dir, 'a.pth');
    await writeCheckpoint(a, orig); // from memory
    const ra = (await readCheckpoint(a)).root as PyDict;
    const big = (ra.map.get('big.weight') as Tensor).storage;
    assert.ok(big.region(), 'a large storage read from a file has a region');
    assert.equal((ra.map.get('small.bias') as Tensor).storage.streamable() instanceof Uint8Array, true, 'small storages are read, not copied');

    const b = path.join(dir, 'b.pth');
    await writeCheckpoint(b, ra); // zip source: CRCs reused
    assert.equal(big.loaded, false, 'the copy did not load the storage');
    const st = path.join(dir, 'c.safetensors');
    await writeCheckpoint(st, ra, { format: 'safetensors' });
    const c = path.join(dir, 'c.pth');
    await writeCheckpoint(c, (await readCheckpoint(st)).root); // safetensors source: CRCs computed on the way

    for (const f of [a, b, c]) {
      assert.equal(checkZipCrcs(f), 7, f);
      sameTensors(orig, (await readCheckpoint(f)).root as PyDict);
    }
    sameTensors(orig, (await readCheckpoint(st)).root as PyDict);
  } finally {
    cleanup();
  }
});

test('a storage copied from a file that shrank since it was read: SourceError, old output kept, no temp file', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const a = path.join(dir, 'a.pth');
    await writeCheckpoint(a, mixedDict());
    const out = path.join(dir, 'out.pth');
    fs.writeFileSync(out, 'old output');
    const ck = await readCheckpoint(a);
    fs.truncateSync(a, 2 << 20); // inside the first big record
    await assert.rejects(writeCheckpoint(out, ck.root), (e: Error) => {
      assert.ok(e instanceof SourceError, `${e.name}: ${e.message}`);
      assert.match(e.message, /a\.pth: file shrank while reading \(offset \d+\)/);
      return true;
    });
    assert.equal(fs.readFileSync(out, 'utf8'), 'old output');
    assert.deepEqual(fs.readdirSync(dir).sort(), ['a.pth', 'out.pth']);
  } finally {
    cleanup();
  }
});

test('interop: a legacy torch file with MB-sized storages -> zip: torch.load equal, zipfile CRCs good', { skip: torchSkip() }, async () => {
  const { dir, cleanup } = tempDir();
  try {
    const legacy = path.join(dir, 'legacy.pth');
    runPython(['-c', [
      'import torch, sys',
      'torch.manual_seed(0)',
      "sd = {'fc.weight': torch.randn(1200, 700), 'fc.bias': torch.randn(1200), 'emb': torch.randn(3, 300000).t()}",
      'torch.save(sd, sys.argv[1], _use_new_zipfile_serialization=False)',
    ].join('\n'), legacy]);
    const out = path.join(dir, 'out.pth');
    await writeCheckpoint(out, (await readCheckpoint(legacy)).root);
    const verdict = runPython(['-c', [
      'import sys, torch, zipfile',
      'a = torch.load(sys.argv[1]); b = torch.load(sys.argv[2], weights_only=True)',
      'assert list(a) == list(b), (list(a), list(b))',
      "assert all(torch.equal(a[k], b[k]) and a[k].stride() == b[k].stride() for k in a), 'values or strides differ'",
      "assert zipfile.ZipFile(sys.argv[2]).testzip() is None, 'bad CRC'",
      "print('ok')",
    ].join('\n'), legacy, out]);
    assert.equal(verdict.trim(), 'ok');
    assert.equal(checkZipCrcs(out), 6);
  } finally {
    cleanup();
  }
});

test('replacing an output: the new file in place and nothing else; a failed check leaves the old output', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const out = path.join(dir, 'out.pth');
    const dict = mixedDict();
    fs.writeFileSync(out, 'old output');
    let checked = '';
    await writeCheckpoint(out, dict, { verify: async (tmp) => { checked = fs.readFileSync(tmp).subarray(0, 2).toString(); } });
    assert.equal(checked, 'PK', 'verify reads the written file before the rename');
    assert.deepEqual(fs.readdirSync(dir), ['out.pth']);
    // OUT=IN with the old file's storages still to be copied from it: they come from the old inode.
    const ck = await readCheckpoint(out);
    await writeCheckpoint(out, ck.root);
    sameTensors(dict, (await readCheckpoint(out)).root as PyDict);
    const before = fs.readFileSync(out);
    await assert.rejects(writeCheckpoint(out, mixedDict(), { verify: async () => { throw new Error('does not read back'); } }), /out\.pth: cannot write: does not read back/);
    assert.ok(fs.readFileSync(out).equals(before), 'the old output is untouched');
    assert.deepEqual(fs.readdirSync(dir), ['out.pth'], 'no temp file left');
  } finally {
    cleanup();
  }
});

test('Storage.prefetch: bytes read ahead are handed over once; an early reader or a failed read falls back to the usual read', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const a = path.join(dir, 'a.pth');
    const orig = mixedDict();
    await writeCheckpoint(a, orig);
    const want = (orig.map.get('big.weight') as Tensor).contiguousBytes();
    const big = () => ((readCheckpoint(a) as Promise<{ root: PyValue }>).then((c) => ((c.root as PyDict).map.get('big.weight') as Tensor).storage));

    const s1 = await big();
    await s1.prefetch();
    assert.ok(Buffer.from(s1.bytesUncached()).equals(want), 'prefetched bytes');
    assert.equal(s1.loaded, false, 'bytesUncached does not keep them');

    const s2 = await big();
    const pending = s2.prefetch();
    assert.ok(Buffer.from(s2.bytes()).equals(want), 'a reader before the read-ahead lands reads as usual');
    await pending;
    assert.equal(s2.loaded, true);

    const s3 = await big();
    fs.truncateSync(a, 1 << 20);
    await s3.prefetch(); // fails quietly
    assert.throws(() => s3.bytesUncached(), /a\.pth: file shrank while reading/);
  } finally {
    cleanup();
  }
});

test('crc32: the table fallback (Node < 20.15) gives zlib\'s values, incrementally too', async () => {
  const { crc32Table } = await import('../src/util/crc32.js');
  for (const n of [0, 1, 7, 64, 1000, 65537]) {
    const b = bytesOf(n, n);
    assert.equal(crc32Table(b), crc32(b) >>> 0, `${n} bytes`);
    const cut = n >> 1;
    assert.equal(crc32Table(b.subarray(cut), crc32Table(b.subarray(0, cut))), crc32(b) >>> 0, `${n} bytes in two parts`);
  }
  assert.equal(crc32Table(new TextEncoder().encode('123456789')), 0xcbf43926); // the standard check value
});
