"""Exact training-time -> deploy re-parameterization with real PyTorch, written from
shared/spec/architecture.md ("Re-parameterization"); RepMLP, arXiv 2105.01883, Sec. 3.3.

The reference the TypeScript converter (src/reparam) is checked against. It is written
differently on purpose: the local perceptron becomes an FC matrix by running F.conv2d on
an identity (each column of the FC is the conv's response to one unit input), in float64,
with the input/output channel counts the right way round. `scatter` builds the same
matrix by explicit index assignment (cheap enough for full-size presets); the two are
checked against each other by --selftest.

`release_conv_to_fc` reproduces the 2021 release's conversion, whose reshape swaps the
input and output channel counts: exact only when C == O (architecture.md "Known defect").

    sys.path.insert(0, 'tools'); from reparam_ref import exact_model_convert
    deploy = exact_model_convert(train_model)          # a converted deep copy
    /usr/bin/python3 tools/reparam_ref.py --selftest   # identity vs scatter, C != O defect
    /usr/bin/python3 tools/reparam_ref.py convert TRAIN.pth OUT.pth ARCH [identity|scatter|release|release32]

`release32` is the release's conversion computed in float32, as its own code runs: the
PyTorch side of `repmlp bench` (float64 identity convolutions take ~25x longer here).
"""
import copy
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F


def fuse_bn(weight, bn, bias=None, dtype=torch.float64):
    """conv/FC weight [out, ...] + eval BatchNorm -> (weight, bias), in `dtype` (float64
    for the exact reference; float32 is what the release computes in)."""
    t = bn.weight.to(dtype) / torch.sqrt(bn.running_var.to(dtype) + bn.eps)
    w = weight.to(dtype) * t.reshape(-1, *([1] * (weight.dim() - 1)))
    b = bn.bias.to(dtype) - bn.running_mean.to(dtype) * t
    if bias is not None:
        b = b + bias.to(dtype) * t
    return w, b


