"""Lookup-table activation kernels: the public ops and their dispatch.

* ``lerp(x, table, R)``: per-feature linear interpolation in a (F, G) table on
  [-R, R] (LERP-PSA, docs/METHOD.md section 4);
* ``bspline(x, coefficients, R)``: per-feature linear B-spline with K (odd)
  coefficients (docs/METHOD.md section 5);
* ``psa_table(v, w, b, o, c, epsilon, grid)``: the LERP-PSA table, the PSA
  function (docs/METHOD.md section 3) of every feature at the grid points.

``x`` is ``(..., F)`` with the feature last. ``impl`` picks a backend from
``kernels.registry`` (``'auto'``: Triton for CUDA tensors, the C/OpenMP kernels
for CPU tensors, the plain-PyTorch reference elsewhere or, with a one-line
warning, where no C compiler exists). Each op is a ``torch.library`` custom
operator (``kernels.ops``), so ``torch.compile(fullgraph=True)`` traces it; in
eager mode the same launchers are reached through a plain autograd Function,
which costs far less Python per call.

Numerics: the reference and CPU backends compute in fp64 for fp64 inputs and in
fp32 otherwise; Triton computes in fp32 for every input dtype (fp64 included).
Every backend returns the input dtype, accumulates parameter gradients in fp32
or better, returns them in the parameter dtype, and gives bit-identical
parameter gradients run to run (no atomics). Backward passes recompute what
they need from ``x`` and the parameters, so only those are kept (there is no
memory-saving switch: nothing else is saved).

Layout: ``_common.py`` (dtype rule, checks, errors), ``registry.py`` (the
backends as data, ``resolve``), ``ops.py`` (custom operators and autograd),
``backends/{reference,cpu,triton}.py`` (the launchers and kernels),
``csrc/lookup_cpu.c`` (the C kernels).
"""
from __future__ import annotations

import torch

from ._common import KernelArgumentError, check_bspline, check_lerp, check_psa
from .backends.reference import knot_spacing, psa_function, tv2
from .ops import LookupFunction, PSATableFunction, bspline_op, lerp_op, psa_table_op
from .registry import BACKENDS, IMPLS, available_impls, resolve

__all__ = ["lerp", "bspline", "psa_table", "psa_function", "tv2", "knot_spacing",
           "available_impls", "resolve_impl", "BACKENDS", "IMPLS", "KernelArgumentError"]


@torch.compiler.assume_constant_result
def _resolve(op: str, impl: str, device_type: str) -> str:
    # A constant for torch.compile: the choice depends on the arguments and the machine only.
    return resolve(op, impl, device_type)


def resolve_impl(op: str, impl: str, x: torch.Tensor) -> str:
    """The concrete backend name ``impl`` (possibly ``'auto'``) means for ``x``'s device."""
    return resolve(op, impl, x.device.type)


def lerp(x: torch.Tensor, table: torch.Tensor, grid_range: float, *,
         impl: str = "auto") -> torch.Tensor:
    """Per-feature linear interpolation in ``table`` (F, G) on [-R, R]; inputs
    outside the grid follow the edge segments."""
    check_lerp(x, table, grid_range)
    # Contiguous before the op, so that the saved x needs no second copy in the backward.
    if torch.compiler.is_compiling():
        return lerp_op(x.contiguous(), table, float(grid_range), _resolve("lerp", impl, x.device.type))
    return LookupFunction.apply(x.contiguous(), table, float(grid_range),
                                resolve("lerp", impl, x.device.type), "lerp")


def bspline(x: torch.Tensor, coefficients: torch.Tensor, range_: float, *,
            impl: str = "auto") -> torch.Tensor:
    """Per-feature linear B-spline with coefficients (F, K), K odd, on knots
    k * 2R / (K - 1); the edge segments extrapolate."""
    check_bspline(x, coefficients, range_)
    if torch.compiler.is_compiling():
        return bspline_op(x.contiguous(), coefficients, float(range_),
                          _resolve("bspline", impl, x.device.type))
    return LookupFunction.apply(x.contiguous(), coefficients, float(range_),
                                resolve("bspline", impl, x.device.type), "bspline")


def psa_table(v_weight, q_weight, q_bias, o_weight, o_bias, epsilon, grid, *,
              impl: str = "auto") -> torch.Tensor:
    """LERP-PSA table (F, G): the PSA function of every feature at the 1-D
    ``grid`` points, differentiable in the five PSA parameters. ``epsilon`` is a
    float or a one-element tensor (a tensor is read on the device: no host sync)."""
    check_psa(v_weight, q_weight, q_bias, o_weight, o_bias, grid)
    if not isinstance(epsilon, torch.Tensor):
        epsilon = torch.tensor([float(epsilon)], dtype=v_weight.dtype, device=v_weight.device)
    if torch.compiler.is_compiling():
        return psa_table_op(v_weight, q_weight, q_bias, o_weight, o_bias, epsilon, grid,
                            _resolve("psa_table", impl, v_weight.device.type))
    return PSATableFunction.apply(v_weight, q_weight, q_bias, o_weight, o_bias, epsilon, grid,
                                  resolve("psa_table", impl, v_weight.device.type))
