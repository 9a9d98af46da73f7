/**
 * RepMLPNet's locality injection (src/reparam/locality.ts) against its definition written
 * out here: for one patch of S channels, the training-time block computes
 *   fc3_bn(fc3(x)) + sum_k bn_k(repconv_k(x))   (repconv_k: a depthwise k x k conv, padding k//2)
 * and the injected fc3 must compute the same as W x + b. Random shapes (fast-check),
 * float64 throughout, so the tolerance is 1e-12; inputs are checked to be left as they were.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { fc3BnPerRow, injectLocality, sumRepconvs, type RepconvBranch } from '../src/reparam/locality.js';
import { bnScaleShift, type BatchNorm } from '../src/reparam/fuse_bn.js';
import { ReparamError } from '../src/reparam/numeric.js';

function rand(n: number, seed: number, lo = -1, hi = 1): Float64Array {
  let s = seed >>> 0 || 1;
  return Float64Array.from({ length: n }, () => {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    return lo + ((s % 100000) / 100000) * (hi - lo);
  });
}

function randomBn(n: number, seed: number): BatchNorm {
  return { weight: rand(n, seed, 0.5, 1.5), bias: rand(n, seed + 1), runningMean: rand(n, seed + 2), runningVar: rand(n, seed + 3, 0.5, 1.5), eps: 1e-5 };
}

/** The training-time block on one patch x [S, h, w] (C order), by the definition. */
function trainForward(x: Float64Array, fc3: Float64Array, fc3Bn: BatchNorm, branches: RepconvBranch[], S: number, h: number, w: number): Float64Array {
  const hw = h * w;
  const out = new Float64Array(S * hw);
  const set = bnScaleShift(fc3Bn);
  for (let s = 0; s < S; s++) {
    for (let p = 0; p < hw; p++) {
      let acc = 0;
      for (let q = 0; q < hw; q++) acc += fc3[(s * hw + p) * hw + q]! * x[s * hw + q]!;
      out[s * hw + p] = acc * set.scale[s]! + set.shift[s]!;
    }
  }
  for (const b of branches) {
    const bn = bnScaleShift(b.bn);
    const r = Math.floor(b.k / 2);
    for (let s = 0; s < S; s++) {
      for (let y = 0; y < h; y++) {
        for (let xx = 0; xx < w; xx++) {
          let acc = 0;
          for (let dy = 0; dy < b.k; dy++) {
            for (let dx = 0; dx < b.k; dx++) {
              const yi = y + dy - r;
              const xi = xx + dx - r;
              if (yi < 0 || yi >= h || xi < 0 || xi >= w) continue; // zero padding at the patch border
              acc += b.kernel[(s * b.k + dy) * b.k + dx]! * x[(s * h + yi) * w + xi]!;
            }
          }
          out[(s * h + y) * w + xx]! += acc * bn.scale[s]! + bn.shift[s]!;
        }
      }
    }
  }
  return out;
}

function deployForward(x: Float64Array, W: ArrayLike<number>, b: ArrayLike<number>, S: number, hw: number): Float64Array {
  const out = new Float64Array(S * hw);
  for (let s = 0; s < S; s++) {
    for (let p = 0; p < hw; p++) {
      let acc = b[s * hw + p]!;
      for (let q = 0; q < hw; q++) acc += W[(s * hw + p) * hw + q]! * x[s * hw + q]!;
      out[s * hw + p] = acc;
    }
  }
  return out;
}

