"""An exported graph run in onnxruntime beside the PyTorch model it came from.

:func:`check_images` picks the test images (the first N of the Fashion-MNIST test set for a
1-channel model, the project's synthetic gratings otherwise); :func:`compare` runs both and
reports the differences:

* ``max_abs_diff``: the largest ``|onnx - torch|`` over every logit of every image;
* ``max_rel_diff``: the largest, over images, of that image's largest difference divided by
  its largest ``|torch logit|`` (what the tests bound by 1e-4);
* ``top1_flips``: images whose top-1 class differs; ``flip_margin``: the smallest PyTorch
  margin between the two classes involved in a flip (None without flips). A flip can only
  happen where that margin is below the two logits' differences, i.e. at a near tie;
  ``unexplained_flips`` counts flips whose margin exceeds twice the image's largest
  difference (0 unless the graph is wrong);
* ``accuracy_torch`` / ``accuracy_onnx``: top-1 accuracy in percent when labels are known.
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple

import numpy as np
import torch

from errors import UserError

from .onnx_export import INPUT, INSTALL

CHECK_DATA = ("auto", "fashion-mnist", "synthetic")


class CheckError(UserError, ValueError):
    """onnxruntime missing, a graph it cannot load, or bad check options (one line)."""


def require_onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise CheckError(f"the onnxruntime package is not installed; install it with: {INSTALL}") \
            from None
    return onnxruntime


def make_session(model, threads: Optional[int] = None):
    """An onnxruntime CPU session of ``model`` (a path, serialized bytes or a ModelProto) with
    all graph optimisations; ``threads`` sets the intra-op pool (None: onnxruntime's default)
    and runs the nodes one at a time (no inter-op pool)."""
    ort = require_onnxruntime()
    if hasattr(model, "SerializeToString"):
        model = model.SerializeToString()
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3  # errors only
    if threads is not None:
        opts.intra_op_num_threads = int(threads)
        opts.inter_op_num_threads = 1
    try:
        return ort.InferenceSession(model, sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/... types
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise CheckError(f"onnxruntime {ort.__version__} cannot load the graph ({first[-200:]}); "
                         f"export it again with --opset 17") from None


def check_images(in_channels: int, n: int, data: str = "auto", dataset_dir: Optional[str] = None,
                 img_size: int = 32) -> Tuple[torch.Tensor, Optional[torch.Tensor], str]:
    """``(images (n, C, S, S) float32, labels or None, data name)``: the first ``n`` test
    images of Fashion-MNIST (``data='fashion-mnist'``, or ``'auto'`` for a 1-channel model),
    else ``n`` synthetic gratings (the test split's generator seed and normalisation)."""
    import data as datasets
    if data not in CHECK_DATA:
        raise CheckError(f"unknown check data {data!r}; use one of {', '.join(CHECK_DATA)}")
    if n < 1:
        raise CheckError(f"--check needs a positive number of images, got {n}")
    if data == "auto":
        data = "fashion-mnist" if in_channels == 1 else "synthetic"
    if data == "fashion-mnist":
        if in_channels != 1 or img_size != 32:
            raise CheckError(f"Fashion-MNIST images are 1 x 32 x 32 but the model takes "
                             f"{in_channels} x {img_size} x {img_size}; pass --check-data "
                             "synthetic")
        _, test, _ = datasets.fashion_mnist(dataset_dir, augment=False)
        if n > len(test):
            raise CheckError(f"--check {n} asks for more than the {len(test)} Fashion-MNIST test "
                             "images")
        images = torch.stack([test[i][0] for i in range(n)])
        return images, test.labels[:n].clone(), "fashion-mnist"
    raw, labels = datasets.synthetic_images(n, seed=2, in_channels=in_channels, size=img_size)
    mean = torch.full((in_channels, 1, 1), 0.5)
    std = torch.full((in_channels, 1, 1), 0.25)
    return (raw.float() / 255.0 - mean) / std, labels, "synthetic"


def run_session(session, images: np.ndarray, batch: int = 250) -> np.ndarray:
    """Logits of ``images`` (N, C, H, W) float32 through ``session``, ``batch`` at a time."""
    out = [session.run(None, {INPUT: np.ascontiguousarray(images[i:i + batch], np.float32)})[0]
           for i in range(0, len(images), batch)]
    return np.concatenate(out)


@torch.inference_mode()
def run_torch(model, images: torch.Tensor, batch: int = 250) -> np.ndarray:
    model.eval()
    return torch.cat([model(images[i:i + batch]) for i in range(0, len(images), batch)]).numpy()


def compare_logits(ref: np.ndarray, got: np.ndarray, labels=None) -> Dict:
    """The figures of the module docstring for PyTorch logits ``ref`` and ONNX ``got``."""
    ref = ref.astype(np.float64)
    got = got.astype(np.float64)
    diff = np.abs(got - ref)
    per_image = diff.max(1)
    scale = np.maximum(np.abs(ref).max(1), np.finfo(np.float32).tiny)
    t1, o1 = ref.argmax(1), got.argmax(1)
    flips = np.flatnonzero(t1 != o1)
    rows = np.arange(len(ref))
    margins = ref[rows, t1] - ref[rows, o1]
    out = dict(images=int(len(ref)), max_abs_diff=float(diff.max()),
               max_rel_diff=float((per_image / scale).max()), top1_flips=int(len(flips)),
               flip_margin=float(margins[flips].min()) if len(flips) else None,
               unexplained_flips=int((margins[flips] > 2 * per_image[flips]).sum()))
    if labels is not None:
        labels = np.asarray(labels)
        out["accuracy_torch"] = round(100.0 * float((t1 == labels).mean()), 2)
        out["accuracy_onnx"] = round(100.0 * float((o1 == labels).mean()), 2)
    return out


def compare(model, session, images: torch.Tensor, labels=None, batch: int = 250) -> Dict:
    """Run ``images`` through the PyTorch ``model`` and the onnxruntime ``session``; the
    figures of :func:`compare_logits`."""
    ref = run_torch(model, images, batch)
    got = run_session(session, images.numpy(), batch)
    return compare_logits(ref, got, None if labels is None else labels.numpy())
