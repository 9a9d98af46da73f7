"""Makes fixtures/reparam/: training-time models with RepMLPs, PyTorch's exact
conversion of each (tools/reparam_ref.py), an input batch and the training model's output.

    /usr/bin/python3 tools/make_reparam_fixtures.py [OUT_DIR]

Per case NAME:
  NAME.train.pth    training-time state dict (the `ddp` case: {'state_dict': {'module.'...}, 'epoch'})
  NAME.deploy.pth   (legacy format, to keep fixtures small) reparam_ref.exact_model_convert(model).state_dict(): the reference
                    keys, order and values the TypeScript converter must reproduce
  NAME.input.npy, NAME.output.npy   a float32 batch and the training model's output
  NAME.arch.json    RepMLPResNet arguments (ResNet cases), usable as --arch
manifest.json lists each case: kind, constructor arguments, the hints the converter needs
(what the shapes cannot tell), and the measured relative output error of the exact
conversion and of the release's (C != O defect) conversion. Nothing here is hand-edited.
"""
import collections
import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from repmlp_ref import ConvBNReLU, RepMLP, build_model, randomize  # noqa: E402
from reparam_ref import exact_model_convert, rel_err, release_model_convert  # noqa: E402

TINY = dict(stem_width=4, num_classes=5, num_blocks=[1, 2, 2, 1], reparam_conv_k=[1, 3, 5], fc1_fc2_reduction=1)

# Standalone RepMLP(C, O, H, W, h, w, reparam_conv_k, fc1_fc2_reduction, fc3_groups).
REPMLPS = {
    # C == O, global + local perceptrons, groups 2, reduction 2.
    'repmlp_c8_o8_g2': (dict(C=8, O=8, H=8, W=8, h=4, w=4, reparam_conv_k=[1, 3, 5], fc1_fc2_reduction=2, fc3_groups=2), {}),
    # C < O, non-square partition 4x6 (h*w = 24: needs --partition).
    'repmlp_c4_o6_p4x6': (dict(C=4, O=6, H=8, W=12, h=4, w=6, reparam_conv_k=[1, 3], fc1_fc2_reduction=1, fc3_groups=2),
                          {'h': 4, 'w': 6}),
    # C > O, groups 4, square partitions, kernels larger than the partition (5 > 3).
    'repmlp_c8_o4_g4': (dict(C=8, O=4, H=6, W=6, h=3, w=3, reparam_conv_k=[3, 5], fc1_fc2_reduction=1, fc3_groups=4), {}),
    # No global perceptron (H == h): g cannot be read (needs --fc3-groups); C > O.
    'repmlp_local_only': (dict(C=4, O=2, H=4, W=4, h=4, w=4, reparam_conv_k=[1, 3], fc1_fc2_reduction=1, fc3_groups=2),
                          {'fc3Groups': 2}),
    # No local perceptron: fc3 + fc3_bn and fc1 + avg.bn only.
    'repmlp_global_only': (dict(C=4, O=4, H=8, W=8, h=4, w=4, reparam_conv_k=None, fc1_fc2_reduction=1, fc3_groups=1), {}),
    # Neither perceptron: fc3 + fc3_bn.
    'repmlp_plain': (dict(C=3, O=5, H=3, W=3, h=3, w=3, reparam_conv_k=None, fc1_fc2_reduction=1, fc3_groups=1), {}),
}

RESNETS = {
    # Light blocks, non-square image and partitions 2x4 (h*w = 8: needs --partition 2x4 or --arch);
    # stage 3's feature is 2x4 == the partition: no global perceptron, so also --fc3-groups 2.
    'resnet_light_p2x4': (dict(TINY, block_type='light', widths=[16, 16, 32, 32], img_H=32, img_W=64, h=2, w=4,
                               fc3_groups=2), {'h': 2, 'w': 4, 'fc3Groups': 2}),
    # Bottleneck blocks, square 2x2 partitions, every RepMLP with a global perceptron: no hints.
    'resnet_bottleneck': (dict(TINY, block_type='bottleneck', widths=[8, 16, 32, 32], img_H=64, img_W=32, h=2, w=2,
                               fc3_groups=2, bottleneck_r=[2, 2], num_blocks=[1, 2, 2, 1]), {}),
    # DistributedDataParallel checkpoint: 'module.' keys inside {'state_dict': ..., 'epoch': 3}.
    'resnet_ddp': (dict(TINY, block_type='light', widths=[16, 16, 32, 32], img_H=32, img_W=32, h=2, w=2,
                        fc3_groups=1, reparam_conv_k=[3], num_blocks=[1, 2, 1, 1]), {}),
}


