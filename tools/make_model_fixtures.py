"""Makes fixtures/model/: small RepMLP-ResNets and standalone RepMLP modules, their random
state dicts (training-time and deploy form), an input batch and PyTorch's eval-mode output.

    /usr/bin/python3 tools/make_model_fixtures.py [OUT_DIR]

Every file is produced here from tools/repmlp_ref.py; nothing is hand-edited. The deploy
state dicts are random deploy-form models (not conversions of the training ones): they
test the deploy forward pass on its own. manifest.json lists the cases for the tests.
"""
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from repmlp_ref import RepMLP, build_model, randomize  # noqa: E402

TINY = dict(widths=[8, 16, 32, 32], stem_width=4, num_classes=5)

# Each ResNet case names what it covers.
RESNETS = {
    # Non-square image, partitions (2x3) and partition grids (2x4, 1x2); groups 2.
    'light_nonsquare_g2': dict(TINY, num_blocks=[1, 2, 2, 1], block_type='light', img_H=32, img_W=96,
                               h=2, w=3, reparam_conv_k=[1, 3, 5], fc1_fc2_reduction=1, fc3_groups=2),
    # Stage 3 feature 2x4 == partition: no global perceptron there; kernels (3,); groups 4.
    'bottleneck_noglobal_g4': dict(TINY, num_blocks=[1, 2, 2, 1], block_type='bottleneck', img_H=32,
                                   img_W=64, h=2, w=4, reparam_conv_k=[3], fc1_fc2_reduction=1,
                                   fc3_groups=4, bottleneck_r=[1, 2]),
    # Groups 1, fc1_fc2 reduction 2.
    'light_g1_r2': dict(TINY, num_blocks=[1, 2, 2, 1], block_type='light', img_H=32, img_W=32, h=2, w=2,
                        reparam_conv_k=[1, 3, 5], fc1_fc2_reduction=2, fc3_groups=1),
    # Plain ResNet layout (BaseBlock everywhere), one input channel, non-square image.
    'base_small': dict(TINY, num_blocks=[2, 1, 1, 1], block_type='base', img_H=32, img_W=64, h=1, w=1,
                       reparam_conv_k=[1, 3, 5], fc1_fc2_reduction=1, fc3_groups=4, in_channels=1),
    # Sizes (issue 13): 64x64 with 4x4 partitions (stage 2: 2x2 of them, stage 3: one, no global perceptron).
    'light_64': dict(TINY, num_blocks=[1, 2, 2, 1], block_type='light', img_H=64, img_W=64, h=4, w=4,
                     reparam_conv_k=[1, 3], fc1_fc2_reduction=1, fc3_groups=2),
    # 112x112, not a multiple of 32, with the presets' 7x7 partitions (stage 2 map 14, stage 3 map 7,
    # stage 4 map ceil(7/2) = 4).
    'light_112_p7': dict(TINY, num_blocks=[1, 2, 2, 1], block_type='light', img_H=112, img_W=112, h=7, w=7,
                         reparam_conv_k=[1, 3, 5], fc1_fc2_reduction=1, fc3_groups=1),
    # Plain ResNet at an odd size (50x70): every stride-2 step is ceil(x/2), as PyTorch pads.
    'base_odd_50x70': dict(TINY, num_blocks=[1, 1, 1, 1], block_type='base', img_H=50, img_W=70, h=1, w=1,
                           reparam_conv_k=[1, 3, 5], fc1_fc2_reduction=1, fc3_groups=4, in_channels=1),
}

# Standalone RepMLP modules (C != O), RepMLP(C, O, H, W, h, w, k, reduction, groups).
REPMLPS = {
    'repmlp_c8_o12_g4': dict(C=8, O=12, H=6, W=10, h=3, w=5, reparam_conv_k=[1, 3], fc1_fc2_reduction=2,
                             fc3_groups=4),
    'repmlp_noglobal_c4_o6_g2': dict(C=4, O=6, H=4, W=4, h=4, w=4, reparam_conv_k=[3, 5],
                                     fc1_fc2_reduction=1, fc3_groups=2),
    'repmlp_c6_o3_g1_k135': dict(C=6, O=3, H=8, W=6, h=4, w=2, reparam_conv_k=[1, 3, 5],
                                 fc1_fc2_reduction=1, fc3_groups=1),
}

BATCH = 2


def save_npy(path, a):
    np.save(path, np.ascontiguousarray(a, dtype=np.float32))


@torch.no_grad()
def make_case(out, name, build, in_shape, seed):
    x = torch.randn(in_shape, generator=torch.Generator().manual_seed(seed))
    save_npy(os.path.join(out, f'{name}.input.npy'), x.numpy())
    for i, form in enumerate(('train', 'deploy')):
        model = randomize(build(form == 'deploy'), seed * 10 + i)
        torch.save(model.state_dict(), os.path.join(out, f'{name}.{form}.pth'))
        save_npy(os.path.join(out, f'{name}.{form}.output.npy'), model(x).numpy())


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), '..', 'fixtures', 'model')
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    manifest = []
    for seed, (name, cfg) in enumerate(RESNETS.items(), start=1):
        with open(os.path.join(out, f'{name}.config.json'), 'w') as f:
            json.dump(cfg, f, indent=2)
        shape = (BATCH, cfg.get('in_channels', 3), cfg['img_H'], cfg['img_W'])
        make_case(out, name, lambda d, c=cfg: build_model(c, d), shape, seed)
        manifest.append(dict(name=name, kind='resnet', input_shape=list(shape)))
    for seed, (name, p) in enumerate(REPMLPS.items(), start=100):
        with open(os.path.join(out, f'{name}.config.json'), 'w') as f:
            json.dump(p, f, indent=2)
        shape = (BATCH, p['C'], p['H'], p['W'])
        make_case(out, name, lambda d, p=p: RepMLP(**p, deploy=d).eval(), shape, seed)
        manifest.append(dict(name=name, kind='repmlp', input_shape=list(shape)))
    with open(os.path.join(out, 'manifest.json'), 'w') as f:
        json.dump(dict(generator='tools/make_model_fixtures.py', torch=torch.__version__, batch=BATCH,
                       forms=['train', 'deploy'], cases=manifest), f, indent=2)
    total = sum(os.path.getsize(os.path.join(out, n)) for n in os.listdir(out))
    print(f'wrote {len(manifest)} cases to {out}: {total / 1024:.0f} KiB')


if __name__ == '__main__':
    main()
