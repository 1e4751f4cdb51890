"""Reference backend: plain PyTorch, any device, the ground truth of the tests.

The formulas are written out once here, readably, with the backward passes
in closed form (gathers for the forward, ``index_add_`` for the parameter
gradients); every faster backend is tested against these launchers and
these against independent formulations (autograd of the formula written in
the tests, ``deepsplines``). Computes in fp64 for fp64 inputs, else fp32.
Index and fraction are recomputed in the backward from ``x``: with the
custom operators of ``kernels.ops`` only the inputs are saved, whatever the
backend.
"""
from __future__ import annotations

import torch

from .._common import compute_dtype, grid_scale, grid_step


# --- LERP (docs/METHOD.md section 4) ----------------------------------------------------------
#
# For feature i with table T[i, :] of G points on t_j = -R + j * h, h = 2R / (G - 1), and
# s = 1 / h = (G - 1) / (2R) (7.875 for G = 64, R = 4: exact in fp32, unlike h):
#   u = (x + R) * s,  j = clamp(floor(u), 0, G - 2),  frac = u - j  (unclamped: the edge
#   segments extrapolate),  y = T[i, j] + frac * (T[i, j + 1] - T[i, j]).
# Backward, for an upstream gradient g:
#   dy/dx = (T[i, j + 1] - T[i, j]) * s,  dT[i, j] += (1 - frac) g,  dT[i, j + 1] += frac g.

def lerp_index(x: torch.Tensor, grid_size: int, grid_range: float):
    """``(j, frac)`` for ``x``: the int64 left grid index clamped to [0, G - 2] and the
    unclamped position inside that segment."""
    # Multiply by the grid scale (G - 1) / (2R), as the authors' lookup does: floor() then
    # picks their segment for inputs within an ulp of a grid point (dividing by the inexact
    # step 2R / (G - 1) picks another one for about 7 inputs in 10 million).
    u = (x + grid_range) * grid_scale(grid_size, grid_range)
    # nan_to_num: a NaN input reads segment 0 and gives NaN, not an out-of-range index.
    j = torch.floor(u).clamp_(0, grid_size - 2).nan_to_num_(0.0)
    return j.long(), u - j


def _flat_index(j: torch.Tensor, points: int) -> torch.Tensor:
    # Feature i is the last dimension of x; its row of the (F, P) parameter starts at i * P.
    return j + torch.arange(j.shape[-1], device=j.device, dtype=torch.long) * points


def lerp_forward(x, table, grid_range):
    cdt = compute_dtype(x.dtype)
    F_, G = table.shape
    j, frac = lerp_index(x.to(cdt), G, grid_range)
    idx = _flat_index(j, G)
    t = table.to(cdt).reshape(-1)
    left = t[idx]
    return (left + frac * (t[idx + 1] - left)).to(x.dtype)


def _scatter_pair(idx, frac, g, size, dtype):
    """sum over rows of (1 - frac) g into idx and frac g into idx + 1 (fp32 or better)."""
    acc = torch.zeros(size, dtype=dtype, device=g.device)
    flat = idx.reshape(-1)
    acc.index_add_(0, flat, ((1.0 - frac) * g).reshape(-1))
    acc.index_add_(0, flat + 1, (frac * g).reshape(-1))
    return acc


def lerp_backward(x, table, grad_y, grid_range, need_x, need_table):
    cdt = compute_dtype(x.dtype)
    F_, G = table.shape
    j, frac = lerp_index(x.to(cdt), G, grid_range)
    idx = _flat_index(j, G)
    t = table.to(cdt).reshape(-1)
    g = grad_y.to(cdt)
    gx = gt = None
    if need_x:
        gx = ((t[idx + 1] - t[idx]) * grid_scale(G, grid_range) * g).to(x.dtype)
    if need_table:
        gt = _scatter_pair(idx, frac, g, F_ * G, cdt).view(F_, G).to(table.dtype)
    return gx, gt


# --- Linear B-spline (docs/METHOD.md section 5) -----------------------------------------------
#
# K (odd) coefficients c[i, :] at knots k * D, k = -(K//2) .. K//2, D = 2R / (K - 1).
#   s = clamp(x, -(K//2) D, (K//2 - 1) D) / D,  n = floor(s),  frac = s - n,
#   y = c[n] (1 - frac) + c[n + 1] frac + eL (c[1] - c[0]) + eR (c[K-1] - c[K-2]),
# where eL = min(x + (K//2) D, 0) / D and eR = max(x - (K//2 - 1) D, 0) / D are the signed
# distances past the end knots, in knot units (the edge segments continue linearly).
# Backward: dy/dx = (c[n + 1] - c[n]) / D; dc[n] += (1 - frac) g, dc[n + 1] += frac g,
# dc[1] += eL g, dc[0] -= eL g, dc[K-1] += eR g, dc[K-2] -= eR g.

def knot_spacing(size: int, range_: float) -> float:
    return grid_step(size, range_)


def bspline_index(x: torch.Tensor, size: int, spacing: float):
    """``(n, frac)``: the int64 index (0..K-2) of the left coefficient of the segment used
    and the clamped fraction inside it."""
    half = size // 2
    s = x.clamp(-half * spacing, (half - 1) * spacing) / spacing
    n = torch.floor(s).nan_to_num_(0.0)   # NaN input: a valid index, NaN output
    return (n + half).long(), s - n


