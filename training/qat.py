"""Quantisation-aware training as one more run of the training stack (``cifar10_quant.py``).

The QAT model (``quant.QResMLP``, fake-quantised, bit-for-bit the integer model in eval) is
just another student: the same loaders, the same loops (:func:`training.loops.knowledge_distillation`
with the teacher, :func:`training.loops.train_plain` without), the same resumable
:class:`training.session.Session`, evaluation, progress, non-finite locator and torchrun
support as float training. What is specific to the INT8 model (quantising the float student,
calibration, the optimiser group of the quantiser steps, the integer check and the dump)
comes from ``quant``. QAT runs on the CPU, where the fake-quantised arithmetic is checked
exact; under torchrun the processes use Gloo.

Order of a fresh run (it fixes every random number, so it is kept): seed, loaders, the float
student (``--load``, through ``models.build_from_checkpoint``), its quantised model
calibrated on ``--calib-batches`` training batches, the teacher, then the epochs.
"""
from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar, Dict, Optional

import torch

from .cli import act_metavar, act_type, flag, positive_float
from .config import BaseConfig, BaseOptions
from .evaluate import evaluate, progress
from .loops import Loop, knowledge_distillation, train_plain
from .optim import Optimisers
from .run import CLIError, begin, interrupted, load_model, load_teacher, launch, settle
from .session import Interrupted, Phase, Session
from .setup import batch_size_of, images_of

BITS_HELP = "{} bits, 2..8 (%(default)s; the integer model and the RTL need --output-bits 8)"


@dataclass
class QATConfig(BaseConfig):
    """Everything that changes the result of a QAT run (checked by ``--resume``), and the
    flags of ``cifar10_quant.py`` that set it (defaults and help are these fields'; the
    fields redefined here have QAT's own default or help). Plain QAT (no ``--do-kd``) trains
    with the KD schedule (``kd_epochs``, ``kd_lr``, ``kd_wd``), as float plain training does.
    QAT trains in float32, deterministically (the fake-quantised arithmetic is exact there)."""
    amp: ClassVar[Optional[str]] = None
    nondeter: ClassVar[bool] = False
    student_nl_act: str = field(default="psa", metadata=flag(
        "activation of the student (psa or base; bspline has no integer model)",
        type=act_type, metavar=act_metavar))
    student_hidden_factor: float = field(default=1.0, metadata=flag(
        "student hidden size / embed (%(default)s; checked against --load)",
        type=positive_float))
    do_kd: bool = field(default=False, metadata=flag(
        "distil from --teacher-load (else cross-entropy)"))
    kd_epochs: int = field(default=50, metadata=flag("QAT epochs (%(default)s)"))
    kd_lr: float = field(default=1e-4, metadata=flag("AdamW lr (%(default)s)"))
    kd_wd: float = field(default=0.0, metadata=flag("AdamW weight decay (%(default)s)"))
    grid_size: int = field(default=64, metadata=flag(
        "LERP-PSA grid points of a --load state_dict that does not store them (a native one; %(default)s)"))
    grid_range: float = field(default=4.0, metadata=flag(
        "LERP-PSA grid range of a --load state_dict that does not store it (a native one; %(default)s)"))
    input_bits: int = field(default=8, metadata=flag(BITS_HELP.format("input")))
    weight_bits: int = field(default=8, metadata=flag(BITS_HELP.format("weight")))
    bias_bits: int = field(default=8, metadata=flag(BITS_HELP.format("bias")))
    output_bits: int = field(default=8, metadata=flag(BITS_HELP.format("output")))
    calib_batches: int = field(default=8, metadata=flag(
        "training batches for the initial activation steps (%(default)s)"))
    step_lr_mult: float = field(default=10.0, metadata=flag(
        "learning-rate multiplier of the (log) quantiser steps (%(default)s)"))

    @property
    def bits(self) -> Dict[str, int]:
        return dict(input=self.input_bits, weight=self.weight_bits, bias=self.bias_bits,
                    output=self.output_bits)

    def for_resume_check(self) -> Dict[str, Any]:
        d = super().for_resume_check()
        # the files define the models: their grid, expansion and spline are not settings here
        for k in ("grid_size", "psa_expansion", "grid_range", "spline_size", "spline_range"):
            d.pop(k)
        return d


