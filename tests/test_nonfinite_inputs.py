"""NaN and inf inputs reach the lookups without a crash on every backend.

The activations no longer check their inputs (the training loop watches the loss), so a NaN
must flow through the kernels as a NaN: a NaN turned into an integer index would read outside
the table (a segfault in C, an IndexError in PyTorch, an illegal address on a GPU).
"""
import math

import pytest
import torch

import kernels


def _impls():
    return [i for i in ("reference", "cpu", "triton") if i in kernels.available_impls()]


@pytest.mark.parametrize("impl", _impls())
@pytest.mark.parametrize("op", ["lerp", "bspline"])
def test_nan_and_inf_inputs_flow_through(impl, op):
    F, G = 3, 9
    x = torch.randn(5, F)
    x[0, 0] = math.nan
    x[1, 1] = math.inf
    x[2, 2] = -math.inf
    x.requires_grad_(True)
    params = torch.randn(F, G, requires_grad=True)
    if op == "lerp":
        y = kernels.lerp(x, params, 4.0, impl=impl)
    else:
        y = kernels.bspline(x, params, 4.0, impl=impl)
    assert y.shape == x.shape
    assert torch.isnan(y[0, 0])
    finite = torch.isfinite(x.detach())
    assert torch.isfinite(y[finite]).all()
    # the same finite entries as a NaN-free call: the NaN did not disturb its neighbours
    x_clean = torch.where(finite, x.detach(), torch.zeros(()))
    fn = kernels.lerp if op == "lerp" else kernels.bspline
    y_clean = fn(x_clean, params.detach(), 4.0, impl=impl)
    torch.testing.assert_close(y.detach()[finite], y_clean[finite], atol=0, rtol=0)
    y.sum().backward()          # the backward reads the same indices: no crash either
    assert x.grad.shape == x.shape and params.grad.shape == params.shape
