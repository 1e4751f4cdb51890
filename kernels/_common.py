"""Helpers every backend and the dispatch share: the compute-dtype rule, the
grid step, the argument checks and the one-line errors."""
from __future__ import annotations

import torch

from errors import UserError


class KernelArgumentError(UserError, ValueError):
    """Bad arguments to ``kernels.lerp``/``bspline``/``psa_table`` (shapes, sizes, impl)."""


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype a backend that supports fp64 computes in: fp64 for fp64 inputs,
    fp32 for everything else (fp32, bf16, fp16). Triton computes in fp32 always."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def grid_step(points: int, grid_range: float) -> float:
    """Spacing of ``points`` uniform points on [-R, R]: 2R / (points - 1)."""
    return 2.0 * float(grid_range) / (points - 1)


def grid_scale(points: int, grid_range: float) -> float:
    """Grid points per unit of ``x``: (points - 1) / (2R), the inverse of :func:`grid_step`.

    The LERP index is ``(x + R) * grid_scale`` (a multiplication, as the authors' lookup
    computes it): 7.875 for 64 points on [-4, 4], exact in fp32, whereas the step 8 / 63 is
    not, and dividing by it differs from the product by up to one ulp of the index."""
    return (points - 1) / (2.0 * float(grid_range))


def check_lookup(name: str, x: torch.Tensor, params: torch.Tensor, grid_range: float) -> None:
    """Shared checks of ``lerp`` and ``bspline``: x is (..., F), params (F, P)."""
    if params.dim() != 2:
        raise KernelArgumentError(
            f"{name}: expected a 2-D (features, points) parameter, got shape {tuple(params.shape)}")
    if x.dim() < 1 or x.shape[-1] != params.shape[0]:
        raise KernelArgumentError(
            f"{name}: input has {x.shape[-1] if x.dim() else 0} features in its last dimension but "
            f"the parameters are for {params.shape[0]} features; put the feature dimension last")
    if not float(grid_range) > 0:
        raise KernelArgumentError(f"{name}: the range must be positive, got {grid_range}")
    if x.device != params.device:
        raise KernelArgumentError(
            f"{name}: input on {x.device} but parameters on {params.device}; move both to one device")
    if not (x.is_floating_point() and params.is_floating_point()):
        raise KernelArgumentError(f"{name}: input and parameters must be floating point")
    if params.shape[0] * params.shape[1] >= 2 ** 31:
        raise KernelArgumentError(f"{name}: features x points must be below 2^31")


def check_lerp(x, table, grid_range) -> None:
    check_lookup("lerp", x, table, grid_range)
    if table.shape[1] < 2:
        raise KernelArgumentError("lerp: a table needs at least 2 grid points")


def check_bspline(x, coefficients, range_) -> None:
    check_lookup("bspline", x, coefficients, range_)
    K = coefficients.shape[1]
    if K % 2 == 0 or K < 3:
        raise KernelArgumentError(
            f"bspline: the number of coefficients must be odd and >= 3, got {K}")


def check_psa(v, w, b, o, c, grid) -> None:
    if v.dim() != 2 or w.shape != v.shape or b.shape != v.shape:
        raise KernelArgumentError(
            f"psa_table: v_weight, q_weight, q_bias must share one (features, experts) shape, got "
            f"{tuple(v.shape)}, {tuple(w.shape)}, {tuple(b.shape)}")
    if o.shape != (v.shape[0],) or c.shape != (v.shape[0],):
        raise KernelArgumentError(
            f"psa_table: o_weight and o_bias must have shape ({v.shape[0]},), got "
            f"{tuple(o.shape)} and {tuple(c.shape)}")
    if v.shape[0] < 1 or v.shape[1] < 1:
        raise KernelArgumentError(
            f"psa_table: need at least one feature and one expert, got shape {tuple(v.shape)}")
    if grid.dim() != 1 or grid.numel() < 2:
        raise KernelArgumentError(f"psa_table: the grid must be 1-D with >= 2 points, got {tuple(grid.shape)}")
