/**
 * The local perceptron as an FC matrix (RepMLP, arXiv 2105.01883, Sec. 3.3, "Converting
 * Conv into FC"; architecture.md "Local perceptron into fc3"). A k x k conv with padding
 * k//2 applied to one h x w partition is linear in the partition's C*h*w values, so it is
 * a matrix of fc3's shape. Built here directly from the index formula, never by
 * convolving an identity: for output (o, y, x) and input (c, y', x') of o's group,
 *   M[o*h*w + y*w + x, c_local*h*w + y'*w + x'] = Kt[o, c_local, y'-y+K//2, x'-x+K//2]
 * when both kernel offsets lie in [0, K), else 0. Only that band (at most K*K taps per
 * channel and row) is visited. The conv bias becomes bias[o] repeated h*w times.
 *
 * fc3 is a grouped 1x1 conv whose weight `[O*h*w, C*h*w/g, 1, 1]` stores, per row, only
 * the columns of that row's group, indexed from the group's first channel; the conv's
 * grouped kernel `[O, C/g, K, K]` is indexed the same way. So the matrix is the same for
 * every g, and it is exact for C != O (where the release's conversion is not: see
 * architecture.md "Known defect").
 */
import type { DType, TypedArray } from '../dtype.js';
import { allocFor, storeAs, ReparamError, type FloatArray } from './numeric.js';

/** Shapes of one RepMLP's local perceptron: kernel `[O, Cg, K, K]`, partition h x w. */
export interface FcGeometry {
  O: number;
  /** Input channels per group, C / fc3_groups. */
  Cg: number;
  K: number;
  h: number;
  w: number;
}

/**
 * For each output position p = y*w + x, the kernel taps that stay inside the partition:
 * taps `start[p] .. start[p+1]-1`, each a kernel offset `dy*K + dx` and an input position
 * `y'*w + x'`. Precomputed once so the per-row loop does no bounds arithmetic.
 */
export function bandTaps(h: number, w: number, K: number): { start: Int32Array; kOff: Int32Array; pos: Int32Array } {
  const half = Math.floor(K / 2);
  const start = new Int32Array(h * w + 1);
  const kOff: number[] = [];
  const pos: number[] = [];
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      start[y * w + x] = kOff.length;
      for (let dy = 0; dy < K; dy++) {
        const yi = y + dy - half;
        if (yi < 0 || yi >= h) continue;
        for (let dx = 0; dx < K; dx++) {
          const xi = x + dx - half;
          if (xi < 0 || xi >= w) continue;
          kOff.push(dy * K + dx);
          pos.push(yi * w + xi);
        }
      }
    }
  }
  start[h * w] = kOff.length;
  return { start, kOff: Int32Array.from(kOff), pos: Int32Array.from(pos) };
}

function checkGeometry(kernel: FloatArray, bias: FloatArray, g: FcGeometry): void {
  const { O, Cg, K, h, w } = g;
  if (![O, Cg, K, h, w].every((n) => Number.isSafeInteger(n) && n > 0)) throw new ReparamError(`convToFc: bad geometry ${JSON.stringify(g)}`);
  if (kernel.length !== O * Cg * K * K) throw new ReparamError(`convToFc: kernel of ${kernel.length} elements is not [${O}, ${Cg}, ${K}, ${K}]`);
  if (bias.length !== O) throw new ReparamError(`convToFc: bias of ${bias.length} elements, expected ${O}`);
}

/** Adds the band of output row (o, p) into `row` (one fc3 row, Cg*h*w columns). */
function addBandRow(row: Float64Array, kernel: FloatArray, taps: ReturnType<typeof bandTaps>, o: number, p: number, g: FcGeometry): void {
  const hw = g.h * g.w;
  const KK = g.K * g.K;
  const kBase = o * g.Cg * KK;
  for (let j = taps.start[p]!; j < taps.start[p + 1]!; j++) {
    const ko = kBase + taps.kOff[j]!;
    const col = taps.pos[j]!;
    for (let c = 0; c < g.Cg; c++) row[c * hw + col]! += kernel[ko + c * KK]!;
  }
}

/**
 * The summed local-perceptron kernel `Kt [O, Cg, K, K]` and bias `[O]` as the dense FC
 * matrix `[O*h*w, Cg*h*w]` (fc3's weight shape without the 1x1) and bias `[O*h*w]`.
 */
export function convToFc(kernel: FloatArray, bias: FloatArray, g: FcGeometry): { weight: Float64Array; bias: Float64Array } {
  checkGeometry(kernel, bias, g);
  const hw = g.h * g.w;
  const cols = g.Cg * hw;
  const weight = new Float64Array(g.O * hw * cols);
  const outBias = new Float64Array(g.O * hw);
  const taps = bandTaps(g.h, g.w, g.K);
  for (let o = 0; o < g.O; o++) {
    for (let p = 0; p < hw; p++) {
      const r = o * hw + p;
      addBandRow(weight.subarray(r * cols, (r + 1) * cols), kernel, taps, o, p, g);
      outBias[r] = bias[o]!;
    }
  }
  return { weight, bias: outBias };
}

