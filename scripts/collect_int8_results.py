#!/usr/bin/env python
"""The INT8 table (docs/METHOD.md section 10): results_int8.csv from the QAT logs, or --check it.

  python scripts/collect_int8_results.py [--model-root DIR]
      reads <act folder>/quant/<stem>_log.txt (the last JSON line of cifar10_quant.py) for
      the models of [int8] in scripts/experiments.toml (ReLU h = 2, ReLU h = 1, LERP-PSA h = 1),
      the float accuracy from the results.csv of their float parents ([int8] parent), and
      writes results_int8.csv (activation,hidden_factor,float_parent,float_accuracy,int8_accuracy).
  python scripts/collect_int8_results.py --check [--model-root DIR]
      re-runs the integer-only model (fpga.int_resmlp) of every dump in results_int8.csv on the
      test set and fails unless each accuracy is the one in the CSV.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

sys.path.insert(0, os.path.join(ROOT, "scripts"))
import experiments  # noqa: E402
from errors import write_atomic  # noqa: E402

M = experiments.load()
MODELS = tuple((a, experiments.fmt_h(h)) for a, h in M.int8["models"])
FIELDS = ("activation", "hidden_factor", "float_parent", "float_accuracy", "int8_accuracy")


def dump_dir(root, act, h):
    return os.path.join(root, M.activation(act).folder, "quant", M.stem(float(h)))


def parent_root(root):
    """The folder of the float students the INT8 models were trained from."""
    return os.path.join(root, M.int8["parent"]) if M.int8["parent"] else root


def last_result(path):
    with open(path) as f:
        for line in reversed(f.read().splitlines()):
            if line.startswith("{") and '"int8_accuracy"' in line:
                return json.loads(line)
    raise SystemExit(f"collect_int8_results.py: error: {path} has no final result line; "
                     "rerun the QAT driver")


def float_accuracy(root, act, h):
    path = os.path.join(parent_root(root), "results.csv")
    with open(path) as f:
        for row in csv.DictReader(f):
            if row["activation"] == act and float(row["hidden_factor"]) == float(h):
                return row["accuracy"]
    raise SystemExit(f"collect_int8_results.py: error: {path} has no row for {act} h={h}")


def float_parent(root, act, h):
    """The float student's checkpoint, relative to the model root."""
    return os.path.relpath(M.checkpoint(parent_root(root), act, float(h)), root)


def collect(root):
    rows = []
    for act, h in MODELS:
        log = os.path.join(root, M.activation(act).folder, "quant", f"{M.stem(float(h))}_log.txt")
        if not os.path.isfile(log):
            raise SystemExit(f"collect_int8_results.py: error: missing {log}; run "
                             "scripts/run_quant_baseline.sh and scripts/run_quant_lerp_psa.sh")
        r = last_result(log)
        if r.get("identical_logits") != r.get("test_images"):
            raise SystemExit(f"collect_int8_results.py: error: {log}: fake-quant and integer "
                             "predictions differ")
        rows.append(dict(activation=act, hidden_factor=h, float_parent=float_parent(root, act, h),
                         float_accuracy=float_accuracy(root, act, h),
                         int8_accuracy=f"{r['int8_accuracy']:.2f}"))
    path = os.path.join(root, "results_int8.csv")
    def write(f):
        w = csv.DictWriter(f, FIELDS)
        w.writeheader()
        w.writerows(rows)
    write_atomic(path, write)
    print(f"wrote {path}")
    for r in rows:
        print(f"  {r['activation']:4s} h={r['hidden_factor']}: float {r['float_accuracy']} %, "
              f"int8 {r['int8_accuracy']} %")


def check(root, dataset, dataset_dir):
    from fpga import int_resmlp as im
    path = os.path.join(root, "results_int8.csv")
    if not os.path.isfile(path):
        raise SystemExit(f"collect_int8_results.py: error: missing {path}")
    with open(path) as f:
        rows = list(csv.DictReader(f))
    bad = 0
    print("| activation | hidden factor | float % | int8 % (csv) | int8 % (recomputed) |")
    print("|---|---|---|---|---|")
    for r in rows:
        d = dump_dir(root, r["activation"], r["hidden_factor"])
        params, meta = im.load_params(os.path.join(d, "quant_params.npz"))
        x, labels = im.dataset_codes(meta, dataset, dataset_dir, progress=False)
        acc = 100.0 * float((im.forward(params, meta, x).argmax(1) == labels).sum()) / len(labels)
        ok = f"{acc:.2f}" == f"{float(r['int8_accuracy']):.2f}"
        bad += not ok
        print(f"| {r['activation']} | {r['hidden_factor']} | {r['float_accuracy']} | "
              f"{r['int8_accuracy']} | {acc:.2f}{'' if ok else '  MISMATCH'} |")
    if bad:
        print(f"{bad} integer accuracies differ from {path}")
        return 1
    print("all integer accuracies reproduced")
    return 0


def main(argv=None):
    p = argparse.ArgumentParser(prog="collect_int8_results.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-root", default=os.path.join(
        ROOT, "output", "fashion_mnist", "resmlp_layers_4_h_4_embed_96"))
    p.add_argument("--check", action="store_true", help="re-run the dumps and compare")
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--dataset-dir", default=None)
    args = p.parse_args(argv)
    if args.check:
        from errors import UserError, report
        try:
            return check(args.model_root, args.dataset, args.dataset_dir)
        except UserError as exc:
            return report("collect_int8_results.py", exc)
    collect(args.model_root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
