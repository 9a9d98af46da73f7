"""Layout, precision and safetensors fixtures (issues 13.6-13.8, 14), made with real
PyTorch (Debian's python3-torch 1.13):

    /usr/bin/python3 tools/make_format_fixtures.py              # (re)writes fixtures/formats/
    /usr/bin/python3 tools/make_format_fixtures.py check-deploy TRAIN.pth OURS [--exact]
        # torch's own conversion of TRAIN (float64, rounded once to TRAIN's dtype) vs OURS
    /usr/bin/python3 tools/make_format_fixtures.py describe-st FILE.safetensors

All cases are one small RepMLP-ResNet (the `light_g1_r2` configuration of
tools/make_model_fixtures.py, its own random weights and BN statistics):
- `light.train.pth`: the plain training state dict (the baseline);
- `transposed.train.pth`: the same values, but the Linear head weight is a transposed view
  (`w.t().contiguous().t()`) and every 4-D conv weight is channels_last
  (`.contiguous(memory_format=torch.channels_last)`): non-contiguous tensors, as a model
  moved to channels_last or a hand-edited state dict holds them;
- `flatbuf.train.pth`: the same values, every tensor a view of one flat buffer per dtype
  (apex / DeepSpeed style contiguous parameter buffers): torch.save writes one storage
  holding everything, BN statistics and the training-only branches included;
- `fp16.train.pth`, `bf16.train.pth`: every float tensor cast to float16 / bfloat16;
- `expand.pth`: `{'x': torch.zeros(1).expand(2**30)}`, a tiny file whose view names 4 GiB;
- `meta.safetensors`: tensors with `module._orig_mod.` prefixes (DDP around torch.compile)
  and a `__metadata__`, written by `write_safetensors` below (Debian has no
  python3-safetensors; the format is 8-byte length, JSON header padded with spaces to 8
  bytes, data tiled in order, as the reference writer lays it out).
`light.config.json` is the configuration (for `--arch`).
"""
import collections
import json
import os
import struct
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from repmlp_ref import build_model, randomize  # noqa: E402
from reparam_ref import model_convert  # noqa: E402

OUT = os.path.join(HERE, '..', 'fixtures', 'formats')
CONFIG = dict(widths=[8, 16, 32, 32], stem_width=4, num_classes=5, num_blocks=[1, 2, 2, 1], block_type='light',
              img_H=32, img_W=32, h=2, w=2, reparam_conv_k=[1, 3, 5], fc1_fc2_reduction=2, fc3_groups=1)

ST_DTYPES = {torch.float64: 'F64', torch.float32: 'F32', torch.float16: 'F16', torch.bfloat16: 'BF16',
             torch.int64: 'I64', torch.int32: 'I32', torch.int16: 'I16', torch.int8: 'I8',
             torch.uint8: 'U8', torch.bool: 'BOOL'}
ST_BY_NAME = {v: k for k, v in ST_DTYPES.items()}


def train_state_dict(seed=7):
    torch.manual_seed(seed)
    return randomize(build_model(CONFIG), seed).state_dict()


def transposed(sd):
    out = collections.OrderedDict()
    for k, v in sd.items():
        if v.dim() == 2:
            v = v.t().contiguous().t()
        elif v.dim() == 4 and v.shape[2] * v.shape[3] > 1:
            v = v.contiguous(memory_format=torch.channels_last)
        out[k] = v
    assert any(not v.is_contiguous() for v in out.values())
    return out


def flat_buffers(sd):
    """Every tensor a view of one flat buffer per dtype, in state-dict order."""
    by_dtype = collections.OrderedDict()
    for v in sd.values():
        by_dtype.setdefault(v.dtype, []).append(v)
    flats = {dt: torch.cat([v.reshape(-1) for v in vs]) for dt, vs in by_dtype.items()}
    at = {dt: 0 for dt in flats}
    out = collections.OrderedDict()
    for k, v in sd.items():
        n = v.numel()
        out[k] = flats[v.dtype][at[v.dtype]:at[v.dtype] + n].view(v.shape)
        at[v.dtype] += n
    return out


def cast_floats(sd, dtype):
    return collections.OrderedDict((k, v.to(dtype) if v.is_floating_point() else v) for k, v in sd.items())


def tensor_bytes(t):
    t = t.detach().contiguous()
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    if t.dtype == torch.bool:
        t = t.view(torch.uint8)
    return t.numpy().tobytes()


