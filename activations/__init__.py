"""Learnable 1-D activations: PSA, LERP-PSA and linear B-splines.

Drop-in use::

    from activations import LerpPSA, ResidualLerpPSA
    act = ResidualLerpPSA(256)          # x + LerpPSA(x), per feature
    y = act(torch.randn(32, 10, 256))   # feature in the last dimension
"""
from .bspline import BSpline
from .psa import PSA, LerpPSA, ResidualLerpPSA, psa_function

__all__ = ["BSpline", "PSA", "LerpPSA", "ResidualLerpPSA", "psa_function"]
