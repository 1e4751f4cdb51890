"""PSA / LerpPSA / BSpline modules against independent formulations, and LERP-PSA in eval
mode following every kind of parameter change (its table is built from the current
parameters on every call)."""

import pytest
import torch

from activations import PSA, BSpline, LerpPSA, ResidualLerpPSA

PARAMS = ("v_weight", "q_weight", "q_bias", "o_weight", "o_bias")


def psa_loop(x, m):
    """docs/METHOD.md section 3 expert by expert with an explicit softmax (independent of
    activations.psa_function)."""
    eps = m.epsilon.item()
    qs = [-(x - m.q_bias[:, k]) ** 2 / (m.q_weight[:, k] ** 2 + eps) for k in range(m.expansion)]
    top = torch.stack(qs).amax(0)
    ws = [torch.exp(q - top) for q in qs]
    den = sum(ws)
    mix = sum(w * m.v_weight[:, k] * x for k, w in enumerate(ws)) / den
    return m.o_weight * mix + m.o_bias


def lerp_loop(x, table, R):
    """Per-element LERP from docs/METHOD.md section 4, differentiable in x and table."""
    G = table.shape[1]
    u = (x + R) * ((G - 1) / (2 * R))
    j = torch.floor(u.detach()).clamp(0, G - 2).long()
    frac = u - j
    feat = torch.arange(x.shape[-1]).expand_as(j)
    left = table[feat, j]
    right = table[feat, j + 1]
    return left + frac * (right - left)


def perturbed(module):
    with torch.no_grad():
        for name in PARAMS:
            getattr(module, name).add_(0.2 * torch.randn_like(getattr(module, name)))
    return module


def grads(module, x, y, g):
    names = ["x"] + list(PARAMS)
    tensors = [x] + [getattr(module, n) for n in PARAMS]
    return dict(zip(names, torch.autograd.grad(y, tensors, g)))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(1, 1), (7, 13), (3, 5, 20)])
def test_psa_matches_loop(shape, dtype):
    m = perturbed(PSA(shape[-1], expansion=8)).to(dtype)
    x = (torch.randn(shape, dtype=dtype) * 3).requires_grad_()
    g = torch.randn(shape, dtype=dtype)
    a = grads(m, x, m(x), g)
    b = grads(m, x, psa_loop(x, m), g)
    tol = dict(atol=1e-5, rtol=1e-5) if dtype == torch.float32 else dict(atol=1e-11, rtol=1e-11)
    torch.testing.assert_close(m(x), psa_loop(x, m), **tol, msg="output")
    for k in a:
        torch.testing.assert_close(a[k], b[k], **tol, msg=f"grad {k}")


def test_psa_gradcheck_float64():
    m = perturbed(PSA(4, expansion=3)).double()
    x = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    params = tuple(getattr(m, n) for n in PARAMS)

    def f(x, *ps):
        from activations import psa_function
        return psa_function(x, *ps, m.epsilon)
    assert torch.autograd.gradcheck(f, (x,) + params)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("G", [33, 64])
@pytest.mark.parametrize("impl", ["reference", "auto"])
def test_lerp_psa_matches_table_of_loop(G, dtype, impl):
    F_ = 13
    m = perturbed(LerpPSA(F_, grid_size=G, impl=impl)).to(dtype).train()
    x = ((torch.rand(9, F_, dtype=dtype) - 0.5) * 12).requires_grad_()  # in and out of [-4, 4]
    g = torch.randn(9, F_, dtype=dtype)
    y = m(x)
    a = grads(m, x, y, g)
    t = torch.linspace(-4, 4, G, dtype=dtype).unsqueeze(1).expand(-1, F_)
    table = psa_loop(t, m).t()
    y2 = lerp_loop(x, table, 4.0)
    b = grads(m, x, y2, g)
    # fp32: slopes multiply table differences by (G-1)/2R, so allow 1e-4.
    tol = dict(atol=1e-4, rtol=1e-4) if dtype == torch.float32 else dict(atol=1e-10, rtol=1e-10)
    torch.testing.assert_close(y, y2, **tol, msg="output")
    for k in a:
        torch.testing.assert_close(a[k], b[k], **tol, msg=f"grad {k}")


