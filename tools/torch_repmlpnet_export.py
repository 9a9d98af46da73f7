"""PyTorch side of the RepMLPNet checks and benchmark (issue 12), on tools/repmlpnet_ref.py.

The subcommands mirror tools/torch_onnx_export.py / bench_torch.py / reparam_ref.py for the
RepMLP-ResNet, with the same arguments, so the benchmark and the tests call either family's
tool the same way. ARCH: a preset name (RepMLPNet-T224 ...) or a RepMLPNet JSON config.

  make ARCH OUT.pth [--seed S] [--form train|deploy|script]
      a randomized checkpoint (randomized BN statistics): the training-time state dict
      (default), the deploy-built model's state dict, or the training script's checkpoint
      ({'model', 'optimizer', 'lr_scheduler', 'max_accuracy', 'epoch', 'config': CfgNode}).
  prepare ARCH --out DIR [--seed S] [--batches 1,2] [--script]
      DIR/train.pth, DIR/deploy.pth (locality_injection() of that model, as the repository
      stores it), DIR/x{B}.npy (seeded float32 NCHW), DIR/train_y{B}.npy, DIR/y{B}.npy
      (training-time / deploy logits), DIR/meta.json (keys, shapes, input size); with
      --script also DIR/script.pth, the training script's checkpoint of the same model.
  convert IN OUT ARCH [release32|exact]
      convert.py's steps: torch.load, unwrap 'state_dict'/'model', strip 'module.', build,
      load_state_dict(strict), locality_injection(), torch.save(model.state_dict()).
      `exact`: the injection in float64 (stored float32).
  io IN OUT                     torch.load + torch.save (the read + write comparison)
  logits ARCH --weights W --input X.npy --out Y.npy [--train]
  onnx ARCH --weights deploy.pth --out model.onnx [--opset 17]
      torch.onnx.export of the deploy model: input `input`, output `logits`, dynamic batch.
  serve ARCH --weights W [--train] [--threads 2]
      prints `ready`, then one eager batch-1 forward per stdin line, its time in ms per
      stdout line (src/export/bench.ts eagerRunner's protocol).
  bench ARCH --weights W [--train] [--threads 2] [--iters 10]
      batch-1 eager latency as one JSON line.
  predict ARCH --weights W [--train] [--size R] IMAGE...
      test.py's preprocessing (Resize(R) shorter side bilinear, CenterCrop(R), ImageNet
      mean/std), softmax top-5 per image as JSON (R: the preset's resolution / the config's
      input size by default).

onnx.checker: tools/torch_onnx_export.py check FILE (family-independent).
Run with the real torch: /usr/bin/python3 tools/torch_repmlpnet_export.py ...
"""
import argparse
import copy
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from repmlpnet_ref import (build_model, input_size, load_config, locality_injection, randomize,  # noqa: E402
                           strip_checkpoint, torch_load)


def _shape(arch, batch):
    H, W = input_size(arch)
    return (batch, load_config(arch)['in_channels'], H, W)


def _made(arch, seed):
    torch.manual_seed(seed)
    return randomize(build_model(arch), seed)


def _loaded(arch, weights, train):
    model = build_model(arch, deploy=not train)
    model.load_state_dict(strip_checkpoint(torch_load(weights)), strict=True)
    return model.eval()


def _script_checkpoint(model, arch, seed):
    """The training script's checkpoint of `model` (make_repmlpnet_fixtures's builder)."""
    from make_repmlpnet_fixtures import training_checkpoint
    name = arch if isinstance(arch, str) and not arch.endswith('.json') else os.path.basename(str(arch))
    return training_checkpoint(model, _shape(arch, 1), name, epoch=299, max_accuracy=76.6,
                               output=f'output/{name}/default', seed=seed)


@torch.no_grad()
def cmd_make(a):
    model = _made(a.arch, a.seed)
    if a.form == 'deploy':
        model = randomize(build_model(a.arch, deploy=True), a.seed)
        obj = model.state_dict()
    elif a.form == 'script':
        with torch.enable_grad():
            obj = _script_checkpoint(model, a.arch, a.seed)
    else:
        obj = model.state_dict()
    torch.save(obj, a.out)


@torch.no_grad()
def cmd_prepare(a):
    os.makedirs(a.out, exist_ok=True)
    model = _made(a.arch, a.seed)
    torch.save(model.state_dict(), os.path.join(a.out, 'train.pth'))
    if a.script:
        with torch.enable_grad():
            torch.save(_script_checkpoint(model, a.arch, a.seed), os.path.join(a.out, 'script.pth'))
    deployed = locality_injection(copy.deepcopy(model))
    torch.save(deployed.state_dict(), os.path.join(a.out, 'deploy.pth'))
    g = torch.Generator().manual_seed(a.seed + 1)
    for b in [int(s) for s in a.batches.split(',')]:
        x = torch.randn(_shape(a.arch, b), generator=g)
        np.save(os.path.join(a.out, f'x{b}.npy'), x.numpy().astype(np.float32))
        np.save(os.path.join(a.out, f'train_y{b}.npy'), model(x).numpy().astype(np.float32))
        np.save(os.path.join(a.out, f'y{b}.npy'), deployed(x).numpy().astype(np.float32))
    meta = dict(arch=a.arch, input_size=list(input_size(a.arch)),
                train=[[k, list(v.shape)] for k, v in model.state_dict().items()],
                deploy=[[k, list(v.shape)] for k, v in deployed.state_dict().items()])
    with open(os.path.join(a.out, 'meta.json'), 'w') as f:
        json.dump(meta, f)


