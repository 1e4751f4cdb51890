#!/usr/bin/env python
"""Training-step benchmark: float32 eager against the fast path (bf16 autocast + torch.compile).

  python scripts/bench_train.py                      # the table below, about 6 minutes here
  python scripts/bench_train.py --json               # one JSON line only
  python scripts/bench_train.py --models psa:1 base:2 --rounds 3
  python scripts/bench_train.py --profile psa:1      # + the profiler's top ops of that fast step
  python scripts/bench_train.py --epoch T.bin        # + one real Fashion-MNIST KD epoch through
                                                     #   cifar10_main.py, both ways (T.bin: the teacher)

Each model is the Fashion-MNIST ResMLP (1 x 32 x 32 inputs, patch 4, embed 96, 4 blocks, 10
classes). A KD step is what ``training.loops.run_epoch`` does for knowledge distillation: the
frozen h = 4 ReLU teacher's forward (no gradient), the student's forward, the distillation loss
(alpha 0.8, T 1; + 1e-5 TV(2) for a B-spline student), reading the loss, backward, and the
optimisers' step (AdamW; Adam for spline coefficients). ``teacher`` is the teacher's own plain
cross-entropy step. The data are one fixed random batch, so data loading is not in the step
times (``--epoch`` has it).

The three ways of running the same step:

  fp32   float32 eager: the modules as they are;
  bf16   ``torch.autocast("cpu", torch.bfloat16)`` around the forward passes and the loss, eager
         (float32 master weights and optimiser state; the matrix products in bfloat16; the
         LERP-PSA and B-spline kernels read and write bfloat16);
  fast   the same autocast, and ``torch.compile`` of the student and of the teacher: what a
         user's own loop gets by adding those two lines.

Every (model, way) pair is built and warmed up first (compilation included), then they are
timed alternately, round after round, ``--steps`` steps a measurement, so that a machine that
is busy with something else slows them all alike; the figure is the median over the rounds, in
milliseconds per step. The matrix-product floor of a step is its multiply-adds (forward of the
teacher, forward and backward of the student) at the bfloat16 and float32 matrix rates this
script measures on a 8192 x 768 by 768 x 768 product.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_MODELS = ["teacher", "base:2", "base:1", "base:0.5", "psa:1", "psa:0.5", "psa:0.25",
                  "bspline:1"]
WAYS = ("fp32", "bf16", "fast")
LABEL = {"base": "ReLU", "psa": "LERP-PSA", "bspline": "B-spline"}


def parse_model(spec: str):
    """'teacher' or 'act:h' -> (act, h, is_teacher_step)."""
    if spec == "teacher":
        return "base", 4.0, True
    act, sep, h = spec.partition(":")
    if not sep or act not in LABEL:
        raise ValueError(f"model {spec!r}: use teacher or ACT:H with ACT one of "
                         f"{', '.join(LABEL)} (e.g. psa:1)")
    try:
        return act, float(h), False
    except ValueError:
        raise ValueError(f"model {spec!r}: the hidden factor {h!r} is not a number") from None


def label(spec: str) -> str:
    if spec == "teacher":
        return "teacher ReLU h = 4, plain step"
    act, h, _ = parse_model(spec)
    return f"{LABEL[act]} h = {h:g}, KD step"


def build(act: str, h: float):
    from models import build_resmlp
    torch.manual_seed(0)
    return build_resmlp(act, h, in_channels=1, num_classes=10)


def mm_rate(dtype, repeats: int = 5) -> float:
    """GFLOP/s of a 8192 x 768 by 768 x 768 product in ``dtype`` (median of ``repeats``)."""
    a = torch.randn(8192, 768).to(dtype)
    b = torch.randn(768, 768).to(dtype)
    for _ in range(2):
        a @ b
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t0)
    return 2 * 8192 * 768 * 768 / statistics.median(times) / 1e9


def step_macs(model, teacher, is_teacher: bool, batch: int) -> int:
    """Multiply-adds of the matrix products of one step: the student's forward counts three
    times (forward, and the two products of its backward), the KD teacher's forward once."""
    from models.resmlp import CrossPatch

    def fwd(m):
        tokens = m.grid ** 2
        mixing = {id(c.layers) for c in m.modules() if isinstance(c, CrossPatch)}
        n = 0
        for mod in m.modules():
            if isinstance(mod, torch.nn.Linear):
                if id(mod) in mixing:
                    rows = batch * m.embed_linear.out_features   # across tokens, per channel
                elif mod is m.classifier:
                    rows = batch
                else:
                    rows = batch * tokens
                n += rows * mod.in_features * mod.out_features
        return n
    return 3 * fwd(model) if is_teacher else 3 * fwd(model) + fwd(teacher)