def _extrapolation(x, size, spacing):
    half = size // 2
    left = (x + half * spacing).clamp(max=0) / spacing
    right = (x - (half - 1) * spacing).clamp(min=0) / spacing
    return left, right


def bspline_forward(x, coefficients, range_):
    cdt = compute_dtype(x.dtype)
    F_, K = coefficients.shape
    D = knot_spacing(K, range_)
    xc = x.to(cdt)
    c = coefficients.to(cdt)
    n, frac = bspline_index(xc, K, D)
    idx = _flat_index(n, K)
    cf = c.reshape(-1)
    y = cf[idx] * (1.0 - frac) + cf[idx + 1] * frac
    el, er = _extrapolation(xc, K, D)
    y = y + el * (c[:, 1] - c[:, 0]) + er * (c[:, -1] - c[:, -2])
    return y.to(x.dtype)


def bspline_backward(x, coefficients, grad_y, range_, need_x, need_coefficients):
    cdt = compute_dtype(x.dtype)
    F_, K = coefficients.shape
    D = knot_spacing(K, range_)
    xc = x.to(cdt)
    n, frac = bspline_index(xc, K, D)
    idx = _flat_index(n, K)
    cf = coefficients.to(cdt).reshape(-1)
    g = grad_y.to(cdt)
    gx = gc = None
    if need_x:
        gx = ((cf[idx + 1] - cf[idx]) / D * g).to(x.dtype)
    if need_coefficients:
        acc = _scatter_pair(idx, frac, g, F_ * K, cdt).view(F_, K)
        el, er = _extrapolation(xc, K, D)
        rows = g.reshape(-1, F_)
        gl = (el.reshape(-1, F_) * rows).sum(0)
        gr = (er.reshape(-1, F_) * rows).sum(0)
        acc[:, 1] += gl
        acc[:, 0] -= gl
        acc[:, -1] += gr
        acc[:, -2] -= gr
        gc = acc.to(coefficients.dtype)
    return gx, gc


def tv2(coefficients: torch.Tensor, range_: float) -> torch.Tensor:
    """Second-order total variation: sum_i || conv(c_i, [1, -2, 1]) / D ||_1."""
    D = knot_spacing(coefficients.shape[1], range_)
    c = coefficients
    return ((c[:, 2:] - 2.0 * c[:, 1:-1] + c[:, :-2]) / D).abs().sum()


# --- PSA table (docs/METHOD.md sections 3 and 4) ----------------------------------------------
#
# For feature i with E experts and grid point t:
#   den_k = w_k^2 + eps,  q_k = (t - b_k)^2 / den_k,  a = softmax_k(-q),
#   s = sum_k a_k v_k t,  T[i, j] = o s + c.
# Backward, for an upstream gradient G on T[i, j], summed over j:
#   dc += G,  do += G s,  dv_k += G o a_k t,
#   r_k = G o a_k (v_k t - s),  db_k += r_k 2 (t - b_k) / den_k,  dw_k += r_k 2 w_k (t - b_k)^2 / den_k^2.

def psa_function(x, v_weight, q_weight, q_bias, o_weight, o_bias, epsilon):
    """The exact PSA function on ``x`` of shape ``(..., F)`` (plain autograd)."""
    xe = x.unsqueeze(-1)                                  # (..., F, 1)
    q = (xe - q_bias) ** 2 / (q_weight ** 2 + epsilon)    # (..., F, E)
    a = torch.softmax(-q, dim=-1)
    return o_weight * (a * v_weight * xe).sum(-1) + o_bias


def _softmax_terms(v, w, b, eps, grid):
    t = grid.to(v.dtype)[None, :, None]                   # (1, G, 1)
    den = (w * w + eps)[:, None, :]                       # (F, 1, E)
    d = t - b[:, None, :]                                 # (F, G, E)
    a = torch.softmax(-(d * d) / den, dim=-1)
    s = (a * v[:, None, :] * t).sum(-1)                   # (F, G)
    return t, den, d, a, s


def psa_table_forward(v, w, b, o, c, eps, grid):
    cdt = compute_dtype(v.dtype)
    v_, w_, b_, o_, c_ = (p.to(cdt) for p in (v, w, b, o, c))
    _, _, _, _, s = _softmax_terms(v_, w_, b_, eps.to(cdt), grid.to(cdt))
    return (o_[:, None] * s + c_[:, None]).to(v.dtype)


def psa_table_backward(v, w, b, o, c, eps, grid, grad_table):
    cdt = compute_dtype(v.dtype)
    v_, w_, b_, o_ = (p.to(cdt) for p in (v, w, b, o))
    t, den, d, a, s = _softmax_terms(v_, w_, b_, eps.to(cdt), grid.to(cdt))
    G = grad_table.to(cdt)
    go = (G * o_[:, None])[:, :, None]                    # (F, G, 1)
    r = go * a * (v_[:, None, :] * t - s[:, :, None])
    gv = (go * a * t).sum(1)
    gb = (r * 2.0 * d / den).sum(1)
    gw = (r * 2.0 * w_[:, None, :] * d * d / (den * den)).sum(1)
    grads = (gv, gw, gb, (G * s).sum(1), G.sum(1))
    return tuple(g.to(p.dtype) for g, p in zip(grads, (v, w, b, o, c)))
