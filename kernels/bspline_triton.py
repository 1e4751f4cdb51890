"""Triton path of the linear B-spline activation (SPEC section 5).

A DeepSplines linear B-spline with K (odd) coefficients at knots k * D,
k = -(K//2)..K//2, D = 2R / (K - 1), evaluated with the edge segments
extended linearly, is exactly the K-point LERP table of ``lerp_triton`` on
[-R, R]: the index is clamped to the K - 1 segments and the fraction is left
unclamped, which reproduces the extrapolation terms in the output, the input
gradient and the coefficient gradients. So this op reuses those fused
kernels; the tests hold it against ``deepsplines`` and the reference.
"""
from __future__ import annotations

from .lerp_triton import LerpTritonFunction


def bspline_triton(x, coefficients, range_, save_memory=False):
    return LerpTritonFunction.apply(x, coefficients, float(range_), bool(save_memory))
