"""One run of ``cifar10_main.py``: evaluate, or train (plain, KT, KD) with resume.

:func:`run` takes the two dataclasses of :mod:`training.config`; the command line only
parses flags into them.
"""
from __future__ import annotations

import dataclasses
import os
import time
from typing import Optional, Tuple

import torch

import kernels
import models
from data import own as own_data
from errors import UserError, require_files

from . import distributed
from .config import RunConfig, RunOptions, resmlp_shape
from .evaluate import evaluate
from .ablations import KT_LOOPS
from .loops import Loop, freeze_for_kt, knowledge_distillation, train_plain
from .session import Interrupted, Phase, Session
from .setup import Logger, build_model, make_loaders, seed_everything


class CLIError(UserError):
    """A usage problem reported as one line."""


def check_options(cfg: RunConfig, opts: RunOptions) -> None:
    if (cfg.do_kt or cfg.do_kd or cfg.teacher_resnet and not opts.test_only) and not opts.teacher_load:
        raise CLIError("--do-kt/--do-kd need a teacher: pass --teacher-load PATH "
                       "(train one with scripts/run_resmlp_teacher.sh)")
    if cfg.do_kt and (cfg.teacher_resnet or cfg.student_resnet):
        raise CLIError("--do-kt copies a ResMLP teacher's blocks into a ResMLP student; it does not "
                       "apply to ResNet-20 (drop --do-kt, distil with --do-kd only)")
    if opts.test_only and not (opts.load or opts.teacher_load):
        raise CLIError("--test-only needs a model: pass --load PATH or --teacher-load PATH")
    if opts.resume and not opts.checkpoint_dir:
        raise CLIError("--resume needs --checkpoint-dir DIR (the folder of the interrupted run)")
    require_files(opts, ("teacher_load", "kt_load", "load"), CLIError)
    for name, value in (("batch_size", cfg.batch_size), ("test_batch_size", opts.test_batch_size)):
        if value < 1:
            raise CLIError(f"--{name.replace('_', '-')} must be positive")
    if cfg.grid_size < 2:
        raise CLIError(f"--grid-size {cfg.grid_size}: a LERP-PSA grid needs at least 2 points")
    if cfg.spline_size < 3 or cfg.spline_size % 2 == 0:
        raise CLIError(f"--spline-size {cfg.spline_size}: a B-spline needs an odd number of "
                       "coefficients, at least 3 (the paper's: 65)")
    if cfg.plain_epochs < 0 or (cfg.plain and cfg.plain_epochs < 1 and not opts.test_only
                                and not opts.kt_load and not cfg.do_kt):
        raise CLIError("plain training needs at least one epoch: pass --epochs N or --kd-epochs N "
                       "(--epochs 0 is allowed after --do-kt: KT alone)")


def load_model(path: str, role: str, cfg: RunConfig, opts: RunOptions, info
               ) -> Tuple[torch.nn.Module, dict]:
    """Build the model a checkpoint holds and load it. ``role`` is 'student' or 'teacher':
    flags of that role given on the command line are checked against the file (one-line
    errors naming the flag); the rest (architecture, activation, hidden factor, grid,
    expansion) comes from the file. The data set fixes channels, classes and ResMLP shape."""
    explicit = opts.explicit

    def given(flag, value):
        return value if flag in explicit else None

    shape = resmlp_shape(cfg.dataset)
    own_data.check_checkpoint_file(path, info)
    model = models.build_from_checkpoint(
        path, act=given(f"{role}_nl_act", getattr(cfg, f"{role}_nl_act")),
        hidden_factor=given(f"{role}_hidden_factor", getattr(cfg, f"{role}_hidden_factor")),
        resnet=True if getattr(cfg, f"{role}_resnet") else None,
        in_channels=info["in_channels"], num_classes=info["num_classes"],
        embed_dim=shape["embed_dim"], depth=shape["depth"],
        expansion=given("psa_expansion", cfg.psa_expansion),
        grid_size=given("grid_size", cfg.grid_size), grid_range=given("grid_range", cfg.grid_range),
        spline_size=given("spline_size", cfg.spline_size),
        spline_range=given("spline_range", cfg.spline_range), role=role, impl=opts.impl,
        img_size=info.get("img_size", 32))
    if isinstance(model, models.ResNet20):
        return model, dict(resnet=True)
    return model, dict(resnet=False, act=model.act, hidden_factor=model.hidden_factor)


