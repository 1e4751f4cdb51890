"""Fused Triton kernels for per-feature LERP tables (LERP-PSA, SPEC section 4).

* forward: one pass computes index, fraction and interpolation for any
  leading shape (the input is viewed as (N, F)); math in fp32, output in the
  input dtype;
* backward: one pass recomputes index and fraction from ``x`` (the only
  tensor saved), writes the input gradient, and accumulates the table
  gradient of a block of features over a chunk of rows in a register tile
  (one-hot over the G grid points). Each program writes its fp32 partial
  table to its own slice of a buffer that is then summed in a fixed order,
  so the table gradient is bit-reproducible run to run (no atomics).

Also serves linear B-splines (``bspline_triton.py``): K knots on [-R, R] are a
K-point table. Runs on CUDA tensors, or on CPU tensors under TRITON_INTERPRET=1.
"""
from __future__ import annotations

import functools
import os

import torch
import triton
import triton.language as tl


@triton.jit
def _segment(x, R, step, G):
    # (x + R) / step with IEEE rounding (div_rn), as the reference, so every
    # input picks the same segment on every implementation.
    u = tl.div_rn(x + R, step)
    j = tl.minimum(tl.maximum(tl.floor(u), 0.0), (G - 2).to(tl.float32))
    return j.to(tl.int32), u - j


