/** Every fixture torch wrote is read and compared, value by value, with what torch recorded. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { readFileSync } from 'node:fs';
import { readCheckpoint } from '../src/pth/index.js';
import { Tensor } from '../src/tensor.js';
import { PyDict } from '../src/pth/pyobj.js';
import { CASES, CKPT, describe, fixtureJson, stripRepr } from './pth-describe.js';

for (const name of CASES) {
  for (const [format, file] of [['zip', `${name}.pth`], ['legacy', `${name}.legacy.pth`]] as const) {
    test(`read ${file} (${format}) equals what torch recorded`, async () => {
      const want = fixtureJson(name);
      const ck = await readCheckpoint(path.join(CKPT, file));
      assert.equal(ck.format, format);
      assert.deepEqual(describe(ck.root), stripRepr(want.object));
      // the same from bytes in memory
      const ck2 = await readCheckpoint(readFileSync(path.join(CKPT, file)));
      assert.deepEqual(describe(ck2.root), stripRepr(want.object));
    });
  }
}

test('cuda:0 locations are read (and ignored for loading)', async () => {
  for (const file of ['cuda.pth', 'cuda.legacy.pth']) {
    const ck = await readCheckpoint(path.join(CKPT, file));
    const t = (ck.root as PyDict).map.get('conv.weight') as Tensor;
    assert.equal(t.storage.device, 'cuda:0', file);
  }
});

test('read small.safetensors equals what was written', async () => {
  const want = JSON.parse(readFileSync(path.join(CKPT, 'small.safetensors.json'), 'utf8'));
  const ck = await readCheckpoint(path.join(CKPT, 'small.safetensors'));
  assert.equal(ck.format, 'safetensors');
  const root = ck.root as PyDict;
  const { safetensors_metadata: meta, ...obj } = want.object;
  assert.deepEqual(describe(new PyDict(root.map, true)), obj);
  assert.deepEqual(Object.fromEntries((root.attrs.get('__metadata__') as PyDict).map), meta);
});

test('legacy storage views (torch < 1.6 wrote (view_key, offset, size) as the 6th pid element)', async () => {
  const { PickleAsm, legacyWith } = await import('./hostile-build.js');
  const { WOP } = await import('../src/pth/pickler.js');
  // _rebuild_tensor_v2(pid('storage', FloatStorage, 'root', 'cpu', 6, ('view', 2, 3)), 0, (3,), (1,), False, OrderedDict())
  const a = new PickleAsm();
  a.global('torch._utils', '_rebuild_tensor_v2').op(WOP.MARK);
  a.tuple((b) => b.str('storage'), (b) => b.global('torch', 'FloatStorage'), (b) => b.str('root'), (b) => b.str('cpu'), (b) => b.int(6),
    (b) => b.str('view').int(2).int(3).op(WOP.TUPLE3)).op(WOP.BINPERSID);
  a.int(0).int(3).op(WOP.TUPLE1).int(1).op(WOP.TUPLE1).op(WOP.NEWFALSE).global('collections', 'OrderedDict').op(WOP.EMPTY_TUPLE, WOP.REDUCE, WOP.TUPLE, WOP.REDUCE);
  const data = new Uint8Array(new Float32Array([0, 1, 2, 3, 4, 5]).buffer);
  const ck = await readCheckpoint(legacyWith(a.stop(), [['root', 6n, data]]));
  const t = ck.root as Tensor;
  assert.deepEqual([...t.toFloat32()], [2, 3, 4]);
  assert.equal(t.storage.numel, 3);
});

test('torch >= 2 tensors with Python state: _rebuild_from_type_v2(func, torch.Tensor, args, state)', async () => {
  const { PickleAsm, zipWith } = await import('./hostile-build.js');
  const { WOP } = await import('../src/pth/pickler.js');
  const a = new PickleAsm();
  a.global('torch._tensor', '_rebuild_from_type_v2').op(WOP.MARK).global('torch._utils', '_rebuild_tensor_v2').global('torch', 'Tensor');
  a.tuple((b) => b.storage('FloatStorage', '0', 2), (b) => b.int(0), (b) => b.int(2).op(WOP.TUPLE1), (b) => b.int(1).op(WOP.TUPLE1), (b) => b.op(WOP.NEWFALSE),
    (b) => b.global('collections', 'OrderedDict').op(WOP.EMPTY_TUPLE, WOP.REDUCE));
  a.op(WOP.EMPTY_DICT).str('foo').int(1).op(WOP.SETITEM, WOP.TUPLE, WOP.REDUCE);
  const ck = await readCheckpoint(await zipWith(a.stop(), { '0': new Uint8Array(new Float32Array([5, 6]).buffer) }));
  assert.deepEqual([...(ck.root as Tensor).toFloat32()], [5, 6]);
});
