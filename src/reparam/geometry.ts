/**
 * A RepMLP's sizes, read off its tensors' shapes (architecture.md: `O` and `C/g` from a
 * repconv weight, `h*w = fc3 rows / O`, `C` from avg.bn when the global perceptron
 * exists), completed by hints where the shapes cannot decide.
 */
import type { StateDict } from '../pth/pyobj.js';
import { ReparamError } from './numeric.js';
import { blockName, expectShape, type BnKeys, type RepmlpBlock } from './find.js';

/** What a user (or an architecture) says about a block: fc3 groups and/or partition size. */
export interface BlockHint {
  fc3Groups?: number;
  h?: number;
  w?: number;
}

export interface BlockGeometry {
  /** fc3 weight rows (O*h*w) and columns (C*h*w/g). */
  rows: number;
  cols: number;
  /** Known only with a local perceptron (from a repconv weight). */
  O?: number;
  Cg?: number;
  /** Known only with a global perceptron (from avg.bn) or when C = g * Cg with g hinted. */
  C?: number;
  g?: number;
  h?: number;
  w?: number;
  /** Largest local-perceptron kernel. */
  K?: number;
  /** Partitions per channel hp*wp (global perceptron only). */
  parts?: number;
  /** Statements of what was assumed rather than read or given, e.g. 'h = w = 7'. */
  assumed: string[];
}

function bnLength(sd: StateDict, bn: BnKeys, n: number | null, what: string): number {
  const len = expectShape(sd, bn.runningVar, [n], what)[0]!;
  for (const key of [bn.weight, bn.bias, bn.runningMean]) expectShape(sd, key, [len], what);
  return len;
}

function fail(b: RepmlpBlock, msg: string): never {
  throw new ReparamError(`RepMLP ${blockName(b.prefix)}: ${msg}`);
}

/** The shapes every RepMLP must have, whatever its hints. */
function readShapes(sd: StateDict, b: RepmlpBlock): BlockGeometry {
  const [rows, cols] = expectShape(sd, b.fc3Weight, [null, null, 1, 1], 'fc3 (a 1x1 conv)') as [number, number];
  bnLength(sd, b.fc3Bn, rows, 'fc3_bn over fc3 rows');
  if (b.fc3Bias) expectShape(sd, b.fc3Bias, [rows], 'fc3 bias');
  const geo: BlockGeometry = { rows, cols, assumed: [] };
  for (const r of b.repconvs) {
    const [O, Cg] = expectShape(sd, r.conv, [geo.O ?? null, geo.Cg ?? null, r.k, r.k], `repconv${r.k} conv`) as number[];
    if (r.k % 2 !== 1) fail(b, `${r.conv}: kernel size ${r.k} is even; only odd sizes (padding k//2) are centred`);
    bnLength(sd, r.bn, O!, `repconv${r.k} bn over ${O} channels`);
    geo.O = O;
    geo.Cg = Cg;
    geo.K = Math.max(geo.K ?? 0, r.k);
  }
  if (b.global) {
    const C = bnLength(sd, b.global.avgBn, null, 'avg.bn');
    const [I, n] = expectShape(sd, b.global.fc1Weight, [null, null], 'fc1 (Linear)') as [number, number];
    expectShape(sd, b.global.fc1Bias, [I], 'fc1 bias');
    if (n % C !== 0) fail(b, `${b.global.fc1Weight} has ${n} inputs, not a multiple of avg.bn's ${C} channels`);
    geo.C = C;
    geo.parts = n / C;
  }
  return geo;
}

/**
 * Full geometry of block `b`. Only the local perceptron needs g, h and w; a block without
 * one needs nothing beyond the shapes. Hints are checked against the shapes.
 */
export function inferGeometry(sd: StateDict, b: RepmlpBlock, hint: BlockHint = {}): BlockGeometry {
  const geo = readShapes(sd, b);
  const { rows, cols, O, Cg } = geo;
  if (hint.fc3Groups !== undefined) {
    if (!Number.isSafeInteger(hint.fc3Groups) || hint.fc3Groups < 1) fail(b, `fc3 groups ${hint.fc3Groups}: expected a positive integer`);
  }
  if (O === undefined || Cg === undefined) {
    // No local perceptron: fc3 + fc3_bn and fc1 + avg.bn fuse without knowing g, h, w.
    if (hint.fc3Groups !== undefined) geo.g = hint.fc3Groups;
    if (hint.h !== undefined) geo.h = hint.h;
    if (hint.w !== undefined) geo.w = hint.w;
    return geo;
  }
  if (rows % O !== 0) fail(b, `fc3 has ${rows} rows, not a multiple of O = ${O} (from ${b.repconvs[0]!.conv})`);
  const hw = rows / O;
  if (cols !== Cg * hw) fail(b, `fc3 has ${cols} columns, expected C/g * h*w = ${Cg} * ${hw} = ${Cg * hw}`);
  resolveGroups(b, geo, hint, O, Cg);
  resolvePartition(b, geo, hint, hw);
  return geo;
}

function resolveGroups(b: RepmlpBlock, geo: BlockGeometry, hint: BlockHint, O: number, Cg: number): void {
  let g = hint.fc3Groups;
  if (geo.C !== undefined) {
    if (geo.C % Cg !== 0) fail(b, `avg.bn has C = ${geo.C} channels, not a multiple of C/g = ${Cg} (from ${b.repconvs[0]!.conv})`);
    const fromShapes = geo.C / Cg;
    if (g !== undefined && g !== fromShapes) fail(b, `fc3 groups given as ${g}, but the shapes say ${fromShapes} (C = ${geo.C}, C/g = ${Cg})`);
    g = fromShapes;
  }
  if (g === undefined) {
    fail(b, `fc3 groups cannot be read from the shapes (no global perceptron, so C is unknown; C/g = ${Cg}); give --fc3-groups G or --arch ARCH`);
  }
  if (O % g !== 0) fail(b, `fc3 groups ${g} do not divide O = ${O}`);
  geo.g = g;
  geo.C = g * Cg;
}

function resolvePartition(b: RepmlpBlock, geo: BlockGeometry, hint: BlockHint, hw: number): void {
  if (hint.h !== undefined || hint.w !== undefined) {
    if (hint.h === undefined || hint.w === undefined) fail(b, 'a partition hint needs both h and w');
    if (hint.h * hint.w !== hw) fail(b, `partition ${hint.h}x${hint.w} given, but fc3 has h*w = ${hw} positions per channel`);
    geo.h = hint.h;
    geo.w = hint.w;
    return;
  }
  const s = Math.round(Math.sqrt(hw));
  if (s * s !== hw) fail(b, `partition size cannot be read from the shapes (h*w = ${hw} is not a square); give --partition HxW or --arch ARCH`);
  geo.h = s;
  geo.w = s;
  geo.assumed.push(`partition ${s}x${s} (h*w = ${hw} taken as square)`);
}
