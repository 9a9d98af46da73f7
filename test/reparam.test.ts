/**
 * The pure re-parameterization steps against definitions written out in the test:
 * convToFc against a direct per-partition convolution, foldAvgBn against fc1(bn(v)),
 * fuseBn against bn(conv(x)). Property tests (fast-check) over random shapes; every step
 * is also checked not to modify its inputs. Tolerance: float64 arithmetic, so 1e-12.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { bandTaps, convToFc, foldAvgBn, fuseBn, mergeFc3, padKernel, bnScaleShift, type BatchNorm } from '../src/reparam/index.js';
import { floatToBfloat16, floatToHalf, tensorFrom } from '../src/reparam/numeric.js';
import { halfToFloat } from '../src/tensor.js';

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

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** The local perceptron on one partition, by definition: a KxK conv, zero padding K//2, groups g. */
function convPartition(x: Float64Array, kernel: Float64Array, bias: Float64Array, C: number, O: number, g: number, K: number, h: number, w: number): Float64Array {
  const Cg = C / g, Og = O / g, half = Math.floor(K / 2);
  const y = new Float64Array(O * h * w);
  for (let o = 0; o < O; o++) {
    const grp = Math.floor(o / Og);
    for (let yy = 0; yy < h; yy++) for (let xx = 0; xx < w; xx++) {
      let acc = bias[o]!;
      for (let c = 0; c < Cg; c++) for (let dy = 0; dy < K; dy++) for (let dx = 0; dx < K; dx++) {
        const yi = yy + dy - half, xi = xx + dx - half;
        if (yi < 0 || yi >= h || xi < 0 || xi >= w) continue;
        acc += kernel[((o * Cg + c) * K + dy) * K + dx]! * x[((grp * Cg + c) * h + yi) * w + xi]!;
      }
      y[(o * h + yy) * w + xx] = acc;
    }
  }
  return y;
}

/** fc3 as a grouped FC: row r reads the Cg*h*w inputs of its group. */
function groupedFc(x: Float64Array, weight: Float64Array, bias: Float64Array, C: number, O: number, g: number, hw: number): Float64Array {
  const rows = O * hw, cols = (C / g) * hw, rowsPerGroup = rows / g;
  const y = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    const base = Math.floor(r / rowsPerGroup) * cols;
    let acc = bias[r]!;
    for (let i = 0; i < cols; i++) acc += weight[r * cols + i]! * x[base + i]!;
    y[r] = acc;
  }
  return y;
}

const geometry = fc.record({
  g: fc.integer({ min: 1, max: 3 }), Cg: fc.integer({ min: 1, max: 3 }), Og: fc.integer({ min: 1, max: 3 }),
  K: fc.constantFrom(1, 3, 5, 7), h: fc.integer({ min: 1, max: 5 }), w: fc.integer({ min: 1, max: 5 }), seed: fc.integer({ min: 1, max: 1e6 }),
});

test('convToFc: the FC matrix applied to a partition equals the grouped conv on it (C != O, any K vs h, w)', () => {
  fc.assert(fc.property(geometry, ({ g, Cg, Og, K, h, w, seed }) => {
    const C = g * Cg, O = g * Og;
    const kernel = rand(O * Cg * K * K, seed), bias = rand(O, seed + 7), x = rand(C * h * w, seed + 9);
    const before = Float64Array.from(kernel);
    const m = convToFc(kernel, bias, { O, Cg, K, h, w });
    assert.deepEqual(kernel, before, 'convToFc must not modify its input');
    assert.ok(maxAbsDiff(groupedFc(x, m.weight, m.bias, C, O, g, h * w), convPartition(x, kernel, bias, C, O, g, K, h, w)) < 1e-12);
  }), { numRuns: 150 });
});

test('convToFc: only the band is non-zero, and the band holds every tap', () => {
  const taps = bandTaps(3, 4, 3);
  // Corner (0,0) sees a 2x2 window, an inner position (1,1) all 9 taps.
  assert.equal(taps.start[1]! - taps.start[0]!, 4);
  assert.equal(taps.start[6]! - taps.start[5]!, 9);
  const kernel = Float64Array.from({ length: 9 }, (_, i) => i + 1);
  const m = convToFc(kernel, Float64Array.of(0.5), { O: 1, Cg: 1, K: 3, h: 3, w: 4 });
  // Row of output (1,1): inputs (y', x') with |y'-1| <= 1, |x'-1| <= 1 get K[y'-1+1][x'-1+1].
  const row = [...m.weight.subarray(5 * 12, 6 * 12)];
  assert.deepEqual(row, [1, 2, 3, 0, 4, 5, 6, 0, 7, 8, 9, 0]);
  assert.deepEqual([...m.bias], new Array(12).fill(0.5));
});

