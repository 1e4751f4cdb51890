#!/usr/bin/env python
"""Train and evaluate ResMLP (ReLU, B-spline or LERP-PSA activations) and ResNet-20.

Reproduces the recipe of Singh & Bazargan, "Compressing Neural Networks Using
Learnable 1-D Non-Linear Functions" (ACM TRETS 2025), docs/METHOD.md section 6:

* ResNet-20 teacher of the teacher:   --student-resnet --kd-wd 5e-4 --save resnet20.bin
* the ReLU ResMLP teacher (h = 4):     --teacher-load resnet20.bin --teacher-resnet --do-kd
                                      --student-nl-act base --save teacher_model.bin
  (or plainly: --student-nl-act base --save teacher_model.bin)
* a student by KT + KD:               --teacher-load T.bin --do-kt --do-kd
                                      --student-nl-act psa --student-hidden-factor 1 --save S.bin
* evaluation:                         --test-only --load S.bin   (the file defines the model)

Without --do-kt/--do-kd a run is plain cross-entropy training for --kd-epochs epochs with
--kd-lr/--kd-wd, as in the authors' script (--epochs/--lr/--wd override them). Every flag of
the authors' script is accepted with its meaning and default (--dataset-dir --download-dataset
--do-kt --kt-lr --kt-wd --kt-epochs --kt-save --kt-load --do-kd --kd-lr --kd-wd --kd-epochs
--kd-t --kd-alpha --batch-size --test-batch-size --teacher-load --teacher-nl-act
--teacher-hidden-factor --teacher-resnet --student-nl-act --student-hidden-factor
--student-resnet --bspline-lambda --test-only --save --seed --nondeter --no-cuda
--disable-tqdm); the others are ours, and --dataset adds Fashion-MNIST, SVHN and a synthetic
set. Each epoch prints one human line ``[epoch] Accuracy: 87.80 ...`` and one JSON line.
Several processes: torchrun --nproc_per_node=N cifar10_main.py ... (README).
"""
from __future__ import annotations

import argparse
import sys

import training
from training.cli import OneLineParser, add_data_arguments, add_groups, explicit_flags, run_guarded
from training.config import GROUPS

PROG = "cifar10_main.py"


def build_parser() -> argparse.ArgumentParser:
    """The command line; every flag is a field of training.config (its default and help)."""
    p = OneLineParser(prog=PROG, description=__doc__,
                      formatter_class=argparse.RawDescriptionHelpFormatter)
    classes = (training.RunConfig, training.RunOptions)
    add_data_arguments(p, classes)
    add_groups(p, classes, GROUPS)
    return p


def parse(argv=None):
    """(RunConfig, RunOptions) from the command line."""
    args = build_parser().parse_args(argv)
    explicit = explicit_flags(build_parser(), argv)
    return training.RunConfig.from_args(args), training.RunOptions.from_args(args, explicit)


def main(argv=None) -> int:
    cfg, opts = parse(argv)
    return run_guarded(PROG, lambda: training.run(cfg, opts))


if __name__ == "__main__":
    sys.exit(main())
