"""The three training loops: plain, block-wise knowledge transfer (KT), knowledge
distillation (KD) with :func:`distillation_loss` (docs/METHOD.md section 6).

Each loop takes its hyperparameters as arguments and a :class:`Loop` holding what every
loop shares (device, logging, the resumable session, progress bars, AMP, multi-process
wrapping). Loops resume from ``loop.session`` when it was loaded from a saved state.
"""
from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import nn

from models.registry import regularisation, regularised

from .evaluate import evaluate, progress
from .nonfinite import any_process, raise_nonfinite, stop_every_process
from .optim import Optimisers
from .session import Phase, Session, check_stop

AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
# Under fp16 loss scaling, non-finite losses in a row that are skipped before the run stops:
# each halves the scale (GradScaler), so 25 take it from 65536 below 1e-3.
MAX_SKIPPED_STEPS = 25


@dataclass
class Loop:
    """What every loop shares."""
    device: torch.device
    log: object                          # training.logging.Logger
    session: Session
    show_progress: bool = False
    limit_batches: int = 0               # stop each epoch after this many batches (0: all)
    amp: Optional[str] = None            # None, "bf16" or "fp16": autocast of the forward pass
    distributed: bool = False            # evaluation sums counts over processes
    wrap: Callable[[nn.Module], nn.Module] = field(default=lambda m: m)  # e.g. DistributedDataParallel
    scaler: object = None                # GradScaler for fp16

    def __post_init__(self):
        if self.amp == "fp16" and self.scaler is None:
            self.scaler = torch.amp.GradScaler(self.device.type)

    def autocast(self):
        if self.amp is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=AMP_DTYPES[self.amp])


def _upcast(t):
    """Half-precision tensors (from autocast) to float32; others unchanged."""
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


def distillation_loss(student_logits, teacher_logits, labels, *, temperature: float = 1.0,
                      alpha: float = 0.8):
    """``alpha * T^2 * CE(softmax(teacher / T), log_softmax(student / T)) + (1 - alpha) * CE(student, labels)``."""
    T = temperature
    student_logits, teacher_logits = _upcast(student_logits), _upcast(teacher_logits)
    soft = F.softmax(teacher_logits / T, dim=1)
    kd = -(soft * F.log_softmax(student_logits / T, dim=1)).sum(1).mean()
    return alpha * T * T * kd + (1.0 - alpha) * F.cross_entropy(student_logits, labels)


def _set_epoch(loader, epoch: int) -> None:
    sampler = getattr(loader, "sampler", None)
    if hasattr(sampler, "set_epoch"):      # DistributedSampler: a new shuffle per epoch
        sampler.set_epoch(epoch)


def run_epoch(model: nn.Module, loader, opt: Optimisers, loss_fn, loop: Loop, *, where: str,
              epoch: int, desc: str, bspline_lambda: float = 0.0) -> float:
    """One training epoch; ``loss_fn(x, y) -> loss``; ``model`` is the (unwrapped) model
    whose activation regularisers (TV(2) of B-splines; ``models.registry``) enter the loss
    with weight ``bspline_lambda``. Returns the mean loss.

    The loss is read once per step (for the mean); a NaN or inf there stops training with
    the first layer that received a non-finite input (:mod:`training.nonfinite`). Under
    fp16 loss scaling (``loop.scaler``) a non-finite loss is what an overflow looks like: the
    step is skipped (the scaler sees the non-finite gradients, skips the update and lowers the
    scale), said in a line and a JSON record, and left out of the mean; only
    ``MAX_SKIPPED_STEPS`` skipped steps in a row stop the run as above. In a multi-process run
    the processes agree after every step whether any of them saw one, so that all of them
    skip or stop together, with the same one line, instead of the others waiting in the
    gradient all-reduce."""
    total, count, skipped = 0.0, 0, 0
    terms = regularised(model) if bspline_lambda else []
    for batch, (x, y) in enumerate(progress(loader, loop.show_progress, desc)):
        check_stop()
        if loop.limit_batches and batch >= loop.limit_batches:
            break
        x, y = x.to(loop.device, non_blocking=True), y.to(loop.device, non_blocking=True)

        def rerun(x=x, y=y):
            return loss_fn(x, y)

        try:
            with loop.autocast():
                loss = loss_fn(x, y)
        except Exception as exc:
            if loop.distributed:
                any_process(True, loop.device)
                stop_every_process(where, epoch, batch, math.nan, model, rerun, failure=exc)
            # A kernel may fail on a NaN index before any loss exists: name the layer if
            # that is what happened, else it is a bug and keeps its traceback.
            raise_nonfinite(where, epoch, batch, math.nan, model, rerun, only_if_found=True)
            raise
        if terms:
            loss = loss + bspline_lambda * regularisation(terms)
        value = loss.item()
        bad = not math.isfinite(value)
        if loop.distributed:
            bad = any_process(bad, loop.device)
        skipped = skipped + 1 if bad else 0
        if bad and (loop.scaler is None or skipped > MAX_SKIPPED_STEPS):
            if loop.distributed:
                stop_every_process(where, epoch, batch, value, model, rerun)
            raise_nonfinite(where, epoch, batch, value, model, rerun)
        opt.zero_grad()
        if loop.scaler is not None:
            loop.scaler.scale(loss).backward()
            opt.step(loop.scaler)
            loop.scaler.update()
        else:
            loss.backward()
            opt.step()
        if bad:
            scale = float(loop.scaler.get_scale())
            loop.log.line(f"[{where} epoch {epoch} batch {batch}] non-finite loss under fp16 loss "
                          f"scaling: step skipped, loss scale now {scale:g} ({skipped} in a row; "
                          f"{MAX_SKIPPED_STEPS + 1} stop the run)")
            loop.log.json(event="skipped_step", where=where, epoch=epoch, batch=batch,
                          loss=str(value), scale=scale, in_a_row=skipped)
            continue
        total += value
        count += 1
    check_stop()
    return total / max(count, 1)