test('padKernel: centres the small kernel; padded conv == small conv', () => {
  fc.assert(fc.property(geometry, ({ g, Cg, Og, h, w, seed }) => {
    const C = g * Cg, O = g * Og;
    const small = rand(O * Cg * 9, seed), bias = rand(O, seed + 1), x = rand(C * h * w, seed + 2);
    const big = padKernel(small, [O, Cg, 3, 3], 7);
    assert.equal(big.length, O * Cg * 49);
    assert.ok(maxAbsDiff(convPartition(x, big, bias, C, O, g, 7, h, w), convPartition(x, small, bias, C, O, g, 3, h, w)) < 1e-12);
  }), { numRuns: 50 });
  assert.throws(() => padKernel(new Float64Array(9), [1, 1, 3, 3], 4), /cannot centre/);
});

test('fuseBn: bn(conv(x)) == fused conv(x), with and without a conv bias; inputs unchanged', () => {
  const O = 4, I = 6;
  const weight = rand(O * I, 3), x = rand(I, 4), bn = randomBn(O, 5), own = rand(O, 6);
  const snapshot = JSON.stringify([[...weight], [...bn.weight], [...bn.runningVar]]);
  for (const bias of [undefined, own]) {
    const f = fuseBn(weight, bn, bias);
    for (let o = 0; o < O; o++) {
      let z = bias ? bias[o]! : 0;
      for (let i = 0; i < I; i++) z += weight[o * I + i]! * x[i]!;
      const want = ((z - bn.runningMean[o]!) / Math.sqrt(bn.runningVar[o]! + bn.eps)) * bn.weight[o]! + bn.bias[o]!;
      let got = f.bias[o]!;
      for (let i = 0; i < I; i++) got += f.weight[o * I + i]! * x[i]!;
      assert.ok(Math.abs(got - want) < 1e-12);
    }
  }
  assert.equal(JSON.stringify([[...weight], [...bn.weight], [...bn.runningVar]]), snapshot);
  assert.throws(() => fuseBn(new Float64Array(7), bn), /does not split into 4 BN channels/);
});

test('foldAvgBn: fc1(bn(v)) == folded fc1(v), column i of channel floor(i / (hp*wp))', () => {
  fc.assert(fc.property(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 7 }), fc.integer({ min: 1, max: 1e6 }),
    (C, parts, I, seed) => {
      const n = C * parts;
      const W = rand(I * n, seed), b = rand(I, seed + 1), v = rand(n, seed + 2), bn = randomBn(C, seed + 3);
      const before = Float64Array.from(W);
      const f = foldAvgBn(W, b, bn);
      assert.deepEqual(W, before);
      for (let r = 0; r < I; r++) {
        let want = b[r]!, got = f.bias[r]!;
        for (let i = 0; i < n; i++) {
          const c = Math.floor(i / parts);
          want += W[r * n + i]! * ((v[i]! - bn.runningMean[c]!) / Math.sqrt(bn.runningVar[c]! + bn.eps) * bn.weight[c]! + bn.bias[c]!);
          got += f.weight[r * n + i]! * v[i]!;
        }
        assert.ok(Math.abs(got - want) < 1e-10);
      }
    }), { numRuns: 80 });
});

test('mergeFc3 (one pass) == fuseBn(fc3) + convToFc, rounded once to float32', () => {
  const O = 6, Cg = 2, K = 5, h = 3, w = 4, hw = h * w;
  const fc3 = Float32Array.from(rand(O * hw * Cg * hw, 11));
  const bn = randomBn(O * hw, 12);
  const kernel = rand(O * Cg * K * K, 13), kb = rand(O, 14);
  const fused = fuseBn(fc3, bn);
  const band = convToFc(kernel, kb, { O, Cg, K, h, w });
  const merged = mergeFc3(fc3, bnScaleShift(bn), { kernel, bias: kb, geometry: { O, Cg, K, h, w } }, 'float32');
  assert.ok(merged.weight instanceof Float32Array);
  const want = fused.weight.map((v, i) => Math.fround(v + band.weight[i]!));
  assert.deepEqual([...merged.weight], [...want]);
  assert.deepEqual([...merged.bias], [...fused.bias.map((v, i) => Math.fround(v + band.bias[i]!))]);
  assert.throws(() => mergeFc3(fc3, bnScaleShift(bn), { kernel, bias: kb, geometry: { O, Cg: 3, K, h, w } }, 'float32'), /convToFc: kernel of/);
});

