#!/usr/bin/env python
"""Where the time of one LERP-PSA activation goes: forward + backward of
``LerpPSA(F)`` in training mode on a (tokens, F) input, split into its parts.

  python scripts/op_breakdown.py                 # F = 768, 2048 tokens (the op-only timing)
  python scripts/op_breakdown.py --features 24 --tokens 8192   # a small layer of the FMNIST model

Parts, each timed alone through the backend launchers (``kernels.registry``),
so that they hold kernel work only:

  table forward     the (F, G) PSA table from the five PSA parameters
  table backward    its closed-form backward (the gradients of the five parameters)
  lookup forward    the interpolation y = lerp(x, T)
  lookup backward   input gradient and table gradient (the scatter)

``whole`` is the module as a user calls it (autograd, argument checks,
dispatch, allocation of the outputs, gradient accumulation); ``overhead`` is
``whole`` minus the four parts. ReLU forward + backward on the same input is
given for scale. Times are medians over ``--repeats`` measurements of
``--steps`` calls each, in milliseconds per call.

Memory speed: each lookup is also set against the time it takes to read and write its
tensors once, measured in the same run: the forward reads x and writes y (``y.copy_(x)``),
the backward reads x and grad_y and writes grad_x (``torch.add(x, grad_y, out=grad_x)``);
the table and its gradient are small beside them. ``--dtype bfloat16`` gives the lookups
bfloat16 activations and gradients (what a Linear gives under ``torch.autocast``), the table
stays float32.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def median_ms(fn, repeats, steps, warmup=3):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(steps):
            fn()
        times.append((time.perf_counter() - t0) * 1000.0 / steps)
    return statistics.median(times)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--features", type=int, default=768, help="features F (768)")
    p.add_argument("--tokens", type=int, default=2048, help="rows of the input (2048)")
    p.add_argument("--impl", default="auto", help="kernel backend: auto, cpu, reference, triton")
    p.add_argument("--repeats", type=int, default=10, help="measurements (10)")
    p.add_argument("--steps", type=int, default=10, help="calls per measurement (10)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    p.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32",
                   help="dtype of the activations and their gradients (float32)")
    p.add_argument("--json", action="store_true", help="print one JSON object only")
    args = p.parse_args(argv)
    if min(args.features, args.tokens, args.repeats, args.steps) < 1:
        p.error("--features, --tokens, --repeats and --steps must be positive")
    if args.threads:
        torch.set_num_threads(args.threads)

    import kernels
    from activations import LerpPSA
    from kernels.registry import backend

    torch.manual_seed(0)
    F_ = args.features
    m = LerpPSA(F_, impl=args.impl)
    dtype = getattr(torch, args.dtype)
    x = (torch.randn(args.tokens, F_) * 2).to(dtype).requires_grad_()
    g = torch.randn(args.tokens, F_).to(dtype)
    name = kernels.resolve_impl("lerp", args.impl, x)
    be = backend(name)
    ps = [q.detach() for q in (m.v_weight, m.q_weight, m.q_bias, m.o_weight, m.o_bias)]
    grid = m.grid_points()
    table = be.psa_table_forward(*ps, m.epsilon, grid)
    gtab = torch.randn_like(table)
    xd = x.detach()

    def whole():
        x.grad = None
        for q in m.parameters():
            q.grad = None
        m(x).backward(g)

    def relu():
        x.grad = None
        torch.relu(x).backward(g)

    r, s = args.repeats, args.steps
    parts = {
        "table forward": median_ms(lambda: be.psa_table_forward(*ps, m.epsilon, grid), r, s),
        "table backward": median_ms(lambda: be.psa_table_backward(*ps, m.epsilon, grid, gtab), r, s),
        "lookup forward": median_ms(lambda: be.lerp_forward(xd, table, m.grid_range), r, s),
        "lookup backward": median_ms(lambda: be.lerp_backward(xd, table, g, m.grid_range, True, True), r, s),
    }
    total = median_ms(whole, r, s)
    relu_ms = median_ms(relu, r, s)
    out = torch.empty_like(xd)
    copy = {"lookup forward": median_ms(lambda: out.copy_(xd), r, s),
            "lookup backward": median_ms(lambda: torch.add(xd, g, out=out), r, s)}
    result = dict(impl=name, features=F_, tokens=args.tokens, threads=torch.get_num_threads(),
                  dtype=args.dtype, parts_ms=parts, whole_ms=total,
                  overhead_ms=total - sum(parts.values()), relu_ms=relu_ms,
                  whole_over_relu=total / relu_ms, memory_ms=copy,
                  over_memory={k: parts[k] / v for k, v in copy.items()})
    if not args.json:
        print(f"LerpPSA({F_}) forward + backward on {args.tokens} x {F_} {args.dtype}, impl {name}, "
              f"{result['threads']} threads, median ms per call\n")
        print("| part | ms | share of whole |\n|---|---|---|")
        for k, v in parts.items():
            print(f"| {k} | {v:.3f} | {v / total:.0%} |")
        print(f"| overhead (autograd, checks, dispatch, allocation) | {result['overhead_ms']:.3f} | "
              f"{result['overhead_ms'] / total:.0%} |")
        print(f"| **whole** | **{total:.3f}** | 100% |")
        print(f"| ReLU forward + backward, same input | {relu_ms:.3f} | whole = {total / relu_ms:.1f}x ReLU |")
        print("\n| lookup | ms | reading and writing its tensors once, ms | ratio |\n|---|---|---|---|")
        for k, v in copy.items():
            print(f"| {k} | {parts[k]:.3f} | {v:.3f} | {parts[k] / v:.1f}x |")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
