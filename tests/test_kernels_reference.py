"""The reference backend (``impl='reference'``) against independent formulations.

LERP: plain autograd of the docs/METHOD.md section 4 formula (gather + fraction).
B-spline: the ``deepsplines`` package (DeepBSpline 'fc'), and plain autograd.
PSA table: plain autograd of the docs/METHOD.md section 3 formula written here.
"""
import pytest
import torch

import kernels
from tests.oracles import need_module

SHAPES = [(1, 1), (7, 13), (129, 96), (3, 5, 200)]
TOL = {torch.float32: dict(atol=1e-5, rtol=1e-5), torch.float64: dict(atol=1e-10, rtol=1e-10)}


def lerp_formula(x, table, R):
    """docs/METHOD.md section 4 written directly with differentiable torch ops."""
    F_, G = table.shape
    u = (x + R) * ((G - 1) / (2 * R))  # a product, as the authors' lookup (see lerp_index)
    j = torch.floor(u.detach()).clamp(0, G - 2)
    frac = u - j
    jl = j.long()
    flat = table.reshape(-1)
    off = torch.arange(F_, device=x.device) * G
    left = flat[jl + off]
    right = flat[jl + 1 + off]
    return left + frac * (right - left)


def make_inputs(shape, G, dtype, device, spread=12.0):
    F_ = shape[-1]
    x = ((torch.rand(shape, dtype=dtype, device=device) - 0.5) * spread).requires_grad_()
    table = torch.randn(F_, G, dtype=dtype, device=device, requires_grad=True)
    return x, table


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("G", [33, 64, 128])
def test_lerp_reference_matches_formula(shape, G, dtype, device):
    R = 4.0
    x, table = make_inputs(shape, G, dtype, device)
    g = torch.randn(shape, dtype=dtype, device=device)
    y = kernels.lerp(x, table, R, impl="reference")
    gx, gt = torch.autograd.grad(y, (x, table), g)
    x2, t2 = x.detach().clone().requires_grad_(), table.detach().clone().requires_grad_()
    y2 = lerp_formula(x2, t2, R)
    gx2, gt2 = torch.autograd.grad(y2, (x2, t2), g)
    assert y.dtype == dtype
    torch.testing.assert_close(y, y2, **TOL[dtype], msg="output")
    torch.testing.assert_close(gx, gx2, **TOL[dtype], msg="input grad")
    torch.testing.assert_close(gt, gt2, **TOL[dtype], msg="table grad")


@pytest.mark.parametrize("impl", ["reference", "auto"])
def test_lerp_extrapolates_linearly_outside_grid(impl):
    R, G = 4.0, 64
    table = torch.randn(3, G, dtype=torch.float64)
    x = torch.tensor([[-50.0, 7.3, -4.0]], dtype=torch.float64)
    y = kernels.lerp(x, table, R, impl=impl)
    h = 2 * R / (G - 1)
    left = table[0, 0] + (-50.0 + R) / h * (table[0, 1] - table[0, 0])
    right = table[1, G - 2] + ((7.3 + R) / h - (G - 2)) * (table[1, G - 1] - table[1, G - 2])
    torch.testing.assert_close(y[0, 0], left)
    torch.testing.assert_close(y[0, 1], right)
    torch.testing.assert_close(y[0, 2], table[2, 0])


def test_lerp_gradcheck_float64():
    x, table = make_inputs((5, 7), 16, torch.float64, "cpu", spread=11.0)
    assert torch.autograd.gradcheck(lambda a, b: kernels.lerp(a, b, 4.0, impl="reference"), (x, table))


def test_lerp_rejects_bad_shapes():
    with pytest.raises(ValueError, match="features"):
        kernels.lerp(torch.randn(2, 5), torch.randn(4, 8), 4.0)
    with pytest.raises(ValueError, match="unknown lerp implementation"):
        kernels.lerp(torch.randn(2, 4), torch.randn(4, 8), 4.0, impl="cuda-magic")


# --- B-spline -----------------------------------------------------------------------------

def deepspline(F_, coefficients):
    ds = need_module("deepsplines.ds_modules.dsnn", "pip install deepsplines==1.0.0")
    ref = ds.DeepBSpline("fc", F_, size=65, range_=4, init="leaky_relu")
    with torch.no_grad():
        ref.coefficients_vect.copy_(coefficients.reshape(-1))
    return ref


@pytest.mark.parametrize("F_", [1, 13, 96])
def test_bspline_reference_matches_deepsplines(F_):
    from activations import BSpline
    torch.manual_seed(F_)
    ours = BSpline(F_, size=65, range_=4.0, impl="reference")
    with torch.no_grad():
        ours.coefficients.add_(0.3 * torch.randn_like(ours.coefficients))
    ref = deepspline(F_, ours.coefficients.detach())
    # Inputs inside and far outside [-4, 4].
    x = torch.cat([(torch.rand(64, F_) - 0.5) * 10, (torch.rand(8, F_) - 0.5) * 200])
    g = torch.randn_like(x)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    y1, y2 = ours(x1), ref(x2)
    y1.backward(g)
    y2.backward(g)
    tol = dict(atol=2e-5, rtol=1e-5)
    torch.testing.assert_close(y1, y2, **tol, msg="output")
    torch.testing.assert_close(x1.grad, x2.grad, **tol, msg="input grad")
    torch.testing.assert_close(ours.coefficients.grad.reshape(-1), ref.coefficients_vect.grad,
                               atol=1e-4, rtol=1e-5, msg="coefficient grad")
    tv_ref = ref.totalVariation(mode="additive").sum()
    torch.testing.assert_close(ours.tv2(), tv_ref, atol=1e-4, rtol=1e-5, msg="TV2")


