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
--kd-lr/--kd-wd, as in the authors' script (--epochs/--lr/--wd override them). The flags
of the authors' script keep their meaning and defaults; --dataset adds Fashion-MNIST, SVHN
and a synthetic set. Each epoch prints one human line ``[epoch] Accuracy: 87.80 ...`` and
one JSON line. Several processes: torchrun --nproc_per_node=N cifar10_main.py ... (README).
"""
from __future__ import annotations

import argparse
import sys

import training
from training.ablations import KT_LOOPS
from training.cli import (OneLineParser, act_metavar, act_type, add_data_arguments,
                          explicit_flags, run_guarded)

PROG = "cifar10_main.py"


def impl_type(value: str) -> str:
    import kernels
    names = list(kernels.available_impls())
    if value not in names:
        raise argparse.ArgumentTypeError(f"unknown kernel implementation {value!r}; use one of "
                                         f"{', '.join(names)}")
    return value


def positive_float(value: str) -> float:
    try:
        v = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"{value!r} must be positive")
    return v


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog=PROG, description=__doc__,
                      formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_arguments(p)

    m = p.add_argument_group("models (a checkpoint given with --load/--teacher-load defines its "
                             "model; flags given explicitly are checked against it)")
    m.add_argument("--teacher-load", help="teacher checkpoint (needed by --do-kt/--do-kd)")
    m.add_argument("--teacher-nl-act", type=act_type, default="base", metavar=act_metavar(),
                   help="teacher activation (base)")
    m.add_argument("--teacher-hidden-factor", type=positive_float, default=4.0,
                   help="teacher hidden size / embed (4)")
    m.add_argument("--teacher-resnet", action="store_true", help="the teacher is a ResNet-20")
    m.add_argument("--student-nl-act", type=act_type, default="psa", metavar=act_metavar(),
                   help="student activation (psa)")
    m.add_argument("--student-hidden-factor", type=positive_float, default=4.0,
                   help="student hidden size / embed (4; the paper's students: 2, 1, 0.5, 0.25)")
    m.add_argument("--student-resnet", action="store_true", help="train a ResNet-20 instead of a ResMLP")
    m.add_argument("--load", help="student checkpoint to start from (or to evaluate with --test-only)")
    m.add_argument("--grid-size", type=int, default=64, help="LERP-PSA grid points (64)")
    m.add_argument("--grid-range", type=positive_float, default=4.0,
                   help="LERP-PSA grid range R: the grid spans [-R, R] (4)")
    m.add_argument("--spline-size", type=int, default=65,
                   help="B-spline coefficients, odd (65: the paper's 64 intervals)")
    m.add_argument("--spline-range", type=positive_float, default=4.0,
                   help="B-spline range R: the knots span [-R, R] (4)")
    m.add_argument("--psa-expansion", type=int, default=8, help="PSA experts per feature (8)")
    m.add_argument("--impl", type=impl_type, default="auto",
                   help="activation kernel implementation: auto, reference, cpu, triton (auto)")

    t = p.add_argument_group("training")
    t.add_argument("--do-kt", action="store_true",
                   help="block-wise knowledge transfer; without --do-kd, plain training follows "
                        "with the embedding and all blocks but the last still frozen (as the "
                        "authors' script)")
    t.add_argument("--kt-mode", choices=tuple(KT_LOOPS), default="authors",
                   help="authors (default): their KT loop step for step (whole student in train "
                        "mode, one optimiser over all blocks, TV(2) on the whole student); "
                        "isolated: frozen blocks in eval mode, a fresh optimiser per block "
                        "(docs/METHOD.md section 6)")
    t.add_argument("--kt-lr", type=float, default=1e-3, help="KT AdamW lr (1e-3)")
    t.add_argument("--kt-wd", type=float, default=0.0, help="KT AdamW weight decay (0)")
    t.add_argument("--kt-epochs", type=int, default=50, help="KT epochs per block (50)")
    t.add_argument("--kt-save", help="save the student after KT here")
    t.add_argument("--kt-load", help="load a student after KT from here (skips KT)")
    t.add_argument("--do-kd", action="store_true", help="knowledge distillation")
    t.add_argument("--kd-lr", type=float, default=1e-3,
                   help="KD AdamW lr (1e-3); also plain training's unless --lr")
    t.add_argument("--kd-wd", type=float, default=0.0,
                   help="KD AdamW weight decay (0); also plain training's unless --wd")
    t.add_argument("--kd-epochs", type=int, default=300,
                   help="KD epochs (300); also plain training's unless --epochs")
    t.add_argument("--kd-t", type=float, default=1.0, help="distillation temperature (1)")
    t.add_argument("--kd-alpha", type=float, default=0.8, help="weight of the teacher term (0.8)")
    t.add_argument("--epochs", type=int, default=None,
                   help="epochs of plain training (default: --kd-epochs; after --do-kt without "
                        "--do-kd, 0 stops after KT)")
    t.add_argument("--lr", type=float, default=None, help="plain-training AdamW lr (default: --kd-lr)")
    t.add_argument("--wd", type=float, default=None,
                   help="plain-training AdamW weight decay (default: --kd-wd)")
    t.add_argument("--min-lr", type=float, default=1e-5, help="cosine annealing floor (1e-5)")
    t.add_argument("--bspline-lambda", type=float, default=1e-5, help="TV(2) weight (1e-5)")
    t.add_argument("--bspline-lr", type=float, default=1e-3, help="Adam lr of spline coefficients (1e-3)")
    t.add_argument("--amp", choices=("bf16", "fp16"), default=None,
                   help="autocast the training forward pass to bfloat16 or float16 (fp16 adds "
                        "loss scaling); evaluation stays in float32")
    t.add_argument("--compile", action="store_true",
                   help="torch.compile the student and teacher for training")

    r = p.add_argument_group("run")
    r.add_argument("--test-only", action="store_true", help="only evaluate (--load or --teacher-load)")
    r.add_argument("--save", help="save the final student here (authors' layout, atomic)")
    r.add_argument("--seed", type=int, default=2023, help="random seed (2023)")
    r.add_argument("--nondeter", action="store_true", help="allow non-deterministic algorithms")
    r.add_argument("--no-cuda", action="store_true", help="run on the CPU even if CUDA is present")
    r.add_argument("--disable-tqdm", action="store_true", help="no progress bars")
    r.add_argument("--json-log", help="also append the JSON lines to this file")
    r.add_argument("--checkpoint-dir", help="write a resumable training state here after every epoch")
    r.add_argument("--checkpoint-every", type=int, default=1,
                   help="with --checkpoint-dir: write the state every N epochs (1)")
    r.add_argument("--resume", action="store_true",
                   help="continue the run saved in --checkpoint-dir exactly where it stopped")
    return p


def parse(argv=None):
    """(RunConfig, RunOptions) from the command line."""
    args = build_parser().parse_args(argv)
    explicit = explicit_flags(build_parser(), argv)
    return training.RunConfig.from_args(args), training.RunOptions.from_args(args, explicit)


def evaluate(model, loader, device, args=None, desc="test"):
    """Backward-compatible wrapper of :func:`training.evaluate` (``args`` only supplies
    ``disable_tqdm``)."""
    show = args is not None and not getattr(args, "disable_tqdm", True)
    return training.evaluate(model, loader, device, show_progress=show, desc=desc)


def main(argv=None) -> int:
    cfg, opts = parse(argv)
    return run_guarded(PROG, lambda: training.run(cfg, opts))


if __name__ == "__main__":
    sys.exit(main())
