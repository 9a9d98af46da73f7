"""Checkpoints as training scripts save them, made with real PyTorch (issue 13):
argparse.Namespace args, numpy scalars / arrays / dtypes, a yacs CfgNode, an
omegaconf-style DictConfig, set / frozenset / bytearray / complex at torch.save's
protocol 2, whole pickled nn.Modules, timm's EMA wrapper, torch.compile prefixes.

    /usr/bin/python3 tools/make_inert_fixtures.py      # (re)writes fixtures/ckpt/inert/

For every case NAME it writes NAME.pth (zip; some cases also NAME.legacy.pth) and
NAME.json: what torch.load(weights_only=False) returns, as plain JSON (see `plain`):
the state dict each --entry should give (after stripping wrapper prefixes), and the
other values. The tests read each file with the TypeScript reader and compare.

yacs and omegaconf are not installed: stand-in classes are put in sys.modules under the
real module names (yacs.config.CfgNode, omegaconf.dictconfig.DictConfig,
omegaconf.nodes.AnyNode), shaped as the real ones pickle (CfgNode: a dict subclass
whose __dict__ carries its flags; DictConfig: state with `_content` of nodes holding
`_val`), so the pickles name exactly what real files name. The whole-module pickles
name their classes' module `repmlp_resnet`, as a user's training script would.
"""
import argparse
import collections
import hashlib
import json
import os
import sys
import types

import numpy as np
import torch
import torch.nn as nn

# set / frozenset order follows str hashes: fixed, so the zip files are the same every run
# (the legacy ones are not: torch names their storages by memory address).
if __name__ == '__main__' and os.environ.get('PYTHONHASHSEED') != '0':
    os.execve(sys.executable, [sys.executable] + sys.argv, dict(os.environ, PYTHONHASHSEED='0'))

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, '..', 'fixtures', 'ckpt', 'inert')


def stand_in(modname, **classes):
    """A module in sys.modules holding the given classes, which pickle names by it."""
    parts = modname.split('.')
    for i in range(1, len(parts) + 1):
        name = '.'.join(parts[:i])
        if name not in sys.modules:
            sys.modules[name] = types.ModuleType(name)
        if i > 1:
            setattr(sys.modules['.'.join(parts[:i - 1])], parts[i - 1], sys.modules[name])
    mod = sys.modules[modname]
    for k, c in classes.items():
        c.__module__ = modname
        c.__qualname__ = k
        setattr(mod, k, c)
    return mod


class CfgNode(dict):
    """As yacs.config.CfgNode: a dict whose flags live in __dict__."""

    def __init__(self, init_dict=None, new_allowed=False):
        super().__init__(init_dict or {})
        self.__dict__['__immutable__'] = False
        self.__dict__['__deprecated_keys__'] = set()
        self.__dict__['__renamed_keys__'] = {}
        self.__dict__['__new_allowed__'] = new_allowed

    def __getattr__(self, name):
        if name in self:
            return self[name]
        raise AttributeError(name)


class AnyNode:
    def __init__(self, val):
        self._val = val
        self._metadata = None
        self._parent = None


class DictConfig:
    def __init__(self, content):
        self._metadata = None
        self._parent = None
        self._content = {k: (v if isinstance(v, DictConfig) else AnyNode(v)) for k, v in content.items()}

    def __getstate__(self):
        return dict(self.__dict__)

    def __setstate__(self, s):
        self.__dict__.update(s)


stand_in('yacs.config', CfgNode=CfgNode)
stand_in('omegaconf.nodes', AnyNode=AnyNode)
stand_in('omegaconf.dictconfig', DictConfig=DictConfig)


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(c)
        self.register_buffer('scratch', torch.zeros(2), persistent=False)  # not in state_dict()
        self.register_buffer('nothing', None)                              # None: skipped
        self.act = nn.ReLU()


class RepMLPResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
        self.stages = nn.ModuleList([Block(4), Block(4)])
        self.head = nn.Linear(4, 5)
        self.temperature = nn.Parameter(torch.tensor(1.5))
        self.register_buffer('steps', torch.tensor(7))


class OptimizedModule(nn.Module):
    """What torch.compile wraps a model in (torch >= 2): its state dict keys get `_orig_mod.`."""

    def __init__(self, m):
        super().__init__()
        self._orig_mod = m


stand_in('repmlp_resnet', Block=Block, RepMLPResNet=RepMLPResNet)
stand_in('torch._dynamo.eval_frame', OptimizedModule=OptimizedModule)


def model(seed):
    torch.manual_seed(seed)
    m = RepMLPResNet()
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_mean.uniform_(-1, 1)
                mod.running_var.uniform_(0.5, 2)
    return m


def tiny_sd(seed):
    return model(seed).state_dict()


# ---------------------------------------------------------------------------------------
# plain JSON of what torch.load returns (the TypeScript twin is test/pth-inert.test.ts)

def sha(b):
    return hashlib.sha256(b).hexdigest()


