/**
 * Seeded mutation fuzzing of the zip, legacy and safetensors fixtures: bit flips,
 * truncation at every region, zeroed runs, inserted bytes, central-directory edits and
 * pickle opcode edits. Every case must either load (and its tensors be readable and
 * re-writable) or throw the toolkit's own RepmlpError with a one-line message: never
 * another exception, a hang, or a runaway allocation. Case counts are printed.
 *
 * REPMLP_FUZZ_CASES (default 4000) and REPMLP_FUZZ_SEED change the run.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { readCheckpointSync } from '../src/pth/checkpoint.js';
import { findStateDict, listStateDicts } from '../src/pth/statedict.js';
import { pickleCheckpoint } from '../src/pth/pickler.js';
import { PyDict, PyObject, PyTuple, type PyValue } from '../src/pth/pyobj.js';
import { summarize } from '../src/cli/inspect.js';
import { Tensor } from '../src/tensor.js';
import { RepmlpError } from '../src/errors.js';
import { OP } from '../src/pth/pickle.js';
import { CKPT } from './pth-describe.js';
import { mulberry32 } from '../src/util/random.js';

const CASES = Number(process.env.REPMLP_FUZZ_CASES ?? 4000);
const SEED = Number(process.env.REPMLP_FUZZ_SEED ?? 20260525);
/** Tensors larger than this are not copied by the harness (the reader bounds them anyway). */
const MATERIALIZE_LIMIT = 1 << 24;


interface Seed {
  name: string;
  bytes: Uint8Array;
  /** [start, end) of the (main) pickle, for opcode edits. */
  pickle: [number, number];
  /** [start, end) of the zip central directory, or of the safetensors header. */
  directory: [number, number] | null;
  /** Interesting offsets: record / region boundaries, for truncation. */
  boundaries: number[];
}

function zipSeed(name: string): Seed {
  const bytes = new Uint8Array(readFileSync(path.join(CKPT, name)));
  const dv = new DataView(bytes.buffer, bytes.byteOffset);
  let end = bytes.length - 22;
  while (dv.getUint32(end, true) !== 0x06054b50) end--;
  const cdSize = dv.getUint32(end + 12, true);
  const cdOff = dv.getUint32(end + 16, true);
  const boundaries = [cdOff, end];
  let pickle: [number, number] = [0, 0];
  for (let p = cdOff; p < cdOff + cdSize; ) {
    const nameLen = dv.getUint16(p + 28, true);
    const extra = dv.getUint16(p + 30, true);
    const comment = dv.getUint16(p + 32, true);
    const local = dv.getUint32(p + 42, true);
    const size = dv.getUint32(p + 20, true);
    const rec = new TextDecoder().decode(bytes.subarray(p + 46, p + 46 + nameLen));
    const dataAt = local + 30 + dv.getUint16(local + 26, true) + dv.getUint16(local + 28, true);
    boundaries.push(local, dataAt, dataAt + size);
    if (rec.endsWith('data.pkl')) pickle = [dataAt, dataAt + size];
    p += 46 + nameLen + extra + comment;
  }
  return { name, bytes, pickle, directory: [cdOff, cdOff + cdSize], boundaries };
}

function legacySeed(name: string): Seed {
  const bytes = new Uint8Array(readFileSync(path.join(CKPT, name)));
  // The main pickle is the 4th: find STOP opcodes of the first three small pickles.
  const stops: number[] = [];
  for (let i = 0, n = 0; i < bytes.length && n < 5; i++) {
    // a pickle starts with PROTO 2; the previous byte is the STOP of the last one
    if (bytes[i] === OP.PROTO && bytes[i + 1] === 2 && (i === 0 || bytes[i - 1] === OP.STOP)) {
      stops.push(i);
      n++;
    }
  }
  const main = stops[3] ?? 0;
  const keys = stops[4] ?? bytes.length;
  return { name, bytes, pickle: [main, keys], directory: null, boundaries: [...stops, keys] };
}

function safetensorsSeed(name: string): Seed {
  const bytes = new Uint8Array(readFileSync(path.join(CKPT, name)));
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  return { name, bytes, pickle: [0, 0], directory: [8, 8 + n], boundaries: [8, 8 + n] };
}