def _student(cfg: RunConfig, opts: RunOptions, info):
    if opts.load:
        model, found = load_model(opts.load, "student", cfg, opts, info)
        return model, found
    model = build_model(resnet=cfg.student_resnet, act=cfg.student_nl_act,
                        hidden_factor=cfg.student_hidden_factor, info=info, dataset=cfg.dataset,
                        grid_size=cfg.grid_size, expansion=cfg.psa_expansion,
                        grid_range=cfg.grid_range, spline_size=cfg.spline_size,
                        spline_range=cfg.spline_range, impl=opts.impl)
    return model, dict(resnet=cfg.student_resnet, act=cfg.student_nl_act,
                       hidden_factor=cfg.student_hidden_factor)


def settle(cfg: RunConfig, role: str, found: dict) -> RunConfig:
    """``cfg`` with the role's model settings as the checkpoint defined them."""
    kw = {f"{role}_resnet": found["resnet"]}
    if not found["resnet"]:
        kw.update({f"{role}_nl_act": found["act"], f"{role}_hidden_factor": found["hidden_factor"]})
    return dataclasses.replace(cfg, **kw)


def _compile(module, enabled: bool):
    return torch.compile(module) if enabled else module


def run(cfg: RunConfig, opts: RunOptions) -> Optional[float]:
    """Evaluate (``opts.test_only``) or train; returns the final test accuracy."""
    check_options(cfg, opts)
    return launch(_run, cfg, opts, torch.cuda.is_available() and not opts.no_cuda)


def launch(body, cfg, opts, use_cuda: bool):
    """``body(cfg, opts, dist, device)`` in the process group of a torchrun start (or alone)."""
    dist = distributed.init(use_cuda)
    try:
        return body(cfg, opts, dist, distributed.device_for(dist, use_cuda))
    finally:
        dist.close()


def begin(cfg: RunConfig, opts: RunOptions, dist, device, student: str):
    """Seed, logger, loaders and the start record of a run: (log, train, test, info, show)."""
    seed_everything(cfg.seed, not cfg.nondeter)
    log = Logger(opts.json_log, enabled=dist.main)
    train, test, info = make_loaders(cfg.dataset, dataset_dir=opts.dataset_dir,
                                     download=opts.download_dataset, batch_size=cfg.batch_size,
                                     test_batch_size=opts.test_batch_size, seed=cfg.seed,
                                     device=device, workers=opts.workers,
                                     synthetic_size=cfg.synthetic_size, rank=dist.rank,
                                     world_size=dist.world_size)
    # Precision, compilation, threads and versions go into every log: timings and results
    # of runs are compared across machines and precisions (docs/TRAINING.md).
    start = dict(event="start", dataset=info["name"], device=str(device), student=student,
                 student_hidden_factor=cfg.student_hidden_factor, seed=cfg.seed,
                 deterministic=not cfg.nondeter, amp=cfg.amp or "fp32", compile=opts.compile,
                 threads=torch.get_num_threads(), torch=torch.__version__,
                 resume=opts.resume)
    if dist.enabled:
        start.update(world_size=dist.world_size, backend=dist.backend)
        log.line(f"distributed: {dist.world_size} processes ({dist.backend}), "
                 f"batch {cfg.batch_size} per process, {cfg.batch_size * dist.world_size} per step")
    log.json(**start)
    return log, train, test, info, not opts.disable_tqdm and dist.main


def load_teacher(cfg: RunConfig, opts: RunOptions, info, device):
    """(the frozen teacher of ``--teacher-load`` in eval mode, ``cfg`` settled to it, what
    the file holds)."""
    teacher, found = load_model(opts.teacher_load, "teacher", cfg, opts, info)
    cfg = settle(cfg, "teacher", found)
    teacher.to(device)
    for p in teacher.parameters():
        p.requires_grad_(False)
    teacher.eval()
    return teacher, cfg, found


def interrupted(session: Session, exc: Interrupted) -> CLIError:
    """The one line of a run stopped by a signal: where its last state is, how to go on."""
    where = (f"the last complete state ({session.saved_label or 'none yet'}) is in "
             f"{session.ckpt.path}; continue with the same command plus --resume"
             if session.ckpt else "no --checkpoint-dir was given, so nothing was kept")
    return CLIError(f"interrupted by {exc}; {where}")


