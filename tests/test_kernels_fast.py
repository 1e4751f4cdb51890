"""Fast kernels (Triton, C/OpenMP CPU) against the plain-PyTorch references.

Triton runs on the CPU under TRITON_INTERPRET=1 (set by conftest) on small
shapes; the GPU tests at realistic sizes and in bf16 need CUDA.
"""
import os

import pytest
import torch

import kernels
from kernels import lerp_cpu

SHAPES = [(1, 1), (7, 13), (129, 96), (3, 5, 200)]
GRIDS = [33, 64, 128]
# (dtype, atol, rtol) for outputs/input grads; table grads are compared relative to their scale.
TOLS = [(torch.float32, 1e-5, 1e-5), (torch.float64, 1e-12, 1e-12)]


def impls():
    out = [pytest.param("cpu", marks=pytest.mark.skipif(
        not lerp_cpu.available(), reason="no C compiler: the CPU kernel could not be built"))]
    interp = os.environ.get("TRITON_INTERPRET") == "1"
    out.append(pytest.param("triton", marks=pytest.mark.skipif(
        not (interp or torch.cuda.is_available()), reason="needs CUDA or TRITON_INTERPRET=1")))
    return out


def device_for(impl):
    if impl == "triton" and torch.cuda.is_available() and os.environ.get("TRITON_INTERPRET") != "1":
        return "cuda"
    return "cpu"


def run(op, impl, x, params, R, g, save_memory=False):
    x = x.detach().clone().requires_grad_()
    p = params.detach().clone().requires_grad_()
    fn = kernels.lerp if op == "lerp" else kernels.bspline
    y = fn(x, p, R, impl=impl, save_memory=save_memory)
    gx, gp = torch.autograd.grad(y, (x, p), g)
    return y, gx, gp


def check(op, impl, shape, G, dtype, atol, rtol, save_memory=False, spread=14.0):
    dev = device_for(impl)
    if dtype == torch.float64 and impl == "triton":
        pytest.skip("Triton kernels compute in fp32; fp64 is served by the CPU and reference paths")
    F_ = shape[-1]
    x = (torch.rand(shape, dtype=dtype, device=dev) - 0.5) * spread  # inside and far outside
    params = torch.randn(F_, G, dtype=dtype, device=dev)
    g = torch.randn(shape, dtype=dtype, device=dev)
    ref = run(op, "reference", x, params, 4.0, g)
    out = run(op, impl, x, params, 4.0, g, save_memory)
    assert out[0].dtype == dtype and out[1].dtype == dtype and out[2].dtype == dtype
    torch.testing.assert_close(out[0], ref[0], atol=atol, rtol=rtol, msg="output")
    torch.testing.assert_close(out[1], ref[1], atol=atol, rtol=rtol, msg="input grad")
    scale = ref[2].abs().max().item() + 1.0
    torch.testing.assert_close(out[2], ref[2], atol=atol * scale * 4, rtol=rtol,
                               msg="table grad")


@pytest.mark.parametrize("impl", impls())
@pytest.mark.parametrize("dtype,atol,rtol", TOLS)
@pytest.mark.parametrize("G", GRIDS)
@pytest.mark.parametrize("shape", SHAPES)
def test_lerp_fast_matches_reference(impl, shape, G, dtype, atol, rtol):
    check("lerp", impl, shape, G, dtype, atol, rtol)


@pytest.mark.parametrize("impl", impls())
@pytest.mark.parametrize("dtype,atol,rtol", TOLS)
@pytest.mark.parametrize("K", [3, 33, 65])
@pytest.mark.parametrize("shape", [(1, 1), (7, 13), (129, 96)])
def test_bspline_fast_matches_reference(impl, shape, K, dtype, atol, rtol):
    # B-spline output sums the interpolation and extrapolation terms in
    # another order than the reference: allow a few more ulps.
    check("bspline", impl, shape, K, dtype, atol * 10, rtol * 10)