/** The local perceptron, already fused with its BNs and summed (padKernel to the largest K). */
export interface LocalPerceptron {
  kernel: FloatArray;
  bias: FloatArray;
  geometry: FcGeometry;
}

/**
 * fc3's deploy weight and bias in one pass over fc3 (the hot spot of a conversion):
 * row r = fc3[r] * scale[r] + the local perceptron's band, bias = shift[r] + its bias.
 * `scale`/`shift` are fc3_bn's affine map (bnScaleShift). Every value is computed in
 * float64 and rounded once into `dtype`. Returns new arrays; `fc3` is only read.
 */
export function mergeFc3(
  fc3: FloatArray,
  fc3Bn: { scale: Float64Array; shift: Float64Array },
  local: LocalPerceptron | null,
  dtype: DType,
): { weight: TypedArray; bias: TypedArray } {
  const rows = fc3Bn.scale.length;
  if (rows === 0 || fc3.length % rows !== 0) throw new ReparamError(`mergeFc3: fc3 of ${fc3.length} elements does not have ${rows} rows`);
  const cols = fc3.length / rows;
  const weight = allocFor(dtype, fc3.length);
  const bias = allocFor(dtype, rows);
  let taps: ReturnType<typeof bandTaps> | undefined;
  let hw = 1;
  if (local) {
    const g = local.geometry;
    checkGeometry(local.kernel, local.bias, g);
    hw = g.h * g.w;
    if (g.O * hw !== rows || g.Cg * hw !== cols) {
      throw new ReparamError(`mergeFc3: fc3 is [${rows}, ${cols}], the local perceptron gives [${g.O * hw}, ${g.Cg * hw}]`);
    }
    taps = bandTaps(g.h, g.w, g.K);
  }
  if (fc3 instanceof Float32Array && weight instanceof Float32Array && (!local || local.kernel instanceof Float64Array)) {
    mergeRowsFloat32(fc3, fc3Bn.scale, local ? { ...local, kernel: local.kernel as Float64Array } : null, taps, weight, cols);
  } else {
    mergeRowsAny(fc3, fc3Bn.scale, local, taps, weight, cols, dtype);
  }
  for (let r = 0; r < rows; r++) storeAs(dtype, bias, r, fc3Bn.shift[r]! + (local ? local.bias[Math.floor(r / hw)]! : 0));
  return { weight, bias };
}

type Taps = ReturnType<typeof bandTaps>;

/**
 * The float32 fast path (every released checkpoint): each weight is written once, and a
 * band entry as `fc3 * t + Kt` computed in float64 and rounded once. Every band entry
 * receives exactly one tap of the summed kernel (the offsets (y'-y, x'-x) are unique per
 * entry), so no accumulation is needed. Monomorphic typed arrays keep V8's loops tight.
 */
function mergeRowsFloat32(fc3: Float32Array, scale: Float64Array, local: (LocalPerceptron & { kernel: Float64Array }) | null, taps: Taps | undefined, out: Float32Array, cols: number): void {
  const rows = scale.length;
  const g = local?.geometry;
  const hw = g ? g.h * g.w : 1;
  const KK = g ? g.K * g.K : 1;
  const Cg = g ? g.Cg : 0;
  for (let r = 0; r < rows; r++) {
    const t = scale[r]!;
    const base = r * cols;
    for (let i = base, end = base + cols; i < end; i++) out[i] = fc3[i]! * t;
    if (!local || !taps) continue;
    const o = Math.floor(r / hw);
    const p = r - o * hw;
    const kBase = o * Cg * KK;
    const kernel = local.kernel;
    for (let j = taps.start[p]!, jEnd = taps.start[p + 1]!; j < jEnd; j++) {
      const ko = kBase + taps.kOff[j]!;
      const col = base + taps.pos[j]!;
      for (let c = 0; c < Cg; c++) {
        const idx = col + c * hw;
        out[idx] = fc3[idx]! * t + kernel[ko + c * KK]!;
      }
    }
  }
}

/** Any dtype: each row accumulated in float64, then rounded once into `dtype`. */
function mergeRowsAny(fc3: FloatArray, scale: Float64Array, local: LocalPerceptron | null, taps: Taps | undefined, out: TypedArray, cols: number, dtype: DType): void {
  const row = new Float64Array(cols);
  const hw = local ? local.geometry.h * local.geometry.w : 1;
  for (let r = 0; r < scale.length; r++) {
    const t = scale[r]!;
    const base = r * cols;
    for (let i = 0; i < cols; i++) row[i] = fc3[base + i]! * t;
    if (local && taps) {
      const o = Math.floor(r / hw);
      addBandRow(row, local.kernel, taps, o, r - o * hw, local.geometry);
    }
    if (out instanceof Float32Array || out instanceof Float64Array) out.set(row, base);
    else for (let i = 0; i < cols; i++) storeAs(dtype, out, base + i, row[i]!);
  }
}
