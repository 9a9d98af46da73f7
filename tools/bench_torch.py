"""PyTorch side of `repmlp bench`: whole-process jobs timed from Node, each printing one
JSON line (with its own peak RSS) so the two toolkits are compared in one run.

    bench_torch.py make ARCH OUT.pth [--seed S]          training-time checkpoint (randomized BN)
    bench_torch.py io IN.pth OUT.pth                      torch.load + torch.save

`repmlp bench` runs each as __main__ under a wrapper that adds a last line with the peak
RSS. Eager inference is timed by `torch_onnx_export.py serve`, interleaved with our runtimes.
The release's convert.py steps (load, build, load_state_dict, convert, save) are
`reparam_ref.py convert IN OUT ARCH release`.
"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from repmlp_ref import build_model, randomize  # noqa: E402


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


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    sub = p.add_subparsers(dest='cmd', required=True)
    s = sub.add_parser('make'); s.add_argument('arch'); s.add_argument('out'); s.add_argument('--seed', type=int, default=0)
    s.set_defaults(f=cmd_make)
    s = sub.add_parser('io'); s.add_argument('inp'); s.add_argument('out'); s.set_defaults(f=cmd_io)
    a = p.parse_args()
    a.f(a)


if __name__ == '__main__':
    main()