def write_safetensors(path, tensors, metadata=None):
    header, blobs, off = collections.OrderedDict(), [], 0
    if metadata:
        header['__metadata__'] = metadata
    for name, t in tensors.items():
        b = tensor_bytes(t)
        header[name] = {'dtype': ST_DTYPES[t.dtype], 'shape': list(t.shape), 'data_offsets': [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(',', ':')).encode()
    h += b' ' * (-len(h) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    """The tensors and metadata of a safetensors file, read by the spec with plain Python."""
    with open(path, 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        header = json.loads(f.read(n), object_pairs_hook=collections.OrderedDict)
        data = f.read()
    meta = header.pop('__metadata__', None)
    tensors = collections.OrderedDict()
    for name, h in sorted(header.items(), key=lambda kv: kv[1]['data_offsets']):
        b, e = h['data_offsets']
        dt = ST_BY_NAME[h['dtype']]
        raw = bytearray(data[b:e])
        if dt == torch.bfloat16:
            t = torch.frombuffer(raw, dtype=torch.int16).view(torch.bfloat16) if raw else torch.zeros(0, dtype=dt)
        elif dt == torch.bool:
            t = torch.frombuffer(raw, dtype=torch.uint8).bool() if raw else torch.zeros(0, dtype=dt)
        else:
            t = torch.frombuffer(raw, dtype=dt) if raw else torch.zeros(0, dtype=dt)
        tensors[name] = t.reshape(h['shape'])
    return tensors, meta


def meta_case():
    sd = train_state_dict(11)
    keep = [k for k in sd if k.startswith('stage1.') or k.startswith('head.')][:12]
    tensors = collections.OrderedDict(('module._orig_mod.' + k, sd[k]) for k in keep)
    meta = collections.OrderedDict([('format', 'pt'), ('note', 'made by tools/make_format_fixtures.py'), ('epoch', '3')])
    return tensors, meta


def make_all():
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, 'light.config.json'), 'w') as f:
        json.dump(CONFIG, f, indent=2)
        f.write('\n')
    sd = train_state_dict()
    torch.save(sd, os.path.join(OUT, 'light.train.pth'))
    torch.save(transposed(sd), os.path.join(OUT, 'transposed.train.pth'))
    flat = flat_buffers(sd)
    torch.save(flat, os.path.join(OUT, 'flatbuf.train.pth'))
    got = torch.load(os.path.join(OUT, 'flatbuf.train.pth'))
    assert len({v.storage().data_ptr() for v in got.values() if v.is_floating_point()}) == 1, 'one shared storage'
    torch.save(cast_floats(sd, torch.float16), os.path.join(OUT, 'fp16.train.pth'))
    torch.save(cast_floats(sd, torch.bfloat16), os.path.join(OUT, 'bf16.train.pth'))
    torch.save({'x': torch.zeros(1).expand(2 ** 30)}, os.path.join(OUT, 'expand.pth'))
    tensors, meta = meta_case()
    write_safetensors(os.path.join(OUT, 'meta.safetensors'), tensors, meta)
    back, m = read_safetensors(os.path.join(OUT, 'meta.safetensors'))
    assert m == meta and list(back) == list(tensors)
    for name in sorted(os.listdir(OUT)):
        print(f'{name}: {os.path.getsize(os.path.join(OUT, name))} bytes')


@torch.no_grad()
def torch_deploy(train_path):
    """torch's own conversion of a training state dict: loaded into the reference model in
    float64, converted exactly (tools/reparam_ref.py), each tensor cast back to the dtype
    the training file stored it in (one rounding, torch's `.to()`)."""
    sd = torch.load(train_path)
    model = build_model(CONFIG).double()
    model.load_state_dict({k: (v.double() if v.is_floating_point() else v) for k, v in sd.items()})
    deploy = model_convert(model).state_dict()
    float_dtype = next(v.dtype for v in sd.values() if v.is_floating_point())
    return collections.OrderedDict((k, v.to(float_dtype) if v.is_floating_point() else v) for k, v in deploy.items())


def cmd_check_deploy(argv):
    """JSON: keys equal?, per tensor dtype/shape match, max relative error (of the
    tensor's largest magnitude) and exact equality, the release-style deploy file size."""
    train, ours = argv[0], argv[1]
    want = torch_deploy(train)
    if ours.endswith('.safetensors'):
        got, meta = read_safetensors(ours)
    else:
        got = torch.load(ours, weights_only=True)
    import tempfile
    with tempfile.NamedTemporaryFile(suffix='.pth') as f:
        torch.save(want, f.name)
        release_size = os.path.getsize(f.name)
    report = {'keys_equal': list(want) == list(got), 'missing': [k for k in want if k not in got][:5],
              'release_size': release_size, 'ours_size': os.path.getsize(ours), 'tensors': {}}
    worst, exact = 0.0, True
    for k, w in want.items():
        g = got.get(k)
        if g is None:
            continue
        same_kind = g.dtype == w.dtype and list(g.shape) == list(w.shape)
        if w.is_floating_point():
            err = float((g.double() - w.double()).abs().max() / max(w.double().abs().max(), 1e-30)) if same_kind else float('inf')
        else:
            err = 0.0 if same_kind and torch.equal(g, w) else float('inf')
        eq = same_kind and torch.equal(g, w)
        worst = max(worst, err)
        exact &= eq
        report['tensors'][k] = {'rel': err, 'exact': eq, 'dtype': str(g.dtype), 'want_dtype': str(w.dtype)}
    report['max_rel'] = worst
    report['all_exact'] = exact
    print(json.dumps(report))


def cmd_describe_st(argv):
    tensors, meta = read_safetensors(argv[0])
    print(json.dumps({'metadata': meta, 'names': list(tensors),
                      'values': {k: t.double().reshape(-1).tolist() for k, t in tensors.items()}}))


if __name__ == '__main__':
    if len(sys.argv) > 1 and sys.argv[1] == 'check-deploy':
        cmd_check_deploy(sys.argv[2:])
    elif len(sys.argv) > 1 and sys.argv[1] == 'describe-st':
        cmd_describe_st(sys.argv[2:])
    else:
        make_all()
