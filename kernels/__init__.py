"""Lookup-table activation kernels and their dispatch point.

``lerp`` evaluates per-feature LERP tables (LERP-PSA, SPEC section 4) and
``bspline`` per-feature linear B-splines (SPEC section 5). Both take inputs of
shape ``(..., F)`` with the feature in the last dimension, and pick an
implementation with ``impl``:

* ``'reference'``: plain PyTorch autograd Functions (``*_reference.py``), the
  ground truth for tests and timings;
* ``'auto'``: the fastest correct implementation available for the tensor's
  device.
"""
from __future__ import annotations

import torch

from .bspline_reference import knot_spacing, reference_bspline, tv2
from .lerp_reference import reference_lerp

__all__ = ["lerp", "bspline", "tv2", "knot_spacing", "available_impls", "resolve_impl"]

_LERP_IMPLS = {"reference": reference_lerp}
_BSPLINE_IMPLS = {"reference": reference_bspline}


def available_impls(op: str = "lerp"):
    table = _LERP_IMPLS if op == "lerp" else _BSPLINE_IMPLS
    return ["auto"] + sorted(table)


def resolve_impl(op: str, impl: str, x: torch.Tensor) -> str:
    """Map ``impl`` (possibly ``'auto'``) to a concrete implementation name."""
    table = _LERP_IMPLS if op == "lerp" else _BSPLINE_IMPLS
    if impl == "auto":
        return "reference"
    if impl not in table:
        raise ValueError(
            f"unknown {op} implementation {impl!r}; choose one of {available_impls(op)}")
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
    fn = _LERP_IMPLS[resolve_impl("lerp", impl, x)]
    return fn(x, table, grid_range, save_memory)


def bspline(x: torch.Tensor, coefficients: torch.Tensor, range_: float, *,
            impl: str = "auto", save_memory: bool = False) -> torch.Tensor:
    """Per-feature linear B-spline with coefficients (F, K), K odd."""
    _check(x, coefficients, "bspline")
    if coefficients.shape[1] % 2 == 0 or coefficients.shape[1] < 3:
        raise ValueError(f"bspline: the number of coefficients must be odd and >= 3, "
                         f"got {coefficients.shape[1]}")
    fn = _BSPLINE_IMPLS[resolve_impl("bspline", impl, x)]
    return fn(x, coefficients, range_, save_memory)
