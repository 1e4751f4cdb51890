#!/usr/bin/env python
"""Evaluate every checkpoint of a model folder and print/write the accuracy table.

  python scripts/collect_results.py                 # Fashion-MNIST models: table, writes results.csv
  python scripts/collect_results.py --check         # re-evaluate, compare with results.csv exactly
                                                    # (and results_seeds.csv when it exists)
  python scripts/collect_results.py --seeds         # seed spread at h = 0.5, 0.25: results_seeds.csv
  python scripts/collect_results.py --seeds --check # re-evaluate the seed models, compare
  python scripts/collect_results.py --dataset cifar10   # the authors' layout under output/cifar10/...
  python scripts/collect_results.py --long          # the long schedule: runs.csv, its tables
  python scripts/collect_results.py --long --check  # re-evaluate its finished models, compare

Which models exist and where they live (activation folders, file stems, seeds) comes from
scripts/experiments.toml. The evaluation is that of ``cifar10_main.py --test-only``: eval mode,
the whole test split without augmentation, batches of 128, accuracy in percent rounded to two
decimals. A missing checkpoint is reported by its full path before any work starts.

--seeds reads the shipped models (seed 2023) and <model root>/seed_<seed>/<activation
folder>/<stem>_model.bin for the other seeds, writes results_seeds.csv
(activation,hidden_factor,seed,accuracy), and prints mean +- sample standard deviation over
the seeds and which differences of means exceed two standard errors.
"""
from __future__ import annotations

import argparse
import csv
import math
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
for p in (ROOT, HERE):
    if p not in sys.path:
        sys.path.insert(0, p)

import experiments  # noqa: E402
from errors import UserError, report, write_atomic  # noqa: E402

M = experiments.load()


class MissingCheckpoints(UserError):
    pass


def _user_errors():
    """UserError and the one-line error classes of models/data (until they all derive from it)."""
    import data
    import models
    errs = [UserError]
    for mod, name in ((models, "CheckpointError"), (models, "UnknownActivationError"),
                      (data, "DatasetError")):
        cls = getattr(mod, name, None)
        if isinstance(cls, type) and issubclass(cls, Exception) and cls not in errs:
            errs.append(cls)
    return tuple(errs)


# --- what to evaluate ----------------------------------------------------------------------

def checkpoints(model_root, teacher=None):
    """(act, h, path) of the teacher (``teacher``, default: the model root's) and every
    student of the table, in table order."""
    out = [("teacher", M.teacher["h"], teacher or M.teacher_path(model_root))]
    for a in M.activations:
        for h in M.hs:
            out.append((a.act, h, M.checkpoint(model_root, a.act, h)))
    return out


def seed_checkpoints(model_root, seeds=None):
    """(act, h, seed, path) of every student of the seed study, seeds in manifest order."""
    seeds = seeds or [M.seeds["shipped"], *M.seeds["extra"]]
    return [(a.act, float(h), int(s), M.checkpoint(model_root, a.act, h, s))
            for s in seeds for h in M.seeds["hidden"] for a in M.activations]


def require(paths):
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        for p in missing:
            print(f"missing checkpoint: {os.path.abspath(p)}", file=sys.stderr)
        raise MissingCheckpoints(f"{len(missing)} checkpoint(s) missing (listed above); train them "
                                 "with the scripts/run_*.sh drivers or copy them there")


# --- evaluation ----------------------------------------------------------------------------

def test_loader(dataset, dataset_dir):
    import torch
    import data
    _, test, info = data.get_datasets(dataset, dataset_dir, augment=False)
    return torch.utils.data.DataLoader(test, batch_size=128, shuffle=False), info


def accuracy(model, loader):
    """Top-1 accuracy (%) in eval mode: the function cifar10_main.py --test-only uses."""
    from training.evaluate import evaluate
    return evaluate(model, loader, "cpu")


