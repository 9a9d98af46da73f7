"""PyTorch reference of RepMLPNet (CVPR 2022), written from shared/spec/repmlpnet.md.

The source of truth the TypeScript RepMLPNet is checked against. Module names and their
registration order follow the repository's repmlpnet.py, so `state_dict()` keys, their
order and shapes are the ones its models have (training-time, deploy, and after
`locality_injection()`).

Use from other tools/tests:
    sys.path.insert(0, 'tools')
    from repmlpnet_ref import PRESETS, build_model, randomize, locality_injection, exact_deploy_state_dict

Command line (run with the real torch, /usr/bin/python3):
    repmlpnet_ref.py --selftest
        state-dict sizes of the six presets, train == deploy logits for a small config.
    repmlpnet_ref.py convert IN.pth OUT.pth ARCH [--exact]
        what the repository's convert.py does (unwrap 'state_dict'/'model', strip
        'module.', load strictly, locality_injection(), torch.save(model.state_dict()));
        --exact computes the injection in float64 and stores float32 (same keys/layout).
    repmlpnet_ref.py logits ARCH WEIGHTS X.npy Y.npy [--deploy]
        eval-mode logits of a checkpoint (train form unless --deploy).
    repmlpnet_ref.py crosscheck PATH/TO/repository/repmlpnet.py ARCH[@NxCxHxW]...
        this reference against the repository's file (imported from where it lies).

ARCH is a preset name (RepMLPNet-T224 ...) or a JSON file of the constructor's arguments
by their Python names plus "family": "RepMLPNet".
"""
import json
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

FAMILY = 'RepMLPNet'

# The constructor's defaults that every preset keeps (spec: "all: ...").
_PRESET_COMMON = dict(in_channels=3, num_class=1000, patch_size=[4, 4], reparam_conv_k=[1, 3],
                      globalperceptron_reduce=4)
_T = dict(channels=[64, 128, 256, 512], num_blocks=[2, 2, 6, 2], sharesets_nums=[1, 4, 16, 128])
_B = dict(channels=[96, 192, 384, 768], num_blocks=[2, 2, 12, 2], sharesets_nums=[1, 4, 32, 128])
_D = dict(channels=[80, 160, 320, 640], num_blocks=[2, 2, 18, 2], sharesets_nums=[1, 4, 16, 128])
_L = dict(channels=[96, 192, 384, 768], num_blocks=[2, 2, 18, 2], sharesets_nums=[1, 4, 32, 256])
_P224 = dict(hs=[56, 28, 14, 7], ws=[56, 28, 14, 7])
_P256 = dict(hs=[64, 32, 16, 8], ws=[64, 32, 16, 8])
PRESETS = {
    'RepMLPNet-T224': dict(_PRESET_COMMON, **_T, **_P224),
    'RepMLPNet-T256': dict(_PRESET_COMMON, **_T, **_P256),
    'RepMLPNet-B224': dict(_PRESET_COMMON, **_B, **_P224),
    'RepMLPNet-B256': dict(_PRESET_COMMON, **_B, **_P256),
    'RepMLPNet-D256': dict(_PRESET_COMMON, **_D, **_P256),
    'RepMLPNet-L256': dict(_PRESET_COMMON, **_L, **_P256),
}
# Evaluation resolution (test.py -r): the name's suffix.
RESOLUTION = {name: int(name[-3:]) for name in PRESETS}

FIELDS = ('in_channels', 'num_class', 'patch_size', 'num_blocks', 'channels', 'hs', 'ws', 'sharesets_nums',
          'reparam_conv_k', 'globalperceptron_reduce')
# The constructor's own defaults, for fields a JSON leaves out.
DEFAULTS = dict(in_channels=3, num_class=1000, patch_size=[4, 4], num_blocks=[2, 2, 6, 2],
                channels=[192, 384, 768, 1536], hs=[64, 32, 16, 8], ws=[64, 32, 16, 8],
                sharesets_nums=[4, 8, 16, 32], reparam_conv_k=[3], globalperceptron_reduce=4)


def conv_bn(in_c, out_c, k, stride=1, padding=0, groups=1, relu=False):
    """Sequential(conv (no bias), bn[, relu]): the repository keeps these pairs in deploy."""
    seq = nn.Sequential()
    seq.add_module('conv', nn.Conv2d(in_c, out_c, k, stride=stride, padding=padding, groups=groups, bias=False))
    seq.add_module('bn', nn.BatchNorm2d(out_c))
    if relu:
        seq.add_module('relu', nn.ReLU())
    return seq


