#!/usr/bin/env python
"""Train and evaluate ResMLP with ReLU, B-spline or LERP-PSA activations.

Reproduces the recipe of Singh & Bazargan, "Compressing Neural Networks Using
Learnable 1-D Non-Linear Functions" (ACM TRETS 2025), SPEC section 6:

* plain training (the ReLU teacher):  --student-nl-act base --student-hidden-factor 4 --save T.bin
* knowledge transfer + distillation:  --teacher-load T.bin --do-kt --do-kd
                                      --student-nl-act psa --student-hidden-factor 1 --save S.bin
* evaluation:                         --test-only --teacher-load S.bin --teacher-nl-act psa
                                      --teacher-hidden-factor 1   (or --load S.bin)

The flags of the authors' script keep their meaning and defaults; ``--dataset``
adds Fashion-MNIST and a synthetic set. Each epoch prints one human line
``[epoch] Accuracy: 87.80 ...`` and one JSON line.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

import data
from activations import BSpline, NonFiniteActivationError, bspline_tv2
from models import (CheckpointError, UnknownActivationError, build_resmlp, canonical_act,
                    load_checkpoint, save_checkpoint)

ACT_CHOICES = ("psa", "bspline", "base")


class CLIError(Exception):
    """A usage problem reported as one line."""


class OneLineParser(argparse.ArgumentParser):
    def error(self, message):
        sys.stderr.write(f"{self.prog}: error: {message} (see --help)\n")
        raise SystemExit(2)


def act_type(value: str) -> str:
    try:
        return canonical_act(value)
    except UnknownActivationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="cifar10_main.py", description=__doc__,
                      formatter_class=argparse.RawDescriptionHelpFormatter)
    d = p.add_argument_group("data")
    d.add_argument("--dataset", choices=data.DATASETS, default="cifar10",
                   help="data set (default cifar10)")
    d.add_argument("--dataset-dir", default="~/icml_data",
                   help="folder of the data set (default ~/icml_data; fashion-mnist falls back "
                        "to /usr/share/datasets/fashion-mnist)")
    d.add_argument("--download-dataset", action="store_true", help="download CIFAR-10 if missing")
    d.add_argument("--batch-size", type=int, default=128, help="training batch size (128)")
    d.add_argument("--test-batch-size", type=int, default=128, help="test batch size (128)")
    d.add_argument("--workers", type=int, default=2, help="data loader workers for CIFAR-10 (2)")
    d.add_argument("--synthetic-size", type=int, default=4000,
                   help="training images of --dataset synthetic (4000; test gets a quarter)")
    d.add_argument("--limit-train-batches", type=int, default=0,
                   help="stop each epoch after this many batches (0: all); for smoke tests")

    m = p.add_argument_group("models")
    m.add_argument("--teacher-load", help="teacher checkpoint (needed by --do-kt/--do-kd)")
    m.add_argument("--teacher-nl-act", type=act_type, default="base", metavar="{psa,bspline,base}")
    m.add_argument("--teacher-hidden-factor", type=float, default=4.0)
    m.add_argument("--student-nl-act", type=act_type, default="psa", metavar="{psa,bspline,base}")
    m.add_argument("--student-hidden-factor", type=float, default=1.0)
    m.add_argument("--load", help="student checkpoint to start from (or to evaluate with --test-only)")
    m.add_argument("--grid-size", type=int, default=64, help="LERP-PSA grid points (64)")
    m.add_argument("--psa-expansion", type=int, default=8, help="PSA experts per feature (8)")
    m.add_argument("--impl", default="auto", help="activation kernel implementation (auto)")

    t = p.add_argument_group("training")
    t.add_argument("--do-kt", action="store_true", help="block-wise knowledge transfer")
    t.add_argument("--kt-lr", type=float, default=1e-3)
    t.add_argument("--kt-wd", type=float, default=0.0)
    t.add_argument("--kt-epochs", type=int, default=50, help="KT epochs per block (50)")
    t.add_argument("--kt-save", help="save the student after KT here")
    t.add_argument("--kt-load", help="load a student after KT from here (skips KT)")
    t.add_argument("--do-kd", action="store_true", help="knowledge distillation")
    t.add_argument("--kd-lr", type=float, default=1e-3)
    t.add_argument("--kd-wd", type=float, default=0.0)
    t.add_argument("--kd-epochs", type=int, default=300)
    t.add_argument("--kd-t", type=float, default=1.0, help="distillation temperature (1)")
    t.add_argument("--kd-alpha", type=float, default=0.8, help="weight of the teacher term (0.8)")
    t.add_argument("--epochs", type=int, default=300, help="epochs of plain training (300)")
    t.add_argument("--lr", type=float, default=1e-3, help="plain-training AdamW lr (1e-3)")
    t.add_argument("--wd", type=float, default=0.0, help="plain-training AdamW weight decay (0)")
    t.add_argument("--min-lr", type=float, default=1e-5, help="cosine annealing floor (1e-5)")
    t.add_argument("--bspline-lambda", type=float, default=1e-5, help="TV(2) weight (1e-5)")
    t.add_argument("--bspline-lr", type=float, default=1e-3, help="Adam lr of spline coefficients")

    r = p.add_argument_group("run")
    r.add_argument("--test-only", action="store_true", help="only evaluate (--load or --teacher-load)")
    r.add_argument("--save", help="save the final student here (authors' layout, atomic)")
    r.add_argument("--seed", type=int, default=2023)
    r.add_argument("--nondeter", action="store_true", help="allow non-deterministic algorithms")
    r.add_argument("--no-cuda", action="store_true", help="run on the CPU even if CUDA is present")
    r.add_argument("--disable-tqdm", action="store_true", help="no progress bars")
    r.add_argument("--json-log", help="also append the JSON lines to this file")
    return p


# --- setup ------------------------------------------------------------------------------------

def seed_everything(seed: int, deterministic: bool) -> None:
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False


def make_loaders(args, device):
    train_set, test_set, info = data.get_datasets(args.dataset, args.dataset_dir,
                                                  args.download_dataset,
                                                  synthetic_size=args.synthetic_size)
    workers = args.workers if args.dataset == "cifar10" else 0
    g = torch.Generator().manual_seed(args.seed)

    def init_worker(wid):
        s = (args.seed + wid) % 2 ** 32
        np.random.seed(s)
        random.seed(s)

    common = dict(num_workers=workers, pin_memory=device.type == "cuda",
                  worker_init_fn=init_worker if workers else None)
    train = DataLoader(train_set, batch_size=args.batch_size, shuffle=True, drop_last=True,
                       generator=g, **common)
    test = DataLoader(test_set, batch_size=args.test_batch_size, shuffle=False, **common)
    return train, test, info


def make_model(act, hidden_factor, info, args):
    return build_resmlp(act, hidden_factor, in_channels=info["in_channels"],
                        num_classes=info["num_classes"], grid_size=args.grid_size,
                        expansion=args.psa_expansion, impl=args.impl)


class Logger:
    def __init__(self, path=None):
        self.path = path

    def line(self, text):
        print(text, flush=True)

    def json(self, **record):
        text = json.dumps(record, sort_keys=True)
        print(text, flush=True)
        if self.path:
            with open(self.path, "a") as f:
                f.write(text + "\n")


def progress(iterable, args, desc):
    if args.disable_tqdm:
        return iterable
    from tqdm import tqdm
    return tqdm(iterable, desc=desc, leave=False, dynamic_ncols=True, file=sys.stderr)


# --- evaluation -------------------------------------------------------------------------------

@torch.no_grad()
def evaluate(model, loader, device, args, desc="test"):
    model.eval()
    correct = total = 0
    for x, y in progress(loader, args, desc):
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        correct += (model(x).argmax(1) == y).sum().item()
        total += y.numel()
    return 100.0 * correct / max(total, 1)


# --- optimisers -------------------------------------------------------------------------------

def split_params(params_and_modules):
    """(spline coefficients, everything else) among trainable parameters."""
    spline, other = [], []
    for module in params_and_modules:
        for mod in module.modules():
            if isinstance(mod, BSpline):
                spline.extend(p for p in mod.parameters(recurse=False) if p.requires_grad)
        ids = {id(p) for p in spline}
        other.extend(p for p in module.parameters() if p.requires_grad and id(p) not in ids)
    return spline, other


class Optimisers:
    """AdamW for the network, Adam (no weight decay) for spline coefficients,
    each with its own cosine schedule when ``epochs`` is given."""

    def __init__(self, modules, lr, wd, spline_lr, epochs=None, min_lr=1e-5):
        spline, other = split_params(modules)
        self.opts = []
        if other:
            self.opts.append(torch.optim.AdamW(other, lr=lr, weight_decay=wd))
        if spline:
            self.opts.append(torch.optim.Adam(spline, lr=spline_lr, weight_decay=0.0))
        self.scheds = [torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=epochs, eta_min=min_lr)
                       for o in self.opts] if epochs else []

    def zero_grad(self):
        for o in self.opts:
            o.zero_grad(set_to_none=True)

    def step(self):
        for o in self.opts:
            o.step()

    def epoch_end(self):
        for s in self.scheds:
            s.step()

    @property
    def lr(self):
        return self.opts[0].param_groups[0]["lr"] if self.opts else 0.0


# --- training loops ---------------------------------------------------------------------------

def _nonfinite(where, epoch, batch, detail):
    raise CLIError(f"non-finite values in training at {where} epoch {epoch}, batch {batch}: "
                   f"{detail}; lower the learning rate or check the data")


def run_epoch(model, loader, device, args, opt, loss_fn, where, epoch, desc):
    """One training epoch; ``loss_fn(x, y) -> loss``. Returns the mean loss."""
    total, count = 0.0, 0
    for batch, (x, y) in enumerate(progress(loader, args, desc)):
        if args.limit_train_batches and batch >= args.limit_train_batches:
            break
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        try:
            loss = loss_fn(x, y)
        except NonFiniteActivationError as exc:
            _nonfinite(where, epoch, batch, str(exc))
        if args.bspline_lambda and model.act == "bspline":
            loss = loss + args.bspline_lambda * bspline_tv2(model)
        if not torch.isfinite(loss):
            _nonfinite(where, epoch, batch, f"loss is {loss.item()}")
        opt.zero_grad()
        loss.backward()
        opt.step()
        total += loss.item()
        count += 1
    return total / max(count, 1)


def report(log, phase, epoch, loss, acc, opt, t0, **extra):
    log.line(f"[{epoch}] Accuracy: {acc:.2f} (phase {phase}, loss {loss:.4f}, "
             f"lr {opt.lr:.2e}, {time.time() - t0:.1f} s)")
    log.json(event="epoch", phase=phase, epoch=epoch, loss=round(loss, 6),
             accuracy=round(acc, 2), lr=opt.lr, seconds=round(time.time() - t0, 2), **extra)


def train_plain(model, train, test, device, args, log):
    opt = Optimisers([model], args.lr, args.wd, args.bspline_lr, args.epochs, args.min_lr)
    acc = None
    for epoch in range(1, args.epochs + 1):
        t0 = time.time()
        model.train()
        loss = run_epoch(model, train, device, args, opt,
                         lambda x, y: F.cross_entropy(model(x), y), "training", epoch,
                         f"train {epoch}/{args.epochs}")
        opt.epoch_end()
        acc = evaluate(model, test, device, args)
        report(log, "train", epoch, loss, acc, opt, t0)
    return acc


def knowledge_transfer(student, teacher, train, device, args, log):
    """Block by block: copy the teacher's embedding, then for block b freeze the
    embedding and blocks < b and fit block b's output tokens to the teacher's (MSE)."""
    student.embed_linear.load_state_dict(teacher.embed_linear.state_dict())
    teacher.eval()
    depth = len(student.layers)
    for b in range(depth):
        for p in student.parameters():
            p.requires_grad_(False)
        for p in student.layers[b].parameters():
            p.requires_grad_(True)
        opt = Optimisers([student.layers[b]], args.kt_lr, args.kt_wd, args.bspline_lr)

        def loss_fn(x, _y, b=b):
            with torch.no_grad():
                target = teacher.layers[: b + 1](teacher.embed_linear(teacher.patchify(x)))
                # Frozen part of the student runs in eval mode: its BN statistics stay fixed.
                inp = student.layers[:b](student.embed_linear(student.patchify(x)))
            return F.mse_loss(student.layers[b](inp), target)

        for epoch in range(1, args.kt_epochs + 1):
            t0 = time.time()
            student.eval()
            student.layers[b].train()
            loss = run_epoch(student, train, device, args, opt, loss_fn, f"KT block {b}", epoch,
                             f"KT block {b + 1}/{depth} epoch {epoch}/{args.kt_epochs}")
            log.line(f"[KT block {b} epoch {epoch}] MSE: {loss:.6f} ({time.time() - t0:.1f} s)")
            log.json(event="kt_epoch", block=b, epoch=epoch, loss=round(loss, 8),
                     seconds=round(time.time() - t0, 2))
    for p in student.parameters():
        p.requires_grad_(True)


def knowledge_distillation(student, teacher, train, test, device, args, log):
    T, alpha = args.kd_t, args.kd_alpha
    opt = Optimisers([student], args.kd_lr, args.kd_wd, args.bspline_lr, args.kd_epochs, args.min_lr)
    teacher.eval()

    def loss_fn(x, y):
        with torch.no_grad():
            soft = F.softmax(teacher(x) / T, dim=1)
        logits = student(x)
        kd = -(soft * F.log_softmax(logits / T, dim=1)).sum(1).mean()
        return alpha * T * T * kd + (1.0 - alpha) * F.cross_entropy(logits, y)

    acc = None
    for epoch in range(1, args.kd_epochs + 1):
        t0 = time.time()
        student.train()
        loss = run_epoch(student, train, device, args, opt, loss_fn, "KD", epoch,
                         f"KD {epoch}/{args.kd_epochs}")
        opt.epoch_end()
        acc = evaluate(student, test, device, args)
        report(log, "kd", epoch, loss, acc, opt, t0)
    return acc


# --- main ---------------------------------------------------------------------------------------

def check_args(args):
    if (args.do_kt or args.do_kd) and not args.teacher_load:
        raise CLIError("--do-kt/--do-kd need a teacher: pass --teacher-load PATH "
                       "(train one with scripts/run_resmlp_teacher.sh)")
    if args.test_only and not (args.load or args.teacher_load):
        raise CLIError("--test-only needs a model: pass --load PATH (student flags) or "
                       "--teacher-load PATH (teacher flags)")
    for name in ("teacher_load", "kt_load", "load"):
        path = getattr(args, name)
        if path and not os.path.isfile(os.path.expanduser(path)):
            raise CLIError(f"--{name.replace('_', '-')} file not found: "
                           f"{os.path.abspath(os.path.expanduser(path))}")
    for name in ("batch_size", "test_batch_size"):
        if getattr(args, name) < 1:
            raise CLIError(f"--{name.replace('_', '-')} must be positive")


def run(args):
    check_args(args)
    device = torch.device("cuda" if torch.cuda.is_available() and not args.no_cuda else "cpu")
    seed_everything(args.seed, not args.nondeter)
    log = Logger(args.json_log)
    train, test, info = make_loaders(args, device)
    log.json(event="start", dataset=info["name"], device=str(device),
             student=args.student_nl_act, student_hidden_factor=args.student_hidden_factor,
             seed=args.seed, deterministic=not args.nondeter)

    if args.test_only:
        if args.load:
            act, h, path = args.student_nl_act, args.student_hidden_factor, args.load
        else:
            act, h, path = args.teacher_nl_act, args.teacher_hidden_factor, args.teacher_load
        model = load_checkpoint(make_model(act, h, info, args), path).to(device)
        acc = evaluate(model, test, device, args)
        log.line(f"[test] Accuracy: {acc:.2f} ({path})")
        log.json(event="test", accuracy=round(acc, 2), checkpoint=os.path.abspath(path),
                 act=act, hidden_factor=h)
        return acc

    teacher = None
    if args.teacher_load:
        teacher = load_checkpoint(make_model(args.teacher_nl_act, args.teacher_hidden_factor,
                                             info, args), args.teacher_load).to(device)
        for p in teacher.parameters():
            p.requires_grad_(False)
        teacher.eval()
    student = make_model(args.student_nl_act, args.student_hidden_factor, info, args)
    if args.load:
        load_checkpoint(student, args.load)
    student.to(device)

    acc = None
    if args.kt_load:
        load_checkpoint(student, args.kt_load)
        log.line(f"loaded the student after KT from {args.kt_load}")
    elif args.do_kt:
        knowledge_transfer(student, teacher, train, device, args, log)
        if args.kt_save:
            save_checkpoint(student, args.kt_save)
            log.line(f"saved the student after KT to {args.kt_save}")
    if args.do_kd:
        acc = knowledge_distillation(student, teacher, train, test, device, args, log)
    elif not args.do_kt and not args.kt_load:
        acc = train_plain(student, train, test, device, args, log)
    if acc is None:
        acc = evaluate(student, test, device, args)
        log.line(f"[final] Accuracy: {acc:.2f}")
    if args.save:
        save_checkpoint(student, args.save)
        log.line(f"saved {args.save}")
    log.json(event="done", accuracy=round(acc, 2), save=args.save)
    return acc


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        run(args)
    except (CLIError, CheckpointError, data.DatasetError, UnknownActivationError) as exc:
        sys.stderr.write(f"cifar10_main.py: error: {exc}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("cifar10_main.py: interrupted\n")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
