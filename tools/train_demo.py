"""Trains the bundled demo model: a scaled-down RepMLP-ResNet on Fashion-MNIST.

    /usr/bin/python3 tools/train_demo.py [--epochs N] [--out fixtures/demo]

Data: Debian's dataset-fashion-mnist (/usr/share/datasets/fashion-mnist, idx .gz files).
Images are 28x28 grayscale; the model sees them the way `repmlp predict` prepares any
image for it (fixtures/demo/repmlp-fmnist.meta.json): shorter side resized to 28 (a no-op
here), centre-cropped to 32 with zero padding (28 -> 32, two pixels each side), [0, 1],
normalized with the training set's mean/std. Training adds random +-2 pixel shifts and
horizontal flips.

The model (fixtures/demo/repmlp-fmnist.json) uses the config extensions widths /
stem_width / in_channels: 32x32 input, h = w = 2, so stage 2 (4x4 features) has a global
perceptron and stage 3 (2x2) has none; light blocks, repconv kernels 1 and 3, fc3 groups 4.

Writes into --out:
  repmlp-fmnist.json        the architecture (RepMLPResNet arguments), for --arch
  repmlp-fmnist.meta.json   preprocessing + class names (read by predict/eval/demo)
  repmlp-fmnist.pth         training-time checkpoint: {'state_dict', 'arch', 'meta',
                            'epoch', 'test_top1'} in torch's zip format
  test/NN-name/*.png        30 test images per class (the first 30 of each class in the
                            official test split), ImageFolder layout: sorted folder names
                            are the class indices
  samples/                  a PNG and a JPEG for predict examples (upscaled RGB copies)
  reference.json            what PyTorch computes on exactly those files: top-1/top-5,
                            per-image predictions and logits
Deterministic for a given torch build (seeded; 2 threads).
"""
import argparse
import gzip
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from repmlp_ref import build_model  # noqa: E402
import image_ref  # noqa: E402
from PIL import Image  # noqa: E402

DATA = '/usr/share/datasets/fashion-mnist'
CLASSES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat',
           'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot']
ARCH = dict(num_blocks=[1, 2, 2, 1], num_classes=10, block_type='light', img_H=32, img_W=32, h=2, w=2,
            reparam_conv_k=[1, 3], fc1_fc2_reduction=1, fc3_groups=4, widths=[48, 96, 192, 384],
            stem_width=24, in_channels=1)
PER_CLASS = 30


def read_idx(name):
    """idx files: big-endian magic (dtype, ndim), dims, then the raw bytes."""
    with gzip.open(os.path.join(DATA, name), 'rb') as f:
        raw = f.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], 'big') for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def mean_std(train_images):
    """Of the padded 32x32 images, as the model sees them (padding included)."""
    x = train_images.astype(np.float64) / 255
    n = x.shape[0] * 32 * 32
    return float(x.sum() / n), float(math.sqrt((x ** 2).sum() / n - (x.sum() / n) ** 2))


def to_input(images_u8, mean, std):
    """uint8 [N, 28, 28] -> float32 [N, 1, 32, 32]: pad 2 with zeros, ToTensor, Normalize."""
    x = np.pad(images_u8, ((0, 0), (2, 2), (2, 2))).astype(np.float32) / np.float32(255)
    return torch.from_numpy((x - np.float32(mean)) / np.float32(std)).unsqueeze(1)


def augment(x, gen):
    """Random +-2 pixel shifts (zero = the normalized value of black) and flips."""
    n = x.shape[0]
    pad_value = float(x[0, 0, 0, 0])  # a padding pixel: black, normalized
    padded = F.pad(x, (2, 2, 2, 2), value=pad_value)
    dx = torch.randint(0, 5, (n,), generator=gen)
    dy = torch.randint(0, 5, (n,), generator=gen)
    out = torch.stack([padded[i, :, dy[i]:dy[i] + 32, dx[i]:dx[i] + 32] for i in range(n)])
    flip = torch.rand(n, generator=gen) < 0.5
    out[flip] = out[flip].flip(3)
    return out


@torch.no_grad()
def evaluate(model, x, y, batch=1000):
    model.eval()
    logits = torch.cat([model(x[i:i + batch]) for i in range(0, len(x), batch)])
    top1 = (logits.argmax(1) == y).float().mean().item()
    top5 = (logits.topk(5, 1).indices == y[:, None]).any(1).float().mean().item()
    return logits, top1, top5


def train(args, xtr, ytr, xte, yte):
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    model = build_model(ARCH)
    steps = args.epochs * math.ceil(len(xtr) / args.batch)
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=steps, pct_start=0.15)
    for epoch in range(1, args.epochs + 1):
        model.train()
        t0 = time.time()
        perm = torch.randperm(len(xtr), generator=gen)
        total = 0.0
        for i in range(0, len(xtr), args.batch):
            idx = perm[i:i + args.batch]
            loss = F.cross_entropy(model(augment(xtr[idx], gen)), ytr[idx], label_smoothing=0.05)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        _, top1, _ = evaluate(model, xte, yte)
        print(f'epoch {epoch}: loss {total / len(xtr):.4f}, test top-1 {top1 * 100:.2f}% '
              f'({time.time() - t0:.0f} s)', flush=True)
    return model, epoch, top1


