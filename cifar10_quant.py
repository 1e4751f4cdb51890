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

One line per epoch ``[epoch N] Accuracy: ...`` (the fake-quantised model on the test set) and
a final JSON line with the float, fake-quant and integer accuracies.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import sys
import tempfile
import time

import numpy as np

from errors import UserError, report, require_files

PROG = "cifar10_quant.py"
ACTS = ("psa", "bspline", "base")
BITS = ("input", "weight", "bias", "output")


class QuantCLIError(UserError):
    """A usage problem of cifar10_quant.py (one line)."""


class OneLineParser(argparse.ArgumentParser):
    def error(self, message):
        sys.stderr.write(f"{self.prog}: error: {message} (see --help)\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog=PROG, description=__doc__,
                      formatter_class=argparse.RawDescriptionHelpFormatter)
    d = p.add_argument_group("data")
    import data
    d.add_argument("--dataset", default="cifar10", choices=data.DATASETS,
                   help="data set (default cifar10)")
    d.add_argument("--dataset-dir", default="~/icml_data",
                   help="folder of the data set (default ~/icml_data; fashion-mnist falls back "
                        "to /usr/share/datasets/fashion-mnist)")
    d.add_argument("--download-dataset", action="store_true", help="download CIFAR-10 if missing")
    d.add_argument("--batch-size", type=int, default=128, help="training batch size (128)")
    d.add_argument("--test-batch-size", type=int, default=128, help="test batch size (128)")
    d.add_argument("--synthetic-size", type=int, default=4000,
                   help="training images of --dataset synthetic (4000; test gets a quarter)")
    d.add_argument("--limit-train-batches", type=int, default=0,
                   help="stop each epoch after this many batches (0: all)")

    m = p.add_argument_group("models")
    m.add_argument("--load", help="trained float student to quantise (authors' or native layout)")
    m.add_argument("--quant-load", help="a QAT state written by --save (continue or dump it)")
    m.add_argument("--student-nl-act", default="psa", choices=ACTS,
                   help="activation of the student (psa or base; bspline has no integer model)")
    m.add_argument("--student-hidden-factor", type=float, default=1.0)
    m.add_argument("--teacher-load", help="float teacher for --do-kd")
    m.add_argument("--teacher-nl-act", default="base", choices=ACTS)
    m.add_argument("--teacher-hidden-factor", type=float, default=4.0)

    q = p.add_argument_group("quantisation")
    q.add_argument("--quantize", action="store_true",
                   help="quantise --load (fold, insert fake quantisers, calibrate); implied by "
                        "--qat with --load")
    q.add_argument("--qat", action="store_true", help="quantisation-aware training (--kd-epochs)")
    for b in BITS:
        q.add_argument(f"--{b}-bits", type=int, default=8,
                       help=f"{b} bits, 2..8 (8; the integer model and the RTL need --output-bits 8)")
    q.add_argument("--calib-batches", type=int, default=8,
                   help="training batches for the initial activation steps (8)")
    q.add_argument("--eval-before", action="store_true",
                   help="with --qat: also evaluate the float student and the calibrated model "
                        "before training (two extra test passes)")
    q.add_argument("--dump-params", action="store_true",
                   help="write the integer model (quant_params.npz, quant_samples.npz, hex files)")
    q.add_argument("--dump-dir", default=None, help="folder for --dump-params")
    q.add_argument("--dump-samples", type=int, default=256,
                   help="test images stored in quant_samples.npz (256, at least 256)")

    t = p.add_argument_group("training")
    t.add_argument("--do-kd", action="store_true", help="distil from --teacher-load (else cross-entropy)")
    t.add_argument("--kd-lr", type=float, default=1e-4, help="AdamW lr (1e-4)")
    t.add_argument("--kd-wd", type=float, default=0.0, help="AdamW weight decay (0)")
    t.add_argument("--kd-epochs", type=int, default=50, help="QAT epochs (50)")
    t.add_argument("--kd-t", type=float, default=1.0, help="distillation temperature (1)")
    t.add_argument("--kd-alpha", type=float, default=0.8, help="weight of the teacher term (0.8)")
    t.add_argument("--min-lr", type=float, default=1e-5, help="cosine annealing floor (1e-5)")
    t.add_argument("--step-lr-mult", type=float, default=10.0,
                   help="learning-rate multiplier of the (log) quantiser steps (10)")

    r = p.add_argument_group("run")
    r.add_argument("--save", help="save the QAT state here (atomic)")
    r.add_argument("--seed", type=int, default=2023)
    r.add_argument("--no-cuda", action="store_true", help="run on the CPU even if CUDA is present")
    r.add_argument("--threads", type=int, default=0,
                   help="CPU threads for torch (0: torch's default)")
    r.add_argument("--disable-tqdm", action="store_true", help="no progress bars")
    r.add_argument("--checkpoint-dir", help="write a resumable QAT state here after every epoch")
    r.add_argument("--resume", action="store_true",
                   help="continue the run saved in --checkpoint-dir after its last epoch")
    return p


