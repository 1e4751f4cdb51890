"""Reference (plain PyTorch) LERP lookup with per-feature tables.

SPEC section 4: for feature ``i`` with table ``T[i, :]`` of ``G`` points on the
uniform grid ``t_j = -R + j * 2R / (G - 1)``::

    u    = (x + R) * (G - 1) / (2R)
    j    = clamp(floor(u), 0, G - 2)
    frac = u - j            # not clamped: the edge segments extrapolate
    y    = T[i, j] + frac * (T[i, j + 1] - T[i, j])

This file is the readable ground truth that every faster implementation
(Triton, CPU extension) is tested against and that the timing script times.
"""
from __future__ import annotations

import torch


def lerp_index(x: torch.Tensor, grid_size: int, grid_range: float):
    """Return ``(j, frac)`` for inputs ``x`` (computed in fp32 or fp64).

    ``j`` is the int64 left grid index, clamped to ``[0, G - 2]``; ``frac`` is
    the (unclamped) position inside that segment.
    """
    # Divide by the grid step (rather than multiply by its inverse): this is
    # how the authors' code rounds, so floor() picks the same segment for
    # inputs within an ulp of a grid point (checked by the conformance test).
    step = 2.0 * grid_range / (grid_size - 1)
    u = (x + grid_range) / step
    j = torch.floor(u).clamp_(0, grid_size - 2)
    frac = u - j
    return j.long(), frac


def _flat_index(j: torch.Tensor, num_features: int, grid_size: int) -> torch.Tensor:
    # Feature i lives in the last dim of x; its table row starts at i * G.
    offset = torch.arange(num_features, device=j.device, dtype=torch.long) * grid_size
    return j + offset


class LerpReferenceFunction(torch.autograd.Function):
    """Autograd Function for the lookup; table gradient via ``index_add_``."""

    @staticmethod
    def forward(ctx, x, table, grid_range: float, save_memory: bool):
        F_, G = table.shape
        cdt = torch.float64 if x.dtype == torch.float64 else torch.float32
        xc = x.to(cdt)
        t = table.to(cdt).reshape(-1)
        j, frac = lerp_index(xc, G, grid_range)
        idx = _flat_index(j, F_, G)
        left = t[idx]
        right = t[idx + 1]
        y = left + frac * (right - left)
        ctx.grid_range = float(grid_range)
        ctx.save_memory = bool(save_memory)
        ctx.table_dtype = table.dtype
        if save_memory:
            # Only x is kept; index and fraction are recomputed in backward.
            ctx.save_for_backward(x, table)
        else:
            ctx.save_for_backward(idx, frac, table)
        return y.to(x.dtype)

    @staticmethod
    def backward(ctx, grad_y):
        F_, G = ctx.saved_tensors[-1].shape
        if ctx.save_memory:
            x, table = ctx.saved_tensors
            cdt = torch.float64 if x.dtype == torch.float64 else torch.float32
            j, frac = lerp_index(x.to(cdt), G, ctx.grid_range)
            idx = _flat_index(j, F_, G)
        else:
            idx, frac, table = ctx.saved_tensors
        cdt = frac.dtype
        t = table.to(cdt).reshape(-1)
        g = grad_y.to(cdt)
        grad_x = grad_t = None
        if ctx.needs_input_grad[0]:
            slope = (t[idx + 1] - t[idx]) * ((G - 1) / (2.0 * ctx.grid_range))
            grad_x = (slope * g).to(grad_y.dtype)
        if ctx.needs_input_grad[1]:
            # Parameter gradients accumulate in at least fp32.
            acc = torch.zeros(F_ * G, dtype=cdt, device=g.device)
            flat_idx = idx.reshape(-1)
            acc.index_add_(0, flat_idx, ((1.0 - frac) * g).reshape(-1))
            acc.index_add_(0, flat_idx + 1, (frac * g).reshape(-1))
            grad_t = acc.view(F_, G).to(ctx.table_dtype)
        return grad_x, grad_t, None, None


def reference_lerp(x, table, grid_range, save_memory=False):
    return LerpReferenceFunction.apply(x, table, float(grid_range), bool(save_memory))
