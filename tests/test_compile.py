"""The kernels as torch.library custom operators: ``opcheck`` for every op and backend,
and ``torch.compile(fullgraph=True)`` (Inductor, CPU) of a small ResMLP with every
activation, train and eval, forward and backward, against eager.

Inductor compiles are slow on a small machine, so the models are tiny (one block,
8 x 8 images) and there is one compiled model per activation.
"""
import os

import pytest
import torch

import kernels
from kernels import registry

OPS = ("lerp", "bspline", "psa_table")


def backends():
    out = []
    for b in registry.BACKENDS:
        ok, why = b.usable("cpu")
        out.append(pytest.param(b.name, marks=pytest.mark.skipif(not ok, reason=why or "unusable")))
    return out


def op_args(op, dtype=torch.float32):
    torch.manual_seed(1)
    if op == "psa_table":
        F_, E, G = 5, 3, 16
        ps = [torch.randn(F_, E) * 2, torch.randn(F_, E), torch.rand(F_, E) * 4 - 2,
              torch.randn(F_), torch.randn(F_)]
        ps = [p.to(dtype).requires_grad_() for p in ps]
        return (*ps, torch.tensor([0.7], dtype=dtype), torch.linspace(-4, 4, G, dtype=dtype))
    x = ((torch.rand(4, 3, 5) - 0.5) * 12).to(dtype).requires_grad_()
    return x, torch.randn(5, 9, dtype=dtype, requires_grad=True), 4.0


@pytest.mark.parametrize("impl", backends())
@pytest.mark.parametrize("op", OPS)
def test_opcheck(op, impl):
    args = op_args(op)
    torch.library.opcheck(getattr(torch.ops.lerp_psa, op).default, (*args, impl))


@pytest.mark.parametrize("op", ["lerp", "bspline"])
def test_opcheck_backward_ops_partial(op):
    # The backward ops with one of the two gradients switched off (empty output).
    x, p, R = op_args(op)
    gy = torch.randn_like(x)
    for need in [(True, False), (False, True)]:
        torch.library.opcheck(getattr(torch.ops.lerp_psa, f"{op}_backward").default,
                              (x.detach(), p.detach(), gy, R, "reference", *need))


def tiny_resmlp(act):
    from models import build_resmlp
    torch.manual_seed(0)
    return build_resmlp(act, 0.5, in_channels=1, img_size=8, num_classes=3, embed_dim=8,
                        depth=1, patch_size=4)


@pytest.mark.parametrize("act", ["relu", "bspline", "lerp_psa"])
def test_compiled_resmlp_matches_eager(act):
    torch._dynamo.reset()
    eager = tiny_resmlp(act)
    model = tiny_resmlp(act)
    model.load_state_dict(eager.state_dict())
    compiled = torch.compile(model, fullgraph=True, backend="inductor")
    x = torch.randn(6, 1, 8, 8) * 2
    target = torch.randint(0, 3, (6,))

    def step(m):
        m.train()
        loss = torch.nn.functional.cross_entropy(m(x), target)
        grads = torch.autograd.grad(loss, list(m.parameters()))
        return loss.detach(), grads

    (l0, g0), (l1, g1) = step(eager), step(compiled)
    torch.testing.assert_close(l1, l0, atol=1e-5, rtol=1e-5)
    for a, b in zip(g1, g0):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)

    # Eval: forward under no_grad (LERP-PSA's table cache path) after a parameter change,
    # and forward + backward with grad enabled.
    eager.eval(), model.eval()
    with torch.no_grad():
        compiled(x)
        for m in (eager, model):
            for p in m.parameters():
                p.mul_(1.1)
        torch.testing.assert_close(compiled(x), eager(x), atol=1e-5, rtol=1e-5)
    out_c, out_e = compiled(x), eager(x)
    ge = torch.autograd.grad(out_e.sum(), list(eager.parameters()))
    gc = torch.autograd.grad(out_c.sum(), list(model.parameters()))
    for a, b in zip(gc, ge):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