# --- checks -----------------------------------------------------------------------------------

def check_args(args) -> None:
    for b in BITS:
        v = getattr(args, f"{b}_bits")
        if not 2 <= v <= 8:
            raise QuantCLIError(f"--{b}-bits {v} is not supported; use 2..8 (the integer model "
                                "holds int8 codes)")
    if args.student_nl_act == "bspline":
        raise QuantCLIError("--student-nl-act bspline has no integer model; use base (ReLU) or psa")
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
    require_files(args, ("load", "quant_load", "teacher_load"), QuantCLIError)
    for name in ("batch_size", "test_batch_size", "kd_epochs", "calib_batches"):
        if getattr(args, name) < 1:
            raise QuantCLIError(f"--{name.replace('_', '-')} must be positive")


# --- helpers ----------------------------------------------------------------------------------

def progress(it, args, desc, total=None):
    if args.disable_tqdm:
        return it
    from tqdm import tqdm
    return tqdm(it, desc=desc, total=total, leave=False, dynamic_ncols=True, file=sys.stderr)


def normalisation(name, test_set, in_channels):
    import data
    mean = getattr(test_set, "mean", None)
    std = getattr(test_set, "std", None)
    if mean is not None and std is not None:
        return [float(v) for v in mean.reshape(-1)], [float(v) for v in std.reshape(-1)]
    if name == "cifar10":
        return list(data.CIFAR10_MEAN), list(data.CIFAR10_STD)
    return [0.0] * in_channels, [1.0] * in_channels


def load_float(act, h, path, info, what):
    from models import build_resmlp, describe_checkpoint, load_checkpoint
    desc = describe_checkpoint(path)
    if desc["act"] != act:
        raise QuantCLIError(f"{path} holds a '{desc['act']}' model but --{what}-nl-act is '{act}'; "
                            f"pass --{what}-nl-act {desc['act']} or pick the right file")
    if desc["hidden"] != int(96 * h) and desc.get("embed_dim", 96) == 96:
        raise QuantCLIError(f"{path} holds hidden factor {desc['hidden_factor']:g} but "
                            f"--{what}-hidden-factor is {h:g}; pass --{what}-hidden-factor "
                            f"{desc['hidden_factor']:g}")
    kw = {}
    if act == "psa":
        kw = dict(grid_size=desc.get("grid_size", 64), expansion=desc.get("expansion", 8))
    model = build_resmlp(act, h, in_channels=info["in_channels"],
                         num_classes=info["num_classes"], **kw)
    return load_checkpoint(model, path)


def accuracy(model, loader, args, desc="test"):
    """Test accuracy (%) of a float model."""
    import torch
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for x, y in progress(loader, args, desc):
            correct += int((model(x).argmax(1) == y).sum())
            total += int(y.numel())
    return 100.0 * correct / max(total, 1)


