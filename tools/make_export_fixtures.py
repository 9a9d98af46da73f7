"""Fixtures for the export tests (test/export*.test.ts), made by real PyTorch 1.13:

  fixtures/export/custom.json       a small non-square RepMLP-ResNet (64x96 images,
                                    4x3 partitions, one RepMLP without global perceptron)
  fixtures/export/custom/deploy.pth  tools/repmlp_ref.py deploy model, randomize(seed 5)
  fixtures/export/custom/train.pth   training-time model, randomize(seed 6), saved as
                                     {'state_dict': ...} with 'module.' keys (DDP style)
  fixtures/export/custom/x{1,2}.npy  float32 NCHW inputs
  fixtures/export/custom/y{1,2}.npy  deploy model logits for them
  fixtures/export/custom/train_y2.npy  training-time model logits for x2 (eval mode)

Run: /usr/bin/python3 tools/make_export_fixtures.py
"""
import json
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from repmlp_ref import build_model, randomize  # noqa: E402

ROOT = os.path.dirname(HERE)
OUT = os.path.join(ROOT, 'fixtures', 'export', 'custom')


@torch.no_grad()
def main():
    torch.manual_seed(0)
    with open(os.path.join(ROOT, 'fixtures', 'export', 'custom.json')) as f:
        cfg = json.load(f)
    os.makedirs(OUT, exist_ok=True)
    deploy = randomize(build_model(cfg, deploy=True), 5)
    train = randomize(build_model(cfg, deploy=False), 6)
    torch.save(deploy.state_dict(), os.path.join(OUT, 'deploy.pth'))
    torch.save({'state_dict': {'module.' + k: v for k, v in train.state_dict().items()}, 'epoch': 3},
               os.path.join(OUT, 'train.pth'))
    g = torch.Generator().manual_seed(7)
    for b in (1, 2):
        x = torch.randn(b, cfg.get('in_channels', 3), cfg['img_H'], cfg['img_W'], generator=g)
        np.save(os.path.join(OUT, f'x{b}.npy'), x.numpy().astype(np.float32))
        np.save(os.path.join(OUT, f'y{b}.npy'), deploy(x).numpy().astype(np.float32))
        if b == 2:
            np.save(os.path.join(OUT, 'train_y2.npy'), train(x).numpy().astype(np.float32))
    print('wrote', sorted(os.listdir(OUT)))


if __name__ == '__main__':
    main()
