#!/usr/bin/env python
"""Plots for the README (matplotlib PNG):

1. accuracy vs hidden factor for ReLU, B-spline and LERP-PSA: our Fashion-MNIST
   results.csv beside the paper's CIFAR-10 table;
2. the learned 1-D functions of a few features of one layer for B-spline and
   LERP-PSA, with that layer's input histogram underneath (where the grid is used);
3. with --long: the long schedule's learning curves (test accuracy per KD epoch of the
   half-size claim's students, every seed) and accuracy vs hidden size at both schedules;
4. with --seeds: the seed study (results_seeds.csv), mean +- sample std over the seeds at
   each hidden factor, as error bars, with every seed's point.

  python scripts/plot_results.py            # writes docs/accuracy_vs_hidden.png, docs/learned_functions.png
  python scripts/plot_results.py --seeds    # writes docs/accuracy_seeds.png only
  python scripts/plot_results.py --long     # docs/long_learning_curves.png, accuracy_vs_hidden_schedules.png

Activations, labels, hidden factors and the paper's numbers come from scripts/experiments.toml.
"""
from __future__ import annotations

import argparse
import csv
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import experiments  # noqa: E402

M = experiments.load()

COLORS = {"base": "tab:gray", "bspline": "tab:blue", "psa": "tab:red"}


def plot_accuracy(csv_path, out, dataset_label):
    with open(csv_path) as f:
        rows = list(csv.DictReader(f))
    acc = {(r["activation"], float(r["hidden_factor"])): float(r["accuracy"]) for r in rows}
    hs = M.hs
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharex=True)
    for ax, title, getter, teacher in (
            (axes[0], f"{dataset_label} (this project)", lambda a: [acc[(a, h)] for h in hs],
             acc.get(("teacher", M.teacher["h"]))),
            (axes[1], "CIFAR-10 (paper)", M.paper, M.teacher["paper"])):
        for a in M.activations:
            ax.plot(hs, getter(a.act), "o-", color=COLORS[a.act], label=a.label)
        if teacher is not None:
            ax.axhline(teacher, color="black", ls="--", lw=1, label=M.teacher["label"])
        ax.set_xscale("log", base=2)
        ax.set_xticks(hs)
        ax.set_xticklabels([f"{h:g}" for h in hs])
        ax.set_xlabel("hidden factor h (hidden = 96 h)")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, loc="lower right")
    fig.suptitle("ResMLP, 4 blocks, embed 96: accuracy vs hidden size")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


@torch.no_grad()
def layer_inputs(model, module, loader, batches=4):
    seen = []
    h = module.register_forward_hook(lambda m, i, o: seen.append(i[0].reshape(-1, i[0].shape[-1])))
    model.eval()
    for k, (x, _) in enumerate(loader):
        if k >= batches:
            break
        model(x)
    h.remove()
    return torch.cat(seen)