def evaluate_quant(qmodel, loader, args, desc="fake-quant"):
    """(accuracy %, input codes, logit codes, labels) of the fake-quantised model in eval mode."""
    import torch
    qmodel.eval()
    xs, fq, ys = [], [], []
    with torch.no_grad():
        for x, y in progress(loader, args, desc):
            c = qmodel.input_codes(x)
            xs.append(c.to(torch.int8).numpy())
            fq.append(qmodel.forward_codes(c).to(torch.int8).numpy())
            ys.append(y.numpy())
    x, fq, y = np.concatenate(xs), np.concatenate(fq), np.concatenate(ys).astype(np.int64)
    return 100.0 * float((fq.argmax(1) == y).sum()) / max(len(y), 1), x, fq, y


def atomic_save(obj, path):
    from models import atomic_torch_save
    atomic_torch_save(obj, path)


# --- training ---------------------------------------------------------------------------------

def train(qmodel, teacher, train_loader, test_loader, args, start_epoch=0, opt_state=None):
    import torch
    import torch.nn.functional as F
    steps = {id(p) for p in qmodel.step_parameters()}
    groups = [{"params": [p for p in qmodel.parameters() if id(p) not in steps]},
              {"params": [p for p in qmodel.parameters() if id(p) in steps],
               "lr": args.kd_lr * args.step_lr_mult, "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=args.kd_lr, weight_decay=args.kd_wd)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.kd_epochs, eta_min=args.min_lr)
    if opt_state is not None:
        opt.load_state_dict(opt_state["opt"])
        sched.load_state_dict(opt_state["sched"])
    T, alpha = args.kd_t, args.kd_alpha
    evaluation = None
    nb = len(train_loader)
    if args.limit_train_batches:
        nb = min(nb, args.limit_train_batches)
    for epoch in range(start_epoch + 1, args.kd_epochs + 1):
        t0 = time.time()
        qmodel.train()
        total, count = 0.0, 0
        for i, (x, y) in enumerate(progress(train_loader, args, f"QAT {epoch}/{args.kd_epochs}", nb)):
            if i >= nb:
                break
            logits = qmodel(x)
            if args.do_kd:
                with torch.no_grad():
                    soft = F.softmax(teacher(x) / T, dim=1)
                kd = -(soft * F.log_softmax(logits / T, dim=1)).sum(1).mean()
                loss = alpha * T * T * kd + (1.0 - alpha) * F.cross_entropy(logits, y)
            else:
                loss = F.cross_entropy(logits, y)
            if not torch.isfinite(loss):
                raise QuantCLIError(f"the QAT loss became {float(loss)} at epoch {epoch} batch {i}; "
                                    "lower --kd-lr")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * x.shape[0]
            count += x.shape[0]
        sched.step()
        evaluation = evaluate_quant(qmodel, test_loader, args)
        acc = evaluation[0]
        lr = opt.param_groups[0]["lr"]
        print(f"[epoch {epoch}] Accuracy: {acc:.2f} loss {total / max(count, 1):.4f} "
              f"lr {lr:.2e} ({time.time() - t0:.0f} s)", flush=True)
        print(json.dumps(dict(event="epoch", phase="qat", epoch=epoch, accuracy=round(acc, 2),
                              loss=round(total / max(count, 1), 6), lr=lr,
                              seconds=round(time.time() - t0, 2))), flush=True)
        if args.checkpoint_dir:
            atomic_save({"qat": qmodel.state(), "epoch": epoch, "opt": opt.state_dict(),
                         "sched": sched.state_dict(), "torch_rng": torch.get_rng_state(),
                         "loader_rng": train_loader.generator.get_state(),
                         "args": {k: v for k, v in vars(args).items() if k in RESUME_KEYS}},
                        os.path.join(args.checkpoint_dir, "qat_state.pt"))
    return evaluation


RESUME_KEYS = ("dataset", "load", "student_nl_act", "student_hidden_factor", "input_bits",
               "weight_bits", "bias_bits", "output_bits", "kd_epochs", "kd_lr", "kd_wd",
               "batch_size", "do_kd", "seed")


# --- dump -------------------------------------------------------------------------------------

def dump(qmodel, evaluation, args):
    """Write the integer model and samples; check integer vs fake-quant on the whole test set
    (``evaluation`` from ``evaluate_quant`` of the model as it is now).
    Returns (integer accuracy, images with identical logits, images)."""
    from fpga import int_resmlp as im
    params, meta = qmodel.export_params()
    _, x, fq, y = evaluation
    chunks = [im.forward(params, meta, x[i:i + 500])
              for i in progress(range(0, len(x), 500), args, "integer model")]
    logits = np.concatenate(chunks)
    same = int((logits == fq).all(axis=1).sum())
    int_acc = 100.0 * float((logits.argmax(1) == y).sum()) / len(y)

    out = os.path.expanduser(args.dump_dir)
    parent = os.path.dirname(os.path.abspath(out))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".dump_", dir=parent)
    try:
        im.save_params(os.path.join(tmp, "quant_params.npz"), params, meta)
        n = min(args.dump_samples, len(x))
        im.save_samples(os.path.join(tmp, "quant_samples.npz"), x[:n], y[:n], logits[:n])
        hexnote = "no hex files: fpga.hexdump is not available in this checkout"
        try:
            from fpga.hexdump import write_hex_files
        except ImportError:
            write_hex_files = None
        if write_hex_files is not None:
            paths = write_hex_files(params, meta, os.path.join(tmp, "hex"))
            hexnote = f"{len(paths)} hex files in {os.path.join(out, 'hex')}"
        os.makedirs(out, exist_ok=True)
        for name in os.listdir(tmp):
            dst = os.path.join(out, name)
            if os.path.isdir(dst) and not os.path.islink(dst):
                shutil.rmtree(dst)
            os.replace(os.path.join(tmp, name), dst)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"dumped {os.path.join(out, 'quant_params.npz')} and quant_samples.npz ({n} images); "
          f"{hexnote}", flush=True)
    print(f"fake-quant vs integer model: {same}/{len(x)} test images with identical logits",
          flush=True)
    print(f"[int8] Accuracy: {int_acc:.2f} (integer model, {len(x)} test images)", flush=True)
    return int_acc, same, len(x)


