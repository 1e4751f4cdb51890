"""TV(2) of the linear B-spline on random, non-convex coefficients, against the formula.

docs/METHOD.md section 5: TV2 = sum over features i and inner knots k of
|c_i(k-1) - 2 c_i(k) + c_i(k+1)| / D. Random coefficients have second differences of both
signs, so a TV(2) that dropped the absolute value (or the 1/D, or a feature) fails here;
the leaky-ReLU initialisation cannot tell (its second differences are all >= 0).
"""
import math

import pytest
import torch

import kernels
from activations import BSpline
from models.registry import regularisation, regularised


def tv2_formula(coefficients, range_):
    """Plain Python floats: value and gradient (subgradient sign(0) = 0) of TV(2)."""
    c = coefficients.detach().double().tolist()
    K = len(c[0])
    D = 2 * range_ / (K - 1)
    total, grad = 0.0, [[0.0] * K for _ in c]
    for i, row in enumerate(c):
        for k in range(1, K - 1):
            d2 = row[k - 1] - 2 * row[k] + row[k + 1]
            total += abs(d2) / D
            s = (d2 > 0) - (d2 < 0)
            grad[i][k - 1] += s / D
            grad[i][k] -= 2 * s / D
            grad[i][k + 1] += s / D
    return total, torch.tensor(grad, dtype=torch.float64)


@pytest.mark.parametrize("F_,K,R", [(3, 65, 4.0), (7, 9, 1.5), (1, 3, 2.0)])
def test_tv2_on_random_coefficients_matches_the_formula(F_, K, R):
    torch.manual_seed(F_ * 100 + K)
    m = BSpline(F_, size=K, range_=R).double()
    with torch.no_grad():
        m.coefficients.copy_(torch.randn(F_, K, dtype=torch.float64))
    want, want_grad = tv2_formula(m.coefficients, R)
    d2 = m.coefficients[:, 2:] - 2 * m.coefficients[:, 1:-1] + m.coefficients[:, :-2]
    if d2.numel() > 1:
        assert (d2 > 0).any() and (d2 < 0).any()   # non-convex: both signs occur
    got = m.tv2()
    assert math.isclose(float(got.detach()), want, rel_tol=1e-12)
    got.backward()
    torch.testing.assert_close(m.coefficients.grad, want_grad, rtol=1e-12, atol=1e-12)
    assert math.isclose(float(kernels.tv2(m.coefficients.detach(), R)), want, rel_tol=1e-12)


def test_tv2_sums_over_every_bspline_layer():
    torch.manual_seed(3)
    layers = [BSpline(4, size=17, range_=2.0), BSpline(6, size=65, range_=4.0)]
    with torch.no_grad():
        for m in layers:
            m.coefficients.copy_(torch.randn_like(m.coefficients))
    model = torch.nn.Sequential(layers[0], torch.nn.Linear(4, 6), layers[1])
    want = sum(tv2_formula(m.coefficients, m.range_)[0] for m in layers)
    # the training loss's regulariser (training.loops) sums the term of every B-spline layer
    assert [mod for _, mod in regularised(model)] == layers
    assert math.isclose(float(regularisation(regularised(model)).detach()), want, rel_tol=1e-6)
    assert regularisation(regularised(torch.nn.Linear(2, 2))) is None
