"""Lookup-table activation kernels and their dispatch point.

``lerp`` evaluates per-feature LERP tables (LERP-PSA, SPEC section 4) and
``bspline`` per-feature linear B-splines (SPEC section 5). Both take inputs of
shape ``(..., F)`` with the feature in the last dimension, and pick an
implementation with ``impl``:

* ``'reference'``: plain PyTorch autograd Functions (``*_reference.py``), the
  ground truth for tests and timings;
* ``'triton'``: fused Triton kernels (``lerp_triton.py``, ``bspline_triton.py``)
  for CUDA tensors, or CPU tensors under ``TRITON_INTERPRET=1``;
* ``'cpu'``: a fused C/OpenMP kernel compiled at first use (``lerp_cpu.py``);
* ``'auto'``: Triton for CUDA tensors, the C kernel for CPU tensors (the
  reference path, with a one-line warning, where no C compiler exists).

Every implementation computes in fp32 (fp64 for fp64 inputs), returns the
input dtype, accumulates parameter gradients in at least fp32, and gives
bit-identical parameter gradients run to run.
"""
from __future__ import annotations

import torch

from .bspline_reference import knot_spacing, reference_bspline, tv2
from .lerp_reference import reference_lerp
from .psa_reference import psa_function, reference_psa_table

__all__ = ["lerp", "bspline", "psa_table", "psa_function", "tv2", "knot_spacing", "available_impls", "resolve_impl"]

IMPLS = ("reference", "cpu", "triton")


def _load(op: str, impl: str):
    # Imported on first use: triton is only loaded when asked for, so that
    # TRITON_INTERPRET can still be set before it is imported.
    if impl == "reference":
        return {"lerp": reference_lerp, "bspline": reference_bspline,
                "psa_table": reference_psa_table}[op]
    if impl == "cpu":
        if op == "psa_table":
            from .psa_table_cpu import psa_table_cpu
            return psa_table_cpu
        from . import lerp_cpu
        return lerp_cpu.lerp_cpu if op == "lerp" else lerp_cpu.bspline_cpu
    if impl == "triton":
        if op == "lerp":
            from .lerp_triton import lerp_triton
            return lerp_triton
        if op == "psa_table":
            from .psa_table_triton import psa_table_triton
            return psa_table_triton
        from .bspline_triton import bspline_triton
        return bspline_triton
    raise KeyError(impl)


def available_impls():
    return ["auto", *IMPLS]


def resolve_impl(op: str, impl: str, x: torch.Tensor) -> str:
    """Map ``impl`` (possibly ``'auto'``) to a concrete implementation name."""
    if impl == "auto":
        if x.device.type == "cuda":
            return "triton"
        if x.device.type == "cpu":
            from . import lerp_cpu
            return "cpu" if lerp_cpu.available() else "reference"
        return "reference"
    if impl not in IMPLS:
        raise ValueError(
            f"unknown {op} implementation {impl!r}; choose one of {available_impls()}")
    if impl == "cpu":
        from . import lerp_cpu
        if x.device.type != "cpu":
            raise ValueError("impl='cpu' needs CPU tensors")
        if not lerp_cpu.available():
            return "reference"
    return impl


def _check(x, params, name):
    if x.shape[-1] != params.shape[0]:
        raise ValueError(
            f"{name}: input has {x.shape[-1]} features in its last dimension but the "
            f"parameters are for {params.shape[0]} features")
    if params.dim() != 2:
        raise ValueError(f"{name}: expected a 2-D (features, points) parameter, got {tuple(params.shape)}")


def lerp(x: torch.Tensor, table: torch.Tensor, grid_range: float, *,
         impl: str = "auto", save_memory: bool = False) -> torch.Tensor:
    """Per-feature linear interpolation in ``table`` (F, G) on [-R, R]."""
    _check(x, table, "lerp")
    if table.shape[1] < 2:
        raise ValueError("lerp: a table needs at least 2 grid points")
    fn = _load("lerp", resolve_impl("lerp", impl, x))
    return fn(x, table, grid_range, save_memory)


def bspline(x: torch.Tensor, coefficients: torch.Tensor, range_: float, *,
            impl: str = "auto", save_memory: bool = False) -> torch.Tensor:
    """Per-feature linear B-spline with coefficients (F, K), K odd."""
    _check(x, coefficients, "bspline")
    if coefficients.shape[1] % 2 == 0 or coefficients.shape[1] < 3:
        raise ValueError(f"bspline: the number of coefficients must be odd and >= 3, "
                         f"got {coefficients.shape[1]}")
    fn = _load("bspline", resolve_impl("bspline", impl, x))
    return fn(x, coefficients, range_, save_memory)


def psa_table(v_weight, q_weight, q_bias, o_weight, o_bias, epsilon, grid, *,
              impl: str = "auto") -> torch.Tensor:
    """LERP-PSA table (F, G): the PSA function of every feature at the 1-D
    ``grid`` points, differentiable in the five PSA parameters."""
    chosen = resolve_impl("psa_table", impl, v_weight)
    if chosen == "cpu":
        from .psa_table_cpu import supported
        if not supported(v_weight):
            chosen = "reference"
    return _load("psa_table", chosen)(v_weight, q_weight, q_bias, o_weight, o_bias,
                                      float(epsilon), grid)
