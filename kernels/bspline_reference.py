"""Reference (plain PyTorch) linear B-spline activation, DeepSplines style.

SPEC section 5: ``K`` (odd) coefficients per feature at knots ``k * D`` for
``k = -(K//2) .. K//2`` with ``D = 2 * range_ / (K - 1)``. Inside the knots the
function interpolates linearly between neighbouring coefficients; outside it
continues the edge segments linearly. The backward pass is the exact
derivative of that piecewise-linear function, extrapolation terms included.
"""
from __future__ import annotations

import torch


def knot_spacing(size: int, range_: float) -> float:
    return 2.0 * float(range_) / (size - 1)


def bspline_index(x: torch.Tensor, size: int, spacing: float):
    """Return ``(n, frac)``: ``n`` is the int64 index (0-based, 0..K-2) of the
    left coefficient of the segment used and ``frac`` its clamped fraction."""
    half = size // 2
    xc = x.clamp(-half * spacing, (half - 1) * spacing)
    s = xc / spacing
    n = torch.floor(s)
    frac = s - n
    return (n + half).long(), frac


def _extrapolation(x, size, spacing):
    """Signed distances (in knot units) past the left and right end knots."""
    half = size // 2
    left = (x + half * spacing).clamp(max=0) / spacing
    right = (x - (half - 1) * spacing).clamp(min=0) / spacing
    return left, right


class BSplineReferenceFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, coefficients, range_: float, save_memory: bool):
        F_, K = coefficients.shape
        D = knot_spacing(K, range_)
        cdt = torch.float64 if x.dtype == torch.float64 else torch.float32
        xc = x.to(cdt)
        c = coefficients.to(cdt)
        n, frac = bspline_index(xc, K, D)
        idx = n + torch.arange(F_, device=x.device, dtype=torch.long) * K
        cf = c.reshape(-1)
        y = cf[idx] * (1.0 - frac) + cf[idx + 1] * frac
        el, er = _extrapolation(xc, K, D)
        y = y + el * (c[:, 1] - c[:, 0]) + er * (c[:, -1] - c[:, -2])
        ctx.range_ = float(range_)
        ctx.save_memory = bool(save_memory)
        ctx.coef_dtype = coefficients.dtype
        if save_memory:
            ctx.save_for_backward(x, coefficients)
        else:
            ctx.save_for_backward(x, idx, frac, coefficients)
        return y.to(x.dtype)

    @staticmethod
    def backward(ctx, grad_y):
        coefficients = ctx.saved_tensors[-1]
        F_, K = coefficients.shape
        D = knot_spacing(K, ctx.range_)
        x = ctx.saved_tensors[0]
        cdt = torch.float64 if x.dtype == torch.float64 else torch.float32
        xc = x.to(cdt)
        if ctx.save_memory:
            n, frac = bspline_index(xc, K, D)
            idx = n + torch.arange(F_, device=x.device, dtype=torch.long) * K
        else:
            _, idx, frac, _ = ctx.saved_tensors
        cf = coefficients.to(cdt).reshape(-1)
        g = grad_y.to(cdt)
        grad_x = grad_c = None
        if ctx.needs_input_grad[0]:
            grad_x = ((cf[idx + 1] - cf[idx]) / D * g).to(grad_y.dtype)
        if ctx.needs_input_grad[1]:
            el, er = _extrapolation(xc, K, D)
            acc = torch.zeros(F_ * K, dtype=cdt, device=g.device)
            flat = idx.reshape(-1)
            acc.index_add_(0, flat, ((1.0 - frac) * g).reshape(-1))
            acc.index_add_(0, flat + 1, (frac * g).reshape(-1))
            acc = acc.view(F_, K)
            lead = tuple(range(g.dim() - 1))
            gl = (el * g).sum(dim=lead) if lead else el * g
            gr = (er * g).sum(dim=lead) if lead else er * g
            acc[:, 1] += gl
            acc[:, 0] -= gl
            acc[:, -1] += gr
            acc[:, -2] -= gr
            grad_c = acc.to(ctx.coef_dtype)
        return grad_x, grad_c, None, None


def reference_bspline(x, coefficients, range_, save_memory=False):
    return BSplineReferenceFunction.apply(x, coefficients, float(range_), bool(save_memory))


def tv2(coefficients: torch.Tensor, range_: float) -> torch.Tensor:
    """Second-order total variation: sum_i || conv(c_i, [1, -2, 1]) / D ||_1."""
    D = knot_spacing(coefficients.shape[1], range_)
    c = coefficients
    d2 = (c[:, 2:] - 2.0 * c[:, 1:-1] + c[:, :-2]) / D
    return d2.abs().sum()
