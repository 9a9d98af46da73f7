/**
 * Property tests (fast-check): any Python value the toolkit can hold pickles and unpickles
 * to an equal value; zip and safetensors files round-trip; prefix strip/add are inverse,
 * leading-only, order-keeping, and rewrite `_metadata` keys.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import fc from 'fast-check';
import { pickleCheckpoint } from '../src/pth/pickler.js';
import { unpickle } from '../src/pth/pickle.js';
import { readCheckpoint, writeCheckpoint } from '../src/pth/index.js';
import { PyDict, PyTuple, type PyKey, type PyValue } from '../src/pth/pyobj.js';
import { addPrefix, detectPrefix, stripPrefix, findStateDict } from '../src/pth/statedict.js';
import { Storage, Tensor } from '../src/tensor.js';
import { DTYPES, type DType } from '../src/dtype.js';
import { describe, CKPT } from './pth-describe.js';
import { tempDir } from './helpers/torch.js';

const dtypes = [...DTYPES.keys()] as DType[];

/** A tensor: random dtype and shape, maybe a view (offset, transposed) of a bigger storage. */
const tensorArb = fc
  .record({
    dtype: fc.constantFrom(...dtypes),
    shape: fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 3 }),
    extra: fc.integer({ min: 0, max: 3 }),
    transpose: fc.boolean(),
    seed: fc.integer(),
    param: fc.boolean(),
    grad: fc.boolean(),
  })
  .map(({ dtype, shape, extra, transpose, seed, param, grad }) => {
    const item = DTYPES.get(dtype)!.itemSize;
    const numel = shape.reduce((a, b) => a * b, 1);
    const bytes = Uint8Array.from({ length: (numel + extra) * item }, (_, i) => (seed * 31 + i * 7) & 0xff);
    const storage = new Storage(dtype, numel + extra, bytes);
    let t = new Tensor(storage, shape, undefined, extra);
    if (transpose && shape.length >= 2) {
      const s = [...t.stride];
      const sh = [...shape];
      [s[0], s[1]] = [s[1]!, s[0]!];
      [sh[0], sh[1]] = [sh[1]!, sh[0]!];
      t = new Tensor(storage, sh, s, extra);
    }
    t.isParameter = param;
    t.requiresGrad = grad;
    return t;
  });

const keyArb: fc.Arbitrary<PyKey> = fc.oneof(
  fc.string({ unit: 'grapheme', maxLength: 8 }),
  fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }),
  fc.constantFrom('__proto__', 'constructor', 'toString', ''),
);

const valueArb: fc.Arbitrary<PyValue> = fc.letrec<{ value: PyValue }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constant(null),
    fc.boolean(),
    fc.bigInt({ min: -(2n ** 200n), max: 2n ** 200n }),
    fc.constantFrom(0n, 255n, 256n, 65535n, 65536n, 2n ** 31n - 1n, 2n ** 31n, -(2n ** 31n), -(2n ** 31n) - 1n),
    fc.double(),
    fc.string({ unit: 'grapheme', maxLength: 20 }),
    tensorArb,
    fc.array(tie('value'), { maxLength: 4 }),
    fc.array(tie('value'), { maxLength: 5 }).map((items) => new PyTuple(items)),
    fc
      .tuple(fc.uniqueArray(fc.tuple(keyArb, tie('value')), { maxLength: 4, selector: ([k]) => (typeof k === 'bigint' ? `i${k}` : `s${String(k)}`) }), fc.boolean())
      .map(([entries, ordered]) => new PyDict(new Map(entries), ordered)),
  ),
})).value;

function roundTrip(v: PyValue): PyValue {
  const { data, storages } = pickleCheckpoint(v);
  return unpickle(data, {
    persistentLoad: (pid) => {
      const key = (pid as PyTuple).items[2] as string;
      return storages[Number(key)]!;
    },
  }).value;
}