def _run(cfg: RunConfig, opts: RunOptions, dist, device) -> Optional[float]:
    started = time.monotonic()   # wall time of this process's run, logged with "done"
    if opts.impl != "auto":
        # A backend named with --impl that cannot run here: one line now, not mid-epoch.
        kernels.resolve("lerp", opts.impl, device.type)
    log, train, test, info, show = begin(
        cfg, opts, dist, device, "resnet20" if cfg.student_resnet else cfg.student_nl_act)

    if opts.test_only:
        path = opts.load or opts.teacher_load
        model, found = load_model(path, "student" if opts.load else "teacher", cfg, opts, info)
        model.to(device)
        acc = evaluate(model, test, device, show_progress=show, distributed=dist.enabled)
        log.line(f"[test] Accuracy: {acc:.2f} ({path})")
        log.json(event="test", accuracy=round(acc, 2), checkpoint=os.path.abspath(path),
                 act="resnet20" if found["resnet"] else found["act"],
                 hidden_factor=None if found["resnet"] else found["hidden_factor"])
        return acc

    teacher = None
    if opts.teacher_load:
        teacher, cfg, found = load_teacher(cfg, opts, info, device)
        if cfg.do_kt and found["resnet"]:
            raise CLIError(f"--do-kt copies a ResMLP teacher's blocks, but {opts.teacher_load} "
                           "holds a ResNet-20; drop --do-kt (distil with --do-kd only)")
    student, found = _student(cfg, opts, info)
    cfg = settle(cfg, "student", found)
    student.to(device)

    session = Session(student, train.generator, log, folder=opts.checkpoint_dir,
                      config=cfg.for_resume_check(), every=opts.checkpoint_every, enabled=dist.main)
    if opts.resume:
        saved = session.load()
        if (cfg.do_kt and session.phase is Phase.KT and "kt_mode" not in saved["args"]
                and cfg.kt_mode != "isolated"):
            raise CLIError("--resume: this state was written mid-KT before --kt-mode existed, by "
                           "the isolated KT; add --kt-mode isolated to continue it")
    phase = session.phase

    def wrap(module):
        return _compile(dist.wrap(module, device), opts.compile)

    loop = Loop(device=device, log=log, session=session, show_progress=show,
                limit_batches=cfg.limit_train_batches, amp=cfg.amp, distributed=dist.enabled,
                wrap=wrap)
    t_model = _compile(teacher, opts.compile) if teacher is not None else None
    common = dict(spline_lr=cfg.bspline_lr, bspline_lambda=cfg.bspline_lambda)
    try:
        if phase in (None, Phase.KT):
            if opts.kt_load and phase is None:
                models.load_checkpoint(student, opts.kt_load)
                log.line(f"loaded the student after KT from {opts.kt_load}")
            elif cfg.do_kt:
                KT_LOOPS[cfg.kt_mode](student, teacher, train, loop, epochs=cfg.kt_epochs,
                                      lr=cfg.kt_lr, wd=cfg.kt_wd, **common)
                if opts.kt_save and dist.main:
                    models.save_checkpoint(student, opts.kt_save, own_data.checkpoint_entries(info))
                    log.line(f"saved the student after KT to {opts.kt_save}")
                session.save(Phase.KT_DONE, force=True)
        if cfg.do_kd:
            if phase is not Phase.DONE:
                knowledge_distillation(student, t_model, train, test, loop, epochs=cfg.kd_epochs,
                                       lr=cfg.kd_lr, wd=cfg.kd_wd, temperature=cfg.kd_t,
                                       alpha=cfg.kd_alpha, min_lr=cfg.min_lr, **common)
        elif (cfg.do_kt or not opts.kt_load) and phase is not Phase.DONE and cfg.plain_epochs:
            if cfg.do_kt:
                # As the authors' script: without --do-kd nothing unfreezes after KT.
                freeze_for_kt(student, len(student.layers) - 1)
                log.line("--do-kt without --do-kd: plain training follows with the embedding and "
                         f"blocks 0..{len(student.layers) - 2} frozen (as the authors' script; "
                         "add --do-kd to train everything)")
            train_plain(student, train, test, loop, epochs=cfg.plain_epochs, lr=cfg.plain_lr,
                        wd=cfg.plain_wd, min_lr=cfg.min_lr, **common)
        session.save(Phase.DONE, force=True)
    except Interrupted as exc:
        raise interrupted(session, exc) from None

    acc = session.last_acc
    if acc is None:
        acc = evaluate(student, test, device, show_progress=show, distributed=dist.enabled)
        log.line(f"[final] Accuracy: {acc:.2f}")
    if opts.save and dist.main:
        models.save_checkpoint(student, opts.save, own_data.checkpoint_entries(info))
        log.line(f"saved {opts.save}")
    log.json(event="done", accuracy=round(acc, 2), save=opts.save,
             seconds=round(time.monotonic() - started, 1))
    return acc
