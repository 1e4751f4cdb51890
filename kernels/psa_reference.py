"""Reference PSA function and its lookup table (plain PyTorch autograd).

SPEC section 3: for feature i with E experts,
    q_k = (x - b_ik)^2 / (w_ik^2 + eps),  a = softmax_k(-q),  f_i(x) = o_i * sum_k a_k v_ik x + c_i.
The LERP-PSA table is f evaluated at the G grid points: T[i, j] = f_i(t_j).
"""
from __future__ import annotations

import torch


def psa_function(x, v_weight, q_weight, q_bias, o_weight, o_bias, epsilon):
    """The exact PSA function on ``x`` of shape ``(..., F)``."""
    xe = x.unsqueeze(-1)                                  # (..., F, 1)
    q = (xe - q_bias) ** 2 / (q_weight ** 2 + epsilon)    # (..., F, E)
    a = torch.softmax(-q, dim=-1)
    return o_weight * (a * v_weight * xe).sum(-1) + o_bias


def reference_psa_table(v_weight, q_weight, q_bias, o_weight, o_bias, epsilon, grid):
    """Table (F, G) of the PSA function at the 1-D ``grid`` points."""
    F_ = v_weight.shape[0]
    return psa_function(grid.unsqueeze(-1).expand(-1, F_), v_weight, q_weight, q_bias,
                        o_weight, o_bias, epsilon).t()
