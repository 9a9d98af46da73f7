"""Checkpoint fixtures for src/pth, made with real PyTorch (Debian's python3-torch).

    /usr/bin/python3 tools/make_ckpt_fixtures.py            # (re)writes fixtures/ckpt/
    /usr/bin/python3 tools/make_ckpt_fixtures.py describe FILE [--weights-only] [--map-cpu]
    /usr/bin/python3 tools/make_ckpt_fixtures.py describe-many FILE...   # JSON per file
    /usr/bin/python3 tools/make_ckpt_fixtures.py train-ckpt OUT [PRESET]   # big, into /tmp

For every case NAME it writes `NAME.pth` (torch's zip format), `NAME.legacy.pth`
(`_use_new_zipfile_serialization=False`) and `NAME.json`: what torch.load returns for
that file, described losslessly (see `describe`). Tests compare the TypeScript reader's
view of each file with that JSON, and the `describe` sub-command lets interop tests ask
torch what it makes of a file the TypeScript writer produced.

`cuda` fixtures: this machine has no GPU, so the location string is patched after
saving: in the pickle, every `BINUNICODE 'cpu'` (b'X\\x03\\x00\\x00\\x00cpu') becomes
`BINUNICODE 'cuda:0'`. The zip form is re-packed with torch's own PyTorchFileWriter so
the layout stays torch's; the legacy form is a stream of pickles, so the bytes are
replaced in place. torch.load(map_location='cpu') reads both (checked below).

`small.safetensors` is written by `write_safetensors` below (the safetensors package is
not installed): 8-byte little-endian header length, JSON header, data tiled in order.
"""
import collections
import hashlib
import io
import json
import os
import struct
import sys
import zipfile

import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, '..', 'fixtures', 'ckpt')


# ---------------------------------------------------------------------------------------
# Lossless description of a loaded object (the JSON the tests compare against)

def tensor_bytes(t):
    t = t.detach().contiguous()
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    if t.dtype == torch.bool:
        t = t.view(torch.uint8)
    return t.numpy().tobytes()


def storage_bytes(t):
    st = t.storage()
    whole = torch.empty(0, dtype=t.dtype).set_(st, 0, (st.size(),), (1,))
    return tensor_bytes(whole)


class Describer:
    """Storages are named s0, s1, ... in order of first appearance, so sharing shows."""

    def __init__(self):
        self.storages = {}

    def __call__(self, v):
        if isinstance(v, torch.Tensor):
            key = v.storage()._cdata
            if key not in self.storages:
                self.storages[key] = 's%d' % len(self.storages)
            return {
                'type': 'tensor', 'dtype': str(v.dtype)[len('torch.'):],
                'shape': list(v.shape), 'stride': list(v.stride()), 'offset': v.storage_offset(),
                'storage': self.storages[key], 'storage_numel': v.storage().size(),
                'storage_sha256': hashlib.sha256(storage_bytes(v)).hexdigest(),
                'sha256': hashlib.sha256(tensor_bytes(v)).hexdigest(),
                'requires_grad': bool(v.requires_grad), 'parameter': isinstance(v, nn.Parameter),
            }
        if isinstance(v, dict):
            d = {'type': 'OrderedDict' if isinstance(v, collections.OrderedDict) else 'dict',
                 'items': [[self(k), self(x)] for k, x in v.items()]}
            meta = getattr(v, '_metadata', None)
            if meta is not None:
                d['metadata'] = self(meta)
            return d
        if isinstance(v, list):
            return {'type': 'list', 'items': [self(x) for x in v]}
        if isinstance(v, tuple):
            return {'type': 'tuple', 'items': [self(x) for x in v]}
        if v is None:
            return {'type': 'None'}
        if isinstance(v, bool):
            return {'type': 'bool', 'value': v}
        if isinstance(v, int):
            return {'type': 'int', 'value': str(v)}
        if isinstance(v, float):
            return {'type': 'float', 'bits': struct.pack('<d', v).hex(), 'repr': repr(v)}
        if isinstance(v, str):
            return {'type': 'str', 'value': v}
        if isinstance(v, (bytes, bytearray)):
            return {'type': 'bytes', 'hex': bytes(v).hex()}
        raise TypeError('cannot describe %r' % type(v))


def describe(obj):
    return Describer()(obj)


# ---------------------------------------------------------------------------------------
# The cases

