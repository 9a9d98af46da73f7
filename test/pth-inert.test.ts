/**
 * Checkpoints as training scripts save them (fixtures/ckpt/inert, made by real torch with
 * tools/make_inert_fixtures.py): each file is read, its state dict chosen (default and
 * --entry) and compared with what torch.load(weights_only=False) returned, its other
 * values (Namespace, numpy, CfgNode, DictConfig, set, ...) compared as plain data.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { loadStateDictFile, readCheckpoint } from '../src/pth/index.js';
import { PyDict, PyObject, PyOther, PyTuple, type PyValue } from '../src/pth/pyobj.js';
import { isModule } from '../src/pth/nnmodule.js';
import { Tensor } from '../src/tensor.js';
import { inspectFile, formatReport } from '../src/cli/inspect.js';
import { CKPT } from './pth-describe.js';

const DIR = path.join(CKPT, 'inert');

interface CaseJson {
  case: string;
  files: string[];
  weights_only_error: string | null;
  entries: Record<string, { path: string[]; state_dict: [string, string, number[], string][]; prefix: string | null }>;
  values: Record<string, unknown>;
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** The TypeScript twin of make_inert_fixtures.py's `plain`. */
function plain(v: PyValue): unknown {
  if (v === null || typeof v === 'boolean' || typeof v === 'string') return v;
  if (typeof v === 'bigint') return { int: v.toString() };
  if (typeof v === 'number') return { float: v };
  if (v instanceof Tensor) return { tensor: v.dtype, shape: [...v.shape], sha256: sha(v.contiguousBytes()) };
  if (Array.isArray(v)) return v.map(plain);
  if (v instanceof PyTuple) return { tuple: v.items.map(plain) };
  if (v instanceof PyDict) return { dict: [...v.map].map(([k, x]) => [plain(k), plain(x)]) };
  if (v instanceof PyOther) {
    if (v.kind === 'set' || v.kind === 'frozenset') return { [v.kind]: sortPlain((v.value as PyValue[]).map(plain)) };
    if (v.kind === 'bytearray') return { bytearray: Buffer.from(v.value as Uint8Array).toString('hex') };
    if (v.kind === 'complex') return { complex: (v.value as PyTuple).items };
    return { [v.kind]: v.value };
  }
  if (v instanceof PyObject) {
    if (isModule(v)) return { module: v.global };
    const x = v.value;
    if (v.type === 'numpy.dtype') return { 'numpy.dtype': x };
    if (v.type === 'numpy.ndarray') return x instanceof Tensor ? { ndarray: x.dtype, shape: [...x.shape], sha256: sha(x.contiguousBytes()) } : { inert: v.type };
    if (v.type.startsWith('numpy.')) return { numpy: v.type.slice(6).replace(/_$/, ''), value: typeof x === 'bigint' ? x.toString() : x };
    if (v.global === 'argparse.Namespace') return { namespace: plain(x!) };
    if (v.global === 'yacs.config.CfgNode') return { cfgnode: plain(x!) };
    if (v.global === 'omegaconf.dictconfig.DictConfig') return { dictconfig: plain(x!) };
    return { inert: v.global };
  }
  return { unknown: String(v) };
}

const sortPlain = (a: unknown[]) => [...a].sort((x, y) => (JSON.stringify(x) < JSON.stringify(y) ? -1 : 1));

/** Python's JSON as ours reads: float reprs as numbers, sets sorted the same way. */
function normalize(x: unknown): unknown {
  if (Array.isArray(x)) return x.map(normalize);
  if (x && typeof x === 'object') {
    const o = x as Record<string, unknown>;
    if (typeof o.float === 'string' && Object.keys(o).length === 1) return { float: Number(o.float) };
    if (Array.isArray(o.set)) return { set: sortPlain(o.set.map(normalize)) };
    if (Array.isArray(o.frozenset)) return { frozenset: sortPlain(o.frozenset.map(normalize)) };
    return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, normalize(v)]));
  }
  return x;
}

const cases = readdirSync(DIR).filter((f) => f.endsWith('.json')).map((f) => JSON.parse(readFileSync(path.join(DIR, f), 'utf8')) as CaseJson);

test('inert fixtures exist (tools/make_inert_fixtures.py)', () => {
  assert.ok(cases.length >= 13, `only ${cases.length} cases in ${DIR}`);
});

