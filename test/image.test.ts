/**
 * Image decoding and preprocessing. Against PIL + torch (tools/image_cases.py, run live
 * when /usr/bin/python3 has them): PNG pipelines must match bit for bit (tolerance 1e-6,
 * float32 rounding of the last step); JPEG is decoded by jpeg-js rather than libjpeg, so
 * it is held to a measured bound instead. Without Python, hand-made images still check
 * each step.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import * as path from 'node:path';
import { PNG } from 'pngjs';
import jpeg from 'jpeg-js';
import {
  ImageError, centerCrop, decodeImage, fromRgba, loadBatch, parsePreprocess, preprocessImage,
  readImage, resizeBilinear, resizeShorter, type Preprocess, type RawImage,
} from '../src/io/image.js';
import { spawnSync } from 'node:child_process';
import { PYTHON, TOOLS, runPython, tempDir, torchSkip } from './helpers/torch.js';

/** PIL comes with python3-pil (pulled in beside python3-torch on Debian, but not by it). */
function pilSkip(): false | string {
  const t = torchSkip();
  if (t) return t;
  const r = spawnSync(PYTHON, ['-c', 'import PIL'], { encoding: 'utf8' });
  return r.status === 0 ? false : `PIL not found at ${PYTHON} (apt-get install python3-pil); PIL comparison skipped`;
}

interface Case {
  file: string;
  preprocess?: Preprocess;
  pixels?: string;
  pixelShape?: number[];
  tensor?: string | null;
  tensorShape?: number[] | null;
  grayExpected?: string;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'lengths differ');
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

function meanAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i]! - b[i]!);
  return s / a.length;
}

function f32(file: string): Float32Array {
  const b = readFileSync(file);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

test('PIL + torch agree with src/io/image.ts', { skip: pilSkip() }, async (t) => {
  const { dir, cleanup } = tempDir('repmlp-image-');
  try {
    const cases = JSON.parse(runPython([path.join(TOOLS, 'image_cases.py'), dir])) as Case[];
    for (const c of cases) {
      const file = path.join(dir, c.file);
      if (c.grayExpected) {
        await t.test(`${c.file}: 16-bit gray rounds to 8 bits`, () => {
          const img = readImage(file, 'L');
          assert.equal(maxAbsDiff(img.data, readFileSync(path.join(dir, c.grayExpected!))), 0);
        });
        continue;
      }
      const p = c.preprocess!;
      const jpegFile = c.file.endsWith('.jpg');
      await t.test(`${c.file} ${p.mode} resize ${p.resize} crop ${JSON.stringify(p.crop)}`, () => {
        const img = readImage(file, p.mode);
        const [h, w] = c.pixelShape!;
        assert.deepEqual([img.height, img.width], [h, w]);
        const pixDiff = maxAbsDiff(img.data, readFileSync(path.join(dir, c.pixels!)));
        if (!jpegFile) assert.equal(pixDiff, 0, 'decoded pixels differ from PIL');
        if (!c.tensor) return;
        const want = f32(path.join(dir, c.tensor));
        const got = preprocessImage(img, p);
        const diff = maxAbsDiff(got, want);
        if (jpegFile) {
          // jpeg-js vs libjpeg-turbo: IDCT and chroma upsampling differ by a few levels.
          const levels = meanAbsDiff(got, want) * 255 * Math.min(...p.std);
          t.diagnostic(`${c.file}: decoded pixels differ from PIL by <= ${pixDiff} levels; tensor max |diff| ${diff.toFixed(4)}, mean ~${levels.toFixed(2)} levels`);
          // Measured on the noisy synthetic photo: <= 24 levels, mean ~2.1 (gray JPEG: 1, 0.07).
          assert.ok(pixDiff <= 32, `jpeg pixels differ by ${pixDiff} levels`);
          assert.ok(levels < 3, `jpeg mean difference ${levels} levels`);
        } else {
          assert.ok(diff <= 1e-6, `tensor differs from torch by ${diff}`);
        }
      });
    }
  } finally {
    cleanup();
  }
});

function img(width: number, height: number, channels: 1 | 3, f: (x: number, y: number, c: number) => number): RawImage {
  const data = new Uint8Array(width * height * channels);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) for (let c = 0; c < channels; c++) data[(y * width + x) * channels + c] = f(x, y, c);
  return { width, height, channels, data };
}

test('resize: identity, halving averages pairs, upscaling interpolates', () => {
  const a = img(4, 2, 1, (x, y) => x * 10 + y * 100);
  assert.deepEqual(resizeBilinear(a, 4, 2).data, a.data);
  // Halving: the triangle is stretched to support 2 (antialiasing): output 0 (centre 1.0)
  // weighs inputs 0, 1, 2 by 0.75, 0.75, 0.25 (normalized), output 1 (centre 3.0) inputs
  // 1, 2, 3 by 0.25, 0.75, 0.75 - Pillow's window, which stops at the image edge.
  const h = resizeBilinear(img(4, 1, 1, (x) => [0, 80, 160, 240][x]!), 2, 1);
  assert.deepEqual([...h.data], [Math.round((80 * 0.75 + 160 * 0.25) / 1.75), Math.round((80 * 0.25 + 160 * 0.75 + 240 * 0.75) / 1.75)]);
  const u = resizeBilinear(img(2, 1, 1, (x) => x * 200), 4, 1);
  assert.deepEqual([...u.data], [0, 50, 150, 200]);
});

test('resizeShorter keeps the aspect ratio with int() truncation', () => {
  const r = resizeShorter(img(300, 200, 3, () => 7), 256);
  assert.deepEqual([r.width, r.height], [384, 256]);
  const t = resizeShorter(img(123, 301, 1, () => 7), 64);
  assert.deepEqual([t.width, t.height], [64, 156]); // int(64 * 301 / 123) = 156
  assert.ok(t.data.every((v) => v === 7));
});

