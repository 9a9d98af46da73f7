/**
 * Image input the way the release's test.py prepares it (torchvision on PIL images):
 *
 *   Image.open(f).convert('RGB')   -> decodeImage (JPEG via jpeg-js, PNG via pngjs)
 *   Resize(256)                    -> resizeShorter: PIL's BILINEAR, bit-exact
 *   CenterCrop(224)                -> centerCrop: torchvision's offsets and zero padding
 *   ToTensor() + Normalize(m, s)   -> toTensor: float32 arithmetic as torch does it
 *
 * PIL's bilinear resize is not textbook bilinear: when shrinking, the triangle filter is
 * stretched by the scale factor (an antialiasing filter), each pass works in 8-bit
 * fixed point and rounds back to uint8, the horizontal pass runs first. resizeShorter
 * reproduces Pillow's Resample.c step for step, so PNG input gives the same tensor as
 * PIL + torchvision (tested against Pillow 9.4 + torch 1.13: max difference 0 for 8-bit
 * PNGs of every colour type, ImageNet and small pipelines). JPEG input differs slightly:
 * jpeg-js decodes with its own IDCT and chroma upsampling, not libjpeg-turbo's; measured
 * on a noisy synthetic 300x200 colour JPEG (quality 90, 4:2:0): mean 2.1, max 24 levels
 * of 255 after preprocessing; a gray JPEG: max 1 level (test/image.test.ts).
 *
 * The steps are configurable (Preprocess) so a model with another input size or a
 * single channel (the bundled Fashion-MNIST demo) is fed exactly what it was trained on.
 */
import { accessSync, constants as fsConstants, readFileSync, statSync } from 'node:fs';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { z } from 'zod';
import { RepmlpError } from '../errors.js';

export class ImageError extends RepmlpError {
  override name = 'ImageError';
}

/** 8-bit pixels, interleaved (HWC), 1 channel for 'L', 3 for 'RGB'. */
export interface RawImage {
  width: number;
  height: number;
  channels: 1 | 3;
  data: Uint8Array;
}

export type ColorMode = 'RGB' | 'L';

/** Decoding refuses larger images: 100 megapixels is ~400 MB of RGBA already. */
export const MAX_PIXELS = 100_000_000;

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** Names the format from its first bytes (the file name's extension is not trusted). */
export function sniffFormat(bytes: Uint8Array): 'png' | 'jpeg' | string | null {
  const starts = (sig: number[]) => sig.every((b, i) => bytes[i] === b);
  if (starts(PNG_SIGNATURE)) return 'png';
  if (starts([0xff, 0xd8, 0xff])) return 'jpeg';
  if (starts([0x47, 0x49, 0x46, 0x38])) return 'GIF';
  if (starts([0x42, 0x4d])) return 'BMP';
  if (starts([0x52, 0x49, 0x46, 0x46]) && bytes[8] === 0x57 && bytes[9] === 0x45) return 'WebP';
  if (starts([0x49, 0x49, 0x2a, 0x00]) || starts([0x4d, 0x4d, 0x00, 0x2a])) return 'TIFF';
  return null;
}

function unreadable(file: string, e: unknown): ImageError {
  const code = (e as NodeJS.ErrnoException).code;
  return new ImageError(`${file}: cannot read image (${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a folder' : (e as Error).message})`);
}

/** Reads and decodes an image file; every failure names the file. */
export function readImage(file: string, mode: ColorMode = 'RGB'): RawImage {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(file);
  } catch (e) {
    throw unreadable(file, e);
  }
  return decodeImage(bytes, file, mode);
}

/** Fails fast (before a model is loaded) when `file` is missing, a folder or unreadable. */
export function assertReadableFile(file: string): void {
  try {
    if (statSync(file).isDirectory()) throw Object.assign(new Error('is a folder'), { code: 'EISDIR' });
    accessSync(file, fsConstants.R_OK);
  } catch (e) {
    throw unreadable(file, e);
  }
}

/** Decodes JPEG or PNG bytes and converts to `mode` as PIL's Image.convert does. */
export function decodeImage(bytes: Uint8Array, file: string, mode: ColorMode = 'RGB'): RawImage {
  const format = sniffFormat(bytes);
  let rgba: { width: number; height: number; data: Uint8Array };
  if (format === 'png') rgba = decodePng(bytes, file);
  else if (format === 'jpeg') rgba = decodeJpeg(bytes, file);
  else if (format) throw new ImageError(`${file}: ${format} images are not supported (JPEG and PNG are)`);
  else if (bytes.length === 0) throw new ImageError(`${file}: empty file, not an image`);
  else throw new ImageError(`${file}: not a JPEG or PNG image (unrecognized header bytes)`);
  return fromRgba(rgba.data, rgba.width, rgba.height, mode);
}

