#!/usr/bin/env python
"""What knowledge transfer leaves in a B-spline student's later blocks, in both KT modes.

In the authors' KT (``--kt-mode authors``) one optimiser serves all four blocks and the loss of
every step adds ``lambda * TV2(whole student)``: while block b is being fitted, the spline
coefficients of blocks > b receive TV(2)-only gradients, and Adam (whose step is about lr
whatever the gradient's size) moves them every step. The isolated KT (``--kt-mode isolated``)
touches no block before its turn. This script trains one B-spline student by KT alone in each
mode (``cifar10_main.py --do-kt --epochs 0``, the shipped teacher, the shipped KT schedule,
seed 2023), then plots the learned functions of a few features of the first B-spline layer of
blocks 2, 3 and 4 right after KT, with the leaky-ReLU initialisation for reference, and the
mean TV(2) of every B-spline layer per block in both modes.

  python scripts/plot_kt_splines.py                 # h = 0.5; docs/kt_splines.png
  python scripts/plot_kt_splines.py --h 0.25 --out /tmp/kt.png

The two KT-only students are kept in --work (default: <model root>/.kt_only/, not in git) and
reused when present. Prints a table (block, layer, mean TV(2) and mean |f - init| per mode) and,
as its last line, one JSON object with those figures.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
for p in (ROOT, HERE):
    if p not in sys.path:
        sys.path.insert(0, p)

import experiments  # noqa: E402
from errors import UserError, report, write_atomic  # noqa: E402

M = experiments.load()
MODES = ("authors", "isolated")
STYLE = {"authors": "-", "isolated": "--"}
PROG = "plot_kt_splines.py"


def kt_only(mode, h, seed, work, teacher, dataset_dir):
    """The student after KT alone in ``mode`` (trained once, then read from ``work``)."""
    path = os.path.join(work, f"bspline_h{experiments.fmt_h(h)}_seed{seed}_kt_{mode}.bin")
    if os.path.isfile(path):
        print(f"reusing {path}")
        return path
    os.makedirs(work, exist_ok=True)
    kt_epochs = M.schedules["fashion_mnist"]["kt_epochs"]
    cmd = [sys.executable, os.path.join(ROOT, "cifar10_main.py"), "--dataset", "fashion-mnist",
           "--dataset-dir", dataset_dir, "--teacher-load", teacher, "--do-kt", "--kt-epochs",
           str(kt_epochs), "--epochs", "0", "--kt-mode", mode, "--student-nl-act", "bspline",
           "--student-hidden-factor", str(h), "--seed", str(seed), "--save", path]
    print(f"==> KT only, {mode} mode, B-spline h = {experiments.fmt_h(h)} -> {path}", flush=True)
    proc = subprocess.run(cmd, cwd=ROOT)
    if proc.returncode != 0:
        raise UserError(f"the KT run ({mode}) failed with status {proc.returncode}; see its output above")
    return path


def spline_layers(model):
    """{block index: [BSpline modules of its MLP, in order]}."""
    from activations import BSpline
    return {b: [m for m in block.modules() if isinstance(m, BSpline)]
            for b, block in enumerate(model.layers)}


def layer_figures(layer, init):
    """(mean over features of TV(2), mean |c - c_init| over features and knots)."""
    c = layer.coefficients.detach().double()
    d2 = (c[:, 2:] - 2 * c[:, 1:-1] + c[:, :-2]).abs().sum(1) / layer.spacing
    dev = (c - init.coefficients.detach().double()).abs().mean()
    return float(d2.mean()), float(dev)


def main(argv=None):
    p = argparse.ArgumentParser(prog=PROG, description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--h", type=float, default=0.5, help="hidden factor of the student (0.5)")
    p.add_argument("--seed", type=int, default=M.seeds["shipped"], help="seed (the shipped one)")
    p.add_argument("--features", type=int, nargs="+", default=[0, 24, 48, 72],
                   help="features of the first B-spline layer to draw (0 24 48 72)")
    p.add_argument("--out", default=os.path.join(ROOT, "docs", "kt_splines.png"))
    p.add_argument("--work", default=None, help="folder of the KT-only students")
    p.add_argument("--dataset-dir", default=M.datasets["fashion-mnist"]["dataset_dir"])
    args = p.parse_args(argv)
    try:
        return run(args)
    except UserError as exc:
        return report(PROG, exc)


def run(args):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch
    from models import build_from_checkpoint, build_resmlp

    root = M.model_root("fashion-mnist")
    teacher = M.teacher_path(root)
    if not os.path.isfile(teacher):
        raise UserError(f"missing teacher {teacher}; train it with scripts/run_fashion_mnist_repro.sh")
    init = build_resmlp("bspline", args.h, in_channels=1)       # the leaky-ReLU start
    init_layers = spline_layers(init)
    depth = len(init.layers)
    nfeat = init_layers[0][0].num_features
    bad = [f for f in args.features if not 0 <= f < nfeat]
    if bad:                                  # before any training
        raise UserError(f"--features {bad}: the first B-spline layer has features 0..{nfeat - 1}")
    work = args.work or os.path.join(root, ".kt_only")
    paths = {m: kt_only(m, args.h, args.seed, work, teacher, args.dataset_dir) for m in MODES}
    models = {m: build_from_checkpoint(paths[m], role="student", in_channels=1, num_classes=10)
              for m in MODES}
    layers = {m: spline_layers(models[m]) for m in MODES}

    figures = {m: {b: [layer_figures(l, i) for l, i in zip(layers[m][b], init_layers[b])]
                   for b in range(depth)} for m in MODES}
    print(f"\nB-spline h = {experiments.fmt_h(args.h)}, seed {args.seed}, right after KT; mean over "
          "features of TV(2) = sum |c[k+1] - 2 c[k] + c[k-1]| / D, and mean |c - c_init|:")
    print("| block | layer | TV(2) authors | TV(2) isolated | \\|c - init\\| authors | \\|c - init\\| isolated |")
    print("|---|---|---|---|---|---|")
    for b in range(depth):
        for k in range(len(layers["authors"][b])):
            (ta, da), (ti, di) = figures["authors"][b][k], figures["isolated"][b][k]
            print(f"| {b + 1} | {k + 1} | {ta:.3f} | {ti:.3f} | {da:.4f} | {di:.4f} |")
    init_tv = layer_figures(init_layers[0][0], init_layers[0][0])[0]
    print(f"(the leaky-ReLU initialisation: TV(2) = {init_tv:.3f} per feature)")

    shown = list(range(1, depth))           # blocks 2..depth, the ones KT reaches late
    fig, axes = plt.subplots(1, len(shown) + 1, figsize=(3.3 * (len(shown) + 1), 3.3))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    with torch.no_grad():
        for ax, b in zip(axes, shown):
            lay0 = init_layers[b][0]
            x = lay0.knots().double()
            ax.plot(x, init_layers[b][0].coefficients[0].double(), ":", color="black", lw=1,
                    label="init (leaky ReLU)")
            for n, f in enumerate(args.features):
                for m in MODES:
                    ax.plot(x, layers[m][b][0].coefficients[f].double(), STYLE[m],
                            color=colors[n % len(colors)], lw=1.2,
                            label=f"{m} KT" if n == 0 else None)
            ax.set_title(f"block {b + 1}, first B-spline, features {', '.join(map(str, args.features))}",
                         fontsize=8)
            ax.set_xlabel("input")
            ax.grid(alpha=0.3)
        axes[0].set_ylabel("output")
        axes[0].legend(fontsize=7)
        ax = axes[-1]
        width = 0.38
        for j, m in enumerate(MODES):
            vals = [sum(t for t, _ in figures[m][b]) / len(figures[m][b]) for b in range(depth)]
            ax.bar([b + 1 + (j - 0.5) * width for b in range(depth)], vals, width, label=f"{m} KT")
        ax.axhline(init_tv, color="black", ls=":", lw=1, label="init")
        ax.set_xticks(range(1, depth + 1))
        ax.set_xlabel("block")
        ax.set_ylabel("mean TV(2) per feature")
        ax.set_title("curvature after KT", fontsize=8)
        ax.legend(fontsize=7)
    fig.suptitle(f"B-spline student (h = {experiments.fmt_h(args.h)}) right after KT: "
                 "authors' loop (solid) vs isolated (dashed)", fontsize=9)
    fig.tight_layout()
    write_atomic(args.out, lambda f: fig.savefig(f, dpi=110, format="png"), binary=True)
    plt.close(fig)
    print(f"wrote {args.out}")
    print(json.dumps(dict(h=args.h, seed=args.seed, out=args.out, init_tv2=round(init_tv, 4),
                          blocks={m: [[dict(tv2=round(t, 4), dev=round(d, 5)) for t, d in figures[m][b]]
                                      for b in range(depth)] for m in MODES})))
    return 0


if __name__ == "__main__":
    sys.exit(main())
