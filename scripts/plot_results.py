#!/usr/bin/env python
"""Plots for the README (matplotlib PNG):

1. accuracy vs hidden factor for ReLU, B-spline and LERP-PSA: our Fashion-MNIST
   results.csv beside the paper's CIFAR-10 table;
2. the learned 1-D functions of a few features of one layer for B-spline and
   LERP-PSA, with that layer's input histogram underneath (where the grid is used).

  python scripts/plot_results.py            # writes docs/accuracy_vs_hidden.png, docs/learned_functions.png
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
from collect_results import ACTS, HS, PAPER  # noqa: E402

COLORS = {"base": "tab:gray", "bspline": "tab:blue", "psa": "tab:red"}


def plot_accuracy(csv_path, out, dataset_label):
    with open(csv_path) as f:
        rows = list(csv.DictReader(f))
    acc = {(r["activation"], float(r["hidden_factor"])): float(r["accuracy"]) for r in rows}
    hs = [h for h, _ in HS]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharex=True)
    for ax, title, getter, teacher in (
            (axes[0], f"{dataset_label} (this project)", lambda a: [acc[(a, h)] for h in hs],
             acc.get(("teacher", 4.0))),
            (axes[1], "CIFAR-10 (paper)", lambda a: PAPER[a], PAPER["teacher"])):
        for act, _, label in ACTS:
            ax.plot(hs, getter(act), "o-", color=COLORS[act], label=label)
        if teacher is not None:
            ax.axhline(teacher, color="black", ls="--", lw=1, label="teacher (ReLU, h = 4)")
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
def plot_functions(model_root, out, dataset, dataset_dir, h=1.0, h_stem="h_mul_1",
                   layer="layers.1.layers.1.layers.0", features=(0, 1, 2, 3)):
    import data
    from models import build_from_checkpoint
    _, test, _ = data.get_datasets(dataset, dataset_dir, augment=False)
    loader = torch.utils.data.DataLoader(test, batch_size=128)
    panels = [("bspline", "bspline_65_1e-5", "B-spline (65 knots)"), ("psa", "lerp_psa_64", "LERP-PSA (64 points)")]
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


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-root", default=os.path.join(ROOT, "output", "fashion_mnist",
                                                        "resmlp_layers_4_h_4_embed_96"))
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--dataset-dir", default=None)
    p.add_argument("--out-dir", default=os.path.join(ROOT, "docs"))
    args = p.parse_args(argv)
    os.makedirs(args.out_dir, exist_ok=True)
    label = {"fashion-mnist": "Fashion-MNIST", "cifar10": "CIFAR-10"}.get(args.dataset, args.dataset)
    a = os.path.join(args.out_dir, "accuracy_vs_hidden.png")
    plot_accuracy(os.path.join(args.model_root, "results.csv"), a, label)
    b = os.path.join(args.out_dir, "learned_functions.png")
    plot_functions(args.model_root, b, args.dataset, args.dataset_dir)
    print(f"wrote {a}\nwrote {b}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