def tensor_json(t):
    t = t.detach().contiguous()
    return {'tensor': str(t.dtype)[len('torch.'):], 'shape': list(t.shape), 'sha256': sha(t.numpy().tobytes())}


def plain(v):
    if isinstance(v, torch.Tensor):
        return tensor_json(v)
    if isinstance(v, np.ndarray):
        return {'ndarray': v.dtype.name, 'shape': list(v.shape),
                'sha256': sha(np.ascontiguousarray(v).astype(v.dtype.newbyteorder('<')).tobytes())}
    if isinstance(v, np.generic):
        x = v.item()
        return {'numpy': v.dtype.name, 'value': str(x) if isinstance(x, int) and not isinstance(x, bool) else x}
    if isinstance(v, np.dtype):
        return {'numpy.dtype': v.name}
    if isinstance(v, argparse.Namespace):
        return {'namespace': plain(vars(v))}
    if isinstance(v, CfgNode):
        return {'cfgnode': plain(dict(v))}
    if isinstance(v, DictConfig):
        return {'dictconfig': plain({k: (x._val if isinstance(x, AnyNode) else x) for k, x in v._content.items()})}
    if isinstance(v, dict):
        return {'dict': [[plain(k), plain(x)] for k, x in v.items()]}
    if isinstance(v, list):
        return [plain(x) for x in v]
    if isinstance(v, tuple):
        return {'tuple': [plain(x) for x in v]}
    if isinstance(v, frozenset):
        return {'frozenset': sorted(plain(x) for x in v)}
    if isinstance(v, set):
        return {'set': sorted((plain(x) for x in v), key=json.dumps)}
    if isinstance(v, bytearray):
        return {'bytearray': bytes(v).hex()}
    if isinstance(v, complex):
        return {'complex': [v.real, v.imag]}
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v
    if isinstance(v, int):
        return {'int': str(v)}
    if isinstance(v, float):
        return {'float': repr(v)}
    if isinstance(v, nn.Module):
        return {'module': type(v).__module__ + '.' + type(v).__qualname__}
    raise TypeError('cannot describe %r' % type(v))


def sd_json(sd, strip=()):
    out = []
    for k, t in sd.items():
        for p in strip:
            assert k.startswith(p), (k, p)
            k = k[len(p):]
        out.append([k] + [tensor_json(t)[f] for f in ('tensor', 'shape', 'sha256')])
    return out


# ---------------------------------------------------------------------------------------
# The cases: (object, {entry or '': (path, expected state dict, stripped prefix)}, legacy too?)

def case_namespace():
    sd = tiny_sd(1)
    args = argparse.Namespace(arch='repmlp', lr=0.1, epochs=90, betas=(0.9, 0.999), amp=True, resume=None,
                              data='/data/imagenet', gpu_ids=[0, 1])
    return ({'epoch': 90, 'arch': 'RepMLPNet-B224', 'state_dict': sd, 'best_acc1': 76.5, 'args': args},
            {'': (['state_dict'], sd_json(sd), None)})


def case_numpy():
    sd = tiny_sd(2)
    return ({'state_dict': sd, 'best_acc1': np.float64(76.5), 'acc32': np.float32(0.25), 'step': np.int64(-12345),
             'flag': np.bool_(True), 'half': np.float16(1.5), 'small': np.int8(-3), 'u': np.uint8(200),
             'arr': np.arange(6, dtype=np.float32).reshape(2, 3),
             'arr_f': np.asfortranarray(np.arange(6, dtype=np.float64).reshape(2, 3)),
             'arr_be': np.arange(3, dtype='>i4'), 'arr_bool': np.array([True, False]),
             'arr_u16': np.arange(3, dtype=np.uint16),
             'dtype': np.dtype('float64'), 'dtype_i4': np.dtype('int32')},
            {'': (['state_dict'], sd_json(sd), None)})


def case_cfgnode():
    sd = tiny_sd(3)
    cfg = CfgNode({'MODEL': CfgNode({'ARCH': 'RepMLPNet-B224', 'NUM_CLASSES': 1000, 'DROP_PATH': 0.1}),
                   'TRAIN': CfgNode({'BASE_LR': 0.001, 'EPOCHS': 300, 'WARMUP': [5, 20]}), 'SEED': 0})
    return ({'model': sd, 'optimizer': {'state': {}, 'param_groups': []}, 'max_accuracy': 81.25, 'epoch': 299, 'config': cfg},
            {'': (['model'], sd_json(sd), None)})


def case_dictconfig():
    sd = tiny_sd(4)
    cfg = DictConfig({'model': DictConfig({'name': 'repmlp', 'width': 64}), 'lr': 0.01, 'tags': 'a'})
    return ({'state_dict': sd, 'hyper_parameters': cfg, 'epoch': 1}, {'': (['state_dict'], sd_json(sd), None)})


