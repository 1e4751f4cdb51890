#!/usr/bin/env python
"""Quantisation-aware training of the INT8 ResMLP and the dump of its integer parameters.

The whole model in 8-bit integers (docs/METHOD.md section 10): int8 weights, biases, tables and
activations, int32 accumulators, every rescaling a rounding right shift. From a trained float
student (--load) the BatchNorms and layer-scales are folded, learned-step fake quantisers are
inserted and calibrated, and the model is trained with KD from the float teacher (--do-kd) or
with cross-entropy. LERP-PSA sublayers are trained as the hardware computes them: the 65-entry
int8 table of the current PSA parameters, then the exact 8-bit interpolation. The
fake-quantised forward is bit-for-bit the integer model's (``fpga.int_resmlp``), so their
predictions agree on every image; --dump-params checks that on the whole test set.

  # QAT of the LERP-PSA h = 1 student with KD from the teacher, then dump the integer model
  python cifar10_quant.py --dataset fashion-mnist --quantize --qat --do-kd \\
      --load output/.../lerp_psa_64/h_mul_1_model.bin --student-nl-act psa --student-hidden-factor 1 \\
      --teacher-load output/.../teacher_model.bin --kd-epochs 50 --kd-lr 1e-4 \\
      --save output/.../lerp_psa_64/quant/h_mul_1_quant.bin --dump-params --dump-dir output/.../lerp_psa_64/quant/h_mul_1
  # evaluate / re-dump a saved QAT model
  python cifar10_quant.py --dataset fashion-mnist --quant-load Q.bin --student-nl-act psa \\
      --student-hidden-factor 1 --dump-params --dump-dir D

Training is the float training stack's (``training``): the same KD loop, epoch lines
``[N] Accuracy: ...`` and JSON lines, --checkpoint-dir/--resume, torchrun (Gloo; QAT runs on
the CPU). The files define the models: --student-*/--teacher-* flags, when given, are checked
against them. The last line is a JSON record with the float, fake-quant and integer accuracies.
"""
from __future__ import annotations

import argparse
import sys

from errors import UserError, require_files
from quant import BITS
from training.cli import (OneLineParser, add_data_arguments, add_field_arguments, explicit_flags,
                          run_guarded)
from training.qat import QATConfig, QATOptions, run_qat

PROG = "cifar10_quant.py"

# The flags beyond the data group, by group: each is a field of QATConfig or QATOptions
# (training.qat), which holds its default and help.
GROUPS = (
    ("models (a file given with --load/--teacher-load defines its model; flags given "
     "explicitly are checked against it)",
     ("load", "quant_load", "student_nl_act", "student_hidden_factor", "teacher_load",
      "teacher_nl_act", "teacher_hidden_factor", "grid_size", "grid_range")),
    ("quantisation", ("quantize", "qat") + tuple(f"{b}_bits" for b in BITS)
     + ("calib_batches", "eval_before", "dump_params", "dump_dir", "dump_samples")),
    ("training", ("do_kd", "kd_lr", "kd_wd", "kd_epochs", "kd_t", "kd_alpha", "min_lr",
                  "step_lr_mult")),
    ("run", ("save", "seed", "no_cuda", "threads", "disable_tqdm", "json_log", "checkpoint_dir",
             "resume")),
)


class QuantCLIError(UserError):
    """A usage problem of cifar10_quant.py (one line)."""


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog=PROG, description=__doc__,
                      formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_arguments(p, workers=False, own_data=False)   # own data: float models only
    for title, names in GROUPS:
        add_field_arguments(p.add_argument_group(title), (QATConfig, QATOptions), names)
    return p


def check_args(args) -> None:
    """The flag combinations that cannot run, each refused in one line."""
    for b in BITS:
        v = getattr(args, f"{b}_bits")
        if not 2 <= v <= 8:
            raise QuantCLIError(f"--{b}-bits {v} is not supported; use 2..8 (the integer model "
                                "holds int8 codes)")
    from models import activation
    if not activation(args.student_nl_act).int8:
        raise QuantCLIError(f"--student-nl-act {args.student_nl_act} has no integer model; use "
                            "base (ReLU) or psa")
    if not (args.load or args.quant_load):
        raise QuantCLIError("nothing to quantise: pass --load FLOAT_STUDENT (with --quantize/--qat) "
                            "or --quant-load QAT_STATE")
    if args.load and args.quant_load:
        raise QuantCLIError("pass either --load (a float student) or --quant-load (a QAT state), not both")
    if args.dump_params and not (args.qat or args.quant_load):
        raise QuantCLIError("--dump-params needs a trained or loaded quantised model: add --qat "
                            "(train it now) or pass --quant-load QAT_STATE")
    if args.dump_params and not args.dump_dir:
        raise QuantCLIError("--dump-params needs --dump-dir DIR")
    if args.dump_samples < 256:
        raise QuantCLIError(f"--dump-samples {args.dump_samples}: store at least 256 images")
    if args.output_bits != 8 and args.dump_params:
        raise QuantCLIError(f"--dump-params with --output-bits {args.output_bits}: the integer model "
                            "and the RTL saturate at 8 bits; use --output-bits 8")
    if args.do_kd and args.qat and not args.teacher_load:
        raise QuantCLIError("--do-kd needs a teacher: pass --teacher-load PATH")
    if args.resume and not args.checkpoint_dir:
        raise QuantCLIError("--resume needs --checkpoint-dir DIR (the folder of the interrupted run)")
    if args.resume and not args.qat:
        raise QuantCLIError("--resume continues an interrupted QAT run: add --qat (and its other "
                            "flags, as they were)")
    require_files(args, ("load", "quant_load", "teacher_load"), QuantCLIError)
    for name in ("batch_size", "test_batch_size", "kd_epochs", "calib_batches"):
        if getattr(args, name) < 1:
            raise QuantCLIError(f"--{name.replace('_', '-')} must be positive")


def parse(argv=None):
    """(QATConfig, QATOptions) from the command line, checked."""
    args = build_parser().parse_args(argv)
    check_args(args)
    explicit = explicit_flags(build_parser(), argv)
    return QATConfig.from_args(args), QATOptions.from_args(args, explicit)


def main(argv=None) -> int:
    return run_guarded(PROG, lambda: run_qat(*parse(argv)))


if __name__ == "__main__":
    sys.exit(main())