@dataclass
class QATOptions(BaseOptions):
    """Files, device and logging of a QAT run, and what to do besides training (with their
    ``cifar10_quant.py`` flags)."""
    compile: ClassVar[bool] = False   # QAT runs eager
    load: Optional[str] = field(default=None, metadata=flag(
        "trained float student to quantise (authors' or native layout; a ResMLP)"))
    quant_load: Optional[str] = field(default=None, metadata=flag(
        "a QAT state written by --save (continue or dump it)"))
    teacher_load: Optional[str] = field(default=None, metadata=flag(
        "float teacher for --do-kd (a ResMLP or a ResNet-20)"))
    quantize: bool = field(default=False, metadata=flag(
        "accepted and ignored (the authors' flag): --load is always quantised"))
    qat: bool = field(default=False, metadata=flag("quantisation-aware training (--kd-epochs)"))
    eval_before: bool = field(default=False, metadata=flag(
        "with --qat: also evaluate the float student and the calibrated model before training "
        "(two extra test passes)"))
    dump_params: bool = field(default=False, metadata=flag(
        "write the integer model (quant_params.npz, quant_samples.npz, hex files)"))
    dump_dir: Optional[str] = field(default=None, metadata=flag("folder for --dump-params"))
    dump_samples: int = field(default=256, metadata=flag(
        "test images stored in quant_samples.npz (%(default)s, at least 256)"))
    save: Optional[str] = field(default=None, metadata=flag("save the QAT state here (atomic)"))
    no_cuda: bool = field(default=False, metadata=flag(
        "accepted and ignored (the authors' flag): QAT always runs on the CPU"))
    threads: int = field(default=0, metadata=flag(
        "CPU threads for torch (%(default)s: torch's default)"))
    checkpoint_dir: Optional[str] = field(default=None, metadata=flag(
        "write a resumable QAT state here after every epoch"))
    workers: int = 0      # the QAT loaders run in the main process, as they always have


def _abs(path: Optional[str]) -> Optional[str]:
    return os.path.abspath(os.path.expanduser(path)) if path else None


def run_qat(cfg: QATConfig, opts: QATOptions) -> Dict[str, Any]:
    """Quantise (``--load``) or load (``--quant-load``) the INT8 model, train it (``--qat``),
    save and dump it; returns the final record (also the last JSON line)."""
    if opts.threads:
        torch.set_num_threads(opts.threads)
    if torch.cuda.is_available() and os.environ.get("RANK", "0") == "0":
        print("note: QAT runs on the CPU (the exact integer forward is checked there)", flush=True)
    return launch(_run_qat, cfg, opts, use_cuda=False)


def _quant_model(cfg: QATConfig, opts: QATOptions, info, train, test, log, show, dist, device,
                 result: dict, resuming: bool):
    """(QAT model, cfg): loaded from ``--quant-load``, or quantised from the float ``--load``."""
    import quant
    if opts.quant_load:
        q = quant.load_state(os.path.expanduser(opts.quant_load))
        c = q.cfg
        given = opts.explicit
        if ("student_nl_act" in given and c.act != cfg.student_nl_act) or (
                "student_hidden_factor" in given
                and abs(c.hidden_factor - cfg.student_hidden_factor) > 1e-9):
            raise CLIError(f"{opts.quant_load} holds a QAT '{c.act}' model with hidden factor "
                           f"{c.hidden_factor:g}; pass --student-nl-act {c.act} "
                           f"--student-hidden-factor {c.hidden_factor:g} (or drop them)")
        if c.in_channels != info["in_channels"]:
            raise CLIError(f"{opts.quant_load} takes {c.in_channels}-channel images; pass the "
                           "--dataset it was trained on")
        have = dict(input=c.input_bits, weight=c.weight_bits, bias=c.bias_bits, output=c.output_bits)
        for b in quant.BITS:
            if f"{b}_bits" in given and cfg.bits[b] != have[b]:
                raise CLIError(f"{opts.quant_load} was trained with --{b}-bits {have[b]}; "
                               f"pass --{b}-bits {have[b]} (or drop it)")
        cfg = dataclasses.replace(cfg, student_nl_act=c.act, student_hidden_factor=c.hidden_factor,
                                  **{f"{b}_bits": have[b] for b in quant.BITS})
        return q, cfg

    from models import describe_checkpoint, read_state_dict
    sd = read_state_dict(opts.load)
    if describe_checkpoint(sd)["arch"] != "resmlp":
        raise CLIError(f"{opts.load} holds a ResNet-20; the INT8 model is a ResMLP: pass a "
                       "ResMLP student to --load (a ResNet-20 can be the --teacher-load)")
    student, found = load_model(sd, "student", cfg, opts, info)
    cfg = settle(cfg, "student", found)
    if (opts.eval_before or not opts.qat) and not resuming:
        fa = evaluate(student, test, device, show_progress=show, distributed=dist.enabled)
        result["float_accuracy"] = round(fa, 2)
        log.line(f"[float] Accuracy: {fa:.2f} ({opts.load})")
    mean, std = quant.normalisation(cfg.dataset, images_of(test), info["in_channels"])
    qcfg = quant.qconfig_of(student, bits=cfg.bits, dataset=cfg.dataset, mean=mean, std=std)
    # Resuming: the saved state replaces the steps, so no calibration (and no data drawn).
    calib = None if resuming else (x for _, (x, _) in zip(range(cfg.calib_batches), train))
    q, n = quant.quantise(student, qcfg, calib)
    if n:
        log.line(f"calibrated the activation steps on {n} training batches")
    return q, cfg