def _report(loop: Loop, phase: Phase, epoch: int, loss: float, acc: float, opt: Optimisers, t0: float):
    loop.log.line(f"[{epoch}] Accuracy: {acc:.2f} (phase {phase.value}, loss {loss:.4f}, "
                  f"lr {opt.lr:.2e}, {time.time() - t0:.1f} s)")
    loop.log.json(event="epoch", phase=phase.value, epoch=epoch, loss=round(loss, 6),
                  accuracy=round(acc, 2), lr=opt.lr, seconds=round(time.time() - t0, 2))


def _resume(opt: Optimisers, session: Session, phase: Phase) -> int:
    """The last finished epoch of ``phase`` in the resumed state (0 for a fresh start)."""
    pos = session.position(phase)
    saved = session.saved_optimisers(phase)
    if saved:
        opt.load_state_dict(saved)
    return pos[1] if pos else 0


def _epochs_with_eval(phase: Phase, model, forward_model, train, test, opt, loss_fn, loop: Loop,
                      epochs: int, bspline_lambda: float, where: str, label: str):
    session = loop.session
    for epoch in range(_resume(opt, session, phase) + 1, epochs + 1):
        t0 = time.time()
        _set_epoch(train, epoch)
        forward_model.train()
        loss = run_epoch(model, train, opt, loss_fn, loop, where=where, epoch=epoch,
                         desc=f"{label} {epoch}/{epochs}", bspline_lambda=bspline_lambda)
        opt.epoch_end()
        acc = evaluate(model, test, loop.device, show_progress=loop.show_progress,
                       distributed=loop.distributed)
        check_stop()
        session.record(acc)
        _report(loop, phase, epoch, loss, acc, opt, t0)
        session.save(phase, epoch, opt=opt, force=epoch == epochs)
    return session.last_acc


def train_plain(model: nn.Module, train, test, loop: Loop, *, epochs: int, lr: float, wd: float,
                spline_lr: float = 1e-3, min_lr: float = 1e-5, bspline_lambda: float = 0.0,
                opt: Optional[Optimisers] = None):
    """Cross-entropy training for ``epochs`` epochs (AdamW, cosine to ``min_lr``); the test
    accuracy after every epoch; returns the last one. ``opt``: other optimisers to train
    with (then ``lr``, ``wd``, ``spline_lr``, ``min_lr`` are theirs, not read here)."""
    if opt is None:
        opt = Optimisers([model], lr, wd, spline_lr, epochs, min_lr)
    net = loop.wrap(model)
    return _epochs_with_eval(Phase.TRAIN, model, net, train, test, opt,
                             lambda x, y: F.cross_entropy(net(x), y), loop, epochs,
                             bspline_lambda, "training", "train")


class _UpToBlock(nn.Module):
    """The student's embedding and blocks ``0..b``: what KT trains block ``b`` through.

    A module of its own (sharing the student's submodules) so that a multi-process run wraps
    exactly the part in the forward pass: the frozen prefix keeps updating its BatchNorm
    statistics, which DistributedDataParallel broadcasts from rank 0 like any buffer."""

    def __init__(self, student: nn.Module, b: int):
        super().__init__()
        self.embed_linear = student.embed_linear
        self.layers = student.layers[: b + 1]
        self._patchify = student.patchify

    def forward(self, x):
        return self.layers(self.embed_linear(self._patchify(x)))


def freeze_for_kt(student: nn.Module, b: int) -> None:
    """Freeze (``requires_grad = False``) the embedding and blocks ``< b``; nothing else
    changes (the authors' ``freeze``: blocks only ever get frozen, never unfrozen)."""
    for p in student.embed_linear.parameters():
        p.requires_grad_(False)
    for block in student.layers[:b]:
        for p in block.parameters():
            p.requires_grad_(False)


def unfreeze(student: nn.Module) -> None:
    for p in student.parameters():
        p.requires_grad_(True)


def teacher_tokens(teacher: nn.Module, x, b: int):
    """The teacher's tokens after its block ``b``: the target of KT for the student's block b."""
    with torch.no_grad():
        return teacher.layers[: b + 1](teacher.embed_linear(teacher.patchify(x)))


