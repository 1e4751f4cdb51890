"""What quantisation-aware training adds to float training (docs/METHOD.md section 10).

The training loop, its resumable state, the data and the evaluation are those of float
training (``training``; ``training.qat`` puts the pieces together). What is specific to the
INT8 model is here:

* :func:`quantise`: the fake-quantised ``QResMLP`` of a trained float ResMLP, its shape read
  from the model (any embedding width, depth and hidden size), its activation steps
  calibrated on training batches;
* :func:`qat_optimizer`: AdamW with the learned (log) quantiser steps in their own group, at
  ``step_lr_mult`` times the learning rate and without weight decay;
* :func:`evaluate_codes` and :func:`dump`: the integer codes of the test set, the integer
  model (``fpga.int_resmlp``) run on them and checked image by image against the
  fake-quantised logits, and the files of the integer model.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from typing import Callable, Iterable, List, Optional, Tuple

import numpy as np
import torch
from torch import nn

from .qresmlp import QConfig, QResMLP, QuantError

BITS = ("input", "weight", "bias", "output")


def normalisation(dataset: str, test_set, in_channels: int) -> Tuple[List[float], List[float]]:
    """The per-channel (mean, std) the images of ``dataset`` were normalised with (stored
    in the integer model's metadata for the hardware's input stage)."""
    import data
    mean = getattr(test_set, "mean", None)
    std = getattr(test_set, "std", None)
    if mean is not None and std is not None:
        return [float(v) for v in mean.reshape(-1)], [float(v) for v in std.reshape(-1)]
    known = {"cifar10": (data.CIFAR10_MEAN, data.CIFAR10_STD), "svhn": (data.SVHN_MEAN, data.SVHN_STD)}
    if dataset in known:
        return list(known[dataset][0]), list(known[dataset][1])
    return [0.0] * in_channels, [1.0] * in_channels


def qconfig_of(model: nn.Module, *, bits: dict, dataset: str, mean, std) -> QConfig:
    """The QConfig of the INT8 model of the float ResMLP ``model``: every size from the model
    itself, the activation's settings from its description (``models.registry``)."""
    from models import activation, describe_model
    info = describe_model(model)
    if info["arch"] != "resmlp":
        raise QuantError("the INT8 model is a ResMLP; a ResNet-20 has no integer model "
                         "(quantise a ResMLP student)")
    spec = activation(info["act"])
    if not spec.int8:
        raise QuantError(f"a {spec.label} ResMLP ({spec.name}) has no integer model; quantise a "
                         f"student with {' or '.join(a.name for a in _int8_activations())}")
    settings = {k: info[k] for k in spec.setting_names if info.get(k) is not None}
    return QConfig(act=spec.name, hidden=info["hidden"], hidden_factor=info["hidden_factor"],
                   in_channels=info["in_channels"], channels=info["embed_dim"], depth=info["depth"],
                   tokens=info["num_patches"], patch_size=info["patch_size"],
                   img_size=info["img_size"], num_classes=info["num_classes"],
                   input_bits=bits["input"], weight_bits=bits["weight"], bias_bits=bits["bias"],
                   output_bits=bits["output"], dataset=dataset, mean=list(mean), std=list(std),
                   **settings)


def _int8_activations():
    from models import ACTIVATIONS
    return [a for a in ACTIVATIONS.values() if a.int8]


def quantise(model: nn.Module, cfg: QConfig, calibration: Optional[Iterable[torch.Tensor]]
             ) -> Tuple[QResMLP, int]:
    """(the fake-quantised model of ``model``, calibration batches seen): BatchNorms and
    layer-scales folded, the weight steps from the weights, the activation steps from the
    image batches of ``calibration`` (None: left for a state to be loaded over them)."""
    q = QResMLP.from_float(model, cfg)
    n = q.calibrate(calibration) if calibration is not None else 0
    return q, n


def qat_optimizer(qmodel: QResMLP, lr: float, wd: float, step_lr_mult: float) -> torch.optim.Optimizer:
    """AdamW over the QAT model: the weights, biases and PSA parameters at ``lr`` with weight
    decay ``wd``; the (log) quantiser steps at ``lr * step_lr_mult`` without weight decay."""
    steps = {id(p) for p in qmodel.step_parameters()}
    groups = [{"params": [p for p in qmodel.parameters() if id(p) not in steps]},
              {"params": [p for p in qmodel.parameters() if id(p) in steps],
               "lr": lr * step_lr_mult, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, weight_decay=wd)


@dataclass
class Codes:
    """The fake-quantised model on a test set: accuracy (%), input codes, logit codes, labels."""
    accuracy: float
    x: np.ndarray
    logits: np.ndarray
    labels: np.ndarray


@torch.no_grad()
def evaluate_codes(qmodel: QResMLP, loader, progress: Callable = lambda it, desc: it) -> Codes:
    """Run the fake-quantised model (eval mode) over ``loader``, keeping the int8 codes."""
    qmodel.eval()
    xs, fq, ys = [], [], []
    for x, y in progress(loader, "fake-quant"):
        c = qmodel.input_codes(x)
        xs.append(c.to(torch.int8).numpy())
        fq.append(qmodel.forward_codes(c).to(torch.int8).numpy())
        ys.append(y.numpy())
    x, logits, y = np.concatenate(xs), np.concatenate(fq), np.concatenate(ys).astype(np.int64)
    return Codes(100.0 * float((logits.argmax(1) == y).sum()) / max(len(y), 1), x, logits, y)


def dump(qmodel: QResMLP, codes: Codes, out_dir: str, samples: int = 256,
         progress: Callable = lambda it, desc: it, log: Callable[[str], None] = print
         ) -> Tuple[float, int, int]:
    """Write the integer model (``quant_params.npz``, ``quant_samples.npz`` with the first
    ``samples`` test images, and the hex files when ``fpga.hexdump`` is there) into
    ``out_dir``, all or nothing; run the integer model on every test image of ``codes`` (from
    :func:`evaluate_codes` of the model as it is now) and compare its logits with the
    fake-quantised ones. Returns (integer accuracy %, images with identical logits, images)."""
    from fpga import int_resmlp as im
    params, meta = qmodel.export_params()
    x = codes.x
    chunks = [im.forward(params, meta, x[i:i + 500])
              for i in progress(range(0, len(x), 500), "integer model")]
    logits = np.concatenate(chunks)
    same = int((logits == codes.logits).all(axis=1).sum())
    int_acc = 100.0 * float((logits.argmax(1) == codes.labels).sum()) / len(codes.labels)

    out = os.path.expanduser(out_dir)
    parent = os.path.dirname(os.path.abspath(out))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".dump_", dir=parent)
    try:
        im.save_params(os.path.join(tmp, "quant_params.npz"), params, meta)
        n = min(samples, len(x))
        im.save_samples(os.path.join(tmp, "quant_samples.npz"), x[:n], codes.labels[:n], logits[:n])
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
    log(f"dumped {os.path.join(out, 'quant_params.npz')} and quant_samples.npz ({n} images); "
        f"{hexnote}")
    log(f"fake-quant vs integer model: {same}/{len(x)} test images with identical logits")
    log(f"[int8] Accuracy: {int_acc:.2f} (integer model, {len(x)} test images)")
    return int_acc, same, len(x)