function checkSize(width: number, height: number, file: string): void {
  if (width < 1 || height < 1) throw new ImageError(`${file}: image has no pixels (${width}x${height})`);
  if (width * height > MAX_PIXELS) throw new ImageError(`${file}: image of ${width}x${height} pixels exceeds the limit of ${MAX_PIXELS / 1e6} megapixels`);
}

function decodeJpeg(bytes: Uint8Array, file: string): { width: number; height: number; data: Uint8Array } {
  try {
    const img = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: true, maxResolutionInMP: MAX_PIXELS / 1e6, maxMemoryUsageInMB: 2048 });
    checkSize(img.width, img.height, file);
    return img;
  } catch (e) {
    if (e instanceof ImageError) throw e;
    throw new ImageError(`${file}: broken JPEG: ${oneLine(e)}`);
  }
}

/**
 * pngjs expands every colour type (gray, palette, gray+alpha, RGB, RGBA; 1-16 bits) to
 * 8-bit RGBA. Two differences from PIL are removed or noted: a tRNS colour key makes
 * pngjs zero the pixel's colour, which PIL's convert('RGB') keeps, so tRNS is dropped
 * before decoding (alpha is discarded anyway); 16-bit samples are rounded to 8 bits
 * (v * 255 / 65535), where PIL keeps the high byte of RGB(A) / gray+alpha (at most one
 * level apart) and saturates plain 16-bit gray at 255 (a PIL quirk not copied).
 */
function decodePng(bytes: Uint8Array, file: string): { width: number; height: number; data: Uint8Array } {
  const stripped = dropChunks(bytes, file, new Set(['tRNS']));
  try {
    const png = PNG.sync.read(Buffer.from(stripped.buffer, stripped.byteOffset, stripped.byteLength));
    return { width: png.width, height: png.height, data: png.data };
  } catch (e) {
    if (e instanceof ImageError) throw e;
    throw new ImageError(`${file}: broken PNG: ${oneLine(e)}`);
  }
}

/**
 * Walks the PNG chunk list (length, type, data, CRC), bounds-checking each chunk, checks
 * the IHDR size against MAX_PIXELS before anything is inflated, and drops `drop` chunks.
 */
function dropChunks(bytes: Uint8Array, file: string, drop: Set<string>): Uint8Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const keep: Uint8Array[] = [bytes.subarray(0, 8)];
  let pos = 8;
  let dropped = false;
  while (pos + 12 <= bytes.length) {
    const len = view.getUint32(pos);
    const type = String.fromCharCode(...bytes.subarray(pos + 4, pos + 8));
    const end = pos + 12 + len;
    if (end > bytes.length) throw new ImageError(`${file}: broken PNG: chunk ${JSON.stringify(type)} at byte ${pos} runs past the end of the file`);
    if (type === 'IHDR' && len >= 8) checkSize(view.getUint32(pos + 8), view.getUint32(pos + 12), file);
    if (drop.has(type)) dropped = true;
    else keep.push(bytes.subarray(pos, end));
    pos = end;
    if (type === 'IEND') break;
  }
  if (!dropped) return bytes;
  return Buffer.concat(keep);
}

function oneLine(e: unknown): string {
  return String((e as Error)?.message ?? e).split('\n')[0]!;
}

/**
 * RGBA -> RGB drops alpha (PIL does not composite); RGBA -> L uses PIL's ITU-R 601-2
 * luma in 16-bit fixed point, L = (19595 R + 38470 G + 7471 B + 0x8000) >> 16, which maps
 * gray pixels (R = G = B) to themselves.
 */
export function fromRgba(rgba: Uint8Array, width: number, height: number, mode: ColorMode): RawImage {
  const n = width * height;
  if (mode === 'RGB') {
    const data = new Uint8Array(n * 3);
    for (let i = 0, j = 0; i < n; i++, j += 4) {
      data[i * 3] = rgba[j]!;
      data[i * 3 + 1] = rgba[j + 1]!;
      data[i * 3 + 2] = rgba[j + 2]!;
    }
    return { width, height, channels: 3, data };
  }
  const data = new Uint8Array(n);
  for (let i = 0, j = 0; i < n; i++, j += 4) data[i] = (rgba[j]! * 19595 + rgba[j + 1]! * 38470 + rgba[j + 2]! * 7471 + 0x8000) >>> 16;
  return { width, height, channels: 1, data };
}

// ---------------------------------------------------------------------------------------
// Resize: Pillow's Resample.c (ImagingResample with the BILINEAR filter, 8 bits/channel).