const SEEDS: Seed[] = [
  zipSeed('state_dict.pth'), zipSeed('views.pth'), zipSeed('dtypes.pth'), zipSeed('containers.pth'), zipSeed('wrapped.pth'),
  legacySeed('state_dict.legacy.pth'), legacySeed('views.legacy.pth'), legacySeed('containers.legacy.pth'), legacySeed('parameter.legacy.pth'),
  safetensorsSeed('small.safetensors'),
  // checkpoints as training scripts save them: inert placeholders, numpy values, a pickled module
  zipSeed('inert/namespace.pth'), zipSeed('inert/numpy.pth'), zipSeed('inert/module.pth'), zipSeed('inert/cfgnode.pth'),
  legacySeed('inert/module.legacy.pth'),
];

const OPCODES = Object.values(OP) as number[];

type Mutation = (s: Seed, r: () => number) => Uint8Array;
const int = (r: () => number, n: number) => Math.floor(r() * n);

const MUTATIONS: Record<string, Mutation> = {
  bitflip(s, r) {
    const b = s.bytes.slice();
    for (let k = 1 + int(r, 8); k > 0; k--) {
      const i = int(r, b.length);
      b[i]! ^= 1 << int(r, 8);
    }
    return b;
  },
  truncate(s, r) {
    // at a region boundary (+-2 bytes) half the time, anywhere otherwise
    const at = r() < 0.5 ? s.boundaries[int(r, s.boundaries.length)]! + int(r, 5) - 2 : int(r, s.bytes.length);
    return s.bytes.slice(0, Math.max(0, Math.min(s.bytes.length - 1, at)));
  },
  zeroRun(s, r) {
    const b = s.bytes.slice();
    const i = int(r, b.length);
    b.fill(r() < 0.5 ? 0 : 0xff, i, i + 1 + int(r, 64));
    return b;
  },
  insert(s, r) {
    const i = int(r, s.bytes.length);
    const extra = Uint8Array.from({ length: 1 + int(r, 16) }, () => int(r, 256));
    const b = new Uint8Array(s.bytes.length + extra.length);
    b.set(s.bytes.subarray(0, i));
    b.set(extra, i);
    b.set(s.bytes.subarray(i), i + extra.length);
    return b;
  },
  directoryEdit(s, r) {
    const b = s.bytes.slice();
    if (!s.directory) return MUTATIONS.bitflip!(s, r);
    const [from, to] = s.directory;
    const dv = new DataView(b.buffer);
    const at = from + int(r, Math.max(1, to - from - 4));
    // a 16- or 32-bit field set to an extreme or a nearby value
    const pick = [0, 0xffffffff, 0x7fffffff, dv.getUint32(at, true) + 1, dv.getUint32(at, true) - 1, int(r, 2 ** 32)][int(r, 6)]!;
    if (r() < 0.5) dv.setUint32(at, pick >>> 0, true);
    else dv.setUint16(at, pick & 0xffff, true);
    return b;
  },
  pickleEdit(s, r) {
    const [from, to] = s.pickle;
    if (to <= from) return MUTATIONS.zeroRun!(s, r);
    const b = s.bytes.slice();
    const at = from + int(r, to - from);
    const choice = int(r, 3);
    if (choice === 0) b[at] = OPCODES[int(r, OPCODES.length)]!;
    else if (choice === 1) b[at] = int(r, 256);
    else b[at] = b[from + int(r, to - from)]!; // a byte from elsewhere in the pickle
    return b;
  },
};