test('centerCrop: half offsets round to even, smaller images are zero padded', () => {
  const a = img(5, 1, 1, (x) => x + 1);
  assert.deepEqual([...centerCrop(a, 1, 4).data], [1, 2, 3, 4]); // round(0.5) = 0
  const b = img(7, 1, 1, (x) => x + 1);
  assert.deepEqual([...centerCrop(b, 1, 4).data], [3, 4, 5, 6]); // round(1.5) = 2
  const p = centerCrop(img(2, 2, 1, () => 9), 5, 5);
  // 3 pixels of padding per axis: 1 before, 2 after (floor half first, as torchvision).
  assert.deepEqual([...p.data], [0, 0, 0, 0, 0, 0, 9, 9, 0, 0, 0, 9, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
});

test('gray conversion uses PIL luma and keeps gray pixels', () => {
  const rgba = Uint8Array.from([255, 0, 0, 255, 0, 255, 0, 255, 0, 0, 255, 0, 77, 77, 77, 9]);
  assert.deepEqual([...fromRgba(rgba, 4, 1, 'L').data], [76, 150, 29, 77]);
  assert.deepEqual([...fromRgba(rgba, 4, 1, 'RGB').data], [255, 0, 0, 0, 255, 0, 0, 0, 255, 77, 77, 77]);
});

test('toTensor normalizes in float32 and lays out CHW', () => {
  const p: Preprocess = { mode: 'RGB', resize: null, crop: 1, mean: [0.5, 0, 0], std: [0.5, 1, 2] };
  const out = preprocessImage(img(1, 1, 3, (_x, _y, c) => [255, 51, 0][c]!), p);
  assert.deepEqual([...out], [1, Math.fround(51 / 255), 0]);
});

test('PNG and JPEG written by pngjs / jpeg-js decode; batches are NCHW', () => {
  const { dir, cleanup } = tempDir('repmlp-image-');
  try {
    const png = new PNG({ width: 3, height: 2 });
    for (let i = 0; i < 6; i++) png.data.set([i * 40, 255 - i * 40, 7, 255], i * 4);
    writeFileSync(path.join(dir, 'a.png'), PNG.sync.write(png));
    const jdata = new Uint8Array(16 * 16 * 4).fill(128);
    writeFileSync(path.join(dir, 'b.jpg'), jpeg.encode({ width: 16, height: 16, data: jdata }, 95).data);
    const a = readImage(path.join(dir, 'a.png'));
    assert.deepEqual([...a.data.subarray(0, 6)], [0, 255, 7, 40, 215, 7]);
    const b = readImage(path.join(dir, 'b.jpg'), 'L');
    assert.ok(b.data.every((v) => Math.abs(v - 128) <= 1));
    const p: Preprocess = { mode: 'L', resize: null, crop: [2, 3], mean: [0], std: [1] };
    const batch = loadBatch([path.join(dir, 'a.png'), path.join(dir, 'b.jpg')], p);
    assert.deepEqual(batch.shape, [2, 1, 2, 3]);
    assert.ok(Math.abs(batch.data[6]! - 128 / 255) < 2 / 255);
  } finally {
    cleanup();
  }
});

test('unreadable or unsupported images fail with the file name', () => {
  const { dir, cleanup } = tempDir('repmlp-image-');
  try {
    const f = (name: string, bytes: Uint8Array | string) => {
      writeFileSync(path.join(dir, name), bytes);
      return path.join(dir, name);
    };
    const cases: [string, RegExp][] = [
      [path.join(dir, 'missing.png'), /missing\.png: cannot read image \(no such file\)/],
      [f('empty.png', ''), /empty\.png: empty file, not an image/],
      [f('text.jpg', 'hello world'), /text\.jpg: not a JPEG or PNG image/],
      [f('anim.gif', 'GIF89a....'), /anim\.gif: GIF images are not supported/],
      [f('cut.jpg', Uint8Array.from([0xff, 0xd8, 0xff, 0xe0, 0, 16, 1, 2])), /cut\.jpg: broken JPEG: /],
      [f('cut.png', Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52, 0, 0])), /cut\.png: broken PNG: /],
    ];
    mkdirSync(path.join(dir, 'folder.png'));
    cases.push([path.join(dir, 'folder.png'), /folder\.png: cannot read image \(is a folder\)/]);
    for (const [file, re] of cases) {
      assert.throws(() => readImage(file), (e: unknown) => e instanceof ImageError && re.test(e.message) && !e.message.includes('\n'), file);
    }
    // A PNG header claiming 1e5 x 1e5 pixels is refused before anything is inflated.
    const ihdr = Buffer.alloc(8 + 25);
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]).copy(ihdr);
    ihdr.writeUInt32BE(13, 8);
    ihdr.write('IHDR', 12, 'latin1');
    ihdr.writeUInt32BE(100000, 16);
    ihdr.writeUInt32BE(100000, 20);
    assert.throws(() => decodeImage(ihdr, 'huge.png'), /huge\.png: image of 100000x100000 pixels exceeds the limit/);
  } finally {
    cleanup();
  }
});

test('preprocess configs are checked field by field', () => {
  assert.throws(() => parsePreprocess({ mode: 'L', resize: 28, crop: 32, mean: [0.1, 0.2], std: [1] }, 'm.json'), /m\.json: field 'preprocess\.mean': mode L needs 1 value/);
  assert.throws(() => parsePreprocess({ mode: 'RGB', resize: 28, crop: 0, mean: [0, 0, 0], std: [1, 1, 1] }, 'm.json'), /field 'preprocess\.crop'/);
});