@pytest.mark.parametrize("impl", impls())
def test_bspline_fast_matches_deepsplines(impl):
    ds = pytest.importorskip("deepsplines.ds_modules.dsnn")
    dev = device_for(impl)
    F_ = 24
    ref = ds.DeepBSpline("fc", F_, size=65, range_=4, init="leaky_relu")
    with torch.no_grad():
        ref.coefficients_vect.add_(0.3 * torch.randn_like(ref.coefficients_vect))
    x = torch.cat([(torch.rand(40, F_) - 0.5) * 10, (torch.rand(5, F_) - 0.5) * 300])
    g = torch.randn_like(x)
    xr = x.clone().requires_grad_()
    ref(xr).backward(g)
    y, gx, gc = run("bspline", impl, x.to(dev), ref.coefficients.detach().to(dev), 4.0, g.to(dev))
    with torch.no_grad():
        torch.testing.assert_close(y.cpu(), ref(x), atol=5e-5, rtol=1e-5, msg="output")
    torch.testing.assert_close(gx.cpu(), xr.grad, atol=2e-5, rtol=1e-5, msg="input grad")
    torch.testing.assert_close(gc.cpu().reshape(-1), ref.coefficients_vect.grad, atol=2e-4,
                               rtol=1e-5, msg="coefficient grad")


@pytest.mark.parametrize("impl", impls())
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_inputs_compute_in_fp32(impl, dtype):
    dev = device_for(impl)
    x = ((torch.rand(33, 40, device=dev) - 0.5) * 10).to(dtype)
    table = torch.randn(40, 64, device=dev)
    g = torch.randn(33, 40, device=dev).to(dtype)
    y, gx, gt = run("lerp", impl, x, table, 4.0, g)
    yr, gxr, gtr = run("lerp", "reference", x.float(), table, 4.0, g.float())
    assert y.dtype == dtype and gx.dtype == dtype and gt.dtype == torch.float32
    tol = dict(atol=2e-2, rtol=1e-2) if dtype == torch.bfloat16 else dict(atol=2e-3, rtol=1e-3)
    torch.testing.assert_close(y.float(), yr, **tol, msg="output")
    torch.testing.assert_close(gx.float(), gxr, **tol, msg="input grad")
    torch.testing.assert_close(gt, gtr, atol=1e-4, rtol=1e-5, msg="table grad (fp32 accumulation)")


@pytest.mark.parametrize("impl", impls())
def test_table_gradient_is_deterministic(impl):
    dev = device_for(impl)
    x = (torch.rand(257, 96, device=dev) - 0.5) * 10
    table = torch.randn(96, 64, device=dev)
    g = torch.randn(257, 96, device=dev)
    a = run("lerp", impl, x, table, 4.0, g)[2]
    b = run("lerp", impl, x, table, 4.0, g)[2]
    assert torch.equal(a, b), "two backward passes must give identical table gradients"


@pytest.mark.parametrize("impl", impls())
def test_save_memory_and_partial_grads(impl):
    dev = device_for(impl)
    x = (torch.rand(17, 9, device=dev) - 0.5) * 10
    table = torch.randn(9, 64, device=dev, requires_grad=True)
    y = kernels.lerp(x, table, 4.0, impl=impl, save_memory=True)  # x needs no grad
    (gt,) = torch.autograd.grad(y.sum(), table)
    ref = run("lerp", "reference", x, table, 4.0, torch.ones_like(x))[2]
    torch.testing.assert_close(gt, ref, atol=1e-5, rtol=1e-5)


def test_auto_picks_fast_cpu_path():
    x = torch.randn(2, 3)
    expected = "cpu" if lerp_cpu.available() else "reference"
    assert kernels.resolve_impl("lerp", "auto", x) == expected


def test_cpu_kernel_falls_back_with_warning_without_compiler(monkeypatch):
    monkeypatch.setattr(lerp_cpu, "_lib", None)
    monkeypatch.setattr(lerp_cpu, "_failed", None)
    monkeypatch.setenv("CC", "/nonexistent/cc")
    monkeypatch.setenv("LERP_CPU_CACHE", "/tmp/lerp-cpu-test-empty-cache")
    with pytest.warns(RuntimeWarning, match="using the slower reference path"):
        assert kernels.resolve_impl("lerp", "auto", torch.randn(2, 3)) == "reference"