def test_lerp_psa_equals_psa_on_grid_points():
    m = perturbed(LerpPSA(6)).eval()
    exact = perturbed(PSA(6))
    exact.load_state_dict(m.state_dict())
    t = torch.linspace(-4, 4, 64).unsqueeze(1).expand(-1, 6)
    with torch.no_grad():
        torch.testing.assert_close(m(t), exact(t), atol=1e-5, rtol=1e-5)


def test_residual_wrapper():
    r = ResidualLerpPSA(5)
    x = torch.randn(3, 5)
    torch.testing.assert_close(r(x), x + r.psa(x))
    assert set(r.state_dict()) == {f"psa.{n}" for n in PARAMS} | {"psa.epsilon"}


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-4), (torch.float64, 1e-11)])
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_residual_folded_into_table_matches_unfolded(dtype, tol, mode):
    # ResidualLerpPSA looks x up in T + t; the oracle is x + lerp(x, T) with T from the PSA
    # formula written in this file, in and far outside [-4, 4], output and every gradient.
    r = ResidualLerpPSA(11, grid_size=64)
    perturbed(r.psa)
    r = r.to(dtype).train(mode == "train")
    x = torch.cat([(torch.rand(20, 11, dtype=dtype) - 0.5) * 10,
                   (torch.rand(4, 11, dtype=dtype) - 0.5) * 100]).requires_grad_()
    g = torch.randn(24, 11, dtype=dtype)
    a = grads(r.psa, x, r(x), g)
    t = torch.linspace(-4, 4, 64, dtype=dtype).unsqueeze(1).expand(-1, 11)
    y2 = x + lerp_loop(x, psa_loop(t, r.psa).t(), 4.0)
    b = grads(r.psa, x, y2, g)
    torch.testing.assert_close(r(x), y2, atol=tol, rtol=tol, msg="output")
    for k in a:
        # Far outside the grid the table differences are multiplied by up to ~400 segments:
        # compare relative to the gradient's scale.
        scale = b[k].abs().max().item() + 1.0
        torch.testing.assert_close(a[k], b[k], atol=tol * scale, rtol=tol, msg=f"grad {k}")


# --- eval cache ---------------------------------------------------------------------------

def fresh_output(m, x):
    with torch.no_grad():
        return __import__("kernels").lerp(x, m.compute_table(), m.grid_range, impl="reference")


def test_eval_follows_an_optimizer_step():
    m = perturbed(LerpPSA(8)).eval()
    x = torch.randn(4, 8)
    with torch.no_grad():
        y0 = m(x)
        torch.testing.assert_close(m(x), y0, atol=0, rtol=0)   # the same table every call
    opt = torch.optim.AdamW(m.parameters(), lr=0.1)
    m.train()
    m(x).sum().backward()
    opt.step()
    m.eval()
    with torch.no_grad():
        y1 = m(x)
    assert not torch.allclose(y0, y1)
    torch.testing.assert_close(y1, fresh_output(m, x))


def test_eval_follows_a_step_taken_in_eval_mode():
    m = perturbed(LerpPSA(8)).eval()
    x = torch.randn(4, 8)
    with torch.no_grad():
        m(x)
    loss = m(x).sum()  # grad enabled: no cache, a differentiable table
    loss.backward()
    torch.optim.SGD(m.parameters(), lr=0.5).step()
    with torch.no_grad():
        torch.testing.assert_close(m(x), fresh_output(m, x))


def test_eval_follows_load_state_dict():
    a, b = perturbed(LerpPSA(8)).eval(), perturbed(LerpPSA(8)).eval()
    x = torch.randn(4, 8)
    with torch.no_grad():
        a(x)
        a.load_state_dict(b.state_dict())
        torch.testing.assert_close(a(x), b(x))