/** Pillow's fixed point for 8-bit images: 32 - 8 - 2 bits of fraction. */
const PRECISION_BITS = 22;

interface Coeffs {
  /** First input index and count, per output index. */
  bounds: Int32Array;
  /** ksize integer weights per output index. */
  kk: Float64Array;
  ksize: number;
}

/** precompute_coeffs + normalize_coeffs_8bpc for the triangle filter (support 1). */
function precomputeCoeffs(inSize: number, outSize: number): Coeffs {
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1);
  const support = 1 * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const kk = new Float64Array(outSize * ksize);
  const bounds = new Int32Array(outSize * 2);
  const w = new Float64Array(ksize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const ss = 1 / filterscale;
    // C's (int) casts truncate toward zero.
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      const t = Math.abs((x + xmin - center + 0.5) * ss);
      w[x] = t < 1 ? 1 - t : 0;
      ww += w[x]!;
    }
    for (let x = 0; x < xmax; x++) {
      const v = ww !== 0 ? w[x]! / ww : w[x]!;
      kk[xx * ksize + x] = Math.trunc(v < 0 ? -0.5 + v * (1 << PRECISION_BITS) : 0.5 + v * (1 << PRECISION_BITS));
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { bounds, kk, ksize };
}

function clip8(v: number): number {
  if (v >= 1 << PRECISION_BITS << 8) return 255;
  if (v <= 0) return 0;
  return Math.floor(v / (1 << PRECISION_BITS));
}

/**
 * One pass along x (axis 'x') or y, rounding to uint8 like Pillow's 8bpc passes. The
 * tap loop reads `src` at `base + i * step`: step is the channel count along x and a
 * row along y, so one loop serves both passes without per-tap branching.
 */
function resamplePass(src: RawImage, outW: number, outH: number, axis: 'x' | 'y', c: Coeffs): RawImage {
  const ch = src.channels;
  const data = src.data;
  const out = new Uint8Array(outW * outH * ch);
  const half = 1 << (PRECISION_BITS - 1);
  const step = axis === 'x' ? ch : src.width * ch;
  let o = 0;
  for (let y = 0; y < outH; y++) {
    for (let x = 0; x < outW; x++) {
      const t = axis === 'x' ? x : y;
      const min = c.bounds[t * 2]!;
      const count = c.bounds[t * 2 + 1]!;
      const k = t * c.ksize;
      const start = axis === 'x' ? (y * src.width + min) * ch : (min * src.width + x) * ch;
      for (let b = 0; b < ch; b++) {
        let ss = half;
        for (let i = 0, si = start + b; i < count; i++, si += step) ss += data[si]! * c.kk[k + i]!;
        out[o++] = clip8(ss);
      }
    }
  }
  return { width: outW, height: outH, channels: ch, data: out };
}

/** PIL's Image.resize((w, h), BILINEAR) on an 8-bit image. */
export function resizeBilinear(img: RawImage, outW: number, outH: number): RawImage {
  if (outW < 1 || outH < 1) throw new ImageError(`cannot resize to ${outW}x${outH}`);
  let cur = img;
  if (outW !== cur.width) cur = resamplePass(cur, outW, cur.height, 'x', precomputeCoeffs(cur.width, outW));
  if (outH !== cur.height) cur = resamplePass(cur, outW, outH, 'y', precomputeCoeffs(cur.height, outH));
  return cur;
}

/** torchvision Resize(size): the shorter side becomes `size`, the longer int(size * long / short). */
export function resizeShorter(img: RawImage, size: number): RawImage {
  const { width: w, height: h } = img;
  const [short, long] = w <= h ? [w, h] : [h, w];
  const newLong = Math.floor((size * long) / short);
  const [nw, nh] = w <= h ? [size, newLong] : [newLong, size];
  if (nw === w && nh === h) return img;
  return resizeBilinear(img, nw, nh);
}

/** Python's round(): halves go to the even neighbour (torchvision's crop offsets use it). */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * torchvision CenterCrop((ch, cw)): when the image is smaller it is first padded with 0
 * (left/top get the floor half); offsets are round((H - ch) / 2) with half-to-even.
 */