# --- main -------------------------------------------------------------------------------------

def run(args):
    check_args(args)
    import torch
    import data
    from quant import QConfig, QResMLP, QuantError, load_state
    if args.threads:
        torch.set_num_threads(args.threads)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    if torch.cuda.is_available() and not args.no_cuda:
        print("note: QAT runs on the CPU (the exact integer forward is checked there)", flush=True)

    train_set, test_set, info = data.get_datasets(args.dataset, args.dataset_dir,
                                                  args.download_dataset,
                                                  synthetic_size=args.synthetic_size)
    g = torch.Generator().manual_seed(args.seed)
    train_loader = torch.utils.data.DataLoader(train_set, batch_size=args.batch_size, shuffle=True,
                                               drop_last=True, generator=g)
    test_loader = torch.utils.data.DataLoader(test_set, batch_size=args.test_batch_size, shuffle=False)
    act, h = args.student_nl_act, args.student_hidden_factor
    result = dict(event="done", act=act, hidden_factor=h)

    resume_state = None
    if args.resume:
        path = os.path.join(args.checkpoint_dir, "qat_state.pt")
        if not os.path.isfile(path):
            raise QuantCLIError(f"--resume: no {path}; start without --resume")
        resume_state = torch.load(path, map_location="cpu", weights_only=False)
        saved = resume_state.get("args", {})
        diff = [k for k in RESUME_KEYS if k in saved and saved[k] != getattr(args, k)]
        if diff:
            raise QuantCLIError(f"--resume: --{diff[0].replace('_', '-')} differs from the "
                                f"interrupted run ({saved[diff[0]]!r}); rerun with the same flags")

    if resume_state is not None:
        qmodel = load_state(resume_state["qat"])
    elif args.quant_load:
        qmodel = load_state(os.path.expanduser(args.quant_load))
        c = qmodel.cfg
        if c.act != act or abs(c.hidden_factor - h) > 1e-9:
            raise QuantCLIError(f"{args.quant_load} holds a QAT '{c.act}' model with hidden factor "
                                f"{c.hidden_factor:g}; pass --student-nl-act {c.act} "
                                f"--student-hidden-factor {c.hidden_factor:g}")
        if c.in_channels != info["in_channels"]:
            raise QuantCLIError(f"{args.quant_load} takes {c.in_channels}-channel images; pass the "
                                "--dataset it was trained on")
        bits = dict(input=c.input_bits, weight=c.weight_bits, bias=c.bias_bits, output=c.output_bits)
        for b in BITS:
            if getattr(args, f"{b}_bits") != bits[b]:
                raise QuantCLIError(f"{args.quant_load} was trained with --{b}-bits {bits[b]}; "
                                    f"pass --{b}-bits {bits[b]}")
    else:
        student = load_float(act, h, os.path.expanduser(args.load), info, "student")
        student.eval()
        if args.eval_before or not args.qat:
            fa = accuracy(student, test_loader, args, "float student")
            result["float_accuracy"] = round(fa, 2)
            print(f"[float] Accuracy: {fa:.2f} ({args.load})", flush=True)
        mean, std = normalisation(args.dataset, test_set, info["in_channels"])
        kw = {}
        if act == "psa":
            rp = student.layers[0].layers[1].layers[0].psa
            kw = dict(expansion=rp.expansion, grid_size=rp.grid_size, grid_range=rp.grid_range)
        cfg = QConfig(act=act, hidden=int(96 * h), hidden_factor=h, in_channels=info["in_channels"],
                      num_classes=info["num_classes"], input_bits=args.input_bits,
                      weight_bits=args.weight_bits, bias_bits=args.bias_bits,
                      output_bits=args.output_bits, dataset=args.dataset, mean=mean, std=std, **kw)
        qmodel = QResMLP.from_float(student, cfg)
        calib = (x for i, (x, _) in zip(range(args.calib_batches), train_loader))
        n = qmodel.calibrate(calib)
        print(f"calibrated the activation steps on {n} training batches", flush=True)
        del student

    evaluation = None
    if args.eval_before or not args.qat:
        evaluation = evaluate_quant(qmodel, test_loader, args)
        pre = evaluation[0]
        if args.qat:
            result["quant_accuracy_before_qat"] = round(pre, 2)
            print(f"[quant] Accuracy: {pre:.2f} (fake-quantised, before QAT)", flush=True)
        else:
            result["quant_accuracy"] = round(pre, 2)
            print(f"[quant] Accuracy: {pre:.2f} (fake-quantised)", flush=True)

    if args.qat:
        teacher = None
        if args.do_kd:
            teacher = load_float(args.teacher_nl_act, args.teacher_hidden_factor,
                                 os.path.expanduser(args.teacher_load), info, "teacher").eval()
            for p in teacher.parameters():
                p.requires_grad_(False)
        start, opt_state = 0, None
        if resume_state is not None:
            start = int(resume_state["epoch"])
            opt_state = resume_state
            torch.set_rng_state(resume_state["torch_rng"])
            g.set_state(resume_state["loader_rng"])     # the same batch order as without the stop
            print(f"resumed after epoch {start} from {args.checkpoint_dir}", flush=True)
        t0 = time.time()
        last = train(qmodel, teacher, train_loader, test_loader, args, start, opt_state)
        if last is not None:
            evaluation = last
            result["quant_accuracy"] = round(last[0], 2)
        result["qat_seconds"] = round(time.time() - t0, 1)
        result["qat_epochs"] = args.kd_epochs
    if args.save:
        atomic_save(qmodel.state(), os.path.expanduser(args.save))
        print(f"saved {args.save}", flush=True)
    if args.dump_params:
        if evaluation is None:      # --qat resumed after its last epoch
            evaluation = evaluate_quant(qmodel, test_loader, args)
            result["quant_accuracy"] = round(evaluation[0], 2)
        int_acc, same, n = dump(qmodel, evaluation, args)
        result.update(int8_accuracy=round(int_acc, 2), identical_logits=same, test_images=n)
        if same != n:
            print(json.dumps(result), flush=True)
            raise QuantError(f"the integer model disagrees with the fake-quantised model on "
                             f"{n - same} test images; this is a bug, please report it")
    print(json.dumps(result), flush=True)
    return result


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    import data
    from models import CheckpointError
    try:
        run(args)
    except (UserError, CheckpointError, data.DatasetError) as exc:
        return report(PROG, exc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
