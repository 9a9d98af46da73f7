import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import { encodeNpy, NpyError, parseNpy, readNpy, writeNpy } from '../src/io/npy.js';
import { FIXTURES, tempDir } from './helpers/torch.js';

/** A .npy file with a hand-written header (padded as numpy does). */
function npyBytes(header: string, data: Uint8Array, version = 1): Uint8Array {
  const pre = version === 1 ? 10 : 12;
  const total = Math.ceil((pre + header.length + 1) / 64) * 64;
  const h = header.padEnd(total - pre - 1, ' ') + '\n';
  const out = new Uint8Array(total + data.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0]);
  const dv = new DataView(out.buffer);
  if (version === 1) dv.setUint16(8, h.length, true);
  else dv.setUint32(8, h.length, true);
  out.set(new TextEncoder().encode(h), pre);
  out.set(data, total);
  return out;
}

const f32 = (n: number) => new Uint8Array(new Float32Array(n).fill(1.5).buffer);

test('reads a numpy-written float32 file (fixture input)', async () => {
  const a = await readNpy(path.join(FIXTURES, 'model', 'light_g1_r2.input.npy'));
  assert.equal(a.dtype, 'float32');
  assert.deepEqual(a.shape, [2, 3, 32, 32]);
  assert.equal(a.data.length, 2 * 3 * 32 * 32);
  assert.ok(Array.from(a.data.slice(0, 100) as Float32Array).every((v) => Number.isFinite(v) && Math.abs(v) < 10));
});

test('round trip: every dtype and shape, including 0-d and empty', () => {
  const shapes = fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 0, maxLength: 4 });
  fc.assert(
    fc.property(shapes, fc.constantFrom('float32', 'float64', 'int64', 'int32', 'uint8'), (shape, dtype) => {
      const n = shape.reduce((a, b) => a * b, 1);
      const data = {
        float32: () => Float32Array.from({ length: n }, (_, i) => i * 0.5 - 3),
        float64: () => Float64Array.from({ length: n }, (_, i) => i / 7),
        int64: () => BigInt64Array.from({ length: n }, (_, i) => BigInt(i) * 1000000000000n - 5n),
        int32: () => Int32Array.from({ length: n }, (_, i) => -i),
        uint8: () => Uint8Array.from({ length: n }, (_, i) => i % 256),
      }[dtype]();
      const back = parseNpy(encodeNpy({ shape, data }));
      assert.equal(back.dtype, dtype);
      assert.deepEqual(back.shape, shape);
      assert.deepEqual(Array.from(back.data as ArrayLike<unknown>), Array.from(data as ArrayLike<unknown>));
    }),
    { numRuns: 60 },
  );
});

test('encoded files have a 64-byte aligned data start and load in numpy terms', () => {
  const b = encodeNpy({ shape: [3], data: new Float32Array([1, 2, 3]) });
  const hl = new DataView(b.buffer).getUint16(8, true);
  assert.equal((10 + hl) % 64, 0);
  const header = new TextDecoder().decode(b.subarray(10, 10 + hl));
  assert.match(header, /^\{'descr': '<f4', 'fortran_order': False, 'shape': \(3,\), \} *\n$/);
});

test('format version 2 headers are read', () => {
  const a = parseNpy(npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }", f32(4), 2));
  assert.deepEqual(a.shape, [2, 2]);
});

test('hostile inputs: exact errors', () => {
  const cases: Array<[Uint8Array, RegExp]> = [
    [new Uint8Array([1, 2, 3]), /^x\.npy: not a \.npy file \(no \\x93NUMPY magic\)$/],
    [npyBytes("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", f32(4)), /^x\.npy: Fortran-order arrays are not supported/],
    [npyBytes("{'descr': '>f4', 'fortran_order': False, 'shape': (2, 2), }", f32(4)), /^x\.npy: big-endian dtype '>f4' is not supported \(little-endian only\)$/],
    [npyBytes("{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }", f32(4)), /^x\.npy: dtype '<c8' is not supported/],
    [npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", f32(4)), /^x\.npy: shape \(2, 3\) x float32 needs 24 data bytes, file has 16$/],
    [npyBytes("{'descr': '<f4', 'shape': (4,), }", f32(4)), /^x\.npy: header lacks 'descr', 'fortran_order' or 'shape'/],
    [npyBytes("['descr', 1]", f32(4)), /^x\.npy: header is not a Python dict literal/],
    [npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (-2, 2), }", f32(4)), /^x\.npy: bad dimension '-2' in shape/],
    [npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", f32(2), 7), /^x\.npy: unsupported \.npy format version 7\.0$/],
  ];
  const bigHeader = npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", f32(2));
  new DataView(bigHeader.buffer).setUint16(8, 60000, true);
  cases.push([bigHeader, /^x\.npy: header of 60000 bytes runs past the end of the file/]);
  for (const [bytes, re] of cases) {
    assert.throws(() => parseNpy(bytes, 'x.npy'), (e: unknown) => e instanceof NpyError && re.test(e.message), re.source);
  }
});

test('writeNpy writes atomically and readNpy reads it back; a missing file is an NpyError', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const file = path.join(dir, 'y.npy');
    await writeNpy(file, { shape: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, 6]) });
    assert.deepEqual(fs.readdirSync(dir), ['y.npy']);
    const a = await readNpy(file);
    assert.deepEqual(Array.from(a.data as Float32Array), [1, 2, 3, 4, 5, 6]);
    await assert.rejects(readNpy(path.join(dir, 'nope.npy')), (e: unknown) => e instanceof NpyError && /nope\.npy: cannot read/.test((e as Error).message));
  } finally {
    cleanup();
  }
});