def evaluate_paths(items, dataset, dataset_dir, progress=True):
    """items: (act, h, path, *rest); returns [(act, h, *rest, '85.11')] in the same order."""
    from models import build_resmlp, load_checkpoint
    require([it[2] for it in items])
    loader, info = test_loader(dataset, dataset_dir)
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(items), desc="evaluating", unit="model", file=sys.stderr,
                   dynamic_ncols=True)
    out = []
    for act, h, path, *rest in items:
        model = build_resmlp(M.teacher["act"] if act == "teacher" else act, h,
                             in_channels=info["in_channels"], num_classes=info["num_classes"])
        load_checkpoint(model, path)
        out.append((act, h, *rest, f"{accuracy(model, loader):.2f}"))
        if bar is not None:
            bar.set_postfix_str(f"{act} h={experiments.fmt_h(h)} {out[-1][-1]} %")
            bar.update()
    if bar is not None:
        bar.close()
    return out


def evaluate_all(model_root, dataset, dataset_dir, progress=True, teacher=None):
    """[(act, h, accuracy string)] for the teacher and every student of the table."""
    return evaluate_paths(checkpoints(model_root, teacher), dataset, dataset_dir, progress)


def evaluate_seeds(model_root, dataset, dataset_dir, seeds=None, progress=True, only=None):
    """[(act, h, seed, accuracy string)] for the seed study (``only``: (act, h) pairs)."""
    items = [(a, h, p, s) for a, h, s, p in seed_checkpoints(model_root, seeds)
             if only is None or (a, h) in only]
    return evaluate_paths(items, dataset, dataset_dir, progress)


# --- tables --------------------------------------------------------------------------------

def table(results, dataset):
    """Our table beside the paper's CIFAR-10 table (Markdown)."""
    acc = {(a, h): v for a, h, v in results}
    rule = "|---" * (len(M.hs) + 1) + "|"
    blank = " |" * (len(M.hs) - 1)
    lines = [f"{M.dataset_label(dataset)} (this project):", "", M.table_head(), rule]
    for a in M.activations:
        lines.append(f"| {a.label} | " + " | ".join(acc[(a.act, h)] for h in M.hs) + " |")
    lines += [f"| {M.teacher['label']} | {acc[('teacher', M.teacher['h'])]} |{blank}", "",
              "CIFAR-10 (paper):", "", M.table_head(), rule]
    for a in M.activations:
        lines.append(f"| {a.label} | " + " | ".join(f"{v:.1f}" for v in a.paper) + " |")
    lines.append(f"| {M.teacher['label']} | {M.teacher['paper']:.1f} |{blank}")
    return "\n".join(lines)


def seed_stats(rows):
    """{(act, h): (mean, sample std, n, [accuracies by seed])} from (act, h, seed, acc) rows."""
    groups = {}
    for act, h, seed, v in rows:
        groups.setdefault((act, float(h)), []).append((int(seed), float(v)))
    out = {}
    for key, vals in groups.items():
        xs = [v for _, v in sorted(vals)]
        n = len(xs)
        # statistics: exact arithmetic on the floats, so two groups with the same runs in
        # another order have the same mean (a plain sum can differ in the last bit: "-0.00")
        mean = statistics.mean(xs)
        std = statistics.stdev(xs) if n > 1 else float("nan")
        out[key] = (mean, std, n, xs)
    return out


def comparisons():
    """The pairs the claim is about: (a, h_a) vs (b, h_b)."""
    acts = [a.act for a in M.activations]
    hs = sorted(M.seeds["hidden"], reverse=True)
    pairs = []
    for h in hs:
        for i, a in enumerate(acts):
            for b in acts[i + 1:]:
                pairs.append(((b, h), (a, h)))
    # the claim itself: the learned activation at half the hidden size vs ReLU
    for small, big in zip(hs[1:], hs[:-1]):
        for a in acts[1:]:
            pairs.append(((a, small), (acts[0], big)))
    return pairs