def _run_qat(cfg: QATConfig, opts: QATOptions, dist, device) -> Dict[str, Any]:
    import quant
    log, train, test, info, show = begin(cfg, opts, dist, device, cfg.student_nl_act)
    result: Dict[str, Any] = dict(event="done")
    qmodel, cfg = _quant_model(cfg, opts, info, train, test, log, show, dist, device, result,
                               resuming=opts.resume)
    result.update(act=qmodel.cfg.act, hidden_factor=qmodel.cfg.hidden_factor)

    def fake_quant_accuracy(note):
        acc = evaluate(qmodel, test, device, show_progress=show, distributed=dist.enabled)
        log.line(f"[quant] Accuracy: {acc:.2f} (fake-quantised{note})")
        return round(acc, 2)

    codes = None
    if not opts.qat:
        if opts.dump_params and dist.main:   # one pass gives the accuracy and the codes
            codes = quant.evaluate_codes(qmodel, _full_test(test), _progress(show))
            result["quant_accuracy"] = round(codes.accuracy, 2)
            log.line(f"[quant] Accuracy: {codes.accuracy:.2f} (fake-quantised)")
        else:
            result["quant_accuracy"] = fake_quant_accuracy("")
    else:
        teacher = None
        if cfg.do_kd:
            teacher, cfg, _ = load_teacher(cfg, opts, info, device)
        if opts.eval_before and not opts.resume:
            result["quant_accuracy_before_qat"] = fake_quant_accuracy(", before QAT")
        config = dict(cfg.for_resume_check(), load=_abs(opts.load), quant_load=_abs(opts.quant_load))
        if cfg.do_kd:
            config["teacher_load"] = _abs(opts.teacher_load)
        session = Session(qmodel, train.generator, log, folder=opts.checkpoint_dir,
                          config=config, enabled=dist.main)
        if opts.resume:
            session.load()
        loop = Loop(device=device, log=log, session=session, show_progress=show,
                    limit_batches=cfg.limit_train_batches, distributed=dist.enabled,
                    wrap=lambda m: dist.wrap(m, device))
        opt = Optimisers.of([quant.qat_optimizer(qmodel, cfg.kd_lr, cfg.kd_wd, cfg.step_lr_mult)],
                            cfg.kd_epochs, cfg.min_lr)
        common = dict(epochs=cfg.kd_epochs, lr=cfg.kd_lr, wd=cfg.kd_wd, min_lr=cfg.min_lr, opt=opt)
        t0 = time.time()
        try:
            if session.phase is not Phase.DONE:
                if cfg.do_kd:
                    knowledge_distillation(qmodel, teacher, train, test, loop, temperature=cfg.kd_t,
                                           alpha=cfg.kd_alpha, **common)
                else:
                    train_plain(qmodel, train, test, loop, **common)
            session.save(Phase.DONE, force=True)
        except Interrupted as exc:
            raise interrupted(session, exc) from None
        if session.last_acc is not None:
            result["quant_accuracy"] = round(session.last_acc, 2)
        result.update(qat_seconds=round(time.time() - t0, 1), qat_epochs=cfg.kd_epochs)

    if opts.save and dist.main:
        from models import atomic_torch_save
        atomic_torch_save(qmodel.state(), os.path.expanduser(opts.save))
        log.line(f"saved {opts.save}")
    if opts.dump_params and dist.main:
        if codes is None:
            codes = quant.evaluate_codes(qmodel, _full_test(test), _progress(show))
            result.setdefault("quant_accuracy", round(codes.accuracy, 2))
        int_acc, same, n = quant.dump(qmodel, codes, opts.dump_dir, opts.dump_samples,
                                      _progress(show), log.line)
        result.update(int8_accuracy=round(int_acc, 2), identical_logits=same, test_images=n)
        if same != n:
            log.json(**result)
            raise quant.QuantError(f"the integer model disagrees with the fake-quantised model "
                                   f"on {n - same} test images; this is a bug, please report it")
    log.json(**result)
    return result


def _full_test(test):
    """The whole test set in order (under torchrun each process's loader holds a shard)."""
    return torch.utils.data.DataLoader(images_of(test), batch_size=batch_size_of(test), shuffle=False)


def _progress(show: bool):
    return lambda it, desc: progress(it, show, desc)
