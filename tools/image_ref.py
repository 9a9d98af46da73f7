"""Reference image preprocessing: torchvision's evaluation transforms, written with PIL +
numpy because torchvision itself is not packaged next to Debian's PyTorch here.

What the release's test.py does for ImageNet (and what src/io/image.ts reproduces):
    PIL.Image.open(f).convert('RGB')
    transforms.Resize(256)        # shorter side -> 256, longer = int(256 * long / short),
                                  # PIL BILINEAR (antialiased: support grows when shrinking)
    transforms.CenterCrop(224)    # offsets int(round((H - 224) / 2)), Python's round
                                  # (half to even); zero padding when the image is smaller
    transforms.ToTensor()         # uint8 -> float32 / 255, HWC -> CHW
    transforms.Normalize(mean, std)  # float32 (x - mean) / std

Each step below follows torchvision 0.14's code path for PIL images.
"""
import numpy as np
from PIL import Image

IMAGENET = dict(mode='RGB', resize=256, crop=224, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))


def load(path, mode='RGB'):
    """ImageFolder's loader: open, convert (drops alpha, expands palette/gray)."""
    with open(path, 'rb') as f:
        return Image.open(f).convert(mode)


def resize_shorter(img, size):
    """transforms.Resize(int): the shorter side becomes `size`, aspect ratio kept."""
    w, h = img.size
    short, long = (w, h) if w <= h else (h, w)
    new_short, new_long = size, int(size * long / short)
    new_w, new_h = (new_short, new_long) if w <= h else (new_long, new_short)
    if (new_w, new_h) == (w, h):
        return img
    return img.resize((new_w, new_h), Image.BILINEAR)


def center_crop(img, size):
    """transforms.CenterCrop(int or (h, w)): pads with 0 first when the image is smaller."""
    ch, cw = (size, size) if isinstance(size, int) else size
    w, h = img.size
    if cw > w or ch > h:
        left, top = (cw - w) // 2 if cw > w else 0, (ch - h) // 2 if ch > h else 0
        right, bottom = (cw - w + 1) // 2 if cw > w else 0, (ch - h + 1) // 2 if ch > h else 0
        padded = Image.new(img.mode, (w + left + right, h + top + bottom), 0)
        padded.paste(img, (left, top))
        img, (w, h) = padded, padded.size
        if (w, h) == (cw, ch):
            return img
    top = int(round((h - ch) / 2.0))
    left = int(round((w - cw) / 2.0))
    return img.crop((left, top, left + cw, top + ch))


def to_tensor(img, mean, std):
    """ToTensor + Normalize, in float32 as torch computes them: CHW float32 array."""
    a = np.asarray(img, dtype=np.uint8)
    if a.ndim == 2:
        a = a[:, :, None]
    x = a.transpose(2, 0, 1).astype(np.float32) / np.float32(255)
    m = np.asarray(mean, dtype=np.float32)[:, None, None]
    s = np.asarray(std, dtype=np.float32)[:, None, None]
    return (x - m) / s


def preprocess(path, mode='RGB', resize=256, crop=224, mean=IMAGENET['mean'], std=IMAGENET['std']):
    img = load(path, mode)
    if resize:
        img = resize_shorter(img, resize)
    if crop:
        img = center_crop(img, crop)
    return to_tensor(img, mean, std)