def seed_table(rows):
    """Mean +- sample std per (activation, h) and the pairwise differences (Markdown)."""
    st = seed_stats(rows)
    seeds = sorted({int(r[2]) for r in rows})
    hs = sorted(M.seeds["hidden"], reverse=True)
    lines = [f"Test accuracy (%), mean +- sample std over seeds {', '.join(map(str, seeds))}:", "",
             "| activation | " + " | ".join(f"h = {h}" for h in hs) + " |",
             "|---" * (len(hs) + 1) + "|"]
    for a in M.activations:
        cells = []
        for h in hs:
            mean, std, n, xs = st[(a.act, float(h))]
            cells.append(f"{mean:.2f} +- {std:.2f} ({', '.join(f'{x:.2f}' for x in xs)})")
        lines.append(f"| {a.label} | " + " | ".join(cells) + " |")
    lines += ["", "Differences of means, d = first - second; se = sqrt(s1^2/n1 + s2^2/n2) "
              "(standard error of d); sd = sqrt(s1^2 + s2^2) (spread of a single-seed "
              "difference):", "",
              "| first | second | d | se | sd | \\|d\\| > 2 se | \\|d\\| > 2 sd |", "|---|---|---|---|---|---|---|"]
    label = {a.act: a.label for a in M.activations}
    for (a, ha), (b, hb) in comparisons():
        m1, s1, n1, _ = st[(a, float(ha))]
        m2, s2, n2, _ = st[(b, float(hb))]
        d = m1 - m2
        se = math.sqrt(s1 ** 2 / n1 + s2 ** 2 / n2)
        sd = math.sqrt(s1 ** 2 + s2 ** 2)
        lines.append(f"| {label[a]} h = {ha} | {label[b]} h = {hb} | {d:+.2f} | {se:.2f} | {sd:.2f} "
                     f"| {'yes' if abs(d) > 2 * se else 'no'} | {'yes' if abs(d) > 2 * sd else 'no'} |")
    return "\n".join(lines)


def compare_table(rows_a, rows_b, label_a, label_b):
    """The seed study of two recipes side by side (Markdown): per activation and h, mean +-
    sample std of each, the difference of means d = a - b with its standard error and the
    spread of a single-seed difference, and whether |d| exceeds twice each."""
    sa, sb = seed_stats(rows_a), seed_stats(rows_b)
    hs = sorted(M.seeds["hidden"], reverse=True)
    seeds = sorted({int(r[2]) for r in rows_a})
    lines = [f"Test accuracy (%), mean +- sample std over seeds {', '.join(map(str, seeds))}; "
             f"d = {label_a} - {label_b}:", "",
             f"| activation | h | {label_a} | {label_b} | d | se | sd | \\|d\\| > 2 se | \\|d\\| > 2 sd |",
             "|---|---|---|---|---|---|---|---|---|"]
    for a in M.activations:
        for h in hs:
            m1, s1, n1, _ = sa[(a.act, float(h))]
            m2, s2, n2, _ = sb[(a.act, float(h))]
            d = m1 - m2
            se = math.sqrt(s1 ** 2 / n1 + s2 ** 2 / n2)
            sd = math.sqrt(s1 ** 2 + s2 ** 2)
            lines.append(f"| {a.label} | {h} | {m1:.2f} +- {s1:.2f} | {m2:.2f} +- {s2:.2f} | {d:+.2f} "
                         f"| {se:.2f} | {sd:.2f} | {'yes' if abs(d) > 2 * se else 'no'} "
                         f"| {'yes' if abs(d) > 2 * sd else 'no'} |")
    return "\n".join(lines)


def pooled_sd(stats, act):
    """sqrt of the mean sample variance of ``act`` over the hidden factors of a seed study."""
    vs = [s ** 2 for (a, _), (_, s, n, _) in stats.items() if a == act and n > 1]
    return math.sqrt(statistics.mean(vs)) if vs else float("nan")


def single_compare_table(results_a, results_b, seed_rows, label_a, label_b):
    """Two single-seed tables side by side (Markdown): per activation and h, the accuracy of
    each, d = a - b, and the seed standard deviation of the seed study at that activation and h
    (where the seed study has no such h: the activation's pooled one, marked "(pooled)"), and
    whether |d| exceeds twice it."""
    acc_a = {(a, float(h)): v for a, h, v in results_a}
    acc_b = {(a, float(h)): v for a, h, v in results_b}
    st = seed_stats(seed_rows)
    lines = [f"Test accuracy (%), seed {M.seeds['shipped']}; d = {label_a} - {label_b}; sd: the "
             "sample std over seeds of the seed study:", "",
             f"| activation | h | {label_a} | {label_b} | d | seed sd | \\|d\\| > 2 sd |",
             "|---|---|---|---|---|---|---|"]
    for a in M.activations:
        for h in M.hs:
            va, vb = acc_a[(a.act, float(h))], acc_b[(a.act, float(h))]
            d = float(va) - float(vb)
            if (a.act, float(h)) in st:
                sd = st[(a.act, float(h))][1]
                sd_cell = f"{sd:.2f}"
            else:
                sd = pooled_sd(st, a.act)
                sd_cell = f"{sd:.2f} (pooled)"
            lines.append(f"| {a.label} | {h} | {va} | {vb} | {d:+.2f} | {sd_cell} "
                         f"| {'yes' if abs(d) > 2 * sd else 'no'} |")
    return "\n".join(lines)