def kt_start(student: nn.Module, teacher: nn.Module, session: Session):
    """Where KT starts, (block, last finished epoch): (0, 0) on a fresh run, which first copies
    the teacher's embedding into the student; the saved position when resuming."""
    teacher.eval()
    pos = session.position(Phase.KT)
    if pos is None:
        student.embed_linear.load_state_dict(teacher.embed_linear.state_dict())
        pos = (0, 0)
    return pos


def kt_block_epochs(student: nn.Module, b: int, first: int, train, opt: Optimisers, loss_fn,
                    loop: Loop, *, epochs: int, bspline_lambda: float, modes: Callable[[], None]):
    """Epochs ``first..epochs`` of KT for block ``b``: ``modes()`` sets the train/eval modes
    before each epoch; a line, a JSON record and a resumable state after each."""
    depth = len(student.layers)
    for epoch in range(first, epochs + 1):
        t0 = time.time()
        _set_epoch(train, b * epochs + epoch)
        modes()
        loss = run_epoch(student, train, opt, loss_fn, loop, where=f"KT block {b}", epoch=epoch,
                         desc=f"KT block {b + 1}/{depth} epoch {epoch}/{epochs}",
                         bspline_lambda=bspline_lambda)
        loop.log.line(f"[KT block {b} epoch {epoch}] MSE: {loss:.6f} ({time.time() - t0:.1f} s)")
        loop.log.json(event="kt_epoch", block=b, epoch=epoch, loss=round(loss, 8),
                      seconds=round(time.time() - t0, 2))
        loop.session.save(Phase.KT, epoch, kt_block=b, opt=opt, force=epoch == epochs)


def knowledge_transfer(student: nn.Module, teacher: nn.Module, train, loop: Loop, *, epochs: int,
                       lr: float, wd: float = 0.0, spline_lr: float = 1e-3,
                       bspline_lambda: float = 0.0) -> None:
    """Block by block (docs/METHOD.md section 6), the authors' loop step for step: copy the
    teacher's embedding, then for block b fit the student's tokens after block b to the
    teacher's (MSE), ``epochs`` epochs per block at a constant rate ``lr``.

    The whole student runs in train mode (the frozen embedding and blocks < b run on batch
    statistics and keep updating their running statistics), frozen means
    ``requires_grad = False`` only, one AdamW (+ one Adam over every spline coefficient) is
    created before block 0 and carried across the blocks, and with a B-spline student
    ``bspline_lambda * TV2(whole student)`` enters every step, so the splines of blocks > b get
    TV(2)-only Adam steps before their own turn. On return the embedding and blocks
    0..depth-2 are still frozen, as in the authors' script (:func:`knowledge_distillation`
    unfreezes everything itself). Our earlier variant, kept to measure the difference, is
    ``training.ablations.knowledge_transfer_isolated``."""
    session = loop.session
    pos = kt_start(student, teacher, session)
    unfreeze(student)          # the optimiser covers every parameter, as the authors' does
    opt = Optimisers([student], lr, wd, spline_lr)
    saved = session.saved_optimisers(Phase.KT)
    if saved:
        opt.load_state_dict(saved)
    for b in range(pos[0], len(student.layers)):
        freeze_for_kt(student, b)
        net = loop.wrap(_UpToBlock(student, b))

        def loss_fn(x, _y, net=net, b=b):
            return F.mse_loss(_upcast(net(x)), _upcast(teacher_tokens(teacher, x, b)))

        kt_block_epochs(student, b, pos[1] + 1 if b == pos[0] else 1, train, opt, loss_fn, loop,
                        epochs=epochs, bspline_lambda=bspline_lambda, modes=student.train)
    freeze_for_kt(student, len(student.layers) - 1)


def knowledge_distillation(student: nn.Module, teacher: nn.Module, train, test, loop: Loop, *,
                           epochs: int, lr: float, wd: float = 0.0, temperature: float = 1.0,
                           alpha: float = 0.8, spline_lr: float = 1e-3, min_lr: float = 1e-5,
                           bspline_lambda: float = 0.0, opt: Optional[Optimisers] = None):
    """Every parameter of the student unfrozen here (as the authors' KD: whatever KT left
    frozen trains again), :func:`distillation_loss` against the frozen teacher, AdamW with
    cosine annealing to ``min_lr``; the test accuracy after every epoch; returns the last.
    Any student: a float ResMLP, a ResNet-20, or the fake-quantised ``quant.QResMLP`` with
    its own optimisers (``opt``; then ``lr``, ``wd``, ``spline_lr``, ``min_lr`` are theirs)."""
    unfreeze(student)
    if opt is None:
        opt = Optimisers([student], lr, wd, spline_lr, epochs, min_lr)
    teacher.eval()
    net = loop.wrap(student)

    def loss_fn(x, y):
        with torch.no_grad():
            t_logits = teacher(x)
        return distillation_loss(net(x), t_logits, y, temperature=temperature, alpha=alpha)

    return _epochs_with_eval(Phase.KD, student, net, train, test, opt, loss_fn, loop, epochs,
                             bspline_lambda, "KD", "KD")
