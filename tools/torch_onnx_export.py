"""PyTorch side of the export checks and benchmark (issue 5).

Subcommands (ARCH: a preset name or a JSON config file, as for `repmlp --arch`):
  prepare ARCH --seed S --out DIR [--batches 1,3]
      DIR/deploy.pth: state dict of tools/repmlp_ref.py's deploy model, randomized;
      DIR/x{B}.npy: float32 NCHW input (seeded); DIR/y{B}.npy: PyTorch's logits for it.
  logits ARCH --weights deploy.pth --input x.npy --out y.npy
      PyTorch logits of a deploy state dict.
  onnx ARCH --weights deploy.pth --out model.onnx [--opset 17]
      torch.onnx.export of the same deploy model (input `input`, output `logits`, dynamic
      batch): the comparison file for the benchmark.
  check model.onnx
      onnx.checker.check_model(full_check=True) by path (external data works); prints
      opset/IR/nodes.
  serve ARCH --weights W [--train] [--threads 2]
      one eager forward per stdin line, its time in ms per stdout line (after 'ready'):
      lets src/export/bench.ts interleave PyTorch with our runtimes.
  bench ARCH --weights deploy.pth [--threads 2] [--iters 10]
      batch-1 latency (JSON, ms) of PyTorch eager on the deploy model. ONNX files are
      timed from Node with onnxruntime-node (src/export/bench.ts).
  serve ARCH --weights deploy.pth [--threads 2]
      for paired timing from another process: prints `ready`, then for every stdin line
      runs one batch-1 forward and prints its time in ms (one line each).

Run with the real torch: /usr/bin/python3 tools/torch_onnx_export.py ...
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from repmlp_ref import PRESETS, build_model, randomize  # noqa: E402


def load_cfg(arch):
    if arch in PRESETS:
        return arch
    with open(arch) as f:
        return json.load(f)


def deploy_model(arch, weights=None, seed=0):
    model = build_model(load_cfg(arch), deploy=True)
    if weights:
        sd = torch.load(weights, map_location='cpu')
        model.load_state_dict(sd, strict=True)
    else:
        randomize(model, seed)
    return model.eval()


def input_shape(model_cfg, batch):
    cfg = PRESETS[model_cfg] if isinstance(model_cfg, str) else model_cfg
    return (batch, cfg.get('in_channels', 3), cfg['img_H'], cfg['img_W'])


@torch.no_grad()
def cmd_prepare(a):
    os.makedirs(a.out, exist_ok=True)
    model = deploy_model(a.arch, seed=a.seed)
    torch.save(model.state_dict(), os.path.join(a.out, 'deploy.pth'))
    g = torch.Generator().manual_seed(a.seed + 1)
    for b in [int(s) for s in a.batches.split(',')]:
        x = torch.randn(input_shape(load_cfg(a.arch), b), generator=g)
        np.save(os.path.join(a.out, f'x{b}.npy'), x.numpy().astype(np.float32))
        np.save(os.path.join(a.out, f'y{b}.npy'), model(x).numpy().astype(np.float32))


@torch.no_grad()
def cmd_logits(a):
    model = deploy_model(a.arch, a.weights)
    x = torch.from_numpy(np.load(a.input).astype(np.float32))
    np.save(a.out, model(x).numpy().astype(np.float32))


@torch.no_grad()
def cmd_onnx(a):
    model = deploy_model(a.arch, a.weights)
    x = torch.zeros(input_shape(load_cfg(a.arch), 1))
    torch.onnx.export(model, x, a.out, input_names=['input'], output_names=['logits'],
                      dynamic_axes={'input': {0: 'N'}, 'logits': {0: 'N'}}, opset_version=a.opset,
                      do_constant_folding=True)


def cmd_check(a):
    import onnx
    # full_check adds strict shape inference over the whole graph.
    onnx.checker.check_model(a.file, full_check=True)
    m = onnx.load(a.file, load_external_data=False)
    print(json.dumps({'ir_version': m.ir_version, 'opset': [o.version for o in m.opset_import],
                      'nodes': len(m.graph.node), 'inputs': [i.name for i in m.graph.input],
                      'outputs': [o.name for o in m.graph.output]}))


@torch.no_grad()
def cmd_bench(a):
    torch.set_num_threads(a.threads)
    model = deploy_model(a.arch, a.weights)
    x = torch.randn(input_shape(load_cfg(a.arch), 1))
    for _ in range(2):
        model(x)
    times = []
    for _ in range(a.iters):
        t = time.perf_counter()
        model(x)
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    print(json.dumps({'runtime': 'pytorch-eager', 'threads': a.threads, 'median_ms': times[len(times) // 2],
                      'min_ms': times[0], 'iters': a.iters}))


@torch.no_grad()
def train_model(arch, weights):
    """Training-time model from a checkpoint (a `state_dict` wrapper and a `module.` prefix allowed)."""
    model = build_model(load_cfg(arch), deploy=False)
    sd = torch.load(weights, map_location='cpu')
    sd = sd.get('state_dict', sd)
    model.load_state_dict({k[7:] if k.startswith('module.') else k: v for k, v in sd.items()}, strict=True)
    return model.eval()


@torch.no_grad()
def cmd_serve(a):
    torch.set_num_threads(a.threads)
    model = train_model(a.arch, a.weights) if a.train else deploy_model(a.arch, a.weights)
    x = torch.randn(input_shape(load_cfg(a.arch), 1))
    model(x)
    print('ready', flush=True)
    for _ in sys.stdin:
        t = time.perf_counter()
        model(x)
        print(f'{(time.perf_counter() - t) * 1000:.3f}', flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    sub = p.add_subparsers(dest='cmd', required=True)
    s = sub.add_parser('prepare')
    s.add_argument('arch')
    s.add_argument('--seed', type=int, default=0)
    s.add_argument('--out', required=True)
    s.add_argument('--batches', default='1,3')
    s.set_defaults(f=cmd_prepare)
    s = sub.add_parser('logits')
    s.add_argument('arch')
    s.add_argument('--weights', required=True)
    s.add_argument('--input', required=True)
    s.add_argument('--out', required=True)
    s.set_defaults(f=cmd_logits)
    s = sub.add_parser('onnx')
    s.add_argument('arch')
    s.add_argument('--weights', required=True)
    s.add_argument('--out', required=True)
    s.add_argument('--opset', type=int, default=17)
    s.set_defaults(f=cmd_onnx)
    s = sub.add_parser('check')
    s.add_argument('file')
    s.set_defaults(f=cmd_check)
    s = sub.add_parser('bench')
    s.add_argument('arch')
    s.add_argument('--weights', required=True)
    s.add_argument('--threads', type=int, default=2)
    s.add_argument('--iters', type=int, default=10)
    s.set_defaults(f=cmd_bench)
    s = sub.add_parser('serve')
    s.add_argument('arch')
    s.add_argument('--weights', required=True)
    s.add_argument('--threads', type=int, default=2)
    s.add_argument('--train', action='store_true', help='a training-time checkpoint (default: deploy)')
    s.set_defaults(f=cmd_serve)
    a = p.parse_args()
    a.f(a)


if __name__ == '__main__':
    main()
