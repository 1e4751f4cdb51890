"""Test oracles that may be missing on a machine: skip locally, fail in CI.

An oracle is anything a test compares against or needs to run at all: the ``deepsplines``
package, Verilator, Yosys, the Fashion-MNIST files. On a developer's machine a missing oracle
skips the test with the command that installs it. With ``REPRO_STRICT_ORACLES=1`` (set by
``.ci/run``) a missing oracle fails the test instead, so CI can never pass by skipping the
comparisons that matter. GPU-only tests are not oracles: they skip on CPU machines always.
"""
from __future__ import annotations

import importlib
import os
import shutil

import pytest

STRICT_ENV = "REPRO_STRICT_ORACLES"
SHIPPED_FMNIST = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                              "output", "fashion_mnist", "resmlp_layers_4_h_4_embed_96")


def strict() -> bool:
    return os.environ.get(STRICT_ENV, "") not in ("", "0")


def need(name: str, available: bool, how: str) -> None:
    """Skip (or, under REPRO_STRICT_ORACLES=1, fail) unless ``available``.

    ``how`` is the one-line fix, e.g. ``"apt-get install -y verilator"``.
    """
    if available:
        return
    reason = f"test oracle {name} is missing; install it with: {how}"
    if strict():
        pytest.fail(f"{reason} ({STRICT_ENV}=1: missing oracles fail instead of skipping)")
    pytest.skip(reason)


def need_module(module: str, how: str):
    """Import and return ``module``, or skip/fail through :func:`need`."""
    try:
        return importlib.import_module(module)
    except ImportError:
        need(module, False, how)


def need_program(program: str, how: str) -> str:
    """Return the path of ``program`` on PATH, or skip/fail through :func:`need`."""
    path = shutil.which(program)
    need(program, path is not None, how)
    return path


def need_path(path: str, what: str, how: str) -> str:
    """Require a file or folder (a data set, a shipped checkpoint)."""
    need(what, os.path.exists(path), how)
    return path


def shipped_int8_dump(folder: str, images=None):
    """(params, meta, x, labels, logits) of a shipped Fashion-MNIST INT8 dump, ``folder``
    relative to the model root (e.g. ``"baseline/quant/h_mul_2"``), the first ``images``
    samples (all by default); a missing dump goes through :func:`need_path`."""
    from fpga.int_resmlp import load_params, load_samples
    d = os.path.join(SHIPPED_FMNIST, folder)
    need_path(os.path.join(d, "quant_params.npz"), "the shipped INT8 dump",
              "git checkout -- output/ (the QAT dumps ship with the repository)")
    params, meta = load_params(os.path.join(d, "quant_params.npz"))
    x, labels, logits = load_samples(os.path.join(d, "quant_samples.npz"))
    return params, meta, x[:images], labels[:images], logits[:images]
