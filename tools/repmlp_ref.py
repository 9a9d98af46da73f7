"""PyTorch reference of the RepMLP-ResNet, written from shared/spec/architecture.md.

The source of truth the TypeScript model is checked against: module names, registration
order (hence state-dict key order) and forward pass follow the 2021 release. It holds no
conversion code on purpose (tools/reparam_ref.py does the training -> deploy math).

Use from other tools/tests:
    sys.path.insert(0, 'tools'); from repmlp_ref import build_model, randomize, PRESETS

Self-check of the state-dict sizes against the spec's table:
    /usr/bin/python3 tools/repmlp_ref.py --selftest
"""
import json
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

BN_EPS = 1e-5


class ConvBN(nn.Module):
    """conv -> bn (-> relu). Deploy form: one biased conv and no bn."""

    def __init__(self, in_c, out_c, k, stride=1, padding=0, groups=1, deploy=False, relu=False):
        super().__init__()
        self.relu = relu
        self.conv = nn.Conv2d(in_c, out_c, k, stride=stride, padding=padding, groups=groups, bias=deploy)
        if not deploy:
            self.bn = nn.BatchNorm2d(out_c, eps=BN_EPS)

    def forward(self, x):
        y = self.conv(x)
        if hasattr(self, 'bn'):
            y = self.bn(y)
        return F.relu(y) if self.relu else y


def ConvBNReLU(in_c, out_c, k, stride=1, padding=0, groups=1, deploy=False):
    return ConvBN(in_c, out_c, k, stride=stride, padding=padding, groups=groups, deploy=deploy, relu=True)