export function centerCrop(img: RawImage, cropH: number, cropW: number): RawImage {
  const padL = cropW > img.width ? Math.floor((cropW - img.width) / 2) : 0;
  const padT = cropH > img.height ? Math.floor((cropH - img.height) / 2) : 0;
  const padR = cropW > img.width ? Math.floor((cropW - img.width + 1) / 2) : 0;
  const padB = cropH > img.height ? Math.floor((cropH - img.height + 1) / 2) : 0;
  const fullW = img.width + padL + padR;
  const fullH = img.height + padT + padB;
  const top = roundHalfEven((fullH - cropH) / 2);
  const left = roundHalfEven((fullW - cropW) / 2);
  const ch = img.channels;
  const out = new Uint8Array(cropW * cropH * ch);
  for (let y = 0; y < cropH; y++) {
    const sy = y + top - padT;
    if (sy < 0 || sy >= img.height) continue;
    for (let x = 0; x < cropW; x++) {
      const sx = x + left - padL;
      if (sx < 0 || sx >= img.width) continue;
      for (let b = 0; b < ch; b++) out[(y * cropW + x) * ch + b] = img.data[(sy * img.width + sx) * ch + b]!;
    }
  }
  return { width: cropW, height: cropH, channels: ch, data: out };
}

/**
 * ToTensor + Normalize into `out` at `offset` (CHW float32). Each step is rounded to
 * float32 as torch computes it: x = v / 255, then (x - mean) / std.
 */
export function toTensor(img: RawImage, mean: readonly number[], std: readonly number[], out?: Float32Array, offset = 0): Float32Array {
  const plane = img.width * img.height;
  const dst = out ?? new Float32Array(plane * img.channels);
  for (let b = 0; b < img.channels; b++) {
    const m = Math.fround(mean[b]!);
    const s = Math.fround(std[b]!);
    for (let i = 0; i < plane; i++) {
      const x = Math.fround(img.data[i * img.channels + b]! / 255);
      dst[offset + b * plane + i] = Math.fround(x - m) / s;
    }
  }
  return dst;
}

// ---------------------------------------------------------------------------------------
// The configurable pipeline.

const posInt = z.number().int().positive();

/** How a model wants its images: the release's ImageNet pipeline or a model's own. */
export const PreprocessSchema = z
  .object({
    /** 'RGB' (3 channels) or 'L' (one gray channel, PIL's luma). */
    mode: z.enum(['RGB', 'L']),
    /** Shorter side after resizing; null: no resize. */
    resize: posInt.nullable(),
    /** Centre crop: a square side or [height, width]. */
    crop: z.union([posInt, z.tuple([posInt, posInt])]),
    mean: z.array(z.number()).min(1),
    std: z.array(z.number().positive()).min(1),
  })
  .strict()
  .superRefine((p, ctx) => {
    const n = p.mode === 'RGB' ? 3 : 1;
    if (p.mean.length !== n) ctx.addIssue({ code: 'custom', path: ['mean'], message: `mode ${p.mode} needs ${n} value(s), got ${p.mean.length}` });
    if (p.std.length !== n) ctx.addIssue({ code: 'custom', path: ['std'], message: `mode ${p.mode} needs ${n} value(s), got ${p.std.length}` });
  });

export type Preprocess = z.output<typeof PreprocessSchema>;

/** The release's test.py: Resize(256), CenterCrop(224), ImageNet mean/std. */
export const IMAGENET_PREPROCESS: Preprocess = {
  mode: 'RGB',
  resize: 256,
  crop: 224,
  mean: [0.485, 0.456, 0.406],
  std: [0.229, 0.224, 0.225],
};

export function parsePreprocess(raw: unknown, where: string): Preprocess {
  const r = PreprocessSchema.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new ImageError(`${where}: field 'preprocess.${issue.path.join('.') || '(root)'}': ${issue.message}`);
  }
  return r.data;
}

/** The tensor shape one image becomes: [C, H, W]. */
export function inputShape(p: Preprocess): [number, number, number] {
  const [h, w] = typeof p.crop === 'number' ? [p.crop, p.crop] : p.crop;
  return [p.mode === 'RGB' ? 3 : 1, h, w];
}

/** Decoded image -> CHW float32, written into `out` at `offset` when given. */
export function preprocessImage(img: RawImage, p: Preprocess, out?: Float32Array, offset = 0): Float32Array {
  const [, h, w] = inputShape(p);
  let cur = img;
  if (p.resize !== null) cur = resizeShorter(cur, p.resize);
  cur = centerCrop(cur, h, w);
  return toTensor(cur, p.mean, p.std, out, offset);
}

/** Reads, decodes and preprocesses files into one NCHW batch. */
export function loadBatch(files: readonly string[], p: Preprocess): { data: Float32Array; shape: [number, number, number, number] } {
  const [c, h, w] = inputShape(p);
  const data = new Float32Array(files.length * c * h * w);
  files.forEach((f, i) => preprocessImage(readImage(f, p.mode), p, data, i * c * h * w));
  return { data, shape: [files.length, c, h, w] };
}
