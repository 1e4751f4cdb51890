#!/usr/bin/env python
"""Time and profile training steps of a Fashion-MNIST-shaped ResMLP.

The model is the paper's ResMLP (patch 4, embed 96, 4 blocks) on 1 x 32 x 32
inputs with 10 classes, hidden factor ``--hidden-factor`` (0.25), batch
``--batch-size`` (128); one step is forward, cross-entropy (+ lambda * TV2 for
the B-spline), backward and the optimiser steps (``training.optim.Optimisers``:
AdamW; Adam for the spline coefficients), as in training. Data are random tensors, so data loading is
not included.

  python scripts/profile_resmlp_step.py                    # step times, models alternated
  python scripts/profile_resmlp_step.py --epoch            # + one epoch (469 steps) each
  python scripts/profile_resmlp_step.py --profile lerp_psa # torch.profiler top ops, 10 steps

The models are timed alternately in one process (round-robin over
``--rounds``), so that a machine that is busy with other work slows them all
alike; the ratio to ReLU is the median step time over ReLU's.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

ACTS = {"relu": "base", "bspline": "bspline", "lerp_psa": "psa"}
EPOCH_STEPS = 60000 // 128 + 1


def build(act, args):
    from activations import BSpline
    from models import build_resmlp
    torch.manual_seed(0)
    model = build_resmlp(ACTS[act], args.hidden_factor, in_channels=1, num_classes=10,
                         impl=args.impl)
    if args.compile:
        model = torch.compile(model)
    # The optimisers of training (AdamW; Adam for spline coefficients; foreach updates).
    from training.optim import Optimisers
    spline = any(isinstance(m, BSpline) for m in model.modules())
    opts = Optimisers([model], lr=1e-3, wd=0.05, spline_lr=1e-3)
    x = torch.randn(args.batch_size, 1, 32, 32)
    y = torch.randint(0, 10, (args.batch_size,))

    def step():
        loss = F.cross_entropy(model(x), y)
        if spline:
            loss = loss + 1e-5 * sum(m.tv2() for m in model.modules() if isinstance(m, BSpline))
        opts.zero_grad()
        loss.backward()
        opts.step()
    model.train()
    return step


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--acts", nargs="+", choices=tuple(ACTS), default=list(ACTS))
    p.add_argument("--hidden-factor", type=float, default=0.25)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--impl", default="auto")
    p.add_argument("--rounds", type=int, default=5, help="round-robin rounds (5)")
    p.add_argument("--steps", type=int, default=10, help="steps per model per round (10)")
    p.add_argument("--epoch", action="store_true", help=f"also time {EPOCH_STEPS} steps (one epoch) per model")
    p.add_argument("--profile", choices=tuple(ACTS), help="print the torch.profiler table of 10 steps")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    if args.profile:
        step = build(args.profile, args)
        for _ in range(3):
            step()
        from torch.profiler import ProfilerActivity, profile
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(10):
                step()
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))
        return 0
    steps = {a: build(a, args) for a in args.acts}
    for s in steps.values():
        for _ in range(3):
            s()
    times = {a: [] for a in args.acts}
    for _ in range(args.rounds):
        for a, s in steps.items():
            t0 = time.perf_counter()
            for _ in range(args.steps):
                s()
            times[a].append((time.perf_counter() - t0) * 1000 / args.steps)
    med = {a: statistics.median(t) for a, t in times.items()}
    result = {"threads": torch.get_num_threads(), "batch": args.batch_size,
              "hidden_factor": args.hidden_factor, "compile": args.compile,
              "step_ms": med, "step_ratio_to_relu": {a: med[a] / med["relu"] for a in med} if "relu" in med else None}
    if args.epoch:
        ep = {}
        for a, s in steps.items():
            t0 = time.perf_counter()
            for _ in range(EPOCH_STEPS):
                s()
            ep[a] = time.perf_counter() - t0
        result["epoch_s"] = ep
        if "relu" in ep:
            result["epoch_ratio_to_relu"] = {a: ep[a] / ep["relu"] for a in ep}
    if not args.json:
        for a in args.acts:
            line = f"{a:9s} step {med[a]:7.1f} ms"
            if "relu" in med:
                line += f"  x relu {med[a] / med['relu']:.2f}"
            if args.epoch:
                line += f"  epoch {result['epoch_s'][a]:6.1f} s"
                if "relu" in result["epoch_s"]:
                    line += f"  x relu {result['epoch_ratio_to_relu'][a]:.2f}"
            print(line)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