test('property: pickle -> unpickle gives an equal value (ints, floats, strings, containers, tensors, views)', () => {
  fc.assert(
    fc.property(valueArb, (v) => {
      assert.deepEqual(describe(roundTrip(v)), describe(v));
    }),
    { numRuns: 300 },
  );
});

test('property: shared storages stay shared, distinct ones distinct', () => {
  fc.assert(
    fc.property(tensorArb, fc.integer({ min: 1, max: 4 }), (t, n) => {
      const views = Array.from({ length: n }, () => new Tensor(t.storage, t.shape, t.stride, t.offset));
      const back = roundTrip([...views, t]) as Tensor[];
      assert.ok(back.every((x) => x.storage === back[0]!.storage));
      const { storages } = pickleCheckpoint([...views, t]);
      assert.equal(storages.length, 1);
    }),
    { numRuns: 50 },
  );
});

test('property: zip and safetensors files round-trip through disk', async () => {
  const { dir, cleanup } = tempDir();
  try {
    let i = 0;
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(fc.tuple(fc.string({ unit: 'grapheme', minLength: 1, maxLength: 12 }), tensorArb), { maxLength: 6, selector: ([k]) => k }), async (entries) => {
        const dict = new PyDict(new Map<PyKey, PyValue>(entries), true);
        const zip = path.join(dir, `r${i}.pth`);
        const st = path.join(dir, `r${i++}.safetensors`);
        await writeCheckpoint(zip, dict);
        assert.deepEqual(describe((await readCheckpoint(zip)).root), describe(dict));
        await writeCheckpoint(st, dict, { format: 'safetensors' });
        const back = (await readCheckpoint(st)).root as PyDict;
        assert.deepEqual([...back.map.keys()].sort(), [...dict.map.keys()].sort());
        for (const [k, t] of entries) {
          const u = back.map.get(k) as Tensor;
          assert.deepEqual(u.shape, t.shape);
          assert.equal(u.dtype, t.dtype);
          assert.deepEqual(u.contiguousBytes(), t.contiguousBytes());
        }
      }),
      { numRuns: 40, endOnFailure: true },
    );
  } finally {
    cleanup();
  }
});

// ---------------------------------------------------------------------------------------
// prefixes

const nameArb = fc.array(fc.constantFrom('conv', 'bn', 'module', 'modulex', 'stage1', '0', 'weight', 'module.'), { minLength: 1, maxLength: 4 }).map((p) => p.join('.'));

function sd(keys: string[], meta: string[] = []): PyDict {
  const t = Tensor.fromArray(new Float32Array([1]), [1]);
  const d = new PyDict(new Map(keys.map((k) => [k, t])), true);
  if (meta.length) d.attrs.set('_metadata', new PyDict(new Map(meta.map((m, i) => [m, new PyDict(new Map([['version', BigInt(i)]]))])), true));
  return d;
}
const keysOf = (d: PyDict) => [...d.map.keys()];
const metaOf = (d: PyDict) => [...(d.metadata?.map.keys() ?? [])];

test('property: stripPrefix(addPrefix(d, p), p) is d: keys, order, metadata', () => {
  fc.assert(
    fc.property(fc.uniqueArray(nameArb, { minLength: 1, maxLength: 8 }), fc.uniqueArray(nameArb, { maxLength: 4 }), fc.constantFrom('module.', 'backbone.', 'a.b.'), (keys, meta, p) => {
      const d = sd(keys, ['', ...meta]);
      const added = addPrefix(d, p);
      assert.ok(keysOf(added).every((k) => typeof k === 'string' && k.startsWith(p)));
      assert.equal(detectPrefix(added), p === 'module.' ? 'module.' : detectPrefix(added));
      const back = stripPrefix(added, p);
      assert.deepEqual(keysOf(back), keys);
      assert.deepEqual(metaOf(back), ['', ...meta]);
      assert.deepEqual(keysOf(d), keys, 'the input is not modified');
    }),
    { numRuns: 300 },
  );
});