test('injectLocality: the deploy fc3 equals fc3_bn(fc3) + the repconv branches, per patch (random shapes)', () => {
  fc.assert(fc.property(
    fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 6 }),
    fc.subarray([1, 3, 5], { minLength: 0 }), fc.integer({ min: 1, max: 1e6 }),
    (S, h, w, ks, seed) => {
      const hw = h * w;
      const fc3 = rand(S * hw * hw, seed);
      const fc3Bn = randomBn(S, seed + 10);
      const branches = ks.map((k, i) => ({ k, kernel: rand(S * k * k, seed + 20 + i), bn: randomBn(S, seed + 30 + i) }));
      const before = Float64Array.from(fc3);
      const d = injectLocality(fc3, fc3Bn, branches, { S, h, w }, 'float64');
      assert.deepEqual(fc3, before, 'fc3 is only read');
      for (let t = 0; t < 3; t++) {
        const x = rand(S * hw, seed + 100 + t);
        const want = trainForward(x, fc3, fc3Bn, branches, S, h, w);
        const got = deployForward(x, d.weight as Float64Array, d.bias as Float64Array, S, hw);
        for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got[i]! - want[i]!) <= 1e-12 * (1 + Math.abs(want[i]!)), `S=${S} ${h}x${w} k=${ks}: ${got[i]} vs ${want[i]}`);
      }
    },
  ), { numRuns: 60 });
});

test('fc3BnPerRow repeats each share-set h*w times; sumRepconvs centres the smaller kernels', () => {
  const bn = randomBn(3, 7);
  const rows = fc3BnPerRow(bn, { S: 3, h: 2, w: 2 });
  const set = bnScaleShift(bn);
  assert.deepEqual([...rows.scale], [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2].map((s) => set.scale[s]));
  const one = { k: 1, kernel: Float64Array.of(2), bn: { weight: Float64Array.of(1), bias: Float64Array.of(0.5), runningMean: Float64Array.of(0), runningVar: Float64Array.of(1 - 1e-5), eps: 1e-5 } };
  const lp = sumRepconvs([one, { ...one, k: 3, kernel: new Float64Array(9) }], { S: 1, h: 3, w: 3 })!;
  assert.equal(lp.geometry.K, 3);
  assert.ok(Math.abs(lp.kernel[4]! - 2) < 1e-12 && lp.kernel.every((v, i) => i === 4 || v === 0));
  assert.ok(Math.abs(lp.bias[0]! - 1) < 1e-12);
  assert.equal(sumRepconvs([], { S: 1, h: 3, w: 3 }), null);
});

test('injectLocality: wrong shapes are one clear error naming the tensor', () => {
  const g = { S: 2, h: 2, w: 2 };
  assert.throws(() => injectLocality(new Float64Array(10), randomBn(2, 1), [], g, 'float32'), (e: Error) => e instanceof ReparamError && /fc3\.weight: 10 elements, expected \[8, 4, 1, 1\]/.test(e.message));
  assert.throws(() => injectLocality(new Float64Array(32), randomBn(3, 1), [], g, 'float32'), /fc3_bn has 3 channels, expected S = 2/);
  assert.throws(() => injectLocality(new Float64Array(32), randomBn(2, 1), [{ k: 3, kernel: new Float64Array(9), bn: randomBn(2, 2) }], g, 'float32'), /repconv3\.conv\.weight: 9 elements, expected \[2, 1, 3, 3\]/);
  assert.throws(() => injectLocality(new Float64Array(32), randomBn(2, 1), [{ k: 2, kernel: new Float64Array(8), bn: randomBn(2, 2) }], g, 'float32'), /even/);
});

test('injectLocality rounds once into the stored dtype (float32 from float64 math)', () => {
  const g = { S: 1, h: 3, w: 3 };
  const fc3 = Float32Array.from(rand(81, 5));
  const r = injectLocality(fc3, randomBn(1, 6), [{ k: 3, kernel: rand(9, 7), bn: randomBn(1, 8) }], g, 'float32');
  assert.ok(r.weight instanceof Float32Array && r.bias instanceof Float32Array);
  const exact = injectLocality(Float64Array.from(fc3), randomBn(1, 6), [{ k: 3, kernel: rand(9, 7), bn: randomBn(1, 8) }], g, 'float64');
  for (let i = 0; i < 81; i++) assert.equal(r.weight[i], Math.fround(exact.weight[i] as number));
});
