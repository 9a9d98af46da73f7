/**
 * How far logits are from a reference: the largest absolute difference, and that
 * relative to the reference's largest magnitude (the toolkit's tolerance measure).
 * A NaN anywhere makes both NaN, so it fails every `<= tolerance` check.
 */
export interface Difference {
  maxAbs: number;
  rel: number;
}

export function difference(got: ArrayLike<number>, ref: ArrayLike<number>): Difference {
  if (got.length !== ref.length) throw new RangeError(`output has ${got.length} values, reference ${ref.length}`);
  let maxAbs = 0;
  let maxRef = 0;
  for (let i = 0; i < got.length; i++) {
    const d = Math.abs(got[i]! - ref[i]!);
    maxAbs = Number.isNaN(d) ? NaN : Math.max(maxAbs, d);
    maxRef = Math.max(maxRef, Math.abs(ref[i]!));
  }
  return { maxAbs, rel: maxRef > 0 ? maxAbs / maxRef : maxAbs };
}
