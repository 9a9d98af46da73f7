/** Comparisons shared by the reparam tests (no tests in this file). */
import assert from 'node:assert/strict';
import type { StateDict } from '../src/pth/index.js';

/** max|a-b| / max|ref|: the brief's measure for tensors and logits. */
export function relErr(got: ArrayLike<number>, ref: ArrayLike<number>): number {
  assert.equal(got.length, ref.length);
  let d = 0, m = 0;
  for (let i = 0; i < ref.length; i++) {
    d = Math.max(d, Math.abs(got[i]! - ref[i]!));
    m = Math.max(m, Math.abs(ref[i]!));
  }
  return m === 0 ? d : d / m;
}

export function assertSameStateDict(got: StateDict, ref: StateDict, tol: number, where: string): number {
  assert.deepEqual([...got.keys()], [...ref.keys()], `${where}: keys and order`);
  let worst = 0;
  for (const [k, r] of ref) {
    const t = got.get(k)!;
    assert.equal(t.dtype, r.dtype, `${where}: ${k} dtype`);
    assert.deepEqual(t.shape, r.shape, `${where}: ${k} shape`);
    if (r.dtype === 'int64') {
      assert.deepEqual(t.typedArray(), r.typedArray(), `${where}: ${k}`);
      continue;
    }
    // float32 views (no copies): the full preset holds 86M values.
    const view = (x: typeof t) => (x.dtype === 'float32' ? x.toFloat32() : x.toFloat64());
    const e = relErr(view(t), view(r));
    assert.ok(e <= tol, `${where}: ${k} relative error ${e} > ${tol}`);
    worst = Math.max(worst, e);
  }
  return worst;
}

