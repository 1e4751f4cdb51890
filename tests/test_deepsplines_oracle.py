"""Every B-spline implementation against the ``deepsplines`` package (DeepBSpline, mode 'fc').

docs/METHOD.md section 5 names ``deepsplines`` as the reference of the linear B-spline. Here
the public API is compared with it, outputs and every gradient, for each ``impl`` by name:
``'reference'`` (plain PyTorch), ``'cpu'`` (C/OpenMP), ``'triton'`` (on the CPU under
TRITON_INTERPRET=1, or on TEST_DEVICE=cuda) and ``'auto'``, through the ``BSpline`` module
and through ``kernels.bspline``. Inputs lie inside and far outside the knot range.
The package is a test oracle: missing, these tests skip locally and fail in CI.
"""
import os

import pytest
import torch

import kernels
from activations import BSpline
from tests.oracles import need_module

IMPLS = ["reference", "cpu", "triton", "auto"]
HOW = "pip install deepsplines==1.0.0 (requirements-test.txt)"


def device_for(impl):
    want = os.environ.get("TEST_DEVICE", "cpu")
    if impl == "cpu":
        return torch.device("cpu")
    if want == "cuda" and not torch.cuda.is_available():
        pytest.skip("TEST_DEVICE=cuda but CUDA is not available")
    return torch.device(want)


def oracle(F_, K, R, seed):
    ds = need_module("deepsplines.ds_modules.dsnn", HOW)
    torch.manual_seed(seed)
    ref = ds.DeepBSpline("fc", F_, size=K, range_=R, init="leaky_relu")
    with torch.no_grad():
        ref.coefficients_vect.add_(0.5 * torch.randn_like(ref.coefficients_vect))
    return ref


def inputs(F_, R, seed):
    g = torch.Generator().manual_seed(seed)
    inside = (torch.rand(50, F_, generator=g) - 0.5) * 2.2 * R
    far = (torch.rand(6, F_, generator=g) - 0.5) * 60 * R
    return torch.cat([inside, far])


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("F_,K,R", [(24, 65, 4.0), (5, 21, 2.0)])
def test_bspline_module_matches_deepsplines(impl, F_, K, R):
    dev = device_for(impl)
    ref = oracle(F_, K, R, seed=F_ + K)
    x = inputs(F_, R, seed=K)
    gy = torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
    xr = x.clone().requires_grad_()
    yr = ref(xr)
    yr.backward(gy)

    ours = BSpline(F_, size=K, range_=R, impl=impl).to(dev)
    with torch.no_grad():
        ours.coefficients.copy_(ref.coefficients_vect.detach().reshape(F_, K))
    xo = x.to(dev).requires_grad_()
    yo = ours(xo)
    yo.backward(gy.to(dev))
    torch.testing.assert_close(yo.detach().cpu(), yr.detach(), rtol=1e-5, atol=5e-5, msg="output")
    torch.testing.assert_close(xo.grad.cpu(), xr.grad, rtol=1e-5, atol=2e-5, msg="input gradient")
    torch.testing.assert_close(ours.coefficients.grad.cpu().reshape(-1), ref.coefficients_vect.grad,
                               rtol=1e-5, atol=2e-4, msg="coefficient gradient")


@pytest.mark.parametrize("impl", IMPLS)
def test_kernels_bspline_matches_deepsplines(impl):
    F_, K, R = 13, 33, 3.0
    dev = device_for(impl)
    ref = oracle(F_, K, R, seed=7)
    x = inputs(F_, R, seed=8).reshape(4, 14, F_)      # leading dimensions are flattened
    gy = torch.randn(x.shape, generator=torch.Generator().manual_seed(2))
    xr = x.clone().requires_grad_()
    ref(xr.reshape(-1, F_)).reshape(x.shape).backward(gy)
    coef = ref.coefficients_vect.detach().reshape(F_, K).clone().to(dev).requires_grad_()
    xo = x.to(dev).requires_grad_()
    y = kernels.bspline(xo, coef, R, impl=impl)
    y.backward(gy.to(dev))
    with torch.no_grad():
        want = ref(x.reshape(-1, F_)).reshape(x.shape)
    torch.testing.assert_close(y.detach().cpu(), want, rtol=1e-5, atol=5e-5, msg="output")
    torch.testing.assert_close(xo.grad.cpu(), xr.grad, rtol=1e-5, atol=2e-5, msg="input gradient")
    torch.testing.assert_close(coef.grad.cpu().reshape(-1), ref.coefficients_vect.grad,
                               rtol=1e-5, atol=2e-4, msg="coefficient gradient")
