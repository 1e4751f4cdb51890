#!/usr/bin/env python
"""Evaluate every checkpoint of a model folder and print/write the accuracy table.

  python scripts/collect_results.py                      # Fashion-MNIST models, writes results.csv
  python scripts/collect_results.py --check              # re-evaluate, compare with results.csv
  python scripts/collect_results.py --dataset cifar10 --model-root output/cifar10/resmlp_layers_4_h_4_embed_96

Uses the same evaluation as ``cifar10_main.py --test-only`` (eval mode, full
test set, accuracy in percent with two decimals).
"""
from __future__ import annotations

import argparse
import csv
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import torch  # noqa: E402

ACTS = [("base", "baseline", "Baseline (ReLU)"), ("bspline", "bspline_65_1e-5", "B-Spline (64, lambda 1e-5)"),
        ("psa", "lerp_psa_64", "LERP-PSA (64)")]
HS = [(2.0, "h_mul_2"), (1.0, "h_mul_1"), (0.5, "h_div_2"), (0.25, "h_div_4")]
PAPER = {"base": [87.8, 86.2, 83.3, 78.8], "bspline": [89.1, 87.7, 85.6, 84.1],
         "psa": [89.0, 88.3, 85.9, 84.2], "teacher": 88.9}


def checkpoints(model_root):
    out = [("teacher", 4.0, os.path.join(model_root, "teacher_model.bin"))]
    for act, folder, _ in ACTS:
        for h, stem in HS:
            out.append((act, h, os.path.join(model_root, folder, f"{stem}_model.bin")))
    return out


def evaluate_all(model_root, dataset, dataset_dir, progress=True):
    import cifar10_main as cm
    from models import build_resmlp, load_checkpoint
    import data
    missing = [p for _, _, p in checkpoints(model_root) if not os.path.isfile(p)]
    if missing:
        for p in missing:
            print(f"missing checkpoint: {os.path.abspath(p)}", file=sys.stderr)
        raise SystemExit(1)
    _, test, info = data.get_datasets(dataset, dataset_dir, augment=False)
    loader = torch.utils.data.DataLoader(test, batch_size=128, shuffle=False)
    args = argparse.Namespace(disable_tqdm=True)
    results = []
    for act, h, path in checkpoints(model_root):
        t0 = time.time()
        model = build_resmlp("base" if act == "teacher" else act, h, in_channels=info["in_channels"],
                             num_classes=info["num_classes"])
        load_checkpoint(model, path)
        acc = cm.evaluate(model, loader, torch.device("cpu"), args)
        results.append((act, h, f"{acc:.2f}"))
        if progress:
            print(f"  {act:8s} h={h:<4g} {acc:6.2f} %  ({time.time() - t0:.1f} s)", file=sys.stderr)
    return results


def table(results, dataset):
    """Our table beside the paper's CIFAR-10 table (Markdown)."""
    acc = {(a, h): v for a, h, v in results}
    head = "| activation | h = 2.0 | h = 1.0 | h = 0.5 | h = 0.25 |"
    lines = [f"{dataset} (this project):", "", head, "|---|---|---|---|---|"]
    for act, _, label in ACTS:
        lines.append(f"| {label} | " + " | ".join(acc[(act, h)] for h, _ in HS) + " |")
    lines += [f"| Teacher (ReLU, h = 4) | {acc[('teacher', 4.0)]} | | | |", "",
              "CIFAR-10 (paper):", "", head, "|---|---|---|---|---|"]
    for act, _, label in ACTS:
        lines.append(f"| {label} | " + " | ".join(f"{v:.1f}" for v in PAPER[act]) + " |")
    lines.append(f"| Teacher (ReLU, h = 4) | {PAPER['teacher']:.1f} | | | |")
    return "\n".join(lines)


def write_csv(path, results):
    tmp = path + ".tmp"
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["activation", "hidden_factor", "accuracy"])
        for act, h, v in results:
            w.writerow([act, f"{h:g}", v])
    os.replace(tmp, path)


def read_csv(path):
    with open(path) as f:
        return [(r["activation"], float(r["hidden_factor"]), r["accuracy"]) for r in csv.DictReader(f)]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--dataset-dir", default=None)
    p.add_argument("--model-root", default=os.path.join(ROOT, "output", "fashion_mnist",
                                                        "resmlp_layers_4_h_4_embed_96"))
    p.add_argument("--check", action="store_true", help="compare with results.csv instead of writing it")
    p.add_argument("--no-write", action="store_true", help="print only")
    args = p.parse_args(argv)
    csv_path = os.path.join(args.model_root, "results.csv")
    t0 = time.time()
    results = evaluate_all(args.model_root, args.dataset, args.dataset_dir)
    print(f"Test accuracy (%), ResMLP 4 blocks, embed 96, hidden = 96 h; evaluated in {time.time() - t0:.0f} s")
    print()
    print(table(results, args.dataset))
    if args.check:
        want = read_csv(csv_path)
        if want != results:
            diff = [(a, b) for a, b in zip(want, results) if a != b]
            print(f"\nMISMATCH with {csv_path}: {diff}", file=sys.stderr)
            return 1
        print(f"\nall {len(results)} accuracies reproduce {csv_path} exactly")
    elif not args.no_write:
        write_csv(csv_path, results)
        print(f"\nwrote {csv_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
