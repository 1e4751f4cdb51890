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
import os
import random
import signal
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
from run_state import (ResumeError, RunCheckpoint, check_same_args, describe, restore_rng,
                       result_args, rng_state)

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
    r.add_argument("--checkpoint-dir", help="write a resumable training state here after every epoch")
    r.add_argument("--checkpoint-every", type=int, default=1,
                   help="with --checkpoint-dir: write the state every N epochs (1)")
    r.add_argument("--resume", action="store_true",
                   help="continue the run saved in --checkpoint-dir exactly where it stopped")
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

    def state_dict(self):
        return dict(opts=[o.state_dict() for o in self.opts],
                    scheds=[s.state_dict() for s in self.scheds])

    def load_state_dict(self, state):
        if len(state["opts"]) != len(self.opts) or len(state["scheds"]) != len(self.scheds):
            raise CLIError("the saved optimiser state does not fit this model; use a new --checkpoint-dir")
        for o, st in zip(self.opts, state["opts"]):
            o.load_state_dict(st)
        for s, st in zip(self.scheds, state["scheds"]):
            s.load_state_dict(st)

    @property
    def lr(self):
        return self.opts[0].param_groups[0]["lr"] if self.opts else 0.0


# --- interruption -------------------------------------------------------------------------------

class Interrupted(Exception):
    def __init__(self, signum):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


_STOP = {"signum": None}


def _on_signal(signum, _frame):
    # Only note it: the epoch in progress is abandoned at the next batch
    # boundary and nothing half-done is written.
    _STOP["signum"] = signum


def check_stop():
    if _STOP["signum"] is not None:
        raise Interrupted(_STOP["signum"])


# --- training loops ---------------------------------------------------------------------------

def _nonfinite(where, epoch, batch, detail):
    raise CLIError(f"non-finite values in training at {where} epoch {epoch}, batch {batch}: "
                   f"{detail}; lower the learning rate or check the data")


def run_epoch(model, loader, device, args, opt, loss_fn, where, epoch, desc):
    """One training epoch; ``loss_fn(x, y) -> loss``. Returns the mean loss."""
    total, count = 0.0, 0
    for batch, (x, y) in enumerate(progress(loader, args, desc)):
        check_stop()
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
    check_stop()
    return total / max(count, 1)


def report(log, phase, epoch, loss, acc, opt, t0, **extra):
    log.line(f"[{epoch}] Accuracy: {acc:.2f} (phase {phase}, loss {loss:.4f}, "
             f"lr {opt.lr:.2e}, {time.time() - t0:.1f} s)")
    log.json(event="epoch", phase=phase, epoch=epoch, loss=round(loss, 6),
             accuracy=round(acc, 2), lr=opt.lr, seconds=round(time.time() - t0, 2), **extra)


class Session:
    """Where a run stands, and the resumable state it writes (``--checkpoint-dir``)."""

    def __init__(self, args, student, loader_generator, log):
        self.args, self.student, self.gen, self.log = args, student, loader_generator, log
        self.ckpt = RunCheckpoint(args.checkpoint_dir) if args.checkpoint_dir else None
        self.resumed = None           # the loaded state, if --resume
        self.last_acc = None
        self.best_acc = None
        self.saved_label = None

    def load(self):
        state = self.ckpt.load(log=self.log.line)
        check_same_args(state["args"], self.args)
        self.student.load_state_dict(state["student"])
        restore_rng(state["rng"], self.gen)
        self.last_acc, self.best_acc = state.get("last_acc"), state.get("best_acc")
        self.resumed = state
        self.log.line(f"resuming from {self.ckpt.path} ({describe(state)})")
        self.log.json(event="resume", phase=state["phase"], kt_block=state.get("kt_block"),
                      epoch=state.get("epoch"))
        return state

    def position(self, phase):
        """(block, epoch) to continue from in ``phase``, or None if it is not the saved phase."""
        st = self.resumed
        if st is None or st["phase"] != phase:
            return None
        return st.get("kt_block", 0), st.get("epoch", 0)

    def record(self, acc):
        if acc is not None:
            self.last_acc = acc
            self.best_acc = acc if self.best_acc is None else max(self.best_acc, acc)

    def save(self, phase, epoch=0, kt_block=0, opt=None, force=False):
        if not self.ckpt:
            return
        every = max(1, self.args.checkpoint_every)
        if not force and epoch % every:
            return
        self.ckpt.save(dict(
            phase=phase, epoch=epoch, kt_block=kt_block, student=self.student.state_dict(),
            optimisers=opt.state_dict() if opt is not None else None,
            last_acc=self.last_acc, best_acc=self.best_acc, rng=rng_state(self.gen),
            args=result_args(self.args), argv=sys.argv[1:]))
        self.saved_label = describe(dict(phase=phase, epoch=epoch, kt_block=kt_block))
        self.log.json(event="state_saved", phase=phase, kt_block=kt_block, epoch=epoch,
                      path=self.ckpt.path)


def _resume_opt(opt, session, phase):
    pos = session.position(phase)
    if pos is not None and session.resumed.get("optimisers"):
        opt.load_state_dict(session.resumed["optimisers"])
    return pos


def train_plain(model, train, test, device, args, log, session):
    opt = Optimisers([model], args.lr, args.wd, args.bspline_lr, args.epochs, args.min_lr)
    pos = _resume_opt(opt, session, "train")
    for epoch in range((pos[1] if pos else 0) + 1, args.epochs + 1):
        t0 = time.time()
        model.train()
        loss = run_epoch(model, train, device, args, opt,
                         lambda x, y: F.cross_entropy(model(x), y), "training", epoch,
                         f"train {epoch}/{args.epochs}")
        opt.epoch_end()
        acc = evaluate(model, test, device, args)
        check_stop()
        session.record(acc)
        report(log, "train", epoch, loss, acc, opt, t0)
        session.save("train", epoch, opt=opt, force=epoch == args.epochs)
    return session.last_acc