/** Reads every tensor's bytes (bounded) and re-pickles the root: what the CLI would do. */
function exercise(root: PyValue): void {
  const seen = new Set<object>();
  const stack: PyValue[] = [root];
  while (stack.length) {
    const v = stack.pop()!;
    if (v === null || typeof v !== 'object' || seen.has(v)) continue;
    seen.add(v);
    if (v instanceof Tensor) {
      if (v.numel * v.storage.byteLength / Math.max(1, v.storage.numel) <= MATERIALIZE_LIMIT) v.contiguousBytes();
    } else if (Array.isArray(v)) stack.push(...v);
    else if (v instanceof PyTuple) stack.push(...v.items);
    else if (v instanceof PyDict) stack.push(...v.map.values(), ...v.attrs.values());
    else if (v instanceof PyObject) stack.push(...v.args, ...[v.state, v.value, v.dictItems ?? null, v.listItems ?? null].filter((x): x is PyValue => x !== undefined));
  }
  try {
    findStateDict(root);
  } catch (e) {
    if (!(e instanceof RepmlpError)) throw e;
  }
  // what inspect shows: every candidate state dict and a summary of every value
  listStateDicts(root);
  summarize(root);
  if (root instanceof PyDict) for (const v of root.map.values()) summarize(v);
  pickleCheckpoint(root);
}

test(`fuzz: ${CASES} mutated checkpoints load or fail with RepmlpError`, { timeout: 120_000 }, () => {
  const r = mulberry32(SEED);
  const names = Object.keys(MUTATIONS);
  const counts: Record<string, { loaded: number; refused: number }> = {};
  const errors = new Map<string, number>();
  const t0 = performance.now();
  let slowest = 0;
  for (let i = 0; i < CASES; i++) {
    const seed = SEEDS[i % SEEDS.length]!;
    const m = names[int(r, names.length)]!;
    const bytes = MUTATIONS[m]!(seed, r);
    const c = (counts[m] ??= { loaded: 0, refused: 0 });
    const start = performance.now();
    try {
      exercise(readCheckpointSync(bytes).root);
      c.loaded++;
    } catch (e) {
      if (!(e instanceof RepmlpError)) {
        assert.fail(`case ${i} (${seed.name}, ${m}, seed ${SEED}): ${(e as Error)?.name}: ${(e as Error)?.message}\n${(e as Error)?.stack}`);
      }
      assert.ok(e.message.length > 0 && !e.message.includes('\n'), `case ${i}: message must be one non-empty line: ${JSON.stringify(e.message)}`);
      c.refused++;
      errors.set(e.name, (errors.get(e.name) ?? 0) + 1);
    }
    slowest = Math.max(slowest, performance.now() - start);
  }
  const ms = performance.now() - t0;
  const rss = process.memoryUsage().rss;
  console.log(`fuzz: ${CASES} cases in ${(ms / 1000).toFixed(1)} s (slowest ${slowest.toFixed(1)} ms), seed ${SEED}, rss ${(rss / 2 ** 20).toFixed(0)} MB`);
  for (const [m, c] of Object.entries(counts)) console.log(`  ${m.padEnd(14)} loaded ${String(c.loaded).padStart(5)}  refused ${String(c.refused).padStart(5)}`);
  console.log(`  errors: ${[...errors].map(([n, k]) => `${n} ${k}`).join(', ')}`);
  assert.ok(slowest < 5000, `a case took ${slowest} ms`);
  assert.ok(rss < 1.5 * 2 ** 30, `rss grew to ${rss}`);
});

test('fuzz: truncation at every region boundary (+-1) and every 7th byte, every seed file', { timeout: 120_000 }, () => {
  let loaded = 0;
  let refused = 0;
  for (const seed of SEEDS) {
    const cuts = new Set<number>();
    for (const b of seed.boundaries) for (const d of [-1, 0, 1]) if (b + d >= 0 && b + d < seed.bytes.length) cuts.add(b + d);
    for (let i = 0; i < seed.bytes.length; i += 7) cuts.add(i);
    for (const n of cuts) {
      try {
        exercise(readCheckpointSync(seed.bytes.slice(0, n)).root);
        loaded++;
      } catch (e) {
        if (!(e instanceof RepmlpError)) assert.fail(`${seed.name} cut at ${n}: ${(e as Error)?.name}: ${(e as Error)?.message}`);
        assert.ok(e.message.length > 0 && !e.message.includes('\n'));
        refused++;
      }
    }
  }
  console.log(`fuzz: truncations: ${loaded + refused} cases, ${refused} refused, ${loaded} loaded`);
  // a truncated checkpoint never loads: every region is needed
  assert.equal(loaded, 0);
});
