"""LerpPSA in eval mode against an oracle written here, after in-place edits.

In eval mode ``LerpPSA`` must use the table of the current parameters, whatever changed them
(a table kept between calls would have to be rebuilt on every change; no key of the values
is free of a device synchronisation, so the table is built on every call, and these tests
pin that no edit is ever missed). They never call ``compute_table()`` or the kernels for the
expected values: the oracle is the PSA formula (docs/METHOD.md section 3) and then a plain
per-element linear interpolation (section 4), both written below in float64 Python. Each
parameter is edited in place in several ways after a first call, and the module is called
again under ``torch.no_grad()``, with autograd on, and with frozen parameters and autograd on.
"""
import math

import pytest
import torch

from activations import LerpPSA, ResidualLerpPSA

F_, E, G, R = 5, 3, 9, 2.0
PARAMS = ["v_weight", "q_weight", "q_bias", "o_weight", "o_bias"]


def psa_value(x, v, w, b, o, c, eps):
    """f(x) of one feature from plain floats: softmax over experts of -(x-b)^2/(w^2+eps)."""
    z = [-(x - bk) ** 2 / (wk ** 2 + eps) for wk, bk in zip(w, b)]
    top = max(z)
    e = [math.exp(zk - top) for zk in z]
    s = sum(e)
    return o * sum(ek / s * vk * x for ek, vk in zip(e, v)) + c


def lerp_value(x, row, R):
    """Linear interpolation of one feature's samples on G points over [-R, R], edges extended."""
    G_ = len(row)
    u = (x + R) * ((G_ - 1) / (2 * R))
    j = min(max(math.floor(u), 0), G_ - 2)
    frac = u - j
    return row[j] + frac * (row[j + 1] - row[j])


def oracle(m, x):
    """Expected LerpPSA output from the module's current parameter values (read as floats)."""
    P = {n: getattr(m, n).detach().double().tolist() for n in PARAMS}
    eps = float(m.epsilon.detach().double()[0])
    G_, R_ = m.grid_size, m.grid_range
    grid = [-R_ + j * 2 * R_ / (G_ - 1) for j in range(G_)]
    rows = [[psa_value(t, P["v_weight"][i], P["q_weight"][i], P["q_bias"][i],
                       P["o_weight"][i], P["o_bias"][i], eps) for t in grid]
            for i in range(m.num_features)]
    xs = x.detach().double().reshape(-1, m.num_features).tolist()
    out = [[lerp_value(v, rows[i], R_) for i, v in enumerate(row)] for row in xs]
    return torch.tensor(out, dtype=torch.float64).reshape(x.shape)


def make(impl="reference", residual=False):
    torch.manual_seed(11)
    mod = (ResidualLerpPSA(F_, expansion=E, grid_size=G, grid_range=R, impl=impl) if residual
           else LerpPSA(F_, expansion=E, grid_size=G, grid_range=R, impl=impl))
    m = mod.psa if residual else mod
    with torch.no_grad():  # move away from the initialisation so every parameter matters
        for n in PARAMS:
            getattr(m, n).add_(0.4 * torch.randn_like(getattr(m, n)))
    return mod.eval(), m


def inputs():
    torch.manual_seed(5)
    # inside the grid, and beyond both edges (edge segments extended)
    return torch.cat([(torch.rand(12, F_) - 0.5) * 2 * R, (torch.rand(4, F_) - 0.5) * 6 * R])


def check(mod, m, x, how, residual=False):
    if how == "no_grad":
        with torch.no_grad():
            y = mod(x)
    elif how == "grad":
        y = mod(x)
    else:  # "frozen": autograd on, parameters not trainable: the cache is used again
        for p in m.parameters():
            p.requires_grad_(False)
        try:
            y = mod(x)
        finally:
            for p in m.parameters():
                p.requires_grad_(True)
    want = oracle(m, x) + (x.double() if residual else 0)
    torch.testing.assert_close(y.detach().double(), want, rtol=1e-5, atol=1e-5)