def cmd_convert(a):
    exact = a.mode == 'exact'
    model = build_model(a.arch)
    model.load_state_dict(strip_checkpoint(torch_load(a.inp)), strict=True)
    locality_injection(model, torch.float64 if exact else None)
    torch.save(model.state_dict(), a.out)


def cmd_io(a):
    torch.save(torch_load(a.inp), a.out)


@torch.no_grad()
def cmd_logits(a):
    model = _loaded(a.arch, a.weights, a.train)
    x = torch.from_numpy(np.load(a.input).astype(np.float32))
    np.save(a.out, model(x).numpy().astype(np.float32))


@torch.no_grad()
def cmd_onnx(a):
    model = _loaded(a.arch, a.weights, False)
    torch.onnx.export(model, torch.zeros(_shape(a.arch, 1)), a.out, input_names=['input'], output_names=['logits'],
                      dynamic_axes={'input': {0: 'N'}, 'logits': {0: 'N'}}, opset_version=a.opset,
                      do_constant_folding=True)


@torch.no_grad()
def cmd_serve(a):
    torch.set_num_threads(a.threads)
    model = _loaded(a.arch, a.weights, a.train)
    x = torch.randn(_shape(a.arch, 1))
    model(x)
    print('ready', flush=True)
    for _ in sys.stdin:
        t = time.perf_counter()
        model(x)
        print(f'{(time.perf_counter() - t) * 1000:.3f}', flush=True)


@torch.no_grad()
def cmd_bench(a):
    torch.set_num_threads(a.threads)
    model = _loaded(a.arch, a.weights, a.train)
    x = torch.randn(_shape(a.arch, 1))
    for _ in range(2):
        model(x)
    times = []
    for _ in range(a.iters):
        t = time.perf_counter()
        model(x)
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    print(json.dumps({'runtime': 'pytorch-eager', 'form': 'train' if a.train else 'deploy', 'threads': a.threads,
                      'median_ms': times[len(times) // 2], 'min_ms': times[0], 'iters': a.iters}))


@torch.no_grad()
def cmd_predict(a):
    import image_ref
    model = _loaded(a.arch, a.weights, a.train)
    size = a.size or input_size(a.arch)[0]
    out = []
    for img in a.images:
        x = torch.from_numpy(image_ref.preprocess(img, resize=size, crop=size))[None]
        p = torch.softmax(model(x), 1)[0]
        v, i = p.topk(min(5, p.numel()))
        out.append({'file': img, 'top': [{'index': int(k), 'probability': float(q)} for k, q in zip(i, v)]})
    print(json.dumps(out))


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    sub = p.add_subparsers(dest='cmd', required=True)
    s = sub.add_parser('make')
    s.add_argument('arch')
    s.add_argument('out')
    s.add_argument('--seed', type=int, default=0)
    s.add_argument('--form', choices=['train', 'deploy', 'script'], default='train')
    s.set_defaults(f=cmd_make)
    s = sub.add_parser('prepare')
    s.add_argument('arch')
    s.add_argument('--out', required=True)
    s.add_argument('--seed', type=int, default=0)
    s.add_argument('--batches', default='1,2')
    s.add_argument('--script', action='store_true')
    s.set_defaults(f=cmd_prepare)
    s = sub.add_parser('convert')
    s.add_argument('inp')
    s.add_argument('out')
    s.add_argument('arch')
    s.add_argument('mode', nargs='?', default='release32', choices=['release32', 'release', 'exact'])
    s.set_defaults(f=cmd_convert)
    s = sub.add_parser('io')
    s.add_argument('inp')
    s.add_argument('out')
    s.set_defaults(f=cmd_io)
    s = sub.add_parser('logits')
    s.add_argument('arch')
    s.add_argument('--weights', required=True)
    s.add_argument('--input', required=True)
    s.add_argument('--out', required=True)
    s.add_argument('--train', action='store_true')
    s.set_defaults(f=cmd_logits)
    s = sub.add_parser('onnx')
    s.add_argument('arch')
    s.add_argument('--weights', required=True)
    s.add_argument('--out', required=True)
    s.add_argument('--opset', type=int, default=17)
    s.set_defaults(f=cmd_onnx)
    for name, f in (('serve', cmd_serve), ('bench', cmd_bench)):
        s = sub.add_parser(name)
        s.add_argument('arch')
        s.add_argument('--weights', required=True)
        s.add_argument('--threads', type=int, default=2)
        s.add_argument('--train', action='store_true', help='a training-time checkpoint (default: deploy)')
        if name == 'bench':
            s.add_argument('--iters', type=int, default=10)
        s.set_defaults(f=f)
    s = sub.add_parser('predict')
    s.add_argument('arch')
    s.add_argument('images', nargs='+')
    s.add_argument('--weights', required=True)
    s.add_argument('--train', action='store_true')
    s.add_argument('--size', type=int, default=0)
    s.set_defaults(f=cmd_predict)
    a = p.parse_args()
    a.f(a)


if __name__ == '__main__':
    main()