test('float16 / bfloat16 writers round to nearest even and round-trip', () => {
  for (const v of [0, -0, 1, -2.5, 65504, 1e-7, 6.1e-5, 0.1, 3.14159, -1e-9]) {
    const h = floatToHalf(v);
    const back = halfToFloat(h);
    // Nearest: no other half is closer (checked against both neighbours).
    for (const n of [h - 1, h + 1]) if ((n & 0x7c00) !== 0x7c00) assert.ok(Math.abs(halfToFloat(n & 0xffff) - v) >= Math.abs(back - v), `half(${v})`);
  }
  assert.equal(floatToHalf(1 + 2 ** -11), 0x3c00); // tie -> even
  assert.equal(floatToHalf(1e6), 0x7c00);
  assert.equal(floatToBfloat16(1), 0x3f80);
  assert.equal(floatToBfloat16(1 + 2 ** -8), 0x3f80); // tie -> even
  const t = tensorFrom([0.5, -1.25], [2], 'float16');
  assert.deepEqual([...t.toFloat32()], [0.5, -1.25]);
});

// ---- The converter on hand-built state dicts: inference from shapes and exact errors.
import { Tensor } from '../src/tensor.js';
import { convertStateDict, inferGeometry, findRepmlpBlocks, ReparamError } from '../src/reparam/index.js';

function t(shape: number[], seed = 1): Tensor {
  return Tensor.fromArray(Float32Array.from(rand(shape.reduce((a, b) => a * b, 1), seed, 0.5, 1.5)), shape);
}
function bnInto(sd: Map<string, Tensor>, p: string, n: number): void {
  for (const k of ['weight', 'bias', 'running_mean', 'running_var']) sd.set(p + k, t([n], k.length));
  sd.set(p + 'num_batches_tracked', Tensor.scalarInt64(5n));
}
/** A training RepMLP's keys in the release's order. */
function repmlpSd(o: { C: number; O: number; h: number; w: number; g: number; ks: number[]; parts?: number }): Map<string, Tensor> {
  const sd = new Map<string, Tensor>();
  const hw = o.h * o.w;
  if (o.parts) {
    const n = o.C * o.parts;
    sd.set('fc1_fc2.fc1.weight', t([n, n])); sd.set('fc1_fc2.fc1.bias', t([n]));
    sd.set('fc1_fc2.fc2.weight', t([n, n])); sd.set('fc1_fc2.fc2.bias', t([n]));
    bnInto(sd, 'avg.bn.', o.C);
  }
  sd.set('fc3.weight', t([o.O * hw, (o.C * hw) / o.g, 1, 1]));
  bnInto(sd, 'fc3_bn.', o.O * hw);
  for (const k of o.ks) {
    sd.set(`repconv${k}.conv.weight`, t([o.O, o.C / o.g, k, k], k));
    bnInto(sd, `repconv${k}.bn.`, o.O);
  }
  return sd;
}

test('geometry from shapes: O and C/g from repconv, h*w from fc3 rows, C and g from avg.bn; square assumed and stated', () => {
  const sd = repmlpSd({ C: 6, O: 9, h: 3, w: 3, g: 3, ks: [1, 3], parts: 4 });
  const geo = inferGeometry(sd, findRepmlpBlocks(sd)[0]!);
  assert.deepEqual({ C: geo.C, O: geo.O, g: geo.g, h: geo.h, w: geo.w, K: geo.K, parts: geo.parts }, { C: 6, O: 9, g: 3, h: 3, w: 3, K: 3, parts: 4 });
  assert.deepEqual(geo.assumed, ['partition 3x3 (h*w = 9 taken as square)']);
  const out = convertStateDict(sd);
  assert.deepEqual([...out.stateDict.keys()], ['fc1_fc2.fc1.weight', 'fc1_fc2.fc1.bias', 'fc1_fc2.fc2.weight', 'fc1_fc2.fc2.bias', 'fc3.weight', 'fc3.bias']);
  assert.deepEqual(out.stateDict.get('fc3.bias')!.shape, [81]);
  assert.equal(out.tensorsIn, 27);
});