def edit(m, name, style, k):
    """In-place edit number k of one parameter (or the epsilon buffer)."""
    t = getattr(m, name)
    g = torch.Generator().manual_seed(100 + k)
    delta = 0.3 * torch.randn(t.shape, generator=g, dtype=t.dtype)
    if name == "epsilon":
        new = 0.25 + 0.5 * k
        if style == "fill_":
            t.fill_(new)
        elif style == "mul_":
            t.mul_(new / float(t[0]))
        else:
            t.copy_(torch.tensor([new]))
        return
    if style == "add_":
        with torch.no_grad():
            t.add_(delta)
    elif style == "copy_":
        with torch.no_grad():
            t.copy_(t.detach() * 0.5 + delta)
    elif style == "index":
        with torch.no_grad():
            t[0] = t[0] + 1.0 + delta[0]
    elif style == "data_add_":
        t.data.add_(delta)
    else:
        raise ValueError(style)


@pytest.mark.parametrize("how", ["no_grad", "grad", "frozen"])
@pytest.mark.parametrize("style", ["add_", "copy_", "index"])
@pytest.mark.parametrize("name", PARAMS)
def test_cache_follows_in_place_parameter_edits(name, style, how):
    mod, m = make()
    x = inputs()
    check(mod, m, x, how)              # fills the cache (no_grad/frozen)
    for k in range(2):                 # two edits in a row: the key must move each time
        edit(m, name, style, k)
        check(mod, m, x, how)
        if how != "grad":
            check(mod, m, x, how)      # the rebuilt table is cached and reused


@pytest.mark.parametrize("how", ["grad", "no_grad", "frozen"])
@pytest.mark.parametrize("name", PARAMS)
def test_cache_follows_in_place_edits_through_data(name, how):
    """``p.data.add_(...)`` (old-style code, some optimisers): the storage is edited in place
    without autograd seeing it."""
    mod, m = make()
    x = inputs()
    check(mod, m, x, how)
    edit(m, name, "data_add_", 0)
    check(mod, m, x, how)


@pytest.mark.parametrize("how", ["no_grad", "grad", "frozen"])
@pytest.mark.parametrize("style", ["fill_", "mul_", "copy_"])
def test_cache_follows_in_place_epsilon_edits(style, how):
    mod, m = make()
    x = inputs()
    check(mod, m, x, how)
    for k in range(2):
        edit(m, "epsilon", style, k)
        check(mod, m, x, how)


@pytest.mark.parametrize("impl", ["reference", "auto"])
def test_cache_follows_edits_every_parameter_in_turn_residual(impl):
    """ResidualLerpPSA (x + LerpPSA(x)), all parameters edited one after the other with the
    cache warm in between, through the default kernels as well as the reference one."""
    mod, m = make(impl, residual=True)
    x = inputs()
    check(mod, m, x, "no_grad", residual=True)
    for k, name in enumerate(PARAMS + ["epsilon"]):
        edit(m, name, "fill_" if name == "epsilon" else "add_", k)
        check(mod, m, x, "no_grad", residual=True)


def test_optimizer_step_in_eval_mode_without_clearing():
    """An optimizer step taken while the module stays in eval mode, cache warm before it."""
    mod, m = make()
    x = inputs()
    check(mod, m, x, "no_grad")
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    (mod(x) ** 2).sum().backward()
    opt.step()
    check(mod, m, x, "no_grad")


def test_load_state_dict_and_tensor_swap_in_eval():
    mod, m = make()
    x = inputs()
    check(mod, m, x, "no_grad")
    other, _ = make()
    with torch.no_grad():
        for n in PARAMS:
            getattr(other, n).mul_(-1.5)
    mod.load_state_dict(other.state_dict())
    check(mod, m, x, "no_grad")
    m.o_weight.data = m.o_weight.data * 3.0 + 1.0   # a .data swap (new storage)
    check(mod, m, x, "no_grad")