# --- CSV -----------------------------------------------------------------------------------

def _write_rows(path, header, rows):
    def write(f):
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    write_atomic(path, write)


def write_csv(path, results):
    _write_rows(path, ["activation", "hidden_factor", "accuracy"],
                [(a, experiments.fmt_h(h), v) for a, h, v in results])


def read_csv(path):
    with open(path) as f:
        return [(r["activation"], float(r["hidden_factor"]), r["accuracy"]) for r in csv.DictReader(f)]


def write_seeds_csv(path, rows):
    _write_rows(path, ["activation", "hidden_factor", "seed", "accuracy"],
                [(a, experiments.fmt_h(h), s, v) for a, h, s, v in rows])


def read_seeds_csv(path):
    with open(path) as f:
        return [(r["activation"], float(r["hidden_factor"]), int(r["seed"]), r["accuracy"])
                for r in csv.DictReader(f)]


def check_seeds(model_root, dataset, dataset_dir, results, seeds_csv, progress=True):
    """Re-evaluate the extra-seed models and compare results_seeds.csv; the shipped-seed rows
    are the table's models, taken from ``results`` (just evaluated)."""
    want = read_seeds_csv(seeds_csv)
    shipped = M.seeds["shipped"]
    extra = sorted({s for _, _, s, _ in want if s != shipped})
    print(f"\nseed study: re-evaluating seeds {', '.join(map(str, extra))} ({seeds_csv})")
    got = dict(((a, h, s), v) for a, h, s, v in
               evaluate_seeds(model_root, dataset, dataset_dir, seeds=extra, progress=progress))
    acc = {(a, h): v for a, h, v in results}
    for a, h, s, _ in want:
        if s == shipped:
            got[(a, h, s)] = acc[(a, h)]
    rows = [(a, h, s, got.get((a, h, s), "not evaluated")) for a, h, s, _ in want]
    return _compare(want, rows, seeds_csv)


# --- the long schedule ([long] of the manifest; scripts/run_fashion_mnist_long.sh) ----------

RUNS_FILE = "runs.csv"
RUNS_HEADER = ["model", "role", "activation", "hidden_factor", "seed", "accuracy", "epochs",
               "train_minutes", "precision", "compile", "threads"]


def long_root(dataset):
    """output/<dataset folder>/<long folder>: resnet20.bin beside the ResMLP model folder."""
    d = M.datasets.get(dataset)
    if M.long is None or d is None:
        raise UserError(f"the manifest has no long schedule for {dataset} ([long] of "
                        "scripts/experiments.toml; Fashion-MNIST has one)")
    return os.path.join(ROOT, "output", d["folder"], M.long["folder"])


def long_jobs(root, dataset):
    """Every model of the long study in the order the driver trains them:
    (role, act, h, seed, checkpoint path, log path)."""
    model_root = os.path.join(root, os.path.basename(M.model_root(dataset)))
    shipped = M.seeds["shipped"]
    out = [("resnet", "resnet20", None, shipped, os.path.join(root, "resnet20.bin"),
            os.path.join(root, "resnet20_log.txt")),
           ("teacher", "teacher", M.teacher["h"], shipped, M.teacher_path(model_root),
            os.path.join(model_root, M.teacher["log"]))]
    pairs = M.long["priority"]
    order = [(s, a, h) for s in [shipped, *M.long["seeds"]] for a, h in pairs]
    order += [(shipped, a.act, h) for h in M.hs for a in M.activations if (a.act, h) not in pairs]
    for seed, act, h in order:
        path = M.checkpoint(model_root, act, h, seed)
        out.append(("student", act, h, seed, path, path[:-len("_model.bin")] + "_log.txt"))
    return out