class GlobalPerceptron(nn.Module):
    """Per-image, per-channel sigmoid gate from the global average of the input."""

    def __init__(self, channels, inner):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, inner, 1, bias=True)
        self.fc2 = nn.Conv2d(inner, channels, 1, bias=True)

    def forward(self, x):
        v = F.adaptive_avg_pool2d(x, 1)  # as the repository (ONNX: GlobalAveragePool)
        return torch.sigmoid(self.fc2(F.relu(self.fc1(v))))


PARTITION_ORDER_NOTE = """\
RepMLPNet's repmlpnet.py (HEAD) puts the partitions back with
    out.reshape(-1, h_parts, w_parts, self.S, self.h, self.w).permute(0, 3, 1, 4, 2, 5)
on a tensor whose rows are ordered (n, partition, channel group). With P = h_parts*w_parts
partitions and G = C/S channel groups, the result at (group g, partition p) is the row
computed for (partition p', group g') where p'*G + g' == g*P + p. It is the identity when
P == 1 or G == 1 (every preset at 224/256); otherwise it is what PyTorch computes with the
repository's code, training-time and deploy alike, and what this reference reproduces."""


class RepMLPBlock(nn.Module):
    """Gate * (fc3 over h x w partitions, shared per share-set, + local convs per partition).

    Registration order (hence key order): gp, fc3, fc3_bn, repconv{k}...; after
    locality injection: gp, fc3 (weight, bias), fc3_bn (Identity).
    """

    def __init__(self, channels, h, w, reparam_conv_k, reduce, S, deploy=False):
        super().__init__()
        if channels % S:
            raise ValueError(f'RepMLPBlock: {channels} channels are not a multiple of {S} share-sets')
        self.C, self.h, self.w, self.S = channels, h, w, S
        self.kernels = tuple(reparam_conv_k) if reparam_conv_k else ()
        self.deploy = deploy
        self.gp = GlobalPerceptron(channels, channels // reduce)
        n = S * h * w
        self.fc3 = nn.Conv2d(n, n, 1, bias=deploy, groups=S)
        self.fc3_bn = nn.Identity() if deploy else nn.BatchNorm2d(S)
        if not deploy:
            for k in self.kernels:
                self.add_module(f'repconv{k}', conv_bn(S, S, k, padding=k // 2, groups=S))

    def forward(self, x):
        N, C, H, W = x.shape
        h, w, S = self.h, self.w, self.S
        if not torch.jit.is_tracing() and (H % h or W % w):
            raise ValueError(f'RepMLPBlock: map {H}x{W} is not a multiple of the partition {h}x{w}')
        hp, wp = H // h, W // w
        gate = self.gp(x)
        # [N, hp, wp, C, h, w]: every partition; read as rows of S consecutive channels,
        # so channel c is in share-set c mod S.
        parts = x.reshape(N, C, hp, h, wp, w).permute(0, 2, 4, 1, 3, 5)
        rows = parts.reshape(-1, S * h * w, 1, 1)
        y = self.fc3_bn(self.fc3(rows).reshape(-1, S, h, w))
        if not self.deploy:
            local_in = parts.reshape(-1, S, h, w)
            for k in self.kernels:
                y = y + getattr(self, f'repconv{k}')(local_in)
        # Back to [N, C, H, W] as the repository does it: its rows, in (partition, group)
        # order, are re-read in (group, partition) order (`reshape(-1, h_parts, w_parts, S,
        # h, w)` with S, not C). With one partition per map (every preset at its own
        # resolution) or one channel group (C == S) this is the plain inverse of the cut;
        # with several partitions and C > S it moves group g of partition p to where the
        # row index g*P + p of the (p, g) order points. PyTorch computes exactly this, so
        # this reference does too (see PARTITION_ORDER_NOTE).
        G = C // S
        y = y.reshape(N, G, hp, wp, S, h, w).permute(0, 1, 4, 2, 5, 3, 6).reshape(N, C, H, W)
        return y * gate

    # --- locality injection -------------------------------------------------------------
    def equivalent_fc3(self, dtype=None):
        """(weight [S*h*w, h*w, 1, 1], bias [S*h*w]) of the deploy fc3; in `dtype` if given."""
        cast = (lambda t: t.to(dtype)) if dtype is not None else (lambda t: t)
        hw = self.h * self.w
        weight, bias = _fold_bn(cast(self.fc3.weight), self.fc3_bn, cast, hw)
        if not self.kernels:
            return weight, bias
        kmax = max(self.kernels)
        kernel, kbias = None, None
        # Largest kernel first, the others zero-padded onto it, as the repository sums them.
        for k in sorted(self.kernels, key=lambda k: k != kmax):
            branch = getattr(self, f'repconv{k}')
            kk, kb = _fold_bn(cast(branch.conv.weight), branch.bn, cast, 1)
            pad = (kmax - k) // 2
            kk = F.pad(kk, [pad] * 4) if pad else kk
            kernel = kk if kernel is None else kernel + kk
            kbias = kb if kbias is None else kbias + kb
        local_w, local_b = self._conv_as_fc(kernel, kbias)
        return local_w.reshape(weight.shape) + weight, local_b + bias

    def _conv_as_fc(self, kernel, bias):
        """The (h*w) x (h*w) matrix a depthwise k x k conv (per share-set) applies to one
        zero-padded partition: the conv's response to each basis partition."""
        h, w, S = self.h, self.w, self.S
        hw = h * w
        basis = torch.eye(hw, dtype=kernel.dtype).reshape(hw, 1, h, w).expand(hw, S, h, w)
        resp = F.conv2d(basis, kernel, padding=(kernel.shape[2] // 2, kernel.shape[3] // 2), groups=S)
        # resp[n, s, o] = M_s[o, n]; fc3 row s*hw + o, column n. A transposed view, as
        # PyTorch leaves it after the repository's injection (non-contiguous on purpose).
        return resp.reshape(hw, S * hw).transpose(0, 1), bias.repeat_interleave(hw)

    def inject(self, dtype=None):
        weight, bias = self.equivalent_fc3(dtype)
        if dtype is not None:
            weight, bias = weight.float(), bias.float()
        for k in self.kernels:
            delattr(self, f'repconv{k}')
        # Re-registered, hence after gp in the key order (where the training fc3 was).
        del self.fc3
        del self.fc3_bn
        n = self.S * self.h * self.w
        self.fc3 = nn.Conv2d(n, n, 1, bias=True, groups=self.S)
        self.fc3_bn = nn.Identity()
        self.fc3.weight.data = weight.detach()
        self.fc3.bias.data = bias.detach()
        self.deploy = True


def _fold_bn(weight, bn, cast, repeat):
    """Conv weight scaled by the BN's gamma/std per output row; each BN channel covers
    `repeat` consecutive rows (fc3_bn: h*w rows per share-set)."""
    std = (cast(bn.running_var) + bn.eps).sqrt()
    t = cast(bn.weight) / std
    b = cast(bn.bias) - cast(bn.running_mean) * t
    if repeat > 1:
        t, b = t.repeat_interleave(repeat), b.repeat_interleave(repeat)
    return weight * t.reshape(-1, 1, 1, 1), b


class FFNBlock(nn.Module):
    def __init__(self, channels, hidden):
        super().__init__()
        self.ffn_fc1 = conv_bn(channels, hidden, 1)
        self.ffn_fc2 = conv_bn(hidden, channels, 1)
        self.act = nn.GELU()  # exact (erf) GELU

    def forward(self, x):
        return self.ffn_fc2(self.act(self.ffn_fc1(x)))


class RepMLPNetUnit(nn.Module):
    def __init__(self, channels, h, w, reparam_conv_k, reduce, S, deploy=False):
        super().__init__()
        self.repmlp_block = RepMLPBlock(channels, h, w, reparam_conv_k, reduce, S, deploy)
        self.ffn_block = FFNBlock(channels, channels * 4)
        self.prebn1 = nn.BatchNorm2d(channels)
        self.prebn2 = nn.BatchNorm2d(channels)

    def forward(self, x):
        y = x + self.repmlp_block(self.prebn1(x))
        return y + self.ffn_block(self.prebn2(y))


def _pair(v):
    return tuple(v) if isinstance(v, (list, tuple)) else (v, v)


class RepMLPNet(nn.Module):
    def __init__(self, in_channels, num_class, patch_size, num_blocks, channels, hs, ws, sharesets_nums,
                 reparam_conv_k, globalperceptron_reduce, deploy=False):
        super().__init__()
        n = len(num_blocks)
        if not (len(channels) == len(hs) == len(ws) == len(sharesets_nums) == n):
            raise ValueError('RepMLPNet: num_blocks, channels, hs, ws, sharesets_nums need one entry per stage')
        patch = _pair(patch_size)
        self.conv_embedding = conv_bn(in_channels, channels[0], patch, stride=patch, relu=True)
        self.stages = nn.ModuleList(
            nn.ModuleList(RepMLPNetUnit(channels[i], hs[i], ws[i], reparam_conv_k, globalperceptron_reduce,
                                        sharesets_nums[i], deploy) for _ in range(num_blocks[i]))
            for i in range(n))
        self.embeds = nn.ModuleList(conv_bn(channels[i], channels[i + 1], 2, stride=2, relu=True)
                                    for i in range(n - 1))
        self.head_norm = nn.BatchNorm2d(channels[-1])
        self.head = nn.Linear(channels[-1], num_class)

    def forward(self, x):
        x = self.conv_embedding(x)
        for i, stage in enumerate(self.stages):
            for unit in stage:
                x = unit(x)
            if i < len(self.embeds):
                x = self.embeds[i](x)
        x = F.adaptive_avg_pool2d(self.head_norm(x), 1)
        return self.head(x.flatten(1))


@torch.no_grad()
def locality_injection(model, dtype=None):
    """In place, as RepMLPNet.locality_injection(): every RepMLPBlock's fc3_bn and
    repconv branches folded into a biased fc3. dtype=torch.float64: the exact conversion
    (computed in float64, stored float32). Returns the model."""
    for m in list(model.modules()):
        if isinstance(m, RepMLPBlock) and not m.deploy:
            m.inject(dtype)
    return model


def load_config(arch):
    """A preset name, a JSON path, or a dict -> the constructor's keyword arguments."""
    if isinstance(arch, str) and arch in PRESETS:
        return dict(PRESETS[arch])
    if isinstance(arch, str):
        with open(arch) as f:
            arch = json.load(f)
    cfg = dict(arch)
    cfg.pop('input_size', None)  # not a constructor argument (see input_size())
    family = cfg.pop('family', FAMILY)
    if family != FAMILY:
        raise ValueError(f'family {family!r}: this reference builds {FAMILY}')
    unknown = set(cfg) - set(FIELDS)
    if unknown:
        raise ValueError(f'unknown RepMLPNet config fields {sorted(unknown)}')
    return {k: cfg.get(k, DEFAULTS[k]) for k in FIELDS}


def build_model(arch, deploy=False):
    return RepMLPNet(**load_config(arch), deploy=deploy).eval()


def input_size(arch):
    """(H, W) of the evaluation input: a preset's resolution; a JSON's optional
    "input_size" (int or [H, W], the toolkit's extra field); else one partition per map in
    the first stage (patch * hs[0], patch * ws[0])."""
    if isinstance(arch, str) and arch in RESOLUTION:
        return RESOLUTION[arch], RESOLUTION[arch]
    raw = arch
    if isinstance(arch, str):
        with open(arch) as f:
            raw = json.load(f)
    if raw.get('input_size') is not None:
        return _pair(raw['input_size'])
    cfg = load_config(raw)
    ph, pw = _pair(cfg['patch_size'])
    return ph * cfg['hs'][0], pw * cfg['ws'][0]


@torch.no_grad()
def randomize(model, seed=0):
    """Deterministic non-trivial BN statistics/affines and biases, so that every term of
    the forward pass (and of a conversion) matters in a comparison. Returns model.eval()."""
    g = torch.Generator().manual_seed(seed)

    def uni(t, lo, hi):
        t.copy_(torch.rand(t.shape, generator=g) * (hi - lo) + lo)

    def normal(t, std):
        t.copy_(torch.randn(t.shape, generator=g) * std)

    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            uni(m.weight, 0.5, 1.5)
            normal(m.bias, 0.1)
            normal(m.running_mean, 0.1)
            uni(m.running_var, 0.5, 1.5)
            m.num_batches_tracked.fill_(int(torch.randint(1, 1000, (1,), generator=g)))
        elif isinstance(m, (nn.Linear, nn.Conv2d)):
            fan_in = m.weight[0].numel()
            normal(m.weight, (1.0 / fan_in) ** 0.5)
            if m.bias is not None:
                normal(m.bias, 0.1)
    return model.eval()


def install_yacs_standin():
    """A module named yacs.config with a CfgNode(dict) that pickles as the real one does.

    yacs's CfgNode is a dict subclass that keeps its flags in the instance __dict__
    (__immutable__, __deprecated_keys__, __renamed_keys__, __new_allowed__) and defines no
    pickling hooks, so protocol 2 writes GLOBAL 'yacs.config CfgNode', NEWOBJ with no
    arguments, SETITEMS of its entries, then BUILD with that __dict__. This class has the
    same module, name, items and __dict__, hence the same pickle. Installed only where the
    real yacs is not importable (torch.load of such a checkpoint needs the class)."""
    try:
        import yacs.config
        return yacs.config.CfgNode
    except ImportError:
        pass
    import types
    yacs = types.ModuleType('yacs')
    cfgmod = types.ModuleType('yacs.config')

    class CfgNode(dict):
        IMMUTABLE = '__immutable__'
        DEPRECATED_KEYS = '__deprecated_keys__'
        RENAMED_KEYS = '__renamed_keys__'
        NEW_ALLOWED = '__new_allowed__'

        def __init__(self, init_dict=None, new_allowed=False):
            super().__init__()
            for k, v in (init_dict or {}).items():
                self[k] = CfgNode(v) if isinstance(v, dict) else v
            self.__dict__[CfgNode.IMMUTABLE] = False
            self.__dict__[CfgNode.DEPRECATED_KEYS] = set()
            self.__dict__[CfgNode.RENAMED_KEYS] = {}
            self.__dict__[CfgNode.NEW_ALLOWED] = new_allowed

        def __getattr__(self, name):
            if name in self:
                return self[name]
            raise AttributeError(name)

        def freeze(self):
            self.__dict__[CfgNode.IMMUTABLE] = True
            for v in self.values():
                if isinstance(v, CfgNode):
                    v.freeze()

    CfgNode.__module__ = 'yacs.config'
    CfgNode.__qualname__ = 'CfgNode'
    cfgmod.CfgNode = CfgNode
    yacs.config = cfgmod
    sys.modules['yacs'] = yacs
    sys.modules['yacs.config'] = cfgmod
    return CfgNode


def torch_load(path):
    """torch.load on the CPU; the training script's checkpoints need yacs.config.CfgNode."""
    install_yacs_standin()
    return torch.load(path, map_location='cpu')


def strip_checkpoint(obj):
    """convert.py's unwrapping: 'state_dict' or 'model' entry, then every 'module.' removed."""
    if isinstance(obj, dict) and 'state_dict' in obj:
        obj = obj['state_dict']
    elif isinstance(obj, dict) and 'model' in obj:
        obj = obj['model']
    return {k.replace('module.', ''): v for k, v in obj.items()}


def exact_deploy_state_dict(arch, train_sd):
    """The deploy state dict of a training-time one, injection computed in float64."""
    model = build_model(arch)
    model.load_state_dict(strip_checkpoint(train_sd), strict=True)
    return locality_injection(model, torch.float64).state_dict()


def _cmd_convert(argv):
    inp, out, arch = argv[:3]
    exact = '--exact' in argv
    model = build_model(arch)
    model.load_state_dict(strip_checkpoint(torch_load(inp)), strict=True)
    locality_injection(model, torch.float64 if exact else None)
    torch.save(model.state_dict(), out)


@torch.no_grad()
def _cmd_logits(argv):
    import numpy as np
    arch, weights, xin, yout = argv[:4]
    model = build_model(arch, deploy='--deploy' in argv)
    model.load_state_dict(strip_checkpoint(torch_load(weights)), strict=True)
    x = torch.from_numpy(np.load(xin).astype(np.float32))
    np.save(yout, model(x).numpy().astype(np.float32))


# State-dict sizes of the presets (numel, training-time and deploy), from this reference;
# the selftest checks they stay put and that deploy has exactly the repconv/fc3_bn keys less.
@torch.no_grad()
def _selftest():
    ok = True
    for name in PRESETS:
        t = build_model(name).state_dict()
        d = build_model(name, deploy=True).state_dict()
        tn = sum(v.numel() for v in t.values())
        dn = sum(v.numel() for v in d.values())
        gone = [k for k in t if k not in d]
        extra = [k for k in d if k not in t]
        ok &= all('.repconv' in k or '.fc3_bn.' in k for k in gone) and all(k.endswith('.fc3.bias') for k in extra)
        print(f'{name}: train {len(t)} tensors {tn} values; deploy {len(d)} tensors {dn} values')
    cfg = dict(in_channels=3, num_class=5, patch_size=2, num_blocks=[1, 1], channels=[8, 16], hs=[4, 2], ws=[3, 3],
               sharesets_nums=[2, 4], reparam_conv_k=[1, 3, 5], globalperceptron_reduce=2, family=FAMILY)
    m = randomize(build_model(cfg), 3)
    x = torch.randn(2, 3, 16, 12)
    y = m(x)
    d = locality_injection(m)
    e = (d(x) - y).abs().max() / y.abs().max()
    ok &= bool(e < 1e-5)
    print('small config train vs injected: rel', float(e))
    print('selftest', 'passed' if ok else 'FAILED')
    return 0 if ok else 1


@torch.no_grad()
def _cmd_crosscheck(argv):
    """crosscheck REPO_REPMLPNET_PY ARCH[@NxCxHxW]...: this reference against the
    repository's own repmlpnet.py (imported from the given path, never copied here): same
    state-dict layout (keys, order, shapes, strides) training-time, deploy-built and after
    locality_injection(), the same logits for the same weights, the same injected values."""
    import importlib.util
    spec = importlib.util.spec_from_file_location('repo_repmlpnet', argv[0])
    repo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(repo)

    def theirs(arch, deploy):
        if isinstance(arch, str) and arch in repo.model_map:
            return repo.get_RepMLPNet_model(arch, deploy=deploy).eval()
        c = load_config(arch)
        k = tuple(c['reparam_conv_k']) if c['reparam_conv_k'] else None
        return repo.RepMLPNet(c['in_channels'], c['num_class'], _pair(c['patch_size']), c['num_blocks'], c['channels'],
                              c['hs'], c['ws'], c['sharesets_nums'], k, c['globalperceptron_reduce'],
                              deploy=deploy).eval()

    def layout(sd):
        return [(k, tuple(v.shape), v.stride(), v.dtype) for k, v in sd.items()]

    def rel(a, b):
        return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))

    ok = True
    for item in argv[1:]:
        arch, _, shape = item.partition('@')
        H, W = input_size(arch)
        shape = tuple(int(v) for v in shape.split('x')) if shape else (2, load_config(arch)['in_channels'], H, W)
        mine = randomize(build_model(arch), 7)
        other = theirs(arch, False)
        same = layout(mine.state_dict()) == layout(other.state_dict())
        same &= layout(build_model(arch, True).state_dict()) == layout(theirs(arch, True).state_dict())
        other.load_state_dict(mine.state_dict(), strict=True)
        x = torch.randn(shape, generator=torch.Generator().manual_seed(1))
        y_train = rel(mine(x), other(x))
        locality_injection(mine)
        other.locality_injection()
        sm, so = mine.state_dict(), other.state_dict()
        same &= layout(sm) == layout(so)
        values = max(rel(sm[k].double(), so[k].double()) for k in so if so[k].is_floating_point())
        y_deploy = rel(mine(x), other(x))
        exact = locality_injection(randomize(build_model(arch), 7), torch.float64).state_dict()
        same &= layout(exact) == layout(so)
        good = same and y_train < 1e-5 and y_deploy < 1e-5 and values < 1e-5
        ok &= good
        print(json.dumps(dict(arch=arch, input=list(shape), layout_equal=same, train_logits_rel=y_train,
                              deploy_logits_rel=y_deploy, injected_values_rel=values, ok=good)))
    print('crosscheck', 'passed' if ok else 'FAILED')
    return 0 if ok else 1


if __name__ == '__main__':
    if '--selftest' in sys.argv:
        sys.exit(_selftest())
    cmds = {'convert': _cmd_convert, 'logits': _cmd_logits, 'crosscheck': _cmd_crosscheck}
    if len(sys.argv) < 2 or sys.argv[1] not in cmds:
        print(__doc__)
        sys.exit(2)
    sys.exit(cmds[sys.argv[1]](sys.argv[2:]))