class RepMLP(nn.Module):
    """Global, partition and local perceptrons on (h, w) partitions of a (C, H, W) map.

    Registration order gives the release's key order: fc1_fc2, avg, fc3, fc3_bn, repconv{k}.
    """

    def __init__(self, C, O, H, W, h, w, reparam_conv_k=None, fc1_fc2_reduction=1, fc3_groups=1, deploy=False):
        super().__init__()
        if H % h or W % w:
            raise ValueError(f'RepMLP: feature {H}x{W} is not a multiple of partition {h}x{w}')
        self.C, self.O, self.H, self.W, self.h, self.w = C, O, H, W, h, w
        self.hp, self.wp = H // h, W // w
        self.fc3_groups = fc3_groups
        self.deploy = deploy
        self.reparam_conv_k = tuple(reparam_conv_k) if reparam_conv_k else ()
        self.need_global = H != h or W != w
        if self.need_global:
            n = C * self.hp * self.wp
            inner = int(n // fc1_fc2_reduction)
            self.fc1_fc2 = nn.Sequential()
            self.fc1_fc2.add_module('fc1', nn.Linear(n, inner))
            self.fc1_fc2.add_module('relu', nn.ReLU())
            self.fc1_fc2.add_module('fc2', nn.Linear(inner, n))
            if deploy:
                # avg.bn has been folded into fc1: a bare pool with no parameters.
                self.avg = nn.AvgPool2d(kernel_size=(h, w))
            else:
                self.avg = nn.Sequential()
                self.avg.add_module('avg', nn.AvgPool2d(kernel_size=(h, w)))
                self.avg.add_module('bn', nn.BatchNorm2d(C, eps=BN_EPS))
        self.fc3 = nn.Conv2d(C * h * w, O * h * w, 1, 1, 0, bias=deploy, groups=fc3_groups)
        self.fc3_bn = nn.Identity() if deploy else nn.BatchNorm1d(O * h * w, eps=BN_EPS)
        if not deploy:
            for k in self.reparam_conv_k:
                branch = nn.Sequential()
                branch.add_module('conv', nn.Conv2d(C, O, k, padding=k // 2, bias=False, groups=fc3_groups))
                branch.add_module('bn', nn.BatchNorm2d(O, eps=BN_EPS))
                self.add_module(f'repconv{k}', branch)

    def forward(self, x):
        C, O, h, w, hp, wp = self.C, self.O, self.h, self.w, self.hp, self.wp
        x6 = x.reshape(-1, C, hp, h, wp, w)
        if self.need_global:
            # One number per (channel, partition), added to every pixel of that partition.
            v = self.avg(x).reshape(-1, C * hp * wp)
            v = self.fc1_fc2(v).reshape(-1, C, hp, 1, wp, 1)
            x6 = x6 + v
        partitions = x6.permute(0, 2, 4, 1, 3, 5)  # N, hp, wp, C, h, w
        out = self.fc3(partitions.reshape(-1, C * h * w, 1, 1))
        out = self.fc3_bn(out.reshape(-1, O * h * w))
        out = out.reshape(-1, hp, wp, O, h, w)
        if not self.deploy and self.reparam_conv_k:
            # Each partition convolved on its own: zero padding at partition borders.
            local_in = partitions.reshape(-1, C, h, w)
            local = sum(getattr(self, f'repconv{k}')(local_in) for k in self.reparam_conv_k)
            out = out + local.reshape(-1, hp, wp, O, h, w)
        return out.permute(0, 3, 1, 4, 2, 5).reshape(-1, O, self.H, self.W)


class RepMLPLightBlock(nn.Module):
    def __init__(self, in_c, mid_c, out_c, H, W, h, w, reparam_conv_k, fc1_fc2_reduction, fc3_groups, deploy=False):
        super().__init__()
        # shortcut registered first, as in the release (it leads the block's keys).
        self.shortcut = ConvBN(in_c, out_c, 1, deploy=deploy) if in_c != out_c else nn.Identity()
        self.light_conv1 = ConvBNReLU(in_c, mid_c, 1, deploy=deploy)
        self.light_repmlp = RepMLP(mid_c, mid_c, H, W, h, w, reparam_conv_k, fc1_fc2_reduction, fc3_groups, deploy)
        self.light_conv3 = ConvBN(mid_c, out_c, 1, deploy=deploy)

    def forward(self, x):
        y = self.light_conv3(F.relu(self.light_repmlp(self.light_conv1(x))))
        return F.relu(y + self.shortcut(x))


class RepMLPBottleneckBlock(nn.Module):
    def __init__(self, in_c, mid_c, out_c, r, H, W, h, w, reparam_conv_k, fc1_fc2_reduction, fc3_groups, deploy=False):
        super().__init__()
        rc = mid_c // r
        self.shortcut = ConvBN(in_c, out_c, 1, deploy=deploy) if in_c != out_c else nn.Identity()
        self.btnk_conv1 = ConvBNReLU(in_c, mid_c, 1, deploy=deploy)
        self.btnk_conv2 = ConvBNReLU(mid_c, rc, 3, padding=1, deploy=deploy)
        self.btnk_repmlp = RepMLP(rc, rc, H, W, h, w, reparam_conv_k, fc1_fc2_reduction, fc3_groups, deploy)
        self.btnk_conv4 = ConvBNReLU(rc, mid_c, 3, padding=1, deploy=deploy)
        self.btnk_conv5 = ConvBN(mid_c, out_c, 1, deploy=deploy)

    def forward(self, x):
        y = F.relu(self.btnk_repmlp(self.btnk_conv2(self.btnk_conv1(x))))
        y = self.btnk_conv5(self.btnk_conv4(y))
        return F.relu(y + self.shortcut(x))


class BaseBlock(nn.Module):
    """The ResNet-50 bottleneck."""

    def __init__(self, in_c, mid_c, out_c, stride=1, deploy=False):
        super().__init__()
        need = stride != 1 or in_c != out_c
        self.shortcut = ConvBN(in_c, out_c, 1, stride=stride, deploy=deploy) if need else nn.Identity()
        self.conv1 = ConvBNReLU(in_c, mid_c, 1, deploy=deploy)
        self.conv2 = ConvBNReLU(mid_c, mid_c, 3, stride=stride, padding=1, deploy=deploy)
        self.conv3 = ConvBN(mid_c, out_c, 1, deploy=deploy)

    def forward(self, x):
        return F.relu(self.conv3(self.conv2(self.conv1(x))) + self.shortcut(x))


class RepMLPResNet(nn.Module):
    def __init__(self, num_blocks, num_classes, block_type, img_H, img_W, h, w, reparam_conv_k,
                 fc1_fc2_reduction, fc3_groups, bottleneck_r=(2, 4), widths=(256, 512, 1024, 2048),
                 stem_width=64, in_channels=3, deploy=False):
        super().__init__()
        if block_type not in ('base', 'light', 'bottleneck'):
            raise ValueError(f'block_type {block_type!r}')
        self.stage0 = nn.Sequential(
            ConvBNReLU(in_channels, stem_width, 7, 2, 3, deploy=deploy),
            nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
        in_c = stem_width
        for s in range(1, 5):
            width, ratio = widths[s - 1], 2 ** (s + 1)
            H, W = img_H // ratio, img_W // ratio
            blocks = []
            for i in range(num_blocks[s - 1]):
                stride = 2 if (i == 0 and s > 1) else 1
                if block_type == 'base' or stride == 2 or s not in (2, 3):
                    blk = BaseBlock(in_c, width // 4, width, stride, deploy)
                elif block_type == 'light':
                    blk = RepMLPLightBlock(in_c, width // 8, width, H, W, h, w, reparam_conv_k,
                                           fc1_fc2_reduction, fc3_groups, deploy)
                else:
                    blk = RepMLPBottleneckBlock(in_c, width // 4, width, bottleneck_r[s - 2], H, W, h, w,
                                                reparam_conv_k, fc1_fc2_reduction, fc3_groups, deploy)
                blocks.append(blk)
                in_c = width
            self.add_module(f'stage{s}', nn.Sequential(*blocks))
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.linear = nn.Linear(widths[3], num_classes)

    def forward(self, x):
        y = self.stage0(x)
        for s in range(1, 5):
            y = getattr(self, f'stage{s}')(y)
        return self.linear(torch.flatten(self.gap(y), 1))


_COMMON = dict(num_blocks=[3, 4, 6, 3], num_classes=1000, img_H=224, img_W=224, h=7, w=7,
               reparam_conv_k=[1, 3, 5], fc1_fc2_reduction=1)
PRESETS = {
    'RepMLP-Res50-light-224': dict(_COMMON, block_type='light', fc3_groups=4),
    'RepMLP-Res50-bottleneck-224': dict(_COMMON, block_type='bottleneck', fc3_groups=8, bottleneck_r=[2, 4]),
    'RepMLP-Res50-base-224': dict(_COMMON, block_type='base', fc3_groups=4),
}

_FIELDS = ('num_blocks', 'num_classes', 'block_type', 'img_H', 'img_W', 'h', 'w', 'reparam_conv_k',
           'fc1_fc2_reduction', 'fc3_groups', 'bottleneck_r', 'widths', 'stem_width', 'in_channels')


def build_model(cfg, deploy=False):
    """cfg: a preset name, or a dict with config.ts's field names (a JSON config)."""
    if isinstance(cfg, str):
        cfg = PRESETS[cfg]
    unknown = set(cfg) - set(_FIELDS)
    if unknown:
        raise ValueError(f'unknown config fields {sorted(unknown)}')
    kw = dict(cfg)
    for key in ('bottleneck_r', 'widths', 'reparam_conv_k', 'num_blocks'):
        if key in kw:
            kw[key] = tuple(kw[key])
    return RepMLPResNet(**kw, deploy=deploy).eval()


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
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            uni(m.weight, 0.5, 1.5)
            normal(m.bias, 0.1)
            normal(m.running_mean, 0.1)
            uni(m.running_var, 0.5, 1.5)
        elif isinstance(m, (nn.Linear, nn.Conv2d)):
            # Re-draw weights from the seed too, so a fixture depends only on (cfg, seed).
            fan_in = m.weight[0].numel()
            normal(m.weight, (1.0 / fan_in) ** 0.5)
            if m.bias is not None:
                normal(m.bias, 0.1)
    return model.eval()


def state_dict_numel(sd):
    return sum(t.numel() for t in sd.values())


def _selftest():
    want = {
        'RepMLP-Res50-light-224': (87174653, 86142440, 536),
        'RepMLP-Res50-bottleneck-224': (41179661, 40871528, 632),
    }
    ok = True
    for name, (train_n, deploy_n, tensors) in want.items():
        sd_t = build_model(name).state_dict()
        sd_d = build_model(name, deploy=True).state_dict()
        got = (state_dict_numel(sd_t), state_dict_numel(sd_d), len(sd_t))
        good = got == (train_n, deploy_n, tensors)
        ok &= good
        print(f'{name}: train {got[0]:,} deploy {got[1]:,} tensors {got[2]} '
              f'(spec {train_n:,} / {deploy_n:,} / {tensors}) {"OK" if good else "MISMATCH"}')
    # A tiny model runs and both forms produce finite logits.
    cfg = dict(PRESETS['RepMLP-Res50-light-224'], img_H=64, img_W=96, h=2, w=3, widths=[16, 32, 64, 128],
               stem_width=8, num_classes=5)
    for deploy in (False, True):
        m = randomize(build_model(cfg, deploy), 0)
        y = m(torch.randn(2, 3, 64, 96))
        ok &= bool(torch.isfinite(y).all()) and tuple(y.shape) == (2, 5)
    print('selftest', 'passed' if ok else 'FAILED')
    return 0 if ok else 1


if __name__ == '__main__':
    if '--selftest' in sys.argv:
        sys.exit(_selftest())
    print(__doc__)