def test_bspline_default_init_is_leaky_relu():
    from activations import BSpline
    m = BSpline(4, impl="reference")
    x = torch.linspace(-3.9, 3.9, 41).unsqueeze(1).expand(-1, 4)
    torch.testing.assert_close(m(x), torch.nn.functional.leaky_relu(x, 0.01), atol=1e-6, rtol=0)


def bspline_formula(x, c, range_):
    """docs/METHOD.md section 5 written directly with differentiable torch ops."""
    F_, K = c.shape
    D = 2 * range_ / (K - 1)
    half = K // 2
    xc = x.clamp(-half * D, (half - 1) * D)
    n = torch.floor(xc.detach() / D)
    frac = xc / D - n
    idx = (n + half).long() + torch.arange(F_) * K
    flat = c.reshape(-1)
    y = flat[idx] * (1 - frac) + flat[idx + 1] * frac
    y = y + torch.clamp(x + half * D, max=0) * (c[:, 1] - c[:, 0]) / D
    return y + torch.clamp(x - (half - 1) * D, min=0) * (c[:, -1] - c[:, -2]) / D


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("K", [3, 33, 65])
def test_bspline_reference_matches_formula(shape, K, dtype):
    x = ((torch.rand(shape, dtype=dtype) - 0.5) * 14).requires_grad_()
    c = torch.randn(shape[-1], K, dtype=dtype, requires_grad=True)
    g = torch.randn(shape, dtype=dtype)
    y = kernels.bspline(x, c, 4.0, impl="reference")
    gx, gc = torch.autograd.grad(y, (x, c), g)
    x2, c2 = x.detach().clone().requires_grad_(), c.detach().clone().requires_grad_()
    y2 = bspline_formula(x2, c2, 4.0)
    gx2, gc2 = torch.autograd.grad(y2, (x2, c2), g)
    tol = TOL[dtype] if dtype == torch.float64 else dict(atol=5e-5, rtol=1e-5)
    torch.testing.assert_close(y, y2, **tol, msg="output")
    # Where x is clamped, autograd of the formula sends the slope through the
    # extrapolation term instead; both equal the edge slope.
    torch.testing.assert_close(gx, gx2, **tol, msg="input grad")
    torch.testing.assert_close(gc, gc2, **tol, msg="coefficient grad")


def test_bspline_gradcheck_float64():
    x = ((torch.rand(6, 5, dtype=torch.float64) - 0.5) * 12).requires_grad_()
    c = torch.randn(5, 9, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: kernels.bspline(a, b, 4.0, impl="reference"), (x, c))


def test_bspline_rejects_even_size():
    with pytest.raises(ValueError, match="odd"):
        kernels.bspline(torch.randn(2, 3), torch.randn(3, 8), 4.0)


# --- PSA table ----------------------------------------------------------------------------

def psa_table_formula(v, w, b, o, c, eps, grid):
    """docs/METHOD.md section 3 at the grid points, expert by expert, plain autograd."""
    t = grid[None, :]                                            # (1, G)
    qs = [-(t - b[:, k:k + 1]) ** 2 / (w[:, k:k + 1] ** 2 + eps) for k in range(v.shape[1])]
    top = torch.stack(qs).amax(0)
    ws = [torch.exp(q - top) for q in qs]
    mix = sum(wk * v[:, k:k + 1] * t for k, wk in enumerate(ws)) / sum(ws)
    return o[:, None] * mix + c[:, None]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("F_,E,G", [(1, 1, 2), (13, 8, 33), (5, 3, 64)])
def test_psa_table_reference_matches_formula(F_, E, G, dtype):
    torch.manual_seed(F_ * E)
    ps = [torch.randn(F_, E, dtype=dtype) * 3, torch.randn(F_, E, dtype=dtype),
          torch.rand(F_, E, dtype=dtype) * 4 - 2, torch.randn(F_, dtype=dtype), torch.randn(F_, dtype=dtype)]
    grid = torch.linspace(-4, 4, G, dtype=dtype)
    g = torch.randn(F_, G, dtype=dtype)
    outs = []
    for fn in (lambda *p: kernels.psa_table(*p, 0.7, grid, impl="reference"),
               lambda *p: psa_table_formula(*p, 0.7, grid)):
        leaves = [p.clone().requires_grad_() for p in ps]
        t = fn(*leaves)
        outs.append([t] + list(torch.autograd.grad(t, leaves, g)))
    tol = TOL[dtype] if dtype == torch.float64 else dict(atol=2e-5, rtol=1e-5)
    for name, a, b in zip(("table", "v", "w", "b", "o", "c"), *outs):
        scale = b.abs().max().item() + 1.0
        torch.testing.assert_close(a, b, atol=tol["atol"] * scale, rtol=tol["rtol"], msg=name)