test('stripPrefix: leading only, never inside a name; order kept; values untouched', () => {
  const d = sd(['module.conv.weight', 'encoder.module.fc', 'modulex.w', 'module.module.x']);
  const s = stripPrefix(d, 'module.');
  assert.deepEqual(keysOf(s), ['conv.weight', 'encoder.module.fc', 'modulex.w', 'module.x']);
  assert.equal(s.map.get('conv.weight'), d.map.get('module.conv.weight'));
});

test('stripPrefix: DDP _metadata (wrapper "" and "module") becomes the plain model\'s', async () => {
  const ck = await readCheckpoint(path.join(CKPT, 'ddp.pth'));
  const plain = await readCheckpoint(path.join(CKPT, 'state_dict.pth'));
  const d = ck.root as PyDict;
  assert.deepEqual(metaOf(d), ['', 'module', 'module.conv', 'module.bn', 'module.fc']);
  const s = stripPrefix(d);
  assert.deepEqual(metaOf(s), metaOf(plain.root as PyDict));
  assert.deepEqual(keysOf(s), keysOf(plain.root as PyDict));
  assert.deepEqual(describe(s.metadata!), describe((plain.root as PyDict).metadata!));
});

test('stripPrefix: a rename that collides is refused by name', () => {
  assert.throws(() => stripPrefix(sd(['module.a', 'a'])), { name: 'StateDictError', message: "renaming 'a' to 'a' collides with 'module.a' renamed to 'a'" });
});

test('findStateDict: wrappers', async () => {
  for (const [file, want] of [['wrapped.pth', ['state_dict']], ['model_wrapped.legacy.pth', ['model']], ['ddp_wrapped.pth', ['state_dict']], ['state_dict.pth', []]] as const) {
    const { path: p } = findStateDict((await readCheckpoint(path.join(CKPT, file))).root);
    assert.deepEqual(p, want, file);
  }
});

test('_rebuild_tensor_v3: views of one UntypedStorage share one typed storage, and stay shared when written back', async () => {
  const { PickleAsm, zipWith } = await import('./hostile-build.js');
  const { WOP } = await import('../src/pth/pickler.js');
  // {'a': v3(storage 0, offset 0, (3,)), 'b': v3(storage 0, offset 3, (3,))}, float32 over 24 bytes
  const v3 = (p: InstanceType<typeof PickleAsm>, offset: number) => {
    p.global('torch._utils', '_rebuild_tensor_v3').tuple(
      (a) => a.storage('UntypedStorage', '0', 24),
      (a) => a.int(offset),
      (a) => a.tuple((b) => void b.int(3)),
      (a) => a.tuple((b) => void b.int(1)),
      (a) => a.op(WOP.NEWFALSE),
      (a) => a.global('collections', 'OrderedDict').op(WOP.EMPTY_TUPLE, WOP.REDUCE),
      (a) => a.global('torch', 'float32'),
    ).op(WOP.REDUCE);
  };
  const p = new PickleAsm().op(WOP.EMPTY_DICT, WOP.MARK);
  p.str('a');
  v3(p, 0);
  p.str('b');
  v3(p, 3);
  const values = Float32Array.of(1, 2, 3, 4, 5, 6);
  const file = await zipWith(p.op(WOP.SETITEMS).stop(), { 0: new Uint8Array(values.buffer) });
  const check = (root: PyValue) => {
    const d = root as PyDict;
    const a = d.map.get('a') as Tensor;
    const b = d.map.get('b') as Tensor;
    assert.equal(a.storage, b.storage, 'one storage');
    assert.equal(a.dtype, 'float32');
    assert.deepEqual([...a.toFloat32(), ...b.toFloat32()], [1, 2, 3, 4, 5, 6]);
  };
  check((await readCheckpoint(file)).root);
  const { dir, cleanup } = tempDir();
  try {
    const out = path.join(dir, 'out.pth');
    await writeCheckpoint(out, (await readCheckpoint(file)).root);
    check((await readCheckpoint(out)).root);
  } finally {
    cleanup();
  }
});
