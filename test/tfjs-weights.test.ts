/**
 * TF.js weight encoding (src/export/tfjs_weights.ts): half-precision rounding, uint8
 * affine quantization as the stock loader dequantizes it, the shard layout, and the
 * `export --weights/--shard-size` flags end to end on the demo checkpoint.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { FIXTURES, ROOT, tempDir } from './helpers/torch.js';
import { defaultShardBytes, encodeWeight, packWeights, SHARD_BYTES, toHalf } from '../src/export/tfjs_weights.js';

/** IEEE half bits -> number (reference decoder). */
function fromHalf(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 0x1f) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

test('toHalf: exact values, round to nearest even, subnormals, overflow, NaN', () => {
  for (const v of [0, 1, -2, 0.5, 65504, 2 ** -14, 2 ** -24, 3.140625]) assert.equal(fromHalf(toHalf(v)), v, String(v));
  assert.equal(toHalf(-0), 0x8000);
  assert.equal(fromHalf(toHalf(1 + 2 ** -11)), 1); // halfway: to even (1.0)
  assert.equal(fromHalf(toHalf(1 + 3 * 2 ** -11)), 1 + 2 ** -9); // halfway: to even (up)
  assert.equal(fromHalf(toHalf(1e6)), Infinity);
  assert.ok(Number.isNaN(fromHalf(toHalf(NaN))));
  assert.equal(fromHalf(toHalf(2 ** -26)), 0);
  // Every value within half an ulp (relative 2^-11) of its half.
  for (let i = 0; i < 2000; i++) {
    const v = Math.fround((Math.random() - 0.5) * 2 ** (Math.random() * 30 - 14));
    const h = fromHalf(toHalf(v));
    if (Math.abs(v) >= 2 ** -14) assert.ok(Math.abs(h - v) <= Math.abs(v) * 2 ** -11 * 1.0001, `${v} -> ${h}`);
  }
});

test('uint8: the stock loader dequantizes to within scale / 2 of each value', async () => {
  const data = Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i) * 3 - 0.5);
  const { bytes, entry } = encodeWeight({ name: 'w', shape: [1000], dtype: 'float32', data }, 'uint8');
  assert.equal(bytes.byteLength, 1000);
  const q = entry.quantization as { dtype: 'uint8'; min: number; scale: number };
  assert.equal(q.dtype, 'uint8');
  const decoded = tf.io.decodeWeights(bytes.slice().buffer, [entry as tf.io.WeightsManifestEntry]).w!;
  const got = decoded.dataSync();
  for (let i = 0; i < data.length; i++) assert.ok(Math.abs(got[i]! - data[i]!) <= q.scale / 2 + 1e-6, `${i}`);
  const h = encodeWeight({ name: 'h', shape: [1000], dtype: 'float32', data }, 'float16');
  const hd = tf.io.decodeWeights(h.bytes.slice().buffer, [h.entry as tf.io.WeightsManifestEntry]).h!.dataSync();
  for (let i = 0; i < data.length; i++) assert.ok(Math.abs(hd[i]! - data[i]!) <= 4 * 2 ** -11, `${i}`);
  // int32 constants are never quantized.
  assert.equal(encodeWeight({ name: 'i', shape: [2], dtype: 'int32', data: Int32Array.of(1, 2) }, 'uint8').entry.quantization, undefined);
});

test('shards: at most 6 of >= 4 MiB by default, equal but the last, --shard-size honoured', () => {
  assert.equal(defaultShardBytes(10), SHARD_BYTES);
  assert.equal(defaultShardBytes(60 * 2 ** 20), 10 * 2 ** 20);
  const w = { name: 'w', shape: [3_000_000], dtype: 'float32' as const, data: new Float32Array(3_000_000) };
  const def = packWeights([w]);
  assert.equal(def.shards.length, 3);
  const small = packWeights([w], { shardBytes: 1 << 20 });
  assert.equal(small.shards.length, Math.ceil(12e6 / 2 ** 20));
  small.shards.slice(0, -1).forEach((s) => assert.equal(s.byteLength, 1 << 20));
  assert.equal(small.shards.reduce((a, s) => a + s.byteLength, 0), 12e6);
  assert.throws(() => packWeights([w], { shardBytes: 0 }), /shard size 0/);
});

test('repmlp export --weights float16 --shard-size: files, manifest, reported difference; bad values refused', (t) => {
  const tmp = tempDir();
  t.after(tmp.cleanup);
  const cli = path.join(ROOT, 'dist/src/cli/main.js');
  const dir = path.join(tmp.dir, 'half');
  const r = spawnSync(process.execPath, [cli, 'export', path.join(FIXTURES, 'demo/repmlp-fmnist.pth'), '--tfjs', dir, '--weights', 'float16', '--shard-size', '200000', '--json'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.ok(out.tfjs.relDiff < 1e-2 && out.tfjs.relDiff > 0, String(out.tfjs.relDiff));
  const json = JSON.parse(readFileSync(path.join(dir, 'model.json'), 'utf8'));
  const paths: string[] = json.weightsManifest[0].paths;
  assert.equal(paths.length, out.tfjs.shards);
  paths.slice(0, -1).forEach((p) => assert.equal(statSync(path.join(dir, p)).size, 200000));
  assert.ok(json.weightsManifest[0].weights.some((w: { quantization?: { dtype: string } }) => w.quantization?.dtype === 'float16'));
  assert.deepEqual(readdirSync(dir).sort(), [...paths, 'model.json'].sort());
  for (const [flag, value, msg] of [['--weights', 'int4', /--weights int4: expected float32, float16 or uint8/], ['--shard-size', '0', /--shard-size 0: expected a positive integer/]] as const) {
    const bad = spawnSync(process.execPath, [cli, 'export', path.join(FIXTURES, 'demo/repmlp-fmnist.pth'), '--tfjs', path.join(tmp.dir, 'bad'), flag, value], { encoding: 'utf8' });
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, msg);
    assert.equal(bad.stderr.trim().split('\n').length, 1);
  }
});