def sd_with_metadata(sd, meta):
    sd = collections.OrderedDict(sd)
    sd._metadata = collections.OrderedDict(meta)
    return sd


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3, bias=False)
        self.bn = nn.BatchNorm2d(3)
        self.fc = nn.Linear(3, 2)


def tiny(seed=0):
    torch.manual_seed(seed)
    m = Tiny()
    with torch.no_grad():
        m.bn.running_mean.uniform_(-1, 1)
        m.bn.running_var.uniform_(0.5, 2)
    m.bn.num_batches_tracked += 7
    return m


def case_dtypes():
    g = torch.Generator().manual_seed(1)
    f = torch.randn(2, 3, generator=g)
    specials = torch.tensor([0.0, -0.0, float('inf'), float('-inf'), float('nan'), 1e-8, 65504.0, 3.0e38])
    return collections.OrderedDict([
        ('float32', f), ('float64', f.double() * 1e100), ('float16', f.half()), ('bfloat16', f.bfloat16()),
        ('int64', torch.tensor([-(2 ** 63), -1, 0, 1, 2 ** 63 - 1])),
        ('int32', torch.tensor([-(2 ** 31), -5, 2 ** 31 - 1], dtype=torch.int32)),
        ('int16', torch.tensor([-32768, 7, 32767], dtype=torch.int16)),
        ('int8', torch.tensor([-128, 0, 127], dtype=torch.int8)),
        ('uint8', torch.tensor([0, 1, 255], dtype=torch.uint8)),
        ('bool', torch.tensor([True, False, True])),
        ('specials32', specials), ('specials16', specials.half()), ('specialsbf16', specials.bfloat16()),
    ])


def case_views():
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    shared = torch.arange(10, dtype=torch.int64)
    return collections.OrderedDict([
        ('base', base),
        ('transposed', base.t()),                 # stride (1, 6)
        ('sliced', base[1:, ::2]),                # offset 6, stride (6, 2)
        ('row', base[2]),                         # offset 12, shares base's storage
        ('expanded', torch.tensor([1.5, 2.5]).expand(3, 2)),  # stride (0, 1)
        ('scalar', torch.tensor(3.25)),           # 0-d
        ('scalar_int', torch.tensor(-7)),
        ('empty', torch.zeros(0, 3)),
        ('empty_i8', torch.zeros(2, 0, dtype=torch.int8)),
        ('shared_a', shared[:4]),
        ('shared_b', shared[6:]),
        ('f16_view', torch.arange(12, dtype=torch.float16).reshape(3, 4)[:, 1:3]),
        ('bool_t', torch.tensor([[True, False], [False, False]]).t()),
    ])


def case_containers():
    t = torch.tensor([1.0, 2.0])
    return {
        'list': [1, 2.5, 'three', None, True, False, t],
        'tuple': (1, (2, (3,)), ()),
        'ints': [0, 1, 255, 256, 65535, 65536, -1, -129, 2 ** 31 - 1, 2 ** 31, -(2 ** 31), -(2 ** 31) - 1,
                 2 ** 63, -(2 ** 63) - 1, 2 ** 100],
        'floats': [0.0, -0.0, 0.1, 1e-310, 1e300, float('inf'), float('-inf'), float('nan')],
        'str': 'héllo wörld ✓ \U0001F600',
        'empty_str': '',
        'none': None,
        'nested': {'a': {'b': {'c': [t, t]}}},
        3: 'int key',
        (1, 'x'): 'tuple key',
        '__proto__': 'plain key',
        'constructor': {'prototype': 1},
        'empty_dict': {}, 'empty_list': [], 'empty_od': collections.OrderedDict(),
    }


def case_wrapped_state_dict():
    m = tiny(1)
    sd = m.state_dict()
    return {'state_dict': sd, 'epoch': 5, 'best_acc1': 0.725,
            'optimizer': {'state': {}, 'param_groups': [{'lr': 0.1, 'momentum': 0.9, 'params': [0, 1, 2]}]},
            'arch': 'Tiny'}


def case_model_wrapped():
    return {'model': tiny(2).state_dict(), 'epoch': 3}


def case_state_dict():
    return tiny(3).state_dict()


def case_ddp():
    # nn.DataParallel on CPU just wraps: keys get 'module.', _metadata gets 'module' and ''.
    return nn.DataParallel(tiny(4)).state_dict()


def case_ddp_wrapped():
    return {'state_dict': nn.DataParallel(tiny(5)).state_dict(), 'epoch': 90}