for (const c of cases) {
  for (const file of c.files) {
    test(`inert ${file}: state dicts (default and --entry) and values equal torch's`, async () => {
      const p = path.join(DIR, file);
      for (const [entry, want] of Object.entries(c.entries)) {
        const got = await loadStateDictFile(p, entry ? { entry } : {});
        assert.deepEqual(got.wrapper, want.path, `${entry}: wrapper path`);
        assert.equal(got.prefix, want.prefix, `${entry}: prefix`);
        const rows = [...got.stateDict].map(([k, t]) => [k, t.dtype, [...t.shape], sha(t.contiguousBytes())]);
        assert.deepEqual(rows, want.state_dict, `${entry || 'default'}: state dict`);
      }
      const ck = await readCheckpoint(p);
      if (ck.root instanceof PyDict) {
        const values: Record<string, unknown> = {};
        for (const [k, v] of ck.root.map) {
          if ((v instanceof PyDict && v.ordered) || (v instanceof PyObject && isModule(v)) || k === 'model') continue;
          values[String(k)] = plain(v);
        }
        const want = normalize(c.values) as Record<string, unknown>;
        // numpy arrays of a dtype we have no tensor for (uint16) stay inert placeholders
        for (const [k, v] of Object.entries(values)) {
          if ((v as { inert?: string }).inert !== 'numpy.ndarray') continue;
          assert.equal((want[k] as { ndarray?: string }).ndarray, 'uint16', k);
          delete want[k];
          delete values[k];
        }
        assert.deepEqual(values, want);
      }
      // what torch's weights_only refuses, we keep inert (and say so); --strict-globals refuses it too
      if (ck.inertGlobals.length) {
        assert.ok(c.weights_only_error, `${file}: torch's weights_only accepted what we kept inert: ${ck.inertGlobals.join(', ')}`);
        await assert.rejects(readCheckpoint(p, { strictGlobals: true }), { name: 'PickleError', message: new RegExp(`refusing global '(${ck.inertGlobals.join('|').replace(/\./g, '\\.')})': not in torch's weights_only allow-list$`) });
      }
      const report = formatReport(await inspectFile(p));
      assert.ok(!/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/.test(report));
    });
  }
}

test('inspect shows placeholders as Python shows them, lists candidate state dicts and inert globals', async () => {
  const text = async (f: string, entry?: string) => formatReport(await inspectFile(path.join(DIR, f), entry ? { entry } : {}));
  const ns = await text('namespace.pth');
  assert.match(ns, /args=argparse\.Namespace\(arch='repmlp', lr=0\.1, epochs=90, betas=tuple of 2, amp=True, resume=None, \.\.\.\)/);
  assert.match(ns, /kept as inert data \(nothing run; torch\.load\(weights_only=True\) would refuse them\): argparse\.Namespace$/m);
  const np = await text('numpy.pth');
  assert.match(np, /best_acc1=numpy\.float64\(76\.5\)/);
  assert.match(np, /step=numpy\.int64\(-12345\)/);
  assert.match(np, /arr=numpy\.ndarray\(float32 \[2, 3\]\)/);
  assert.match(np, /dtype=numpy\.dtype\('float64'\)/);
  assert.match(await text('cfgnode.pth'), /config=yacs\.config\.CfgNode\(\{'MODEL': yacs\.config\.CfgNode\(\{'ARCH': 'RepMLPNet-B224'/);
  const mod = await text('module.pth');
  assert.match(mod, /state dict: at the top level, rebuilt from a pickled nn\.Module/);
  assert.match(await text('module_wrapped.pth'), /model_ema=<pickled repmlp_resnet\.RepMLPResNet>/);
  const ema = await inspectFile(path.join(DIR, 'ema.pth'));
  assert.deepEqual(ema.stateDicts.map((s) => [s.path, s.default, s.used]), [[['state_dict'], true, true], [['state_dict_ema'], false, false]]);
  const emaUsed = await inspectFile(path.join(DIR, 'ema.pth'), { entry: 'state_dict_ema' });
  assert.deepEqual(emaUsed.stateDicts.map((s) => s.used), [false, true]);
  assert.deepEqual(ema.wrapper, ['state_dict']);
  assert.deepEqual(ema.inertGlobals, ['argparse.Namespace']);
  assert.deepEqual((await inspectFile(path.join(DIR, 'ema.pth'), { entry: 'state_dict_ema' })).wrapper, ['state_dict_ema']);
  assert.match(await text('ema.pth'), /state dicts found: state_dict \(23 tensors, default\), state_dict_ema \(23 tensors\); choose one with --entry PATH/);
  assert.match(await text('ddp_orig_mod.pth'), /keys prefixed 'module\._orig_mod\.' \(DataParallel\/DDP \+ torch\.compile\)/);
  await assert.rejects(inspectFile(path.join(DIR, 'ema.pth'), { entry: 'state_dict_emb' }), {
    message: `${path.join(DIR, 'ema.pth')}: --entry 'state_dict_emb': no entry 'state_dict_emb' (it holds: epoch, arch, state_dict, optimizer, version, args, metric, state_dict_ema)`,
  });
  await assert.rejects(loadStateDictFile(path.join(DIR, 'ema.pth'), { entry: 'epoch' }), {
    message: `${path.join(DIR, 'ema.pth')}: --entry 'epoch' holds no state dict (a dict of name -> tensor); it is an int`,
  });
});