def make_step(spec: str, way: str, teacher_eager, x, y):
    """A callable that runs one training step of ``spec`` the ``way`` way."""
    from models.registry import regularisation, regularised
    from training.loops import distillation_loss
    from training.optim import Optimisers
    act, h, is_teacher = parse_model(spec)
    model = build(act, h).train()
    opt = Optimisers([model], lr=1e-3, wd=0.0, spline_lr=1e-3)
    terms = regularised(model)
    compiled, bf16 = way == "fast", way in ("bf16", "fast")
    net = torch.compile(model) if compiled else model
    teacher = None
    if not is_teacher:
        teacher = torch.compile(teacher_eager) if compiled else teacher_eager

    def autocast():
        return torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()

    def step():
        with autocast():
            if is_teacher:
                loss = F.cross_entropy(net(x), y)
            else:
                with torch.no_grad():
                    t_logits = teacher(x)
                loss = distillation_loss(net(x), t_logits, y, temperature=1.0, alpha=0.8)
        if terms:
            loss = loss + 1e-5 * regularisation(terms)
        loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()

    return step, model


def run_epochs(teacher_path: str, threads: int, quiet: bool):
    """One KD epoch of LERP-PSA h = 1 on Fashion-MNIST through cifar10_main.py, both ways:
    {way: {"wall_s": whole command, "epoch_s": the epoch's own seconds (training and test)}}."""
    out = {}
    for way in WAYS:
        with tempfile.TemporaryDirectory() as tmp:
            log = os.path.join(tmp, "log.jsonl")
            cmd = [sys.executable, os.path.join(ROOT, "cifar10_main.py"), "--dataset",
                   "fashion-mnist", "--student-nl-act", "psa", "--student-hidden-factor", "1",
                   "--teacher-load", teacher_path, "--do-kd", "--kd-epochs", "1",
                   "--disable-tqdm", "--json-log", log]
            if way in ("bf16", "fast"):
                cmd += ["--amp", "bf16"]
            if way == "fast":
                cmd += ["--compile"]
            env = dict(os.environ, OMP_NUM_THREADS=str(threads))
            if not quiet:
                print(f"  epoch, {way}: {' '.join(cmd[1:])}", file=sys.stderr, flush=True)
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
            wall = time.perf_counter() - t0
            if proc.returncode != 0:
                last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
                raise SystemExit(f"bench_train.py: the {way} epoch failed: {last}")
            events = [json.loads(line) for line in open(log)]
            ep = [e for e in events if e.get("event") == "epoch"]
            out[way] = dict(wall_s=round(wall, 1), epoch_s=ep[-1]["seconds"],
                            accuracy=ep[-1]["accuracy"])
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=DEFAULT_MODELS, metavar="M",
                   help="teacher and/or ACT:H entries (default: " + " ".join(DEFAULT_MODELS) + ")")
    p.add_argument("--batch-size", type=int, default=128, help="images per step (128)")
    p.add_argument("--rounds", type=int, default=5, help="measurements per pair (5)")
    p.add_argument("--steps", type=int, default=5, help="steps per measurement (5)")
    p.add_argument("--warmup", type=int, default=3, help="steps before timing (3)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    p.add_argument("--profile", metavar="M", help="also print the profiler table of M's fast step")
    p.add_argument("--epoch", metavar="TEACHER",
                   help="also time one KD epoch through cifar10_main.py both ways, with this "
                        "h = 4 ReLU teacher checkpoint (Fashion-MNIST must be installed)")
    p.add_argument("--json", action="store_true", help="print one JSON line only")
    args = p.parse_args(argv)
    if min(args.batch_size, args.rounds, args.steps) < 1 or args.warmup < 0:
        p.error("--batch-size, --rounds and --steps must be positive, --warmup not negative")
    try:
        for spec in args.models + ([args.profile] if args.profile else []):
            parse_model(spec)
    except ValueError as exc:
        p.error(str(exc))
    if args.epoch and not os.path.isfile(args.epoch):
        p.error(f"--epoch: no teacher checkpoint at {args.epoch}")
    if args.threads:
        torch.set_num_threads(args.threads)
    say = (lambda *a: None) if args.json else (lambda *a: print(*a, file=sys.stderr, flush=True))

    torch.manual_seed(0)
    x = torch.randn(args.batch_size, 1, 32, 32)
    y = torch.randint(0, 10, (args.batch_size,))
    teacher = build("base", 4.0).eval()
    for q in teacher.parameters():
        q.requires_grad_(False)

    steps, macs = {}, {}
    for spec in args.models:
        for way in WAYS:
            t0 = time.perf_counter()
            step, model = make_step(spec, way, teacher, x, y)
            for _ in range(args.warmup):
                step()
            steps[spec, way] = step
            macs[spec] = step_macs(model, teacher, spec == "teacher", args.batch_size)
            say(f"built and warmed up {label(spec)}, {way} ({time.perf_counter() - t0:.1f} s)")

    times = {key: [] for key in steps}
    for r in range(args.rounds):
        for key, step in steps.items():
            t0 = time.perf_counter()
            for _ in range(args.steps):
                step()
            times[key].append((time.perf_counter() - t0) * 1000.0 / args.steps)
        say(f"round {r + 1}/{args.rounds} done")
    ms = {key: statistics.median(v) for key, v in times.items()}

    rates = {"bf16": mm_rate(torch.bfloat16), "fp32": mm_rate(torch.float32)}
    result = dict(threads=torch.get_num_threads(), batch_size=args.batch_size,
                  rounds=args.rounds, steps=args.steps, matmul_gflops=rates,
                  capability=torch.backends.cpu.get_cpu_capability(), models={})
    for spec in args.models:
        floor = {k: 2 * macs[spec] / (rate * 1e9) * 1000.0 for k, rate in rates.items()}
        result["models"][spec] = dict(
            fp32_ms=round(ms[spec, "fp32"], 2), bf16_ms=round(ms[spec, "bf16"], 2),
            fast_ms=round(ms[spec, "fast"], 2),
            speedup=round(ms[spec, "fp32"] / ms[spec, "fast"], 2),
            bf16_speedup=round(ms[spec, "fp32"] / ms[spec, "bf16"], 2),
            gmacs=round(macs[spec] / 1e9, 3),
            matmul_floor_ms={k: round(v, 1) for k, v in floor.items()})

    if args.epoch:
        result["epoch"] = run_epochs(args.epoch, torch.get_num_threads(), args.json)
        for way in ("bf16", "fast"):
            result["epoch"][f"{way}_speedup"] = round(result["epoch"]["fp32"]["epoch_s"]
                                                      / result["epoch"][way]["epoch_s"], 2)

    if not args.json:
        print(f"\nTraining step, batch {args.batch_size}, {result['threads']} threads, median of "
              f"{args.rounds} rounds of {args.steps} steps, ms per step ({result['capability']}; "
              f"matrix products: bf16 {rates['bf16']:.0f} GFLOP/s, fp32 {rates['fp32']:.0f})\n")
        print("| step | float32 eager | bf16 eager | bf16 + compile | matmul floor bf16 |")
        print("|---|---|---|---|---|")
        for spec, m in result["models"].items():
            print(f"| {label(spec)} | {m['fp32_ms']:.1f} | {m['bf16_ms']:.1f} "
                  f"({m['bf16_speedup']:.2f}x) | {m['fast_ms']:.1f} ({m['speedup']:.2f}x) | "
                  f"{m['matmul_floor_ms']['bf16']:.1f} |")
        if "epoch" in result:
            e = result["epoch"]
            print(f"\nOne KD epoch of LERP-PSA h = 1 through cifar10_main.py (training + test "
                  f"set): float32 eager {e['fp32']['epoch_s']:.1f} s, --amp bf16 "
                  f"{e['bf16']['epoch_s']:.1f} s ({e['bf16_speedup']:.2f}x), --amp bf16 --compile "
                  f"{e['fast']['epoch_s']:.1f} s ({e['fast_speedup']:.2f}x); whole commands "
                  f"{e['fp32']['wall_s']:.0f}, {e['bf16']['wall_s']:.0f} and "
                  f"{e['fast']['wall_s']:.0f} s (start-up and compilation included)")
    if args.profile:
        from torch.profiler import profile
        step, _ = make_step(args.profile, "fast", teacher, x, y)
        for _ in range(max(args.warmup, 2)):
            step()
        with profile() as prof:
            for _ in range(args.steps):
                step()
        table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25)
        if args.json:
            result["profile"] = table
        else:
            print(f"\nProfiler, {label(args.profile)}, fast, {args.steps} steps:\n{table}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