def run_record(log_path):
    """experiments.run_record of a model's log file."""
    with open(log_path) as f:
        return experiments.run_record(f)


def evaluate_long(root, dataset, dataset_dir, progress=True):
    """Evaluate every finished model of the long study: RUNS_HEADER rows, in training order,
    and how many models the study has in all."""
    from models import build_from_checkpoint
    jobs = long_jobs(root, dataset)
    done = [j for j in jobs if os.path.isfile(j[4])]
    rows = []
    if not done:
        return rows, len(jobs)
    loader, _ = test_loader(dataset, dataset_dir)
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(done), desc="evaluating", unit="model", file=sys.stderr,
                   dynamic_ncols=True)
    for role, act, h, seed, path, log in done:
        model = build_from_checkpoint(path, resnet=role == "resnet")
        acc = f"{accuracy(model, loader):.2f}"
        rec = run_record(log) if os.path.isfile(log) else dict(
            epochs="no log", train_minutes="", precision="", compile="", threads="")
        rows.append(dict(model=os.path.relpath(path, root), role=role, activation=act,
                         hidden_factor="" if h is None else experiments.fmt_h(h), seed=str(seed),
                         accuracy=acc, **rec))
        if bar is not None:
            bar.set_postfix_str(f"{act} h={rows[-1]['hidden_factor']} {acc} %")
            bar.update()
    if bar is not None:
        bar.close()
    return rows, len(jobs)


def long_results(rows):
    """(results.csv rows, results_seeds.csv rows) of the long study's finished models: the
    teacher and the shipped seed's students; the seed rows of the claim's pairs."""
    shipped = M.seeds["shipped"]
    results = [(r["activation"], float(r["hidden_factor"]), r["accuracy"]) for r in rows
               if r["role"] in ("teacher", "student") and int(r["seed"]) == shipped]
    seeds = [(r["activation"], float(r["hidden_factor"]), int(r["seed"]), r["accuracy"])
             for r in rows if r["role"] == "student"
             and (r["activation"], float(r["hidden_factor"])) in M.long["priority"]]
    return results, seeds


def long_table(rows, total, dataset):
    """The long schedule's table, its ResNet-20 and teacher, and the training record."""
    acc = {(r["activation"], float(r["hidden_factor"])): r["accuracy"] for r in rows
           if r["role"] != "resnet" and int(r["seed"]) == M.seeds["shipped"]}
    rule = "|---" * (len(M.hs) + 1) + "|"
    lg = M.long
    lines = [f"{M.dataset_label(dataset)}, long schedule ({len(rows)} of {total} models trained): "
             f"students {lg['kt_epochs']} KT epochs per block + {lg['kd_epochs']} KD epochs, "
             f"seed {M.seeds['shipped']}", "", M.table_head(), rule]
    for a in M.activations:
        lines.append(f"| {a.label} | " + " | ".join(acc.get((a.act, h), "-") for h in M.hs) + " |")
    resnet = [r for r in rows if r["role"] == "resnet"]
    teacher = acc.get(("teacher", M.teacher["h"]))
    lines += ["", f"ResNet-20 ({lg['resnet_epochs']} epochs): "
              f"{resnet[0]['accuracy'] + ' %' if resnet else 'not trained yet'}",
              f"{M.teacher['label']}, {lg['teacher_epochs']} KD epochs from the ResNet-20: "
              f"{teacher + ' %' if teacher else 'not trained yet'}", "",
              "| model | seed | accuracy | epochs | minutes | precision | compile | threads |",
              "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['seed']} | {r['accuracy']} | {r['epochs']} "
                     f"| {r['train_minutes']} | {r['precision']} | {r['compile']} | {r['threads']} |")
    minutes = sum(float(r["train_minutes"] or 0) for r in rows)
    lines.append(f"\ntraining time of these models: {minutes / 60:.1f} h")
    return "\n".join(lines)


def claim_pairs(groups):
    """The differences the half-size claim is about, among ``groups`` ((act, h) with runs):
    each learned activation against ReLU at the same and at twice its hidden size, and the
    learned activations against each other at one hidden size."""
    base = M.activations[0].act
    learned = [a.act for a in M.activations[1:]]
    pairs = []
    for a in learned:
        for h in sorted({h for x, h in groups if x == a}):
            for hb in (2 * h, h):
                if (base, hb) in groups:
                    pairs.append(((a, h), (base, hb)))
    for i, a in enumerate(learned):
        for b in learned[i + 1:]:
            for h in sorted({h for x, h in groups if x == a}):
                if (b, h) in groups:
                    pairs.append(((b, h), (a, h)))
    return pairs


