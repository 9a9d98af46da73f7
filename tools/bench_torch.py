"""PyTorch side of `repmlp bench`: whole-process jobs timed from Node, each printing one
JSON line (with its own peak RSS) so the two toolkits are compared in one run.

    bench_torch.py make ARCH OUT.pth [--seed S]          training-time checkpoint (randomized BN)
    bench_torch.py io IN.pth OUT.pth                      torch.load + torch.save
    bench_torch.py eager ARCH --weights W [--deploy] [--threads 2] [--iters 5]
                                                          eager CPU latency, batch 1

`repmlp bench` runs each as __main__ under a wrapper that adds a last line with the peak
RSS. The release's convert.py steps (load, build, load_state_dict, convert, save) are
`reparam_ref.py convert IN OUT ARCH release`.
"""
import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from repmlp_ref import PRESETS, build_model, randomize  # noqa: E402


def load_cfg(arch):
    if arch.endswith('.json'):
        with open(arch) as f:
            return json.load(f)
    return arch


def cmd_make(a):
    torch.manual_seed(a.seed)
    m = build_model(load_cfg(a.arch))
    randomize(m, a.seed)
    torch.save(m.state_dict(), a.out)


def cmd_io(a):
    sd = torch.load(a.inp)
    torch.save(sd, a.out)


def cmd_eager(a):
    torch.set_num_threads(a.threads)
    model = build_model(load_cfg(a.arch), deploy=a.deploy)
    sd = torch.load(a.weights)
    sd = sd.get('state_dict', sd)
    model.load_state_dict({k[7:] if k.startswith('module.') else k: v for k, v in sd.items()})
    model.eval()
    cfg = load_cfg(a.arch)
    cfg = PRESETS[cfg] if isinstance(cfg, str) else cfg
    x = torch.randn(1, cfg.get('in_channels', 3), cfg['img_H'], cfg['img_W'])
    times = []
    with torch.no_grad():
        model(x)
        for _ in range(a.iters):
            t = time.perf_counter()
            model(x)
            times.append((time.perf_counter() - t) * 1000)
    times.sort()
    print(json.dumps({'median_ms': times[len(times) // 2], 'min_ms': times[0], 'threads': a.threads}))


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    sub = p.add_subparsers(dest='cmd', required=True)
    s = sub.add_parser('make'); s.add_argument('arch'); s.add_argument('out'); s.add_argument('--seed', type=int, default=0)
    s.set_defaults(f=cmd_make)
    s = sub.add_parser('io'); s.add_argument('inp'); s.add_argument('out'); s.set_defaults(f=cmd_io)
    s = sub.add_parser('eager'); s.add_argument('arch'); s.add_argument('--weights', required=True)
    s.add_argument('--deploy', action='store_true'); s.add_argument('--threads', type=int, default=2)
    s.add_argument('--iters', type=int, default=5); s.set_defaults(f=cmd_eager)
    a = p.parse_args()
    a.f(a)


if __name__ == '__main__':
    main()
