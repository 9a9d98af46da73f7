/**
 * Pure re-layouts of PyTorch weights into what the NHWC TF.js forward pass consumes.
 * Nothing here changes a value except `bnAffine`, which computes eval-mode BatchNorm's
 * per-channel scale and shift in float64 (then rounds once to float32).
 */

/** Conv weight [O, I, kh, kw] (PyTorch) -> [kh, kw, I, O] (TF's HWIO). */
export function oihwToHwio(w: Float32Array, O: number, I: number, kh: number, kw: number): Float32Array {
  const out = new Float32Array(w.length);
  for (let o = 0; o < O; o++)
    for (let i = 0; i < I; i++)
      for (let y = 0; y < kh; y++)
        for (let x = 0; x < kw; x++) out[((y * kw + x) * I + i) * O + o] = w[((o * I + i) * kh + y) * kw + x]!;
  return out;
}

/** Output channels [o0, o0+n) of a conv weight [O, I, kh, kw] (a group's filters). */
export function outChannels(w: Float32Array, I: number, kh: number, kw: number, o0: number, n: number): Float32Array {
  const per = I * kh * kw;
  return w.slice(o0 * per, (o0 + n) * per);
}

/** Eval BN as y = x * scale + shift: scale = w / sqrt(var + eps), shift = b - mean * scale. */
export function bnAffine(weight: Float32Array, bias: Float32Array, mean: Float32Array, variance: Float32Array, eps: number): { scale: Float32Array; shift: Float32Array } {
  const n = weight.length;
  const scale = new Float32Array(n);
  const shift = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const s = weight[i]! / Math.sqrt(variance[i]! + eps);
    scale[i] = s;
    shift[i] = bias[i]! - mean[i]! * s;
  }
  return { scale, shift };
}

/**
 * fc3's grouped 1x1 conv [O*hw, Cg*hw, 1, 1], rows (o, p) and columns (cg, p'), as one
 * batched matrix [g, hw*Cg, hw*Og] whose rows are (p', cg) and columns (p, og): the order
 * an NHWC partition flattens to, so no channel transpose is needed around the matmul.
 */
export function fc3ToBatched(w: Float32Array, g: number, Cg: number, Og: number, hw: number): Float32Array {
  const K = hw * Cg;
  const Nn = hw * Og;
  const out = new Float32Array(g * K * Nn);
  for (let j = 0; j < g; j++)
    for (let og = 0; og < Og; og++)
      for (let p = 0; p < hw; p++) {
        const row = ((j * Og + og) * hw + p) * K; // PyTorch row (o, p), o = j*Og + og
        const col = p * Og + og;
        for (let cg = 0; cg < Cg; cg++)
          for (let q = 0; q < hw; q++) out[(j * K + q * Cg + cg) * Nn + col] = w[row + cg * hw + q]!;
      }
  return out;
}

/** A per-(o, p) vector of length O*hw (fc3 bias, fc3_bn affine) in the batched layout [g, hw*Og]. */
export function fc3VectorToBatched(v: Float32Array, g: number, Og: number, hw: number): Float32Array {
  const out = new Float32Array(v.length);
  for (let j = 0; j < g; j++)
    for (let og = 0; og < Og; og++)
      for (let p = 0; p < hw; p++) out[j * hw * Og + p * Og + og] = v[(j * Og + og) * hw + p]!;
  return out;
}

/**
 * fc1 reads the pooled map in (c, partition) order; NHWC pooling yields (partition, c).
 * Returns fc1.weight [I, C*P] re-indexed and transposed to [P*C, I] for x @ W.
 */
export function fc1ToNhwc(w: Float32Array, I: number, C: number, P: number): Float32Array {
  const out = new Float32Array(w.length);
  for (let i = 0; i < I; i++)
    for (let c = 0; c < C; c++)
      for (let p = 0; p < P; p++) out[(p * C + c) * I + i] = w[i * C * P + c * P + p]!;
  return out;
}

/** fc2.weight [C*P, I] -> [I, P*C] so its output comes out in (partition, c) order. */
export function fc2ToNhwc(w: Float32Array, I: number, C: number, P: number): Float32Array {
  const out = new Float32Array(w.length);
  for (let c = 0; c < C; c++)
    for (let p = 0; p < P; p++)
      for (let i = 0; i < I; i++) out[i * P * C + p * C + c] = w[(c * P + p) * I + i]!;
  return out;
}

/** fc2.bias [C*P] in (c, p) order -> (p, c) order. */
export function cpToPc(v: Float32Array, C: number, P: number): Float32Array {
  const out = new Float32Array(v.length);
  for (let c = 0; c < C; c++) for (let p = 0; p < P; p++) out[p * C + c] = v[c * P + p]!;
  return out;
}