def difference_rows(st, pairs):
    """(first, second, d, se) per pair; se is nan when a side has a single run."""
    out = []
    for p, q in pairs:
        m1, s1, n1, _ = st[p]
        m2, s2, n2, _ = st[q]
        se = math.sqrt(s1 ** 2 / n1 + s2 ** 2 / n2) if n1 > 1 and n2 > 1 else float("nan")
        out.append((p, q, m1 - m2, se))
    return out


def long_seed_table(seed_rows, short_seed_rows):
    """Mean +- std of the claim's pairs at the long schedule, and every claim difference at
    both schedules (the short one from the shipped results_seeds.csv)."""
    label = {a.act: a.label for a in M.activations}
    st = seed_stats(seed_rows)
    short = seed_stats(short_seed_rows) if short_seed_rows else {}
    lines = ["Long schedule, the claim's pairs: mean +- sample std over seeds (runs in seed order):",
             "", "| student | runs | mean +- std |", "|---|---|---|"]
    for a, h in M.long["priority"]:
        if (a, h) in st:
            mean, std, n, xs = st[(a, h)]
            cell = f"{mean:.2f} +- {std:.2f}" if n > 1 else f"{mean:.2f} (one run)"
            lines.append(f"| {label[a]} h = {h} | {', '.join(f'{x:.2f}' for x in xs)} | {cell} |")
        else:
            lines.append(f"| {label[a]} h = {h} | - | not trained yet |")
    pairs = claim_pairs(set(st))
    lines += ["", "Claim differences d = first - second (se: standard error of d, from the seeds):",
              "", "| first | second | long d | long se | short d | short se | moved |",
              "|---|---|---|---|---|---|---|"]
    for (p, q, d, se), short_row in zip(difference_rows(st, pairs),
                                        difference_rows(short, pairs) if all(
                                            x in short for pq in pairs for x in pq)
                                        else [None] * len(pairs)):
        sd_cell = "-" if math.isnan(se) else f"{se:.2f}"
        if short_row is None:
            s_d, s_se, moved = "-", "-", "-"
        else:
            s_d = f"{short_row[2]:+.2f}"
            s_se = "-" if math.isnan(short_row[3]) else f"{short_row[3]:.2f}"
            moved = f"{d - short_row[2]:+.2f}"
        lines.append(f"| {label[p[0]]} h = {p[1]} | {label[q[0]]} h = {q[1]} | {d:+.2f} | {sd_cell} "
                     f"| {s_d} | {s_se} | {moved} |")
    return "\n".join(lines)


def schedule_table(long_rows, short_rows):
    """Seed 2023 at both schedules, per activation and h (Markdown): short, long, long - short."""
    short = {(a, float(h)): v for a, h, v in short_rows}
    long_ = {(a, float(h)): v for a, h, v in long_rows}
    lines = ["What the schedule changes (seed 2023; short: the shipped 6-epoch students):", "",
             "| activation | h | short | long | long - short |", "|---|---|---|---|---|"]
    for a, label in [("teacher", M.teacher["label"])] + [(a.act, a.label) for a in M.activations]:
        for h in ([M.teacher["h"]] if a == "teacher" else M.hs):
            s, g = short.get((a, h)), long_.get((a, h))
            diff = f"{float(g) - float(s):+.2f}" if s and g else "-"
            lines.append(f"| {label} | {h} | {s or '-'} | {g or '-'} | {diff} |")
    return "\n".join(lines)


def write_runs_csv(path, rows):
    _write_rows(path, RUNS_HEADER, [[r[k] for k in RUNS_HEADER] for r in rows])


def read_runs_csv(path):
    with open(path) as f:
        return [dict(r) for r in csv.DictReader(f)]