def case_parameter():
    torch.manual_seed(6)
    return collections.OrderedDict([
        ('p', nn.Parameter(torch.randn(3, 2))),
        ('frozen', nn.Parameter(torch.randn(2), requires_grad=False)),
        ('grad', torch.randn(2).requires_grad_()),
        ('plain', torch.randn(1)),
    ])


def case_metadata_only():
    return sd_with_metadata([('w', torch.ones(2)), ('module.w', torch.zeros(1))],
                            [('', {'version': 1}), ('module', {'version': 2}), ('modulex', {'version': 3})])


CASES = {
    'dtypes': case_dtypes, 'views': case_views, 'containers': case_containers,
    'wrapped': case_wrapped_state_dict, 'model_wrapped': case_model_wrapped,
    'state_dict': case_state_dict, 'ddp': case_ddp, 'ddp_wrapped': case_ddp_wrapped,
    'parameter': case_parameter, 'metadata': case_metadata_only,
}

CPU_PID = b'X\x03\x00\x00\x00cpu'
CUDA_PID = b'X\x06\x00\x00\x00cuda:0'


def patch_zip_location(path):
    with zipfile.ZipFile(path) as z:
        records = [(i.filename, z.read(i.filename)) for i in z.infolist()]
    top = records[0][0].split('/')[0]
    w = torch._C.PyTorchFileWriter(path)  # re-pack with torch's own writer (its layout)
    for name, data in records:
        rel = name[len(top) + 1:]
        if rel == 'version':
            continue  # the writer adds it
        if rel == 'data.pkl':
            data = data.replace(CPU_PID, CUDA_PID)
        w.write_record(rel, data, len(data))
    w.write_end_of_file()


def patch_legacy_location(path):
    with open(path, 'rb') as f:
        data = f.read()
    with open(path, 'wb') as f:
        f.write(data.replace(CPU_PID, CUDA_PID))


# ---------------------------------------------------------------------------------------
# safetensors (tiny writer: the package is not installed)

ST_DTYPES = {torch.float64: 'F64', torch.float32: 'F32', torch.float16: 'F16', torch.bfloat16: 'BF16',
             torch.int64: 'I64', torch.int32: 'I32', torch.int16: 'I16', torch.int8: 'I8',
             torch.uint8: 'U8', torch.bool: 'BOOL'}