def local_kernel(rep, dtype=torch.float64):
    """Sum of the repconv{k} branches, each fused with its BN and zero-padded to the largest K."""
    ks = list(rep.reparam_conv_k)
    K = max(ks)
    total_k, total_b = 0, 0
    for k in ks:
        branch = getattr(rep, f'repconv{k}')
        w, b = fuse_bn(branch.conv.weight, branch.bn, dtype=dtype)
        total_k = total_k + F.pad(w, [(K - k) // 2] * 4)
        total_b = total_b + b
    return total_k, total_b


def identity_conv_to_fc(kernel, bias, C, O, h, w, groups):
    """FC matrix [O*h*w, C*h*w/g] of a grouped KxK conv (padding K//2) on one h x w
    partition: row r of the FC = the conv's output r for each unit input of r's group."""
    Cg = C // groups
    n = Cg * h * w
    # Every group sees the same n unit inputs: the input column index is group-local.
    eye = torch.eye(n, dtype=torch.float64).reshape(n, Cg, h, w).repeat(1, groups, 1, 1)
    resp = F.conv2d(eye, kernel.double(), padding=kernel.shape[-1] // 2, groups=groups)  # [n, O, h, w]
    fc = resp.reshape(n, O * h * w).t().contiguous()
    return fc, bias.double().repeat_interleave(h * w)


def scatter_conv_to_fc(kernel, bias, C, O, h, w, groups):
    """Same matrix by index assignment: entry (o,y,x),(c,y',x') = K[o, c, y'-y+K//2, x'-x+K//2]."""
    Cg = C // groups
    K = kernel.shape[-1]
    half = K // 2
    kernel = kernel.double()
    m = torch.zeros(O, h, w, Cg, h, w, dtype=torch.float64)
    for y in range(h):
        for x in range(w):
            for dy in range(K):
                for dx in range(K):
                    yi, xi = y + dy - half, x + dx - half
                    if 0 <= yi < h and 0 <= xi < w:
                        m[:, y, x, :, yi, xi] = kernel[:, :, dy, dx]
    return m.reshape(O * h * w, Cg * h * w), bias.double().repeat_interleave(h * w)


def release_conv_to_fc(kernel, bias, C, O, h, w, groups, dtype=torch.float64):
    """The release's conversion, defect included: the conv response on the identity is
    reshaped as (O*h*w/g, C*h*w) before the transpose, i.e. with C and O swapped."""
    n = C * h * w // groups
    eye = torch.eye(n, dtype=dtype).repeat(1, groups).reshape(n, C, h, w)
    resp = F.conv2d(eye, kernel.to(dtype), padding=kernel.shape[-1] // 2, groups=groups)
    fc = resp.reshape(O * h * w // groups, C * h * w).t()
    return fc.reshape(O * h * w, C * h * w // groups), bias.to(dtype).repeat_interleave(h * w)


def release32_conv_to_fc(kernel, bias, C, O, h, w, groups):
    """The release's conversion as it runs: in float32 (what `repmlp bench` times)."""
    return release_conv_to_fc(kernel, bias, C, O, h, w, groups, torch.float32)


METHODS = {'identity': identity_conv_to_fc, 'scatter': scatter_conv_to_fc, 'release': release_conv_to_fc,
           'release32': release32_conv_to_fc}
# The precision each method computes in (the release's own code never leaves float32).
PRECISION = {'release32': torch.float32}


def is_repmlp(m):
    return hasattr(m, 'fc3') and isinstance(getattr(m, 'fc3_bn', None), nn.BatchNorm1d)


def is_convbn(m):
    return isinstance(getattr(m, 'conv', None), nn.Conv2d) and isinstance(getattr(m, 'bn', None), nn.BatchNorm2d)


def equivalent_fc1_fc3(rep, method='identity'):
    """(fc1_weight, fc1_bias, fc3_weight, fc3_bias) in float64: the deploy parameters
    (fc1 ones None without a global perceptron)."""
    dt = PRECISION.get(method, torch.float64)
    fc3_w, fc3_b = fuse_bn(rep.fc3.weight, rep.fc3_bn, rep.fc3.bias, dtype=dt)
    if rep.reparam_conv_k:
        kernel, kbias = local_kernel(rep, dt)
        fc, fcb = METHODS[method](kernel, kbias, rep.C, rep.O, rep.h, rep.w, rep.fc3_groups)
        fc3_w = fc3_w + fc.reshape(fc3_w.shape)
        fc3_b = fc3_b + fcb
    fc1_w = fc1_b = None
    if rep.need_global:
        bn, fc1 = rep.avg.bn, rep.fc1_fc2.fc1
        s = bn.weight.to(dt) / torch.sqrt(bn.running_var.to(dt) + bn.eps)
        beta = bn.bias.to(dt) - bn.running_mean.to(dt) * s
        parts = fc1.in_features // rep.C  # fc1 column i belongs to channel i // (hp*wp)
        w = fc1.weight.to(dt)
        fc1_b = fc1.bias.double() + w @ beta.repeat_interleave(parts)
        fc1_w = w * s.repeat_interleave(parts).reshape(1, -1)
    return fc1_w, fc1_b, fc3_w, fc3_b


def _param(t, like):
    return nn.Parameter(t.to(like.dtype).contiguous(), requires_grad=like.requires_grad)


@torch.no_grad()
def convert_repmlp_(rep, method='identity'):
    """In place, the way the release's local_inject does it: fc3 and fc3_bn deleted and
    registered again (biased fc3, Identity), repconv{k} deleted, avg a bare pool."""
    fc1_w, fc1_b, fc3_w, fc3_b = equivalent_fc1_fc3(rep, method)
    old = rep.fc3
    for k in rep.reparam_conv_k:
        delattr(rep, f'repconv{k}')
    del rep.fc3, rep.fc3_bn
    rep.fc3 = nn.Conv2d(old.in_channels, old.out_channels, 1, 1, 0, bias=True, groups=old.groups)
    rep.fc3.weight = _param(fc3_w, old.weight)
    rep.fc3.bias = _param(fc3_b, old.weight)
    rep.fc3_bn = nn.Identity()
    if rep.need_global:
        rep.avg = nn.AvgPool2d(kernel_size=(rep.h, rep.w))
        fc1 = rep.fc1_fc2.fc1
        fc1.weight, fc1.bias = _param(fc1_w, fc1.weight), _param(fc1_b, fc1.bias)
    rep.deploy = True


@torch.no_grad()
def convert_convbn_(m, dtype=torch.float64):
    old = m.conv
    w, b = fuse_bn(old.weight, m.bn, old.bias, dtype=dtype)
    del m.conv, m.bn
    m.conv = nn.Conv2d(old.in_channels, old.out_channels, old.kernel_size, old.stride, old.padding,
                       old.dilation, old.groups, bias=True)
    m.conv.weight, m.conv.bias = _param(w, old.weight), _param(b, old.weight)


def model_convert(model, method='identity'):
    """A converted deep copy of any model with RepMLPs / ConvBNs in it (the release's
    repmlp_model_convert, with `method` choosing the conv->FC step)."""
    model = copy.deepcopy(model).eval()
    for m in list(model.modules()):
        if is_repmlp(m):
            convert_repmlp_(m, method)
        elif is_convbn(m):
            convert_convbn_(m, PRECISION.get(method, torch.float64))
    return model


def exact_model_convert(model):
    return model_convert(model, 'identity')


def release_model_convert(model):
    return model_convert(model, 'release')


def rel_err(a, b):
    return float((a - b).abs().max() / b.abs().max())


def _selftest():
    from repmlp_ref import RepMLP, randomize
    ok = True
    torch.manual_seed(0)
    for C, O, H, W, h, w, ks, g in [(8, 8, 8, 8, 4, 4, (1, 3, 5), 2), (4, 6, 8, 12, 4, 6, (1, 3), 2),
                                    (8, 4, 6, 6, 3, 3, (3, 5), 4), (4, 8, 5, 5, 5, 5, (1, 3), 2)]:
        m = randomize(RepMLP(C, O, H, W, h, w, ks, 1, g), 1)
        x = torch.randn(2, C, H, W)
        y = m(x)
        kern, kb = local_kernel(m)
        a = identity_conv_to_fc(kern, kb, C, O, h, w, g)[0]
        b = scatter_conv_to_fc(kern, kb, C, O, h, w, g)[0]
        same = torch.equal(a, b)
        exact = rel_err(exact_model_convert(m)(x), y)
        release = rel_err(release_model_convert(m)(x), y)
        good = same and exact < 1e-5 and ((release < 1e-5) == (C == O))
        ok &= good
        print(f'C={C} O={O} {h}x{w} g={g}: identity==scatter {same}, exact rel err {exact:.1e}, '
              f'release (swapped reshape) rel err {release:.1e} {"OK" if good else "FAIL"}')
    print('selftest', 'passed' if ok else 'FAILED')
    return 0 if ok else 1


def convert_file(train_path, out_path, arch, method='scatter'):
    """Loads a training checkpoint into RepMLPResNet(arch) (preset name or config JSON),
    converts it exactly and saves the deploy state dict (torch zip format)."""
    import json
    import time
    from repmlp_ref import build_model
    cfg = arch
    if arch.endswith('.json'):
        with open(arch) as f:
            cfg = json.load(f)
    t0 = time.time()
    model = build_model(cfg)
    sd = torch.load(train_path, map_location='cpu')
    if 'state_dict' in sd:
        sd = sd['state_dict']
    model.load_state_dict({k[len('module.'):] if k.startswith('module.') else k: v for k, v in sd.items()})
    t1 = time.time()
    deploy = model_convert(model, method)
    t2 = time.time()
    torch.save(deploy.state_dict(), out_path)
    print(f'load {t1 - t0:.2f} s, convert ({method}) {t2 - t1:.2f} s, save {time.time() - t2:.2f} s')


if __name__ == '__main__':
    if '--selftest' in sys.argv:
        sys.exit(_selftest())
    if len(sys.argv) >= 5 and sys.argv[1] == 'convert':
        # reparam_ref.py convert TRAIN.pth OUT.pth ARCH [identity|scatter|release|release32]
        convert_file(sys.argv[2], sys.argv[3], sys.argv[4], *(sys.argv[5:6]))
        sys.exit(0)
    print(__doc__)
