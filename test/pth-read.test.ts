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