def write_safetensors(path, tensors, metadata=None):
    header, blobs, off = {}, [], 0
    if metadata:
        header['__metadata__'] = metadata
    for name, t in tensors.items():
        b = tensor_bytes(t)
        header[name] = {'dtype': ST_DTYPES[t.dtype], 'shape': list(t.shape), 'data_offsets': [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(',', ':')).encode()
    h += b' ' * (-len(h) % 8)  # as the reference writer does: data 8-byte aligned
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def safetensors_case():
    d = collections.OrderedDict()
    for k, v in case_dtypes().items():
        d[k] = v
    d['scalar'] = torch.tensor(2.5)
    d['empty'] = torch.zeros(0, 4)
    d['module.conv.weight'] = torch.arange(8, dtype=torch.float32).reshape(2, 2, 2)
    return d


def describe_safetensors(tensors, metadata):
    d = Describer()
    kept = [(k, t.contiguous().clone()) for k, t in tensors.items()]  # alive: no address reuse
    items = [[{'type': 'str', 'value': k}, d(t)] for k, t in kept]
    return {'type': 'OrderedDict', 'items': items, 'safetensors_metadata': metadata}


# ---------------------------------------------------------------------------------------

def write_json(path, obj):
    with open(path, 'w') as f:
        json.dump(obj, f, indent=1, sort_keys=False)
        f.write('\n')


def make_all():
    os.makedirs(OUT, exist_ok=True)
    for name, make in CASES.items():
        obj = make()
        expect = describe(obj)
        for fmt, fname, new in (('zip', name + '.pth', True), ('legacy', name + '.legacy.pth', False)):
            p = os.path.join(OUT, fname)
            torch.save(obj, p, _use_new_zipfile_serialization=new)
            assert describe(torch.load(p)) == expect, (name, fmt)
        write_json(os.path.join(OUT, name + '.json'), {'case': name, 'torch': torch.__version__, 'object': expect})
    # cuda:0 locations (patched, see module doc)
    obj = case_state_dict()
    expect = describe(obj)
    for fname, new, patch in (('cuda.pth', True, patch_zip_location), ('cuda.legacy.pth', False, patch_legacy_location)):
        p = os.path.join(OUT, fname)
        torch.save(obj, p, _use_new_zipfile_serialization=new)
        patch(p)
        try:
            torch.load(p)
            raise AssertionError('cuda patch had no effect on ' + fname)
        except RuntimeError:
            pass  # no GPU: torch refuses without map_location, as users see
        assert describe(torch.load(p, map_location='cpu')) == expect
    write_json(os.path.join(OUT, 'cuda.json'), {'case': 'cuda', 'torch': torch.__version__, 'object': expect,
                                                'location': 'cuda:0'})
    st = safetensors_case()
    meta = {'format': 'pt', 'note': 'made by tools/make_ckpt_fixtures.py'}
    write_safetensors(os.path.join(OUT, 'small.safetensors'), st, meta)
    write_json(os.path.join(OUT, 'small.safetensors.json'),
               {'case': 'small', 'object': describe_safetensors(st, meta)})


def cmd_describe(argv):
    path = argv[0]
    kw = {}
    if '--weights-only' in argv:
        kw['weights_only'] = True
    if '--map-cpu' in argv:
        kw['map_location'] = 'cpu'
    if path.endswith('.safetensors'):
        print(json.dumps(read_safetensors_py(path)))
        return
    print(json.dumps({'object': describe(torch.load(path, **kw))}))


def cmd_describe_many(paths):
    """For interop tests, one process for many files: per file, what plain torch.load and
    torch.load(weights_only=True) return (or the error they raise), and a CRC check of
    the zip by Python's zipfile."""
    out = {}
    for path in paths:
        r = {}
        if path.endswith('.safetensors'):
            r['plain'] = read_safetensors_py(path)['object']
        else:
            for mode, kw in (('plain', {}), ('weights_only', {'weights_only': True})):
                try:
                    r[mode] = describe(torch.load(path, **kw))
                except Exception as e:  # noqa: BLE001 - reported to the test
                    r[mode + '_error'] = '%s: %s' % (type(e).__name__, str(e).split('\n')[0])
            if zipfile.is_zipfile(path):
                with zipfile.ZipFile(path) as z:
                    r['zip_bad_crc'] = z.testzip()
                    r['zip_names'] = z.namelist()
        out[path] = r
    print(json.dumps(out))


def read_safetensors_py(path):
    """Reads a safetensors file with plain Python + torch (for interop tests)."""
    with open(path, 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        header = json.loads(f.read(n), object_pairs_hook=collections.OrderedDict)
        data = f.read()
    inv = {v: k for k, v in ST_DTYPES.items()}
    meta = header.pop('__metadata__', None)
    tensors = collections.OrderedDict()
    for name, h in header.items():
        b, e = h['data_offsets']
        dt = inv[h['dtype']]
        raw = bytearray(data[b:e])
        if dt == torch.bool:
            t = torch.frombuffer(raw, dtype=torch.uint8).bool() if raw else torch.zeros(0, dtype=torch.bool)
        else:
            t = torch.frombuffer(raw, dtype=dt) if raw else torch.zeros(0, dtype=dt)
        tensors[name] = t.reshape(h['shape'])
    return {'object': describe_safetensors(tensors, meta)}


def cmd_train_ckpt(argv):
    """A training checkpoint like the release's: {'epoch', 'arch', 'state_dict', 'best_acc1', 'optimizer'}."""
    sys.path.insert(0, HERE)
    from repmlp_ref import build_model
    out, preset = argv[0], (argv[1] if len(argv) > 1 else 'RepMLP-Res50-light-224')
    m = build_model(preset)
    sd = nn.DataParallel(m).state_dict() if '--ddp' in argv else m.state_dict()
    torch.save({'epoch': 100, 'arch': preset, 'state_dict': sd, 'best_acc1': 80.1}, out)


if __name__ == '__main__':
    if len(sys.argv) > 1 and sys.argv[1] == 'describe-many':
        cmd_describe_many(sys.argv[2:])
    elif len(sys.argv) > 1 and sys.argv[1] == 'describe':
        cmd_describe(sys.argv[2:])
    elif len(sys.argv) > 1 and sys.argv[1] == 'train-ckpt':
        cmd_train_ckpt(sys.argv[2:])
    else:
        make_all()