def case_builtins2():
    sd = tiny_sd(5)
    return ({'state_dict': sd, 'set': {1, 2, 3}, 'frozenset': frozenset({'a', 'b'}), 'bytearray': bytearray(b'x\x00\xffz'),
             'complex': complex(1.5, -2.0), 'empty_set': set()},
            {'': (['state_dict'], sd_json(sd), None)})


def case_module():
    m = model(6)
    return (m, {'': ([], sd_json(m.state_dict()), None)})


def case_module_ddp():
    m = model(7)
    dp = nn.DataParallel(m)
    return ({'model': dp, 'epoch': 2}, {'': (['model'], sd_json(dp.state_dict(), ['module.']), 'module.')})


def case_module_wrapped():
    m = model(8)
    ema = model(9)
    return ({'model': m, 'model_ema': ema, 'epoch': 4},
            {'': (['model'], sd_json(m.state_dict()), None), 'model_ema': (['model_ema'], sd_json(ema.state_dict()), None),
             'model.stages.1': (['model', 'stages', '1'], sd_json(m.stages[1].state_dict()), None)})


def case_ema():
    # timm's CheckpointSaver: {'epoch', 'arch', 'state_dict', 'optimizer', 'version', 'args', 'metric', 'state_dict_ema'}
    sd, ema = tiny_sd(10), tiny_sd(11)
    return ({'epoch': 10, 'arch': 'repmlp', 'state_dict': sd, 'optimizer': {'state': {}, 'param_groups': [{'lr': 0.1}]},
             'version': 2, 'args': argparse.Namespace(model='repmlp', model_ema=True), 'metric': 71.5, 'state_dict_ema': ema},
            {'': (['state_dict'], sd_json(sd), None), 'state_dict_ema': (['state_dict_ema'], sd_json(ema), None)})


def case_nested_ema():
    sd, ema = tiny_sd(12), tiny_sd(13)
    return ({'model': {'net': sd, 'ema': ema}, 'step': 1000},
            {'': (['model', 'net'], sd_json(sd), None), 'model.ema': (['model', 'ema'], sd_json(ema), None)})


def case_orig_mod():
    sd = OptimizedModule(model(14)).state_dict()
    return (sd, {'': ([], sd_json(sd, ['_orig_mod.']), '_orig_mod.')})


def case_ddp_orig_mod():
    sd = nn.DataParallel(OptimizedModule(model(15))).state_dict()
    return ({'state_dict': sd, 'epoch': 3}, {'': (['state_dict'], sd_json(sd, ['module.', '_orig_mod.']), 'module._orig_mod.')})


def case_orig_mod_ddp():
    sd = OptimizedModule(nn.DataParallel(model(16))).state_dict()
    return (sd, {'': ([], sd_json(sd, ['_orig_mod.', 'module.']), '_orig_mod.module.')})


CASES = {
    'namespace': (case_namespace, True), 'numpy': (case_numpy, False), 'cfgnode': (case_cfgnode, False),
    'dictconfig': (case_dictconfig, False), 'builtins2': (case_builtins2, True), 'module': (case_module, True),
    'module_ddp': (case_module_ddp, False), 'module_wrapped': (case_module_wrapped, False), 'ema': (case_ema, False),
    'nested_ema': (case_nested_ema, False), 'orig_mod': (case_orig_mod, False), 'ddp_orig_mod': (case_ddp_orig_mod, True),
    'orig_mod_ddp': (case_orig_mod_ddp, False),
}


def values_json(obj):
    """The wrapper's non-state-dict values, by key (a whole module: none)."""
    if not isinstance(obj, dict):
        return {}
    return {k: plain(v) for k, v in obj.items() if not isinstance(v, (collections.OrderedDict, nn.Module)) and k != 'model'}


def make_all():
    os.makedirs(OUT, exist_ok=True)
    for name, (make, legacy) in CASES.items():
        obj, entries = make()
        files = [name + '.pth'] + ([name + '.legacy.pth'] if legacy else [])
        for f in files:
            p = os.path.join(OUT, f)
            torch.save(obj, p, _use_new_zipfile_serialization=not f.endswith('.legacy.pth'))
            # what torch reads back (weights_only=False: the classes are importable here)
            back = torch.load(p)
            assert json.dumps(values_json(back)) == json.dumps(values_json(obj)), (name, f)
            try:
                torch.load(p, weights_only=True)
                wo = None
            except Exception as e:  # noqa: BLE001 - recorded: what weights_only says
                wo = '%s: %s' % (type(e).__name__, str(e).split('\n')[0])
        expect = {'case': name, 'torch': torch.__version__, 'files': files, 'weights_only_error': wo,
                  'entries': {k: {'path': p, 'state_dict': sd, 'prefix': pre} for k, (p, sd, pre) in entries.items()},
                  'values': values_json(back)}
        with open(os.path.join(OUT, name + '.json'), 'w') as f:
            json.dump(expect, f, indent=1)
            f.write('\n')


if __name__ == '__main__':
    make_all()
