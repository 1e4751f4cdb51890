#!/usr/bin/env python
"""Reader of the experiment manifest ``scripts/experiments.toml``, and of JSON log lines.

The manifest is the one place that names the experiment table: activation -> folder and
label, hidden factor -> file stem, the paper's numbers, the schedules and the seeds. The
shell drivers, ``collect_results.py`` and ``plot_results.py`` all read it through this
module. It imports nothing heavy (no torch), so the shell can call it cheaply.

  python scripts/experiments.py shell --dataset cifar10     # bash declarations (scripts/common.sh)
  python scripts/experiments.py accuracy LOG [--event done] # last accuracy in a file of JSON lines
  python scripts/experiments.py run LOG [--field NAME]      # epochs, minutes, precision of a training log
  cifar10_main.py --test-only ... | python scripts/experiments.py accuracy --event test
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tomllib
from dataclasses import dataclass

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MANIFEST = os.path.join(HERE, "experiments.toml")
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from errors import UserError, report  # noqa: E402


class ManifestError(UserError):
    """The manifest or a log does not hold what was asked for (one line)."""


@dataclass(frozen=True)
class Activation:
    act: str          # --student-nl-act value
    folder: str       # folder under the model root
    label: str        # table label
    paper: tuple      # the paper's CIFAR-10 accuracies at each hidden factor, in order


@dataclass(frozen=True)
class Hidden:
    h: float
    stem: str         # <stem>_model.bin, <stem>_log.txt


@dataclass(frozen=True)
class Ablation:
    name: str         # the key under [ablation]
    folder: str       # <model root>/<folder>/
    label: str        # table label
    args: str         # extra cifar10_main.py arguments of every student
    versus: str       # what the shipped models are, as opposed to this ablation
    note: str = ""
    seeds: bool = True  # the seed study's students too (else the 12 of the table only)


@dataclass(frozen=True)
class Manifest:
    activations: tuple
    hidden: tuple
    teacher: dict
    datasets: dict
    schedules: dict
    seeds: dict
    results_file: str
    ablations: dict = None      # name -> Ablation
    int8: dict = None           # parent folder and (act, h) of the shipped INT8 models
    long: dict = None           # the long schedule ([long]): folder, epochs, args, seeds, priority

    # --- lookups --------------------------------------------------------------------------
    def activation(self, act: str) -> Activation:
        for a in self.activations:
            if a.act == act:
                return a
        raise ManifestError(f"unknown activation {act!r}; the manifest has "
                            f"{', '.join(a.act for a in self.activations)}")

    def stem(self, h: float) -> str:
        for x in self.hidden:
            if x.h == float(h):
                return x.stem
        raise ManifestError(f"unknown hidden factor {h!r}; the manifest has "
                            f"{', '.join(fmt_h(x.h) for x in self.hidden)}")

    def table_head(self) -> str:
        """Markdown header of the accuracy table: | activation | h = 2.0 | ... |"""
        return "| activation | " + " | ".join(f"h = {float(h)}" for h in self.hs) + " |"

    @property
    def hs(self) -> list:
        return [x.h for x in self.hidden]

    def paper(self, act: str) -> list:
        return list(self.activation(act).paper)

    def model_root(self, dataset: str, root: str = ROOT) -> str:
        """``output/<folder>/<model>`` of a data set (``-`` becomes ``_`` for unlisted ones)."""
        d = self.datasets.get(dataset)
        if d is None:
            return os.path.join(root, "output", dataset.replace("-", "_"),
                                "resmlp_layers_4_h_4_embed_96")
        return os.path.join(root, "output", d["folder"], d["model"])

    def dataset_label(self, dataset: str) -> str:
        return self.datasets.get(dataset, {}).get("label", dataset)

    def ablation(self, name: str) -> Ablation:
        if name not in (self.ablations or {}):
            raise ManifestError(f"unknown ablation {name!r}; the manifest has "
                                f"{', '.join(self.ablations or {}) or 'none'}")
        return self.ablations[name]

    def teacher_path(self, model_root: str) -> str:
        return os.path.join(model_root, self.teacher["file"])

    def checkpoint(self, model_root: str, act: str, h: float, seed: int | None = None) -> str:
        """Path of one student; seeds other than the shipped one live under seed_<seed>/."""
        if seed is not None and int(seed) != self.seeds["shipped"]:
            model_root = os.path.join(model_root, f"seed_{int(seed)}")
        return os.path.join(model_root, self.activation(act).folder, f"{self.stem(h)}_model.bin")


def fmt_h(h: float) -> str:
    """Hidden factor as the drivers write it: 2, 1, 0.5, 0.25."""
    return f"{float(h):g}"


def _require(table: dict, key: str, where: str):
    if key not in table:
        raise ManifestError(f"{MANIFEST}: {where} has no {key!r}")
    return table[key]


def load(path: str = MANIFEST) -> Manifest:
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ManifestError(f"cannot read the experiment manifest {path}: {exc}") from None
    hidden = tuple(Hidden(float(_require(x, "h", "[[hidden]]")), _require(x, "stem", "[[hidden]]"))
                   for x in _require(raw, "hidden", "the manifest"))
    acts = []
    for x in _require(raw, "activation", "the manifest"):
        paper = tuple(float(v) for v in _require(x, "paper", "[[activation]]"))
        if len(paper) != len(hidden):
            raise ManifestError(f"{path}: activation {x.get('act')!r} has {len(paper)} paper numbers "
                                f"for {len(hidden)} hidden factors")
        acts.append(Activation(_require(x, "act", "[[activation]]"),
                               _require(x, "folder", "[[activation]]"),
                               _require(x, "label", "[[activation]]"), paper))
    teacher = dict(_require(raw, "teacher", "the manifest"))
    teacher["h"] = float(teacher["h"])
    ablations = {name: Ablation(name, _require(x, "folder", f"[ablation.{name}]"),
                                _require(x, "label", f"[ablation.{name}]"),
                                _require(x, "args", f"[ablation.{name}]"),
                                _require(x, "versus", f"[ablation.{name}]"), x.get("note", ""),
                                bool(x.get("seeds", True)))
                 for name, x in raw.get("ablation", {}).items()}
    return Manifest(tuple(acts), hidden, teacher, dict(raw.get("dataset", {})),
                    dict(raw.get("schedule", {})), dict(_require(raw, "seeds", "the manifest")),
                    raw.get("results", {}).get("file", "results.csv"), ablations,
                    dict(parent=raw.get("int8", {}).get("parent", ""),
                         models=[(str(a), float(h)) for a, h in raw.get("int8", {}).get("models", [])]),
                    _long(raw.get("long"), acts, hidden, path))


def _long(raw, acts, hidden, path):
    """The [long] table, its priority list checked against the activations and hidden factors."""
    if raw is None:
        return None
    d = dict(raw)
    for key in ("folder", "resnet_epochs", "teacher_epochs", "kt_epochs", "kd_epochs", "seeds",
                "priority"):
        _require(d, key, "[long]")
    known_acts = {a.act for a in acts}
    known_h = {x.h for x in hidden}
    pairs = []
    for entry in d["priority"]:
        if len(entry) != 2 or entry[0] not in known_acts or float(entry[1]) not in known_h:
            raise ManifestError(f"{path}: [long] priority entry {entry!r} is not an "
                                "[activation, hidden factor] pair of the table")
        pairs.append((str(entry[0]), float(entry[1])))
    d["priority"] = pairs
    d["seeds"] = [int(s) for s in d["seeds"]]
    return d


# --- JSON log lines ------------------------------------------------------------------------

def json_records(lines):
    """The JSON objects among ``lines`` (other output, e.g. the human lines, is skipped)."""
    for line in lines:
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict):
            yield rec


def last_accuracy(lines, events=("test", "done")) -> float:
    """Accuracy of the last JSON record whose ``event`` is in ``events``."""
    acc = None
    for rec in json_records(lines):
        if rec.get("event") in events and "accuracy" in rec:
            acc = float(rec["accuracy"])
    if acc is None:
        raise ManifestError(f"no JSON line with event {' or '.join(events)} and an accuracy")
    return acc


def run_record(lines) -> dict:
    """What a training log (JSON lines, every process that trained one model appends to it)
    says of the training: ``epochs`` ("N" plain/KD epochs, or "K KT + N"), ``train_minutes``
    (the epochs' seconds summed, one decimal), and ``precision``, ``compile``, ``threads`` of
    every process that trained it (its "start" records), joined by "/" when they differ."""
    starts, kt, kd, seconds = [], 0, 0, 0.0
    for rec in json_records(lines):
        ev = rec.get("event")
        if ev == "start":
            starts.append(rec)
        elif ev in ("kt_epoch", "epoch"):
            kt += ev == "kt_epoch"
            kd += ev == "epoch"
            seconds += float(rec.get("seconds", 0.0))

    def joined(key, default):
        vals = []
        for r in starts:
            v = str(r.get(key, default))
            if v not in vals:
                vals.append(v)
        return "/".join(vals) if vals else "unknown"

    return dict(epochs=f"{kt} KT + {kd}" if kt else str(kd), train_minutes=f"{seconds / 60:.1f}",
                precision=joined("amp", "fp32"), compile=joined("compile", False),
                threads=joined("threads", "unknown"))


# --- shell ---------------------------------------------------------------------------------

def shell(m: Manifest, dataset: str | None) -> str:
    """Bash declarations for scripts/common.sh (arrays and associative arrays)."""
    q = shlex.quote
    out = [
        "ACTS=(" + " ".join(q(a.act) for a in m.activations) + ")",
        "H_VALUES=(" + " ".join(q(fmt_h(h)) for h in m.hs) + ")",
        "declare -gA ACT_FOLDER=(" + " ".join(f"[{q(a.act)}]={q(a.folder)}" for a in m.activations) + ")",
        "declare -gA ACT_LABEL=(" + " ".join(f"[{q(a.act)}]={q(a.label)}" for a in m.activations) + ")",
        "declare -gA H_STEM=(" + " ".join(f"[{q(fmt_h(x.h))}]={q(x.stem)}" for x in m.hidden) + ")",
        f"TABLE_HEAD={q(m.table_head())}",
        f"TABLE_RULE={q('|---' * (len(m.hidden) + 1) + '|')}",
        f"TEACHER_ACT={q(m.teacher['act'])}",
        f"TEACHER_H={q(fmt_h(m.teacher['h']))}",
        f"TEACHER_FILE={q(m.teacher['file'])}",
        f"TEACHER_LOG={q(m.teacher['log'])}",
        f"SEED_SHIPPED={int(m.seeds['shipped'])}",
        "SEEDS_EXTRA=(" + " ".join(str(int(s)) for s in m.seeds["extra"]) + ")",
        "SEED_H_VALUES=(" + " ".join(q(fmt_h(h)) for h in m.seeds["hidden"]) + ")",
        "declare -gA ABLATION_FOLDER=(" + " ".join(f"[{q(a.name)}]={q(a.folder)}"
                                                   for a in (m.ablations or {}).values()) + ")",
        "declare -gA ABLATION_ARGS=(" + " ".join(f"[{q(a.name)}]={q(a.args)}"
                                                 for a in (m.ablations or {}).values()) + ")",
        "declare -gA ABLATION_SEEDS=(" + " ".join(f"[{q(a.name)}]={int(a.seeds)}"
                                                  for a in (m.ablations or {}).values()) + ")",
    ]
    for name, sched in m.schedules.items():
        for key, val in sched.items():
            out.append(f"SCHEDULE_{name.upper()}_{key.upper()}={int(val)}")
    if m.long is not None:
        lg = m.long
        for key in ("folder", "resnet_args", "teacher_args", "student_args"):
            out.append(f"LONG_{key.upper()}={q(str(lg.get(key, '')))}")
        for key in ("resnet_epochs", "teacher_epochs", "kt_epochs", "kd_epochs"):
            out.append(f"LONG_{key.upper()}={int(lg[key])}")
        out.append(f"LONG_RESNET_WD={q(str(lg.get('resnet_wd', 5e-4)))}")
        out.append("LONG_SEEDS=(" + " ".join(str(s) for s in lg["seeds"]) + ")")
        out.append("LONG_PRIORITY=(" + " ".join(q(f"{a}:{fmt_h(h)}") for a, h in lg["priority"])
                   + ")")
    if dataset is not None:
        rel = os.path.relpath(m.model_root(dataset), ROOT)
        d = m.datasets.get(dataset)
        if d is not None:
            out.append(f"MANIFEST_MODEL_NAME={q(d['model'])}")
            out.append(f"MANIFEST_DATASET_FOLDER={q(d['folder'])}")
        out.append(f"MANIFEST_MODEL_ROOT={q('./' + rel)}")
        d = m.datasets.get(dataset, {})
        if "dataset_dir" in d:
            out.append(f"MANIFEST_DATASET_DIR={q(d['dataset_dir'])}")
    return "\n".join(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("shell", help="print bash declarations of the manifest")
    s.add_argument("--dataset", default=None, help="also print MANIFEST_MODEL_ROOT of this data set")
    a = sub.add_parser("accuracy", help="print the last accuracy found in JSON log lines")
    a.add_argument("log", nargs="?", default="-", help="a file of log lines (default: stdin)")
    a.add_argument("--event", action="append", default=None,
                   help="the event(s) to take it from (default: test and done)")
    r = sub.add_parser("run", help="print what a training log says of the training (epochs, "
                                    "minutes, precision, compile, threads)")
    r.add_argument("log", help="a model's log of JSON lines")
    r.add_argument("--field", default=None, help="print only this field")
    args = p.parse_args(argv)
    prog = "experiments.py"
    try:
        if args.cmd == "shell":
            print(shell(load(), args.dataset))
        elif args.cmd == "run":
            try:
                with open(args.log) as f:
                    rec = run_record(f)
            except OSError as exc:
                raise ManifestError(f"cannot read {args.log}: {exc.strerror}") from None
            if args.field is not None and args.field not in rec:
                raise ManifestError(f"no field {args.field!r}; a run has {', '.join(rec)}")
            print(rec[args.field] if args.field else " ".join(f"{k}={v}" for k, v in rec.items()))
        else:
            events = tuple(args.event) if args.event else ("test", "done")
            if args.log == "-":
                acc = last_accuracy(sys.stdin, events)
            else:
                try:
                    with open(args.log) as f:
                        acc = last_accuracy(f, events)
                except OSError as exc:
                    raise ManifestError(f"cannot read {args.log}: {exc.strerror}") from None
            print(f"{acc:.2f}")
    except UserError as exc:
        return report(prog, exc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
