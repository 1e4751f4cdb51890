"""The three ops as ``torch.library`` custom operators: ``lerp_psa::lerp``,
``lerp_psa::bspline`` and ``lerp_psa::psa_table``, each with a backward op.

Each op takes the concrete backend name (``impl``, already resolved by
``kernels.registry``) and calls that backend's plain launcher; a fake
(meta) implementation gives the output's shape and dtype, and
``register_autograd`` connects the forward to its backward op. So
``torch.compile(..., fullgraph=True)`` traces models that use them, in
train and eval mode, forward and backward, with the kernels as opaque calls
and no graph break. Only the inputs are saved for the backward; every
backend recomputes what it needs (segment index and fraction; the softmax).

Backward ops return an empty tensor for a gradient that is not needed
(custom operators cannot return ``None``).

Eager mode takes a shorter road to the same launchers: ``LookupFunction`` and
``PSATableFunction`` are plain ``torch.autograd.Function``s. A custom operator
costs a few hundred microseconds of Python per call in eager mode (argument
normalisation, the autograd wrapper, a redispatch), which on the small
activations of the paper's models (8192 x 24 in the Fashion-MNIST ResMLP at
h = 0.25) is more than the kernel itself. ``kernels.lerp`` and friends pick the
custom operator while ``torch.compile`` traces and the Function otherwise; both
call the same backend launchers, and the tests check both.
"""
from __future__ import annotations

from typing import Tuple

import torch
from torch import Tensor

from .registry import backend
from torch.autograd.function import once_differentiable

NS = "lerp_psa"


def _empty(like: Tensor) -> Tensor:
    return like.new_empty((0,))


def _shaped(like: Tensor) -> Tensor:
    """A contiguous tensor with the shape, dtype and device of ``like``."""
    return torch.empty(like.shape, dtype=like.dtype, device=like.device)


# --- lerp / bspline (same signature) ----------------------------------------------------------

def _define_lookup(op: str):
    @torch.library.custom_op(f"{NS}::{op}", mutates_args=())
    def forward(x: Tensor, params: Tensor, grid_range: float, impl: str) -> Tensor:
        return getattr(backend(impl), f"{op}_forward")(x, params, grid_range).contiguous()

    @forward.register_fake
    def _(x, params, grid_range, impl):
        return _shaped(x)

    @torch.library.custom_op(f"{NS}::{op}_backward", mutates_args=())
    def backward(x: Tensor, params: Tensor, grad_y: Tensor, grid_range: float, impl: str,
                 need_x: bool, need_params: bool) -> Tuple[Tensor, Tensor]:
        gx, gp = getattr(backend(impl), f"{op}_backward")(x, params, grad_y, grid_range,
                                                          need_x, need_params)
        return (gx.contiguous() if need_x else _empty(x),
                gp.contiguous() if need_params else _empty(params))

    @backward.register_fake
    def _(x, params, grad_y, grid_range, impl, need_x, need_params):
        return (_shaped(x) if need_x else _empty(x), _shaped(params) if need_params else _empty(params))

    def setup_context(ctx, inputs, output):
        x, params, grid_range, impl = inputs
        ctx.save_for_backward(x, params)
        ctx.grid_range, ctx.impl = grid_range, impl

    def grad(ctx, grad_y):
        x, params = ctx.saved_tensors
        need_x, need_p = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        gx, gp = backward(x, params, grad_y, ctx.grid_range, ctx.impl, need_x, need_p)
        return (gx if need_x else None), (gp if need_p else None), None, None

    forward.register_autograd(grad, setup_context=setup_context)
    return forward, backward


lerp_op, lerp_backward_op = _define_lookup("lerp")
bspline_op, bspline_backward_op = _define_lookup("bspline")


# --- psa_table --------------------------------------------------------------------------------

@torch.library.custom_op(f"{NS}::psa_table", mutates_args=())
def psa_table_op(v: Tensor, w: Tensor, b: Tensor, o: Tensor, c: Tensor, eps: Tensor, grid: Tensor,
                 impl: str) -> Tensor:
    return backend(impl).psa_table_forward(v, w, b, o, c, eps, grid).contiguous()


@psa_table_op.register_fake
def _(v, w, b, o, c, eps, grid, impl):
    return v.new_empty((v.shape[0], grid.shape[0]))


@torch.library.custom_op(f"{NS}::psa_table_backward", mutates_args=())
def psa_table_backward_op(v: Tensor, w: Tensor, b: Tensor, o: Tensor, c: Tensor, eps: Tensor,
                          grid: Tensor, grad_table: Tensor, impl: str
                          ) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    grads = backend(impl).psa_table_backward(v, w, b, o, c, eps, grid, grad_table)
    return tuple(g.contiguous() for g in grads)


@psa_table_backward_op.register_fake
def _(v, w, b, o, c, eps, grid, grad_table, impl):
    return _shaped(v), _shaped(w), _shaped(b), _shaped(o), _shaped(c)


def _psa_setup(ctx, inputs, output):
    v, w, b, o, c, eps, grid, impl = inputs
    ctx.save_for_backward(v, w, b, o, c, eps, grid)
    ctx.impl = impl


def _psa_grad(ctx, grad_table):
    grads = psa_table_backward_op(*ctx.saved_tensors, grad_table, ctx.impl)
    return (*(g if need else None for g, need in zip(grads, ctx.needs_input_grad[:5])),
            None, None, None)


psa_table_op.register_autograd(_psa_grad, setup_context=_psa_setup)


# --- eager autograd Functions (same launchers, less Python per call) ---------------------------

class LookupFunction(torch.autograd.Function):
    """``lerp`` / ``bspline`` (``op``) in eager mode; saves only ``x`` and the parameters."""

    @staticmethod
    def forward(ctx, x, params, grid_range, impl, op):
        ctx.save_for_backward(x, params)
        ctx.grid_range, ctx.impl, ctx.op = grid_range, impl, op
        return getattr(backend(impl), f"{op}_forward")(x, params, grid_range)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_y):
        x, params = ctx.saved_tensors
        need_x, need_p = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        gx, gp = getattr(backend(ctx.impl), f"{ctx.op}_backward")(
            x, params, grad_y.contiguous(), ctx.grid_range, need_x, need_p)
        return gx, gp, None, None, None


class PSATableFunction(torch.autograd.Function):
    """``psa_table`` in eager mode; saves only the inputs (the backward recomputes the softmax)."""

    @staticmethod
    def forward(ctx, v, w, b, o, c, eps, grid, impl):
        ctx.save_for_backward(v, w, b, o, c, eps, grid)
        ctx.impl = impl
        return backend(impl).psa_table_forward(v, w, b, o, c, eps, grid)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_table):
        saved = ctx.saved_tensors
        grads = backend(ctx.impl).psa_table_backward(*saved, grad_table.contiguous())
        return (*(g if need else None for g, need in zip(grads, ctx.needs_input_grad[:5])),
                None, None, None)