def knowledge_transfer(student, teacher, train, device, args, log, session):
    """Block by block: copy the teacher's embedding, then for block b freeze the
    embedding and blocks < b and fit block b's output tokens to the teacher's (MSE)."""
    teacher.eval()
    depth = len(student.layers)
    pos = session.position("kt")
    if pos is None:
        student.embed_linear.load_state_dict(teacher.embed_linear.state_dict())
        pos = (0, 0)
    for b in range(pos[0], depth):
        for p in student.parameters():
            p.requires_grad_(False)
        for p in student.layers[b].parameters():
            p.requires_grad_(True)
        opt = Optimisers([student.layers[b]], args.kt_lr, args.kt_wd, args.bspline_lr)
        first = 1
        if b == pos[0] and pos[1]:
            if session.resumed.get("optimisers"):
                opt.load_state_dict(session.resumed["optimisers"])
            first = pos[1] + 1

        def loss_fn(x, _y, b=b):
            with torch.no_grad():
                target = teacher.layers[: b + 1](teacher.embed_linear(teacher.patchify(x)))
                # Frozen part of the student runs in eval mode: its BN statistics stay fixed.
                inp = student.layers[:b](student.embed_linear(student.patchify(x)))
            return F.mse_loss(student.layers[b](inp), target)

        for epoch in range(first, args.kt_epochs + 1):
            t0 = time.time()
            student.eval()
            student.layers[b].train()
            loss = run_epoch(student, train, device, args, opt, loss_fn, f"KT block {b}", epoch,
                             f"KT block {b + 1}/{depth} epoch {epoch}/{args.kt_epochs}")
            log.line(f"[KT block {b} epoch {epoch}] MSE: {loss:.6f} ({time.time() - t0:.1f} s)")
            log.json(event="kt_epoch", block=b, epoch=epoch, loss=round(loss, 8),
                     seconds=round(time.time() - t0, 2))
            session.save("kt", epoch, kt_block=b, opt=opt, force=epoch == args.kt_epochs)
    for p in student.parameters():
        p.requires_grad_(True)


def knowledge_distillation(student, teacher, train, test, device, args, log, session):
    T, alpha = args.kd_t, args.kd_alpha
    opt = Optimisers([student], args.kd_lr, args.kd_wd, args.bspline_lr, args.kd_epochs, args.min_lr)
    pos = _resume_opt(opt, session, "kd")
    teacher.eval()

    def loss_fn(x, y):
        with torch.no_grad():
            soft = F.softmax(teacher(x) / T, dim=1)
        logits = student(x)
        kd = -(soft * F.log_softmax(logits / T, dim=1)).sum(1).mean()
        return alpha * T * T * kd + (1.0 - alpha) * F.cross_entropy(logits, y)

    for epoch in range((pos[1] if pos else 0) + 1, args.kd_epochs + 1):
        t0 = time.time()
        student.train()
        loss = run_epoch(student, train, device, args, opt, loss_fn, "KD", epoch,
                         f"KD {epoch}/{args.kd_epochs}")
        opt.epoch_end()
        acc = evaluate(student, test, device, args)
        check_stop()
        session.record(acc)
        report(log, "kd", epoch, loss, acc, opt, t0)
        session.save("kd", epoch, opt=opt, force=epoch == args.kd_epochs)
    return session.last_acc


# --- main ---------------------------------------------------------------------------------------

def check_args(args):
    if (args.do_kt or args.do_kd) and not args.teacher_load:
        raise CLIError("--do-kt/--do-kd need a teacher: pass --teacher-load PATH "
                       "(train one with scripts/run_resmlp_teacher.sh)")
    if args.test_only and not (args.load or args.teacher_load):
        raise CLIError("--test-only needs a model: pass --load PATH (student flags) or "
                       "--teacher-load PATH (teacher flags)")
    if args.resume and not args.checkpoint_dir:
        raise CLIError("--resume needs --checkpoint-dir DIR (the folder of the interrupted run)")
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
    session = Session(args, student, train.generator, log)
    if args.resume:
        session.load()
    phase = session.resumed["phase"] if session.resumed else None

    try:
        if phase is None or phase in ("kt", "train"):
            if args.kt_load and phase is None:
                load_checkpoint(student, args.kt_load)
                log.line(f"loaded the student after KT from {args.kt_load}")
            elif args.do_kt:
                knowledge_transfer(student, teacher, train, device, args, log, session)
                if args.kt_save:
                    save_checkpoint(student, args.kt_save)
                    log.line(f"saved the student after KT to {args.kt_save}")
                session.save("kt_done", force=True)
        if args.do_kd:
            if phase != "done":
                knowledge_distillation(student, teacher, train, test, device, args, log, session)
        elif not args.do_kt and not args.kt_load and phase != "done":
            train_plain(student, train, test, device, args, log, session)
        session.save("done", force=True)
    except Interrupted as exc:
        where = (f"the last complete state ({session.saved_label or 'none yet'}) is in "
                 f"{session.ckpt.path}; continue with the same command plus --resume"
                 if session.ckpt else "no --checkpoint-dir was given, so nothing was kept")
        raise CLIError(f"interrupted by {exc}; {where}") from None

    acc = session.last_acc
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
    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, _on_signal)
    _STOP["signum"] = None
    try:
        run(args)
    except (CLIError, CheckpointError, data.DatasetError, UnknownActivationError, ResumeError) as exc:
        sys.stderr.write(f"cifar10_main.py: error: {exc}\n")
        signum = _STOP["signum"]
        return 128 + signum if signum else 2
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


if __name__ == "__main__":
    sys.exit(main())