def run_long(args):
    """collect_results.py --long: evaluate, print the tables, write or check the CSVs."""
    t0 = time.time()
    root = args.long_root or long_root(args.dataset)
    model_root = os.path.join(root, os.path.basename(M.model_root(args.dataset)))
    runs_csv = os.path.join(root, RUNS_FILE)
    rows, total = evaluate_long(root, args.dataset, args.dataset_dir, progress=not args.no_progress)
    if not rows:
        if args.check and os.path.isfile(runs_csv):
            raise UserError(f"{runs_csv} lists models but none is in {root}")
        print(f"no model of the long schedule is trained yet ({root}); "
              "train them with scripts/run_fashion_mnist_long.sh")
        return 0
    print(f"evaluated {len(rows)} models in {time.time() - t0:.0f} s\n")
    print(long_table(rows, total, args.dataset))
    results, seed_rows = long_results(rows)
    short_root = M.model_root(args.dataset)
    short_seeds = os.path.join(short_root, M.seeds["results"])
    short_results = os.path.join(short_root, M.results_file)
    print()
    print(long_seed_table(seed_rows, read_seeds_csv(short_seeds) if os.path.isfile(short_seeds)
                          else None))
    if os.path.isfile(short_results):
        print()
        print(schedule_table(results, read_csv(short_results)))
    if args.check:
        if not os.path.isfile(runs_csv):
            raise UserError(f"missing {runs_csv}; write it with collect_results.py --long")
        want = read_runs_csv(runs_csv)
        if want != rows:
            diff = [(a, b) for a, b in zip(want, rows) if a != b]
            if len(want) != len(rows):
                diff.append(f"{len(want)} models in the file, {len(rows)} trained")
            print(f"\nMISMATCH with {runs_csv}: {diff}", file=sys.stderr)
            return 1
        print(f"\nall {len(rows)} long-schedule models reproduce {runs_csv} exactly")
        return 0
    if not args.no_write:
        write_runs_csv(runs_csv, rows)
        write_csv(os.path.join(model_root, M.results_file), results)
        write_seeds_csv(os.path.join(model_root, M.seeds["results"]), seed_rows)
        print(f"\nwrote {runs_csv}, and results.csv and {M.seeds['results']} in {model_root}")
    return 0


# --- command line --------------------------------------------------------------------------

