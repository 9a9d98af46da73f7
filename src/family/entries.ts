/** State-dict entry builders shared by the unit kinds' layouts (PyTorch's registration order). */
import type { Entry } from './types.js';

/** BatchNorm eps of every module in both families (not stored in state dicts). */
export const BN_EPS = 1e-5;

export const f32 = (name: string, shape: number[]): Entry => ({ name, shape, dtype: 'float32' });

export function withPrefix(prefix: string, entries: readonly Entry[]): Entry[] {
  return entries.map((e) => ({ ...e, name: prefix + e.name }));
}

/** BatchNorm1d/2d: params weight, bias; buffers running_mean, running_var, num_batches_tracked. */
export function bnEntries(n: number): Entry[] {
  return [
    f32('weight', [n]), f32('bias', [n]), f32('running_mean', [n]), f32('running_var', [n]),
    { name: 'num_batches_tracked', shape: [], dtype: 'int64' },
  ];
}

export function convEntries(inC: number, outC: number, k: number, groups: number, bias: boolean): Entry[] {
  const e = [f32('weight', [outC, inC / groups, k, k])];
  if (bias) e.push(f32('bias', [outC]));
  return e;
}

export function linearEntries(inF: number, outF: number, bias = true): Entry[] {
  return bias ? [f32('weight', [outF, inF]), f32('bias', [outF])] : [f32('weight', [outF, inF])];
}

export function numelOfShape(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}
