"""Learnable linear B-spline activation (DeepSplines style, docs/METHOD.md section 5).

Bohra et al., "Learning Activation Functions in Deep (Spline) Neural
Networks", IEEE OJSP 2020, as used as a baseline by Singh & Bazargan (2025).
Numerically equal to ``deepsplines.ds_modules.dsnn.DeepBSpline('fc', F,
size=K, range_=R, init='leaky_relu')``; the coefficients are kept as an
``(F, K)`` parameter ``coefficients`` (the authors' flat
``_coefficients_vect`` is converted on load/export by ``models``).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

import kernels



class BSpline(nn.Module):
    def __init__(self, num_features: int, size: int = 65, range_: float = 4.0,
                 impl: str = "auto"):
        super().__init__()
        if size < 3 or size % 2 == 0:
            raise ValueError(f"BSpline size must be odd and >= 3, got {size}")
        if range_ <= 0:
            raise ValueError("BSpline range_ must be positive")
        self.num_features = int(num_features)
        self.size = int(size)
        self.range_ = float(range_)
        self.impl = impl
        self.coefficients = nn.Parameter(torch.empty(num_features, size))
        self.reset_parameters()

    @property
    def spacing(self) -> float:
        return kernels.knot_spacing(self.size, self.range_)

    def knots(self, device=None, dtype=torch.float32):
        half = self.size // 2
        return torch.arange(-half, half + 1, device=device, dtype=dtype) * self.spacing

    def reset_parameters(self):
        with torch.no_grad():
            self.coefficients.copy_(
                F.leaky_relu(self.knots(), negative_slope=0.01).expand(self.num_features, -1))

    def tv2(self) -> torch.Tensor:
        """TV(2) regulariser of this layer: sum_i ||conv(c_i, [1,-2,1]) / D||_1."""
        return kernels.tv2(self.coefficients, self.range_)

    def forward(self, x):
        return kernels.bspline(x, self.coefficients, self.range_, impl=self.impl)

    def extra_repr(self):
        return f"{self.num_features}, size={self.size}, range_={self.range_:g}"
