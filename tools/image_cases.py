"""Test images and what PIL + torch make of them, for test/image.test.ts.

    /usr/bin/python3 tools/image_cases.py OUTDIR   # prints a JSON manifest on stdout

For each case it writes the image file, the pixels PIL decodes (after .convert(mode)) as
raw uint8, and the tensor the torchvision pipeline (tools/image_ref.py) produces as raw
float32 (little-endian, CHW), so the TypeScript side can tell decoding differences from
resizing differences. PNG variants PIL cannot write (16-bit RGB, 2-bit gray, tRNS colour
keys) are written by a minimal PNG encoder here.
"""
import json
import os
import struct
import sys
import zlib

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import image_ref  # noqa: E402


def smooth_image(h, w, c, seed):
    """A photo-like image: gradients, a blob and some noise (so resizing has work to do)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    chans = []
    for k in range(c):
        v = 128 + 90 * np.sin(x / (7 + 3 * k) + y / 11) * np.cos(y / (5 + k))
        v += 60 * np.exp(-((x - w / 3) ** 2 + (y - h / 2) ** 2) / (2 * (min(h, w) / 5) ** 2))
        v += rng.normal(0, 12, (h, w))
        chans.append(v)
    return np.clip(np.stack(chans, -1), 0, 255).round().astype(np.uint8)


def png_chunk(kind, data):
    return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data) & 0xffffffff)


def write_png(path, pixels, color_type, depth, palette=None, trns=None):
    """Minimal PNG encoder: filter 0 on every row; pixels are samples in file order."""
    h = pixels.shape[0]
    rows = []
    for r in range(h):
        row = pixels[r].reshape(-1)
        if depth == 16:
            raw = row.astype('>u2').tobytes()
        elif depth == 8:
            raw = row.astype(np.uint8).tobytes()
        else:  # pack low bit depths MSB first
            per = 8 // depth
            padded = np.zeros(-(-len(row) // per) * per, dtype=np.uint8)
            padded[:len(row)] = row
            groups = padded.reshape(-1, per)
            raw = bytes(int(sum(int(v) << (8 - depth * (i + 1)) for i, v in enumerate(g))) for g in groups)
        rows.append(b'\0' + raw)
    w = pixels.shape[1]
    out = b'\x89PNG\r\n\x1a\n' + png_chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, depth, color_type, 0, 0, 0))
    if palette is not None:
        out += png_chunk(b'PLTE', bytes(np.asarray(palette, dtype=np.uint8).reshape(-1)))
    if trns is not None:
        out += png_chunk(b'tRNS', trns)
    out += png_chunk(b'IDAT', zlib.compress(b''.join(rows))) + png_chunk(b'IEND', b'')
    with open(path, 'wb') as f:
        f.write(out)


def torch_tensor(path, pre):
    """The pipeline with torch's own float32 ops for ToTensor/Normalize."""
    img = image_ref.load(path, pre['mode'])
    if pre['resize']:
        img = image_ref.resize_shorter(img, pre['resize'])
    img = image_ref.center_crop(img, pre['crop'])
    a = np.asarray(img, dtype=np.uint8)
    t = torch.from_numpy(a.copy()).view(a.shape[0], a.shape[1], -1).permute(2, 0, 1).contiguous().float().div(255)
    mean = torch.tensor(pre['mean'], dtype=torch.float32)[:, None, None]
    std = torch.tensor(pre['std'], dtype=torch.float32)[:, None, None]
    return t.sub_(mean).div_(std).numpy()


IMAGENET = dict(mode='RGB', resize=256, crop=224, mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
SMALL_RGB = dict(IMAGENET, resize=40, crop=32)
SMALL_L = dict(mode='L', resize=28, crop=32, mean=[0.286], std=[0.353])


def make(out):
    os.makedirs(out, exist_ok=True)
    p = lambda name: os.path.join(out, name)
    photo = smooth_image(200, 300, 3, 1)
    tall = smooth_image(301, 123, 3, 2)
    gray = smooth_image(47, 61, 1, 3)[:, :, 0]
    alpha = smooth_image(47, 61, 1, 4)[:, :, 0]
    Image.fromarray(photo).save(p('photo.png'))
    Image.fromarray(photo).save(p('photo.jpg'), quality=90)
    Image.fromarray(tall).save(p('tall.png'))
    Image.fromarray(gray, 'L').save(p('gray.png'))
    Image.fromarray(gray, 'L').save(p('gray.jpg'), quality=90)
    Image.fromarray(np.dstack([photo[:47, :61], alpha]), 'RGBA').save(p('rgba.png'))
    Image.fromarray(np.dstack([gray, alpha]), 'LA').save(p('la.png'))
    Image.fromarray(photo[:47, :61]).quantize(colors=37).save(p('palette.png'))
    write_png(p('gray2.png'), (gray >> 6)[:, :, None], 0, 2)
    key = photo[:47, :61].copy()
    key[5:9, 5:9] = (10, 20, 30)
    write_png(p('rgb_trns.png'), key, 2, 8, trns=struct.pack('>HHH', 10, 20, 30))
    rgb16 = photo[:47, :61].astype(np.uint16) * 257 + np.arange(61, dtype=np.uint16)[None, :, None]
    write_png(p('rgb16.png'), rgb16, 2, 16)
    write_png(p('gray16.png'), (gray.astype(np.uint16) * 257)[:, :, None], 0, 16)

    cases = [
        ('photo.png', IMAGENET), ('photo.png', SMALL_RGB), ('photo.png', SMALL_L), ('tall.png', SMALL_RGB),
        ('tall.png', dict(IMAGENET, resize=300, crop=[250, 200])),  # upscaling, non-square crop
        ('gray.png', SMALL_RGB), ('gray.png', SMALL_L), ('rgba.png', SMALL_RGB), ('la.png', SMALL_L),
        ('palette.png', SMALL_RGB), ('palette.png', SMALL_L), ('gray2.png', SMALL_L), ('rgb_trns.png', SMALL_RGB),
        ('rgb16.png', SMALL_RGB), ('photo.jpg', IMAGENET), ('gray.jpg', SMALL_L),
    ]
    manifest = []
    for i, (name, pre) in enumerate(cases):
        mode = pre['mode']
        crop = pre['crop']
        pre_py = dict(pre, crop=crop if isinstance(crop, int) else tuple(crop))
        pixels = np.asarray(image_ref.load(p(name), mode), dtype=np.uint8)
        if name == 'rgb16.png':
            # What this toolkit promises for 16-bit: round(v * 255 / 65535) (PIL keeps the high byte).
            pixels = np.floor(rgb16.astype(np.float64) * 255 / 65535 + 0.5).astype(np.uint8)
        tensor = torch_tensor(p(name), pre_py) if name != 'rgb16.png' else None
        pix_file, ten_file = f'case{i}.u8', f'case{i}.f32'
        pixels.tofile(p(pix_file))
        if tensor is not None:
            tensor.astype('<f4').tofile(p(ten_file))
        manifest.append({
            'file': name, 'preprocess': pre, 'pixels': pix_file, 'pixelShape': list(pixels.shape),
            'tensor': ten_file if tensor is not None else None,
            'tensorShape': list(tensor.shape) if tensor is not None else None,
        })
    manifest.append({'file': 'gray16.png', 'grayExpected': 'gray16.u8'})
    gray.tofile(p('gray16.u8'))
    return manifest


if __name__ == '__main__':
    print(json.dumps(make(sys.argv[1])))