def test_lerp_psa_module_same_on_every_impl():
    from activations import LerpPSA
    torch.manual_seed(3)
    base = LerpPSA(20)
    x = (torch.rand(11, 20) - 0.5) * 12
    results = {}
    for impl in ["reference", "cpu", "triton"]:
        if impl == "cpu" and not lerp_cpu.available():
            continue
        if impl == "triton" and os.environ.get("TRITON_INTERPRET") != "1":
            continue
        m = LerpPSA(20, impl=impl)
        m.load_state_dict(base.state_dict())
        xi = x.clone().requires_grad_()
        m(xi).pow(2).sum().backward()
        results[impl] = [xi.grad] + [p.grad for p in m.parameters()]
    for impl, grads in results.items():
        for a, b in zip(grads, results["reference"]):
            torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4, msg=impl)


# --- GPU at realistic sizes -------------------------------------------------------------------

gpu = pytest.mark.skipif(not torch.cuda.is_available() or os.environ.get("TRITON_INTERPRET") == "1",
                         reason="needs a CUDA GPU (and TRITON_INTERPRET unset)")


@gpu
@pytest.mark.parametrize("op", ["lerp", "bspline"])
@pytest.mark.parametrize("dtype,atol,rtol", [(torch.float32, 1e-4, 1e-5), (torch.bfloat16, 5e-2, 2e-2),
                                             (torch.float16, 5e-3, 2e-3)])
def test_gpu_realistic(op, dtype, atol, rtol):
    N, F_, G = 16 * 512, 768, 64 if op == "lerp" else 65
    x = ((torch.rand(N, F_, device="cuda") - 0.5) * 12).to(dtype)
    params = torch.randn(F_, G, device="cuda")
    g = torch.randn(N, F_, device="cuda").to(dtype)
    out = run(op, "triton", x, params, 4.0, g)
    ref = run(op, "reference", x.float(), params, 4.0, g.float())
    torch.testing.assert_close(out[0].float(), ref[0], atol=atol, rtol=rtol, msg="output")
    torch.testing.assert_close(out[1].float(), ref[1], atol=atol * 10, rtol=rtol, msg="input grad")
    scale = ref[2].abs().max().item()
    torch.testing.assert_close(out[2], ref[2], atol=1e-5 * scale, rtol=1e-4, msg="table grad")
    again = run(op, "triton", x, params, 4.0, g)[2]
    assert torch.equal(out[2], again), "table gradient must be deterministic"


# --- PSA table --------------------------------------------------------------------------------

PSA_PARAMS = ("v_weight", "q_weight", "q_bias", "o_weight", "o_bias")


@pytest.mark.parametrize("impl", impls())
@pytest.mark.parametrize("dtype,atol,rtol", [(torch.float32, 2e-5, 1e-5), (torch.float64, 1e-10, 1e-10)])
@pytest.mark.parametrize("F_,E,G", [(1, 1, 2), (13, 8, 33), (96, 8, 64), (37, 5, 128)])
def test_psa_table_matches_reference(impl, F_, E, G, dtype, atol, rtol):
    if dtype == torch.float64 and impl == "triton":
        pytest.skip("Triton kernels compute in fp32")
    dev = device_for(impl)
    torch.manual_seed(F_ + E + G)
    ps = [torch.randn(F_, E, dtype=dtype, device=dev) * 3, torch.randn(F_, E, dtype=dtype, device=dev),
          torch.rand(F_, E, dtype=dtype, device=dev) * 4 - 2, torch.randn(F_, dtype=dtype, device=dev),
          torch.randn(F_, dtype=dtype, device=dev)]
    grid = torch.linspace(-4, 4, G, dtype=dtype, device=dev)
    g = torch.randn(F_, G, dtype=dtype, device=dev)
    outs = {}
    for which in ("reference", impl):
        leaves = [p.clone().requires_grad_() for p in ps]
        t = kernels.psa_table(*leaves, 1.0, grid, impl=which)
        outs[which] = [t] + list(torch.autograd.grad(t, leaves, g))
    for name, a, b in zip(("table",) + PSA_PARAMS, outs[impl], outs["reference"]):
        assert a.dtype == dtype
        scale = b.abs().max().item() + 1.0
        torch.testing.assert_close(a, b, atol=atol * scale, rtol=rtol, msg=f"{name}")