class UserNet(nn.Module):
    """A user's model with a RepMLP somewhere: stem ConvBNReLU, RepMLP(C != O), a BatchNorm
    that belongs to no conv (kept as is, num_batches_tracked included), a Linear head."""

    def __init__(self):
        super().__init__()
        self.stem = ConvBNReLU(3, 8, 3, padding=1)
        self.mixer = nn.Sequential(collections.OrderedDict(
            mlp=RepMLP(8, 6, 8, 8, 4, 4, (1, 3), 1, 2)))
        self.norm = nn.BatchNorm2d(6)
        self.head = nn.Linear(6, 4)

    def forward(self, x):
        y = self.norm(self.mixer(self.stem(x)))
        return self.head(F.adaptive_avg_pool2d(y, 1).flatten(1))


USERS = {'user_net': (UserNet, (2, 3, 8, 8), {})}


def save_npy(path, a):
    np.save(path, np.ascontiguousarray(a, dtype=np.float32))


@torch.no_grad()
def make_case(out, name, model, x, hints, meta, ddp=False):
    model = randomize(model.eval(), sum(map(ord, name)))
    y = model(x)
    exact = exact_model_convert(model)
    release = release_model_convert(model)
    sd = model.state_dict()
    if ddp:
        sd = {'state_dict': collections.OrderedDict(('module.' + k, v) for k, v in sd.items()), 'epoch': 3}
    torch.save(sd, os.path.join(out, f'{name}.train.pth'))
    # The reference in torch's legacy format: no 64-byte record alignment, half the size.
    torch.save(exact.state_dict(), os.path.join(out, f'{name}.deploy.pth'), _use_new_zipfile_serialization=False)
    save_npy(os.path.join(out, f'{name}.input.npy'), x.numpy())
    save_npy(os.path.join(out, f'{name}.output.npy'), y.numpy())
    err = dict(exact=rel_err(exact(x), y), release=rel_err(release(x), y))
    if err['exact'] > 1e-5:
        raise SystemExit(f'{name}: exact conversion is off by {err["exact"]}')
    return dict(meta, name=name, hints=hints, input_shape=list(x.shape), rel_err=err,
                train_keys=len(model.state_dict()), deploy_keys=len(exact.state_dict()))


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'fixtures', 'reparam')
    os.makedirs(out, exist_ok=True)
    gen = torch.Generator().manual_seed(4)
    cases = []
    for name, (p, hints) in REPMLPS.items():
        x = torch.randn(2, p['C'], p['H'], p['W'], generator=gen)
        cases.append(make_case(out, name, RepMLP(**p), x, hints, dict(kind='repmlp', args=p)))
    for name, (cfg, hints) in RESNETS.items():
        with open(os.path.join(out, f'{name}.arch.json'), 'w') as f:
            json.dump(cfg, f, indent=2)
        x = torch.randn(1, 3, cfg['img_H'], cfg['img_W'], generator=gen)
        cases.append(make_case(out, name, build_model(cfg), x, hints, dict(kind='resnet', arch=f'{name}.arch.json'),
                               ddp=name == 'resnet_ddp'))
    for name, (cls, shape, hints) in USERS.items():
        cases.append(make_case(out, name, cls(), torch.randn(*shape, generator=gen), hints, dict(kind='user')))
    with open(os.path.join(out, 'manifest.json'), 'w') as f:
        json.dump(dict(generator='tools/make_reparam_fixtures.py', torch=torch.__version__, cases=cases), f, indent=2)
    total = sum(os.path.getsize(os.path.join(out, n)) for n in os.listdir(out))
    for c in cases:
        print(f"{c['name']:<22} exact {c['rel_err']['exact']:.1e}  release {c['rel_err']['release']:.1e}")
    print(f'wrote {len(cases)} cases to {out}: {total / 1024:.0f} KiB')


if __name__ == '__main__':
    main()