def folder_name(i):
    return f'{i:02d}-' + CLASSES[i].lower().replace('/', '-').replace(' ', '-')


def write_test_images(out, images, labels):
    """The first PER_CLASS test images of each class, as 8-bit grayscale PNGs."""
    files = []
    for c in range(len(CLASSES)):
        d = os.path.join(out, 'test', folder_name(c))
        os.makedirs(d, exist_ok=True)
        for j in np.nonzero(labels == c)[0][:PER_CLASS]:
            path = os.path.join(d, f'{int(j):05d}.png')
            Image.fromarray(images[j], 'L').save(path, optimize=True)
            files.append((path, c))
    return sorted(files)


def write_samples(out, images, labels):
    """predict examples: upscaled 3-channel copies, so resize and grayscale conversion run."""
    d = os.path.join(out, 'samples')
    os.makedirs(d, exist_ok=True)
    picks = {'ankle-boot.jpg': 9, 'trouser.png': 1}
    written = {}
    for name, c in picks.items():
        j = int(np.nonzero(labels == c)[0][PER_CLASS])  # not one of the bundled test images
        img = Image.fromarray(images[j], 'L').resize((112, 112), Image.BICUBIC).convert('RGB')
        img.save(os.path.join(d, name), quality=92) if name.endswith('.jpg') else img.save(os.path.join(d, name))
        written[name] = c
    return written


def reference(model, files, meta, samples, out):
    """PyTorch on exactly the committed files, loaded and preprocessed like test.py does."""
    pre = meta['preprocess']
    prep = lambda p: image_ref.preprocess(p, pre['mode'], pre['resize'], pre['crop'], pre['mean'], pre['std'])
    x = torch.from_numpy(np.stack([prep(p) for p, _ in files]))
    y = torch.tensor([c for _, c in files])
    logits, top1, top5 = evaluate(model, x, y)
    sample_top1 = {}
    with torch.no_grad():
        for name in samples:
            sample_top1[name] = int(model(torch.from_numpy(prep(os.path.join(out, 'samples', name)))[None]).argmax())
    return {
        'images': len(files), 'top1': top1, 'top5': top5, 'correct': int(round(top1 * len(files))),
        'files': [os.path.relpath(p, out) for p, _ in files],
        'labels': y.tolist(), 'predictions': logits.argmax(1).tolist(),
        'logits': [[round(v, 5) for v in row] for row in logits.tolist()],
        'samples': {k: {'label': samples[k], 'prediction': v} for k, v in sample_top1.items()},
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--epochs', type=int, default=6)
    ap.add_argument('--batch', type=int, default=128)
    ap.add_argument('--lr', type=float, default=0.1)
    ap.add_argument('--limit', type=int, default=0, help='train on the first N images only (smoke test)')
    ap.add_argument('--out', default=os.path.join(os.path.dirname(__file__), '..', 'fixtures', 'demo'))
    args = ap.parse_args()
    torch.set_num_threads(2)
    out = os.path.normpath(args.out)
    os.makedirs(out, exist_ok=True)

    tr_img, tr_lab = read_idx('train-images-idx3-ubyte.gz'), read_idx('train-labels-idx1-ubyte.gz')
    te_img, te_lab = read_idx('t10k-images-idx3-ubyte.gz'), read_idx('t10k-labels-idx1-ubyte.gz')
    mean, std = mean_std(np.pad(tr_img, ((0, 0), (2, 2), (2, 2))))
    mean, std = round(mean, 4), round(std, 4)
    meta = {
        'name': 'RepMLP-ResNet demo (Fashion-MNIST)',
        'preprocess': {'mode': 'L', 'resize': 28, 'crop': 32, 'mean': [mean], 'std': [std]},
        'classes': CLASSES,
    }
    if args.limit:
        tr_img, tr_lab = tr_img[:args.limit], tr_lab[:args.limit]
    xtr, ytr = to_input(tr_img, mean, std), torch.from_numpy(tr_lab.astype(np.int64))
    xte, yte = to_input(te_img, mean, std), torch.from_numpy(te_lab.astype(np.int64))
    model, epoch, top1 = train(args, xtr, ytr, xte, yte)
    model.eval()

    with open(os.path.join(out, 'repmlp-fmnist.json'), 'w') as f:
        json.dump(ARCH, f, indent=2)
        f.write('\n')
    with open(os.path.join(out, 'repmlp-fmnist.meta.json'), 'w') as f:
        json.dump(dict(meta, arch='repmlp-fmnist.json'), f, indent=2)
        f.write('\n')
    torch.save({'state_dict': model.state_dict(), 'arch': ARCH, 'meta': meta, 'epoch': epoch,
                'test_top1': top1}, os.path.join(out, 'repmlp-fmnist.pth'))
    files = write_test_images(out, te_img, te_lab)
    samples = write_samples(out, te_img, te_lab)
    ref = reference(model, files, meta, samples, out)
    ref = dict({'full_test_top1': top1, 'torch': torch.__version__}, **ref)
    with open(os.path.join(out, 'reference.json'), 'w') as f:
        json.dump(ref, f, indent=1)
        f.write('\n')
    print(f'bundled {ref["images"]} images: top-1 {ref["top1"] * 100:.2f}%, top-5 {ref["top5"] * 100:.2f}%; '
          f'full test set top-1 {top1 * 100:.2f}%')


if __name__ == '__main__':
    main()