def test_eval_follows_data_swap_and_to():
    m = perturbed(LerpPSA(8)).eval()
    x = torch.randn(4, 8)
    with torch.no_grad():
        m(x)
        m.o_bias.data = m.o_bias.data + 1.0
        torch.testing.assert_close(m(x), fresh_output(m, x))
        m.to(torch.float64)
        y = m(x.double())
        assert y.dtype == torch.float64
        torch.testing.assert_close(y, fresh_output(m, x.double()))


def test_train_eval_switch_and_train_mode_recomputes():
    m = perturbed(LerpPSA(8)).eval()
    x = torch.randn(4, 8)
    with torch.no_grad():
        m(x)
    m.train()
    with torch.no_grad():
        m.v_weight.mul_(2.0)
    torch.testing.assert_close(m(x).detach(), fresh_output(m, x))
    m.eval()
    with torch.no_grad():
        torch.testing.assert_close(m(x), fresh_output(m, x))


@pytest.mark.parametrize("name,no_grad", [(n, True) for n in PARAMS] + [("epsilon", True), ("epsilon", False)])
def test_eval_follows_in_place_edits(name, no_grad):
    # Independent oracle: the PSA formula of this file, then a plain lerp. Parameters can
    # only be edited in place under no_grad; the epsilon buffer also with grad enabled.
    m = perturbed(LerpPSA(6)).eval()
    x = (torch.rand(5, 6) - 0.5) * 10
    with torch.no_grad():
        m(x)  # an eval call before the edit
    with torch.set_grad_enabled(not no_grad):
        tensor = getattr(m, name)
        if name == "epsilon":
            tensor.fill_(0.3)
        else:
            tensor.add_(0.5 * torch.randn_like(tensor))
    t = torch.linspace(-4, 4, 64).unsqueeze(1).expand(-1, 6)
    with torch.no_grad():
        expected = lerp_loop(x, psa_loop(t, m).t(), 4.0)
        torch.testing.assert_close(m(x), expected, atol=1e-5, rtol=1e-5)


def test_eval_with_grad_gives_parameter_gradients():
    m = perturbed(LerpPSA(8)).eval()
    x = torch.randn(4, 8)
    m(x).sum().backward()
    assert all(getattr(m, n).grad is not None and getattr(m, n).grad.abs().sum() > 0
               for n in ("v_weight", "o_weight", "o_bias"))


# --- B-spline module ----------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_bspline_module_any_leading_shape(dtype):
    m = BSpline(7).to(dtype)
    x = torch.randn(2, 3, 7, dtype=dtype)
    y = m(x)
    assert y.shape == x.shape and y.dtype == dtype
    torch.testing.assert_close(y, m(x.reshape(6, 7)).reshape(2, 3, 7))
    assert m.coefficients.shape == (7, 65)


def test_tv2_of_leaky_relu_init():
    m = BSpline(3)
    # leaky_relu has one kink of slope change 0.99 at 0: TV2 = 0.99 per feature.
    torch.testing.assert_close(m.tv2(), torch.tensor(3 * 0.99), atol=1e-5, rtol=0)


def test_training_after_an_inference_mode_eval():
    # The grid kept between calls must not be an inference tensor: a later training forward
    # saves it for the backward.
    m = LerpPSA(7)
    m.eval()
    with torch.inference_mode():
        m(torch.randn(3, 7))
    m.train()
    x = torch.randn(3, 7, requires_grad=True)
    m(x).sum().backward()
    assert x.grad is not None and m.v_weight.grad is not None


def test_psa_table_needs_an_expert():
    import kernels
    v = torch.zeros(3, 0)
    with pytest.raises(kernels.KernelArgumentError, match="at least one feature and one expert"):
        kernels.psa_table(v, v, v, torch.zeros(3), torch.zeros(3), 1.0, torch.linspace(-4, 4, 8))