def _compare(want, got, path):
    if want != got:
        diff = [(a, b) for a, b in zip(want, got) if a != b]
        if len(want) != len(got):
            diff.append(f"{len(want)} rows in the file, {len(got)} evaluated")
        print(f"\nMISMATCH with {path}: {diff}", file=sys.stderr)
        return 1
    print(f"\nall {len(got)} accuracies reproduce {path} exactly")
    return 0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--dataset-dir", default=None)
    p.add_argument("--model-root", default=None,
                   help="model folder (default: output/<dataset folder>/<model> of scripts/experiments.toml)")
    p.add_argument("--teacher", default=None, metavar="PATH",
                   help="the teacher checkpoint (default: teacher_model.bin in the model root; "
                        "an ablation's is the shipped one)")
    p.add_argument("--ablation", default=None, metavar="NAME",
                   help="an [ablation.NAME] of scripts/experiments.toml: its folder under the model "
                        "root, the model root's teacher")
    p.add_argument("--compare", default=None, metavar="NAME",
                   help="print the seed study of the shipped models beside that of ablation NAME "
                        "(from both results_seeds.csv; nothing is evaluated); for an ablation of "
                        "the single-seed table only, the two results.csv side by side with the "
                        "seed study's standard deviations")
    p.add_argument("--side-by-side", default=None, metavar="DIR",
                   help="print the model root's results.csv beside DIR's (a retrained study beside "
                        "the shipped one, with the seed sd of DIR's results_seeds.csv); nothing is "
                        "evaluated")
    p.add_argument("--seeds", action="store_true",
                   help="the seed study: results_seeds.csv, mean +- std, differences")
    p.add_argument("--seed-values", type=int, nargs="+", default=None, metavar="SEED",
                   help="with --seeds: only these seeds (default: the shipped one and the extra "
                        "seeds of scripts/experiments.toml)")
    p.add_argument("--long", action="store_true",
                   help="the long-schedule study (scripts/run_fashion_mnist_long.sh): every "
                        "finished model, its training record (runs.csv), the table, the claim "
                        "differences beside the short schedule's")
    p.add_argument("--long-root", default=None, metavar="DIR",
                   help="with --long: the study's folder (default: output/<dataset folder>/long, "
                        "the LONG_ROOT of run_fashion_mnist_long.sh)")
    p.add_argument("--check", action="store_true", help="compare with the CSV instead of writing it")
    p.add_argument("--no-write", action="store_true", help="print only")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    model_root = args.model_root or M.model_root(args.dataset)
    teacher = args.teacher
    errors = _user_errors()
    try:
        t0 = time.time()
        if args.long:
            return run_long(args)
        if args.side_by_side:
            ref = args.side_by_side
            paths = [os.path.join(ref, M.results_file), os.path.join(model_root, M.results_file),
                     os.path.join(ref, M.seeds["results"])]
            for path in paths:
                if not os.path.isfile(path):
                    raise UserError(f"missing {path}; write it with collect_results.py "
                                    "--model-root (its folder)")
            print(single_compare_table(read_csv(paths[0]), read_csv(paths[1]),
                                       read_seeds_csv(paths[2]), "shipped", "retrained"))
            return 0
        if args.compare:
            abl = M.ablation(args.compare)
            single = os.path.join(model_root, abl.folder, M.results_file)
            if (os.path.isfile(single)
                    and not os.path.isfile(os.path.join(model_root, abl.folder, M.seeds["results"]))):
                # an ablation of the single-seed table only: against the shipped table
                paths = [os.path.join(model_root, M.results_file),
                         os.path.join(model_root, M.seeds["results"])]
                for path in paths:
                    if not os.path.isfile(path):
                        raise UserError(f"missing {path}; write it with collect_results.py")
                print(single_compare_table(read_csv(paths[0]), read_csv(single),
                                           read_seeds_csv(paths[1]), abl.versus, abl.label))
                return 0
            paths = [os.path.join(model_root, M.seeds["results"]),
                     os.path.join(model_root, abl.folder, M.seeds["results"])]
            for path in paths:
                if not os.path.isfile(path):
                    raise UserError(f"missing {path}; write it with collect_results.py --seeds "
                                    f"(--ablation {abl.name} for the ablation)")
            print(compare_table(read_seeds_csv(paths[0]), read_seeds_csv(paths[1]),
                                abl.versus, abl.label))
            return 0
        if args.ablation:
            abl = M.ablation(args.ablation)
            teacher = teacher or M.teacher_path(model_root)
            model_root = os.path.join(model_root, abl.folder)
        if args.seeds:
            csv_path = os.path.join(model_root, M.seeds["results"])
            rows = evaluate_seeds(model_root, args.dataset, args.dataset_dir, seeds=args.seed_values,
                                  progress=not args.no_progress)
            print(f"{M.dataset_label(args.dataset)}, ResMLP (hidden = 96 h); {len(rows)} models "
                  f"evaluated in {time.time() - t0:.0f} s")
            print()
            print(seed_table(rows))
            if args.check:
                return _compare(read_seeds_csv(csv_path), rows, csv_path)
            if not args.no_write:
                write_seeds_csv(csv_path, rows)
                print(f"\nwrote {csv_path}")
            return 0
        csv_path = os.path.join(model_root, M.results_file)
        results = evaluate_all(model_root, args.dataset, args.dataset_dir, progress=not args.no_progress,
                               teacher=teacher)
        print(f"Test accuracy (%), ResMLP 4 blocks, embed 96, hidden = 96 h; evaluated in {time.time() - t0:.0f} s")
        print()
        print(table(results, args.dataset))
        if args.check:
            status = _compare(read_csv(csv_path), results, csv_path)
            seeds_csv = os.path.join(model_root, M.seeds["results"])
            if os.path.isfile(seeds_csv):
                status |= check_seeds(model_root, args.dataset, args.dataset_dir, results, seeds_csv,
                                      progress=not args.no_progress)
            return status
        if not args.no_write:
            write_csv(csv_path, results)
            print(f"\nwrote {csv_path}")
        return 0
    except errors as exc:
        return report("collect_results.py", exc)
    except OSError as exc:
        return report("collect_results.py", UserError(f"{exc.filename}: {exc.strerror}"))


if __name__ == "__main__":
    sys.exit(main())