@triton.jit
def _lerp_fwd_kernel(x_ptr, t_ptr, y_ptr, numel, F, G, R, step, BLOCK: tl.constexpr):
    pid = tl.program_id(0).to(tl.int64)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    mask = offs < numel
    x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    feat = (offs % F).to(tl.int32)
    j, frac = _segment(x, R, step, G)
    base = feat * G + j
    left = tl.load(t_ptr + base, mask=mask, other=0.0).to(tl.float32)
    right = tl.load(t_ptr + base + 1, mask=mask, other=0.0).to(tl.float32)
    y = left + frac * (right - left)
    tl.store(y_ptr + offs, y.to(y_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _lerp_bwd_kernel(x_ptr, t_ptr, gy_ptr, gx_ptr, part_ptr, N, F, G, R, step, rows_per_prog,
                     NEED_GX: tl.constexpr, NEED_GT: tl.constexpr,
                     BLOCK_F: tl.constexpr, BLOCK_G: tl.constexpr):
    pid_n = tl.program_id(0)
    pid_f = tl.program_id(1)
    f_offs = pid_f * BLOCK_F + tl.arange(0, BLOCK_F)
    fmask = f_offs < F
    g_offs = tl.arange(0, BLOCK_G)
    acc = tl.zeros((BLOCK_F, BLOCK_G), dtype=tl.float32)
    row0 = pid_n * rows_per_prog
    row1 = tl.minimum(row0 + rows_per_prog, N)
    row_base = row0.to(tl.int64) * F
    for r in range(0, row1 - row0):
        offs = row_base + r * F + f_offs
        x = tl.load(x_ptr + offs, mask=fmask, other=0.0).to(tl.float32)
        gy = tl.load(gy_ptr + offs, mask=fmask, other=0.0).to(tl.float32)
        j, frac = _segment(x, R, step, G)
        if NEED_GX:
            t_idx = f_offs * G + j
            left = tl.load(t_ptr + t_idx, mask=fmask, other=0.0).to(tl.float32)
            right = tl.load(t_ptr + t_idx + 1, mask=fmask, other=0.0).to(tl.float32)
            gx = tl.div_rn(right - left, step) * gy
            tl.store(gx_ptr + offs, gx.to(gx_ptr.dtype.element_ty), mask=fmask)
        if NEED_GT:
            w_left = (1.0 - frac) * gy
            w_right = frac * gy
            hit = g_offs[None, :] - j[:, None]  # 0: left point, 1: right point
            acc += tl.where(hit == 0, w_left[:, None], 0.0) + tl.where(hit == 1, w_right[:, None], 0.0)
    if NEED_GT:
        out = part_ptr + pid_n.to(tl.int64) * F * G + f_offs[:, None] * G + g_offs[None, :]
        tl.store(out, acc, mask=fmask[:, None] & (g_offs[None, :] < G))


def _interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def check_device(x: torch.Tensor) -> None:
    if x.device.type != "cuda" and not _interpreting():
        raise RuntimeError("impl='triton' needs CUDA tensors (or TRITON_INTERPRET=1 set before "
                           "triton is imported, to run the kernels on the CPU)")


def _launch_fwd(x2, table, R, G):
    y = torch.empty_like(x2)
    numel = x2.numel()
    if numel:
        BLOCK = 1024
        _lerp_fwd_kernel[(triton.cdiv(numel, BLOCK),)](
            x2, table, y, numel, x2.shape[1], G, float(R), 2.0 * R / (G - 1), BLOCK=BLOCK)
    return y


@functools.lru_cache(maxsize=None)
def _sm_count(index: int) -> int:
    return torch.cuda.get_device_properties(index).multi_processor_count


def _programs_target(device) -> int:
    if device.type == "cuda":
        return 4 * _sm_count(device.index if device.index is not None else torch.cuda.current_device())
    return 8


def _launch_bwd(x2, table, gy, R, G, need_gx, need_gt):
    N, F_ = x2.shape
    gx = torch.empty_like(x2) if need_gx else None
    BLOCK_F = 32 if G <= 64 else 16
    BLOCK_G = triton.next_power_of_2(G)
    f_blocks = triton.cdiv(F_, BLOCK_F)
    # Enough row chunks to fill the device; each writes one fp32 partial table.
    n_blocks = max(1, min(triton.cdiv(N, 16), triton.cdiv(_programs_target(x2.device), f_blocks)))
    rows = triton.cdiv(N, n_blocks) if N else 1
    n_blocks = triton.cdiv(N, rows) if N else 1
    part = (torch.empty((n_blocks, F_, G), device=x2.device, dtype=torch.float32)
            if need_gt else None)
    if N:
        _lerp_bwd_kernel[(n_blocks, f_blocks)](
            x2, table, gy, gx if need_gx else x2, part if need_gt else x2, N, F_, G, float(R),
            2.0 * R / (G - 1), rows, NEED_GX=need_gx, NEED_GT=need_gt,
            BLOCK_F=BLOCK_F, BLOCK_G=BLOCK_G, num_warps=4)
    gt = None
    if need_gt:
        gt = part.sum(0) if N else torch.zeros((F_, G), device=x2.device, dtype=torch.float32)
    return gx, gt


class LerpTritonFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, table, grid_range: float, save_memory: bool):
        check_device(x)
        F_, G = table.shape
        x2 = x.contiguous().view(-1, F_) if F_ else x.reshape(0, 0)
        t = table.detach().contiguous()
        y = _launch_fwd(x2, t, grid_range, G)
        # Only x (and the small table) is saved; index and fraction are
        # recomputed in backward whatever save_memory says.
        ctx.save_for_backward(x2, t)
        ctx.grid_range = float(grid_range)
        ctx.shape = x.shape
        return y.view(x.shape)

    @staticmethod
    def backward(ctx, grad_y):
        x2, t = ctx.saved_tensors
        F_, G = t.shape
        gy = grad_y.contiguous().view(-1, F_).to(x2.dtype)
        gx, gt = _launch_bwd(x2, t, gy, ctx.grid_range, G,
                             ctx.needs_input_grad[0], ctx.needs_input_grad[1])
        return (gx.view(ctx.shape) if gx is not None else None,
                gt.to(t.dtype) if gt is not None else None, None, None)


def lerp_triton(x, table, grid_range, save_memory=False):
    return LerpTritonFunction.apply(x, table, float(grid_range), bool(save_memory))