test('converter errors name the key or block, what was expected and what was found', () => {
  const err = (sd: Map<string, Tensor>, re: RegExp, hint?: { fc3Groups?: number; h?: number; w?: number }) =>
    assert.throws(() => convertStateDict(sd, hint ? { defaultHint: hint } : {}), (e: Error) => e instanceof ReparamError && re.test(e.message), re.source);
  const base = () => repmlpSd({ C: 4, O: 6, h: 2, w: 3, g: 2, ks: [1, 3], parts: 2 });
  err(base(), /^RepMLP \(root\): partition size cannot be read from the shapes \(h\*w = 6 is not a square\); give --partition HxW or --arch ARCH$/);
  err(base(), /^RepMLP \(root\): partition 3x3 given, but fc3 has h\*w = 6 positions per channel$/, { h: 3, w: 3 });
  err(base(), /^RepMLP \(root\): fc3 groups given as 4, but the shapes say 2 \(C = 4, C\/g = 2\)$/, { fc3Groups: 4, h: 2, w: 3 });
  const noGlobal = repmlpSd({ C: 4, O: 6, h: 2, w: 2, g: 2, ks: [3] });
  err(noGlobal, /^RepMLP \(root\): fc3 groups cannot be read from the shapes \(no global perceptron, so C is unknown; C\/g = 2\); give --fc3-groups G or --arch ARCH$/);
  err(noGlobal, /^RepMLP \(root\): fc3 groups 4 do not divide O = 6$/, { fc3Groups: 4 });
  const badConv = base();
  badConv.set('repconv3.conv.weight', t([6, 3, 3, 3]));
  err(badConv, /^repconv3\.conv\.weight: repconv3 conv: expected shape \[6,2,3,3\], found \[6,3,3,3\]$/, { h: 2, w: 3 });
  const badBn = base();
  badBn.delete('repconv1.bn.bias');
  err(badBn, /^repconv1\.bn\.bias: missing \(BatchNorm repconv1\.bn is incomplete\)$/);
  const noFc3 = base();
  noFc3.delete('fc3.weight');
  err(noFc3, /^fc3\.weight: missing next to fc3_bn\.running_var \(RepMLP \(root\)\)$/);
  const even = repmlpSd({ C: 4, O: 6, h: 2, w: 3, g: 2, ks: [2], parts: 2 });
  err(even, /kernel size 2 is even/, { h: 2, w: 3 });
  const ints = base();
  ints.set('fc3_bn.running_var', Tensor.fromArray(new Int32Array(36), [36]));
  err(ints, /^fc3_bn\.running_var: expected a floating-point tensor, found int32$/, { h: 2, w: 3 });
  const rows = base();
  rows.set('fc3.weight', t([35, 12, 1, 1]));
  err(rows, /^fc3_bn\.weight: fc3_bn over fc3 rows: expected shape \[35\], found \[36\]$|^fc3_bn\.running_var: fc3_bn over fc3 rows: expected shape \[35\], found \[36\]$/);
});

test('per-block hints for a user model: keyed by block name', () => {
  const a = repmlpSd({ C: 4, O: 4, h: 2, w: 4, g: 2, ks: [3] });
  const sd = new Map<string, Tensor>();
  for (const [k, v] of a) sd.set('enc.mlp.' + k, v);
  for (const [k, v] of repmlpSd({ C: 2, O: 4, h: 3, w: 1, g: 1, ks: [1, 3] })) sd.set('dec.0.' + k, v);
  const r = convertStateDict(sd, { hints: { 'enc.mlp': { fc3Groups: 2, h: 2, w: 4 }, 'dec.0': { fc3Groups: 1, h: 3, w: 1 } } });
  assert.deepEqual(r.blocks.map((b) => [b.name, b.fc3Groups, b.h, b.w]), [['enc.mlp', 2, 2, 4], ['dec.0', 1, 3, 1]]);
  assert.deepEqual([...r.stateDict.keys()], ['enc.mlp.fc3.weight', 'enc.mlp.fc3.bias', 'dec.0.fc3.weight', 'dec.0.fc3.bias']);
});

test('lazy conversion: nothing computed until read, then the same values as the eager one', async () => {
  const sd = repmlpSd({ C: 6, O: 9, h: 3, w: 3, g: 3, ks: [1, 3, 5], parts: 4 });
  const eager = convertStateDict(sd).stateDict;
  const lazy = convertStateDict(sd, { lazy: true });
  assert.deepEqual([...lazy.stateDict.keys()], [...eager.keys()]);
  const fc3 = lazy.stateDict.get('fc3.weight')!;
  assert.equal(fc3.storage.loaded, false);
  assert.equal(lazy.timings.repmlp, 0);
  for (const [k, t] of eager) assert.deepEqual(lazy.stateDict.get(k)!.toFloat32(), t.toFloat32(), k);
  assert.ok(lazy.timings.repmlp > 0);
  // Bad dtypes are found before anything is computed.
  sd.set('repconv5.bn.running_mean', Tensor.fromArray(new Int32Array(9), [9]));
  assert.throws(() => convertStateDict(sd, { lazy: true }), /^ReparamError: repconv5\.bn\.running_mean: expected a floating-point tensor, found int32$/);
});
