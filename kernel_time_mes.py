#!/usr/bin/env python
"""Time activation kernels in a small training loop (docs/METHOD.md section 8).

Model: ``--layers`` x [activation over F features, Linear(F, F)] on an input of
(``--tokens``, F); one measurement is ``--steps`` training steps (forward, sum
loss, backward, AdamW step; B-spline adds lambda * TV2 and its own Adam);
``--repeats`` measurements after ``--warmup`` untimed steps. The device is
synchronised around every timed region. Prints mean +- std and median ms per
measurement and the peak memory (CUDA: max_memory_allocated; CPU: growth of the
peak resident set since before the model was built).

  python kernel_time_mes.py lerp_psa                      # paper's config, GPU if present
  python kernel_time_mes.py lerp_psa --device cpu --tokens 2048 --impl reference
  python kernel_time_mes.py deepsplines --device cpu --tokens 2048   # the deepsplines package
  python kernel_time_mes.py lerp_psa --device cpu --compile          # torch.compile'd model

With --compile the model is compiled with torch.compile (Inductor) before the
warmup steps, which therefore include the compilation; the timed steps do not.
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time

import torch
from torch import nn

ACTIVATIONS = ("lerp_psa", "bspline", "relu", "gelu", "psa", "none", "deepsplines")


def make_activation(name, F, args):
    from activations import PSA, BSpline, LerpPSA
    if name == "lerp_psa":
        return LerpPSA(F, expansion=args.expansion, grid_size=args.grid_size, epsilon=1.0,
                       impl=args.impl)
    if name == "bspline":
        return BSpline(F, size=args.spline_size, impl=args.impl)
    if name == "deepsplines":
        try:
            from deepsplines.ds_modules.dsnn import DeepBSpline
        except ImportError:
            raise SystemExit("kernel_time_mes.py: error: deepsplines is not installed "
                             "(pip install deepsplines==1.0.0)")

        class Flat(nn.Module):  # DeepBSpline 'fc' takes 2-D input
            def __init__(self):
                super().__init__()
                self.m = DeepBSpline("fc", F, size=args.spline_size, range_=4,
                                     init="leaky_relu", save_memory=args.save_memory)

            def forward(self, x):
                return self.m(x.reshape(-1, F)).reshape(x.shape)
        return Flat()
    if name == "psa":
        return PSA(F, expansion=args.expansion, epsilon=1.0)
    return {"relu": nn.ReLU, "gelu": nn.GELU, "none": nn.Identity}[name]()


def spline_params(model, name):
    from activations import BSpline
    if name == "deepsplines":
        return [p for n, p in model.named_parameters() if "coefficients_vect" in n]
    return [p for m in model.modules() if isinstance(m, BSpline) for p in m.parameters(recurse=False)]


def tv2(model, name):
    from activations import BSpline
    if name == "deepsplines":
        return sum(m.m.totalVariation(mode="additive").sum() for m in model.modules()
                   if hasattr(m, "m") and hasattr(m.m, "totalVariation"))
    return sum(m.tv2() for m in model.modules() if isinstance(m, BSpline))


def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def measure(args):
    if args.device == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(args.device)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise SystemExit("kernel_time_mes.py: error: --device cuda but CUDA is not available; "
                             "use --device cpu")
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[args.dtype]
    F = args.features
    rss0 = rss_mb()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    layers = []
    if args.op_only:
        layers = [make_activation(args.activation, F, args)]
    else:
        for _ in range(args.layers):
            layers += [make_activation(args.activation, F, args), nn.Linear(F, F)]
    model = nn.Sequential(*layers).to(device=device, dtype=dtype)
    spline = spline_params(model, args.activation)
    run_model = torch.compile(model) if args.compile else model
    ids = {id(p) for p in spline}
    others = [p for p in model.parameters() if id(p) not in ids]
    opts = [torch.optim.AdamW(others, lr=1e-3)] if others else []
    if spline:
        opts.append(torch.optim.Adam(spline, lr=1e-3))
    x = torch.randn(args.tokens, F, device=device, dtype=dtype) * 2
    uses_tv2 = args.activation in ("bspline", "deepsplines")
    x_op = x.clone().requires_grad_()
    grad_op = torch.randn_like(x)

    def op_step():
        # Forward + backward of the activation alone: input and parameter grads.
        x_op.grad = None
        for p in model.parameters():
            p.grad = None
        run_model(x_op).backward(grad_op)

    def train_step():
        loss = run_model(x).sum()
        if uses_tv2:
            loss = loss + args.bspline_lambda * tv2(model, args.activation)
        for o in opts:
            o.zero_grad(set_to_none=True)
        loss.backward()
        for o in opts:
            o.step()

    step = op_step if args.op_only else train_step

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(args.warmup):
        step()
    sync()
    times = []
    iterator = range(args.repeats)
    if not args.json and sys.stderr.isatty():
        from tqdm import tqdm
        iterator = tqdm(iterator, desc=args.activation, leave=False)
    for _ in iterator:
        sync()
        t0 = time.perf_counter()
        for _ in range(args.steps):
            step()
        sync()
        times.append((time.perf_counter() - t0) * 1000.0)
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) / 2 ** 20
        peak_kind = "max_memory_allocated"
    else:
        peak = rss_mb() - rss0
        peak_kind = "peak RSS growth"
    impl = args.impl
    if args.activation in ("lerp_psa", "bspline"):
        import kernels
        impl = kernels.resolve_impl("lerp" if args.activation == "lerp_psa" else "bspline",
                                    args.impl, x)
    return dict(activation=args.activation, impl=impl if args.activation in ("lerp_psa", "bspline") else "-",
                device=str(device), dtype=args.dtype, tokens=args.tokens, features=F,
                layers=0 if args.op_only else args.layers, op_only=args.op_only, grid_size=args.grid_size, expansion=args.expansion,
                save_memory=args.save_memory if args.activation == "deepsplines" else None,
                compile=args.compile, steps=args.steps, repeats=args.repeats,
                threads=torch.get_num_threads(),
                mean_ms=statistics.mean(times), std_ms=statistics.stdev(times) if len(times) > 1 else 0.0,
                median_ms=statistics.median(times), peak_mb=peak, peak_kind=peak_kind)


def build_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("activation", choices=ACTIVATIONS)
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--impl", default="auto", help="kernel implementation: auto, reference, cpu, triton")
    p.add_argument("--tokens", type=int, default=16 * 512, help="rows of the input (8192)")
    p.add_argument("--features", type=int, default=768, help="features F (768)")
    p.add_argument("--layers", type=int, default=4, help="activation+linear pairs (4)")
    p.add_argument("--op-only", action="store_true",
                   help="time forward + backward of one activation alone (no Linear, no optimizer)")
    p.add_argument("--grid-size", type=int, default=64, help="LERP-PSA grid points (64)")
    p.add_argument("--expansion", type=int, default=8, help="PSA experts (8)")
    p.add_argument("--spline-size", type=int, default=65, help="B-spline coefficients (65)")
    p.add_argument("--save-memory", action=argparse.BooleanOptionalAction, default=True,
                   help="deepsplines only: that package's own save_memory switch (recorded as "
                        "null for the other activations; our kernels have no such switch and "
                        "keep only x for the backward)")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the model (Inductor); compilation happens in the warmup")
    p.add_argument("--bspline-lambda", type=float, default=1e-5)
    p.add_argument("--dtype", choices=("float32", "bfloat16", "float16"), default="float32")
    p.add_argument("--steps", type=int, default=10, help="training steps per measurement (10)")
    p.add_argument("--repeats", type=int, default=10, help="measurements (10)")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first (3)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.impl not in ("auto", "reference", "cpu", "triton"):
        build_parser().error(f"unknown --impl {args.impl!r}; use auto, reference, cpu or triton")
    r = measure(args)
    if args.json:
        print(json.dumps(r))
    else:
        what = "activation fwd+bwd only" if r["op_only"] else f"{r['layers']} layers"
        print(f"{r['activation']} [{r['impl']}{', compiled' if r['compile'] else ''}] on {r['device']} ({r['dtype']}, {r['tokens']}x{r['features']}, "
              f"{what}, {r['steps']} steps/measurement, {r['threads']} threads)")
        print(f"  {r['mean_ms']:.2f} +- {r['std_ms']:.2f} ms (median {r['median_ms']:.2f} ms) "
              f"over {r['repeats']} measurements; peak memory {r['peak_mb']:.1f} MB ({r['peak_kind']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