@torch.no_grad()
def plot_functions(model_root, out, dataset, dataset_dir, h=1.0, h_stem=None,
                   layer="layers.1.layers.1.layers.0", features=(0, 1, 2, 3)):
    import data
    from models import build_from_checkpoint
    h_stem = h_stem or M.stem(h)
    _, test, _ = data.get_datasets(dataset, dataset_dir, augment=False)
    loader = torch.utils.data.DataLoader(test, batch_size=128)
    panels = [("bspline", M.activation("bspline").folder, "B-spline (65 knots)"),
              ("psa", M.activation("psa").folder, "LERP-PSA (64 points)")]
    fig, axes = plt.subplots(2, len(panels), figsize=(11, 6), sharex=True,
                             gridspec_kw=dict(height_ratios=[3, 1]))
    for col, (act, folder, title) in enumerate(panels):
        model = build_from_checkpoint(os.path.join(model_root, folder, f"{h_stem}_model.bin")).eval()
        mod = model.get_submodule(layer)
        xs = layer_inputs(model, mod, loader)
        lim = float(max(5.0, xs[:, list(features)].abs().quantile(0.999)))
        grid = torch.linspace(-lim, lim, 801)
        y = mod(grid.unsqueeze(1).expand(-1, mod.num_features).contiguous())
        for f in features:
            axes[0, col].plot(grid, y[:, f], label=f"feature {f}")
            axes[1, col].hist(xs[:, f].numpy(), bins=120, range=(-lim, lim), histtype="step",
                              density=True)
        for t in (-4, 4):
            for r in (0, 1):
                axes[r, col].axvline(t, color="black", lw=0.8, ls=":")
        what = "x + LerpPSA(x)" if act == "psa" else "BSpline(x)"
        axes[0, col].set_title(f"{title}: {what}\n{layer}, h = {h:g}")
        axes[0, col].grid(alpha=0.3)
        axes[1, col].set_xlabel("input x (dotted: grid range [-4, 4])")
        axes[1, col].set_ylabel("input density")
    axes[0, 0].set_ylabel("output")
    axes[0, 0].legend(fontsize=8)
    fig.suptitle(f"Learned 1-D functions ({dataset}), with the layer's inputs on the test set underneath")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def plot_seeds(csv_path, out, dataset_label):
    """Mean +- sample std over seeds per activation and hidden factor, every seed as a dot."""
    from collect_results import read_seeds_csv, seed_stats
    rows = read_seeds_csv(csv_path)
    st = seed_stats(rows)
    seeds = sorted({r[2] for r in rows})
    hs = sorted(M.seeds["hidden"])
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    n = len(M.activations)
    for k, a in enumerate(M.activations):
        # side by side at each h so that the bars do not overlap (log-2 axis: multiplicative offset)
        xs = [h * 2 ** (0.08 * (k - (n - 1) / 2)) for h in hs]
        means = [st[(a.act, h)][0] for h in hs]
        stds = [st[(a.act, h)][1] for h in hs]
        ax.errorbar(xs, means, yerr=stds, fmt="o-", capsize=4, color=COLORS[a.act],
                    label=f"{a.label}: mean +- std")
        for x, h in zip(xs, hs):
            ax.plot([x] * len(st[(a.act, h)][3]), st[(a.act, h)][3], ".", color=COLORS[a.act],
                    alpha=0.5, ms=5)
    ax.set_xscale("log", base=2)
    ax.set_xticks(hs)
    ax.set_xticklabels([f"{h:g}" for h in hs])
    ax.set_xlabel("hidden factor h (hidden = 96 h)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"{dataset_label}: {len(seeds)} seeds ({', '.join(map(str, seeds))}); "
                 "bars = sample std, dots = single seeds", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def kd_curve(log_path):
    """(KD epochs, test accuracies) of one student's log (its "epoch" records of phase kd)."""
    epochs, accs = {}, {}
    with open(log_path) as f:
        for rec in experiments.json_records(f):
            if rec.get("event") == "epoch" and rec.get("phase") == "kd" and "accuracy" in rec:
                # a resumed run repeats no epoch, but keep the last record of each to be safe
                epochs[int(rec["epoch"])] = float(rec["accuracy"])
    xs = sorted(epochs)
    return xs, [epochs[x] for x in xs]


def plot_long_curves(model_root, out, dataset_label):
    """Test accuracy after every KD epoch for the long schedule's claim pairs: every seed as
    a thin line, the mean over the seeds that finished as a thick one."""
    seeds = [M.seeds["shipped"], *M.long["seeds"]]
    fig, ax = plt.subplots(figsize=(7.5, 4.6))
    styles = {}
    for k, (act, h) in enumerate(M.long["priority"]):
        styles[(act, h)] = ("-", "--", ":", "-.")[k % 4]
    drawn = 0
    for act, h in M.long["priority"]:
        curves = []
        for seed in seeds:
            log = M.checkpoint(model_root, act, h, seed)[:-len("_model.bin")] + "_log.txt"
            if not os.path.isfile(log[:-len("_log.txt")] + "_model.bin"):
                continue
            xs, ys = kd_curve(log)
            if xs:
                curves.append((xs, ys))
                ax.plot(xs, ys, styles[(act, h)], color=COLORS[act], lw=0.7, alpha=0.45)
        if not curves:
            continue
        n = min(len(xs) for xs, _ in curves)
        mean = [sum(ys[i] for _, ys in curves) / len(curves) for i in range(n)]
        ax.plot(curves[0][0][:n], mean, styles[(act, h)], color=COLORS[act], lw=2,
                label=f"{M.activation(act).label}, h = {h:g} ({len(curves)} seed"
                      f"{'s' if len(curves) > 1 else ''})")
        drawn += 1
    if not drawn:
        raise SystemExit("plot_results.py: error: no finished student of the long schedule in "
                         f"{model_root}; train them with scripts/run_fashion_mnist_long.sh")
    ax.set_xlabel("KD epoch (after 3 KT epochs per block)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"{dataset_label}, long schedule: the half-size claim's students while they "
                 "train\n(thin: one seed; thick: mean over seeds)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def plot_schedules(short_root, long_root, out, dataset_label):
    """Accuracy against hidden size at both schedules (seed 2023; solid short, dashed long),
    each schedule's teacher as a horizontal line."""
    from collect_results import read_csv
    fig, ax = plt.subplots(figsize=(7, 4.6))
    hs = M.hs
    for root, style, name in ((short_root, "o-", "short"), (long_root, "s--", "long")):
        path = os.path.join(root, M.results_file)
        if not os.path.isfile(path):
            continue
        acc = {(a, float(h)): float(v) for a, h, v in read_csv(path)}
        for a in M.activations:
            pts = [(h, acc[(a.act, h)]) for h in hs if (a.act, h) in acc]
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], style, color=COLORS[a.act],
                        label=f"{a.label} ({name})")
        t = acc.get(("teacher", M.teacher["h"]))
        if t is not None:
            ax.axhline(t, color="black", ls="-" if name == "short" else "--", lw=0.8,
                       label=f"teacher ({name})")
    ax.set_xscale("log", base=2)
    ax.set_xticks(hs)
    ax.set_xticklabels([f"{h:g}" for h in hs])
    ax.set_xlabel("hidden factor h (hidden = 96 h)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"{dataset_label}: accuracy vs hidden size at both schedules (seed "
                 f"{M.seeds['shipped']})", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right", ncol=2)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-root", default=None,
                   help="model folder (default: output/<dataset folder>/<model> of scripts/experiments.toml)")
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--dataset-dir", default=None)
    p.add_argument("--out-dir", default=os.path.join(ROOT, "docs"))
    p.add_argument("--seeds", action="store_true",
                   help="plot the seed study (results_seeds.csv) into accuracy_seeds.png only")
    p.add_argument("--long", action="store_true",
                   help="the long schedule: its claim pairs' learning curves "
                        "(long_learning_curves.png) and accuracy vs hidden size at both "
                        "schedules (accuracy_vs_hidden_schedules.png) only")
    p.add_argument("--long-root", default=None, metavar="DIR",
                   help="with --long: the study's folder (default: output/<dataset folder>/long)")
    args = p.parse_args(argv)
    os.makedirs(args.out_dir, exist_ok=True)
    label = M.dataset_label(args.dataset)
    model_root = args.model_root or M.model_root(args.dataset)
    if args.long:
        from collect_results import long_root
        root = os.path.join(args.long_root or long_root(args.dataset),
                            os.path.basename(model_root))
        a = os.path.join(args.out_dir, "long_learning_curves.png")
        plot_long_curves(root, a, label)
        b = os.path.join(args.out_dir, "accuracy_vs_hidden_schedules.png")
        plot_schedules(model_root, root, b, label)
        print(f"wrote {a}\nwrote {b}")
        return 0
    if args.seeds:
        c = os.path.join(args.out_dir, "accuracy_seeds.png")
        plot_seeds(os.path.join(model_root, M.seeds["results"]), c, label)
        print(f"wrote {c}")
        return 0
    args.model_root = model_root
    a = os.path.join(args.out_dir, "accuracy_vs_hidden.png")
    plot_accuracy(os.path.join(args.model_root, M.results_file), a, label)
    b = os.path.join(args.out_dir, "learned_functions.png")
    plot_functions(args.model_root, b, args.dataset, args.dataset_dir)
    print(f"wrote {a}\nwrote {b}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
