"""Triton backend: fused kernels for CUDA tensors, or CPU tensors under
``TRITON_INTERPRET=1`` (set before triton is first imported).

Every kernel computes in fp32 whatever the input dtype (fp32, bf16, fp16; fp64 inputs
are accepted and computed in fp32 too), writes outputs in the input dtype and
parameter gradients in fp32 (cast to the parameter dtype by the launcher). The
table gradient is reduced without atomics, in a fixed order, so it is bit-identical
run to run. Only ``x`` and the parameters are read in the backward: index and
fraction are recomputed.

Layout: kernels, each with its maths and a comment per argument directly above it;
then the launchers (tensors in, tensors out); ``scripts/gpu_compile_check.py`` compiles
every kernel for sm_80/sm_90 with the launch constants of ``LAUNCH_CONFIGS``.
"""
from __future__ import annotations

import functools
import os

import torch
import triton
import triton.language as tl

from .._common import grid_scale


# --- LERP: forward ----------------------------------------------------------------------------
#
# x is viewed as (N, F) with the feature last; table T is (F, G) on t_j = -R + j h,
# h = 2R / (G - 1), and s = 1 / h = (G - 1) / (2R). For element (n, i):
#   u = (x + R) * s,  j = clamp(floor(u), 0, G - 2),  frac = u - j   (unclamped: extrapolation)
#   y = T[i, j] + frac (T[i, j + 1] - T[i, j])
# A multiplication, as the authors' lookup (s = 7.875 for G = 64, R = 4, exact in fp32): one
# IEEE-rounded product like the reference's, so every backend picks the same segment for inputs
# within an ulp of a grid point (the compiler may fold ``u - j`` into an fma, which changes frac
# by at most an ulp of u, never the segment: floor reads the rounded product). A linear
# B-spline with K knots on [-R, R] is the K-point table of the same function, extrapolation
# included.

@triton.jit
def _segment(x, R, inv_h, G):
    # x: fp32 block of inputs; R: half-width of the grid; inv_h: s = (G - 1) / (2R);
    # G: grid points. Returns (j as int32, frac as fp32).
    u = (x + R) * inv_h
    j = tl.minimum(tl.maximum(tl.floor(u), 0.0), (G - 2).to(tl.float32))
    # NaN input: segment 0 (a valid address), so the output is NaN rather than a wild load.
    j = tl.where(j == j, j, 0.0)
    return j.to(tl.int32), u - j


@triton.jit
def _lerp_fwd_kernel(
    x_ptr,      # *x: (N, F) inputs, contiguous, fp32/bf16/fp16/fp64
    t_ptr,      # *T: (F, G) table, contiguous, any float dtype (read as fp32)
    y_ptr,      # *y: (N, F) output, the dtype of x
    numel,      # N * F
    F,          # features (last dimension of x)
    G,          # grid points per feature (>= 2)
    R,          # grid half-width: the grid spans [-R, R]
    inv_h,      # s = (G - 1) / (2R), grid points per unit of x
    BLOCK: tl.constexpr,  # elements per program
):
    pid = tl.program_id(0).to(tl.int64)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    mask = offs < numel
    x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    feat = (offs % F).to(tl.int32)
    j, frac = _segment(x, R, inv_h, G)
    base = feat * G + j
    left = tl.load(t_ptr + base, mask=mask, other=0.0).to(tl.float32)
    right = tl.load(t_ptr + base + 1, mask=mask, other=0.0).to(tl.float32)
    y = left + frac * (right - left)
    tl.store(y_ptr + offs, y.to(y_ptr.dtype.element_ty), mask=mask)


# --- LERP: backward ---------------------------------------------------------------------------
#
# For an upstream gradient gy(n, i), with j and frac recomputed from x:
#   gx(n, i) = (T[i, j + 1] - T[i, j]) * s * gy
#   dT[i, j] += (1 - frac) gy,   dT[i, j + 1] += frac gy      (summed over the rows n)
# Program (pn, pf) owns features [pf BLOCK_F, (pf + 1) BLOCK_F) and rows
# [pn rows_per_prog, (pn + 1) rows_per_prog); it accumulates its (BLOCK_F, BLOCK_G) table
# gradient in registers (one-hot over the grid points) and writes it to its own slice
# part[pn] of an fp32 buffer; the launcher sums the slices in a fixed order (no atomics).

@triton.jit
def _lerp_bwd_kernel(
    x_ptr,      # *x: (N, F) inputs, contiguous
    t_ptr,      # *T: (F, G) table, contiguous
    gy_ptr,     # *gy: (N, F) upstream gradient, contiguous, the dtype of x
    gx_ptr,     # *gx: (N, F) input gradient (written when NEED_GX), the dtype of x
    part_ptr,   # *part: (n_programs_along_N, F, G) fp32 partial table gradients (NEED_GT)
    N,          # rows
    F,          # features
    G,          # grid points
    R,          # grid half-width
    inv_h,      # s = (G - 1) / (2R), grid points per unit of x
    rows_per_prog,           # rows handled by one program along N
    NEED_GX: tl.constexpr,   # write gx
    NEED_GT: tl.constexpr,   # accumulate and write the partial table gradient
    BLOCK_F: tl.constexpr,   # features per program
    BLOCK_G: tl.constexpr,   # next power of two >= G (the register tile's width)
):
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
        j, frac = _segment(x, R, inv_h, G)
        if NEED_GX:
            t_idx = f_offs * G + j
            left = tl.load(t_ptr + t_idx, mask=fmask, other=0.0).to(tl.float32)
            right = tl.load(t_ptr + t_idx + 1, mask=fmask, other=0.0).to(tl.float32)
            gx = (right - left) * inv_h * gy
            tl.store(gx_ptr + offs, gx.to(gx_ptr.dtype.element_ty), mask=fmask)
        if NEED_GT:
            w_left = (1.0 - frac) * gy
            w_right = frac * gy
            hit = g_offs[None, :] - j[:, None]  # 0: left point, 1: right point
            acc += tl.where(hit == 0, w_left[:, None], 0.0) + tl.where(hit == 1, w_right[:, None], 0.0)
    if NEED_GT:
        out = part_ptr + pid_n.to(tl.int64) * F * G + f_offs[:, None] * G + g_offs[None, :]
        tl.store(out, acc, mask=fmask[:, None] & (g_offs[None, :] < G))


# --- PSA table --------------------------------------------------------------------------------
#
# For feature i with E experts and grid point t (docs/METHOD.md sections 3 and 4):
#   den_k = w_k^2 + eps,  q_k = -(t - b_k)^2 / den_k,  a = softmax_k(q),
#   s = sum_k a_k v_k t,  T[i, t] = o s + c.
# The softmax is computed online over the experts (running max m, normaliser z, and the
# running mixture), one (BLOCK_F, BLOCK_G) tile of features x grid points per program.

@triton.jit
def _softmax_stats(
    v_ptr, w_ptr, b_ptr,   # *v, *w, *b: (F, E) expert parameters, contiguous
    f_offs, fmask,         # this program's feature offsets and their mask
    t,                     # (BLOCK_G,) fp32 grid values
    E,                     # experts
    eps,                   # fp32 epsilon
    BLOCK_F: tl.constexpr, BLOCK_G: tl.constexpr,
):
    # Returns (m, z, s): the running max and normaliser of the softmax, and the mixture s.
    m = tl.full((BLOCK_F, BLOCK_G), float("-inf"), tl.float32)
    z = tl.zeros((BLOCK_F, BLOCK_G), tl.float32)
    s = tl.zeros((BLOCK_F, BLOCK_G), tl.float32)
    for k in range(0, E):
        vk = tl.load(v_ptr + f_offs * E + k, mask=fmask, other=0.0).to(tl.float32)
        wk = tl.load(w_ptr + f_offs * E + k, mask=fmask, other=1.0).to(tl.float32)
        bk = tl.load(b_ptr + f_offs * E + k, mask=fmask, other=0.0).to(tl.float32)
        d = t[None, :] - bk[:, None]
        q = -tl.div_rn(d * d, (wk * wk + eps)[:, None])
        m_new = tl.maximum(m, q)
        scale = tl.exp(m - m_new)
        p = tl.exp(q - m_new)
        z = z * scale + p
        s = s * scale + p * (vk[:, None] * t[None, :])
        m = m_new
    return m, z, s / z


@triton.jit
def _program_block(grid_ptr, F, G, BLOCK_F: tl.constexpr, BLOCK_G: tl.constexpr):
    # This program's features (offsets, mask) and the grid points (offsets, mask, fp32 values).
    f_offs = tl.program_id(0) * BLOCK_F + tl.arange(0, BLOCK_F)
    g_offs = tl.arange(0, BLOCK_G)
    gmask = g_offs < G
    t = tl.load(grid_ptr + g_offs, mask=gmask, other=0.0).to(tl.float32)
    return f_offs, f_offs < F, g_offs, gmask, t


@triton.jit
def _psa_table_fwd_kernel(
    v_ptr,      # *v: (F, E) expert values v_k
    w_ptr,      # *w: (F, E) expert widths w_k
    b_ptr,      # *b: (F, E) expert centres b_k
    o_ptr,      # *o: (F,) output scale
    c_ptr,      # *c: (F,) output bias
    eps_ptr,    # *eps: one element, the epsilon buffer (read on the device: no host sync)
    grid_ptr,   # *t: (G,) grid points
    out_ptr,    # *T: (F, G) fp32 table
    F,          # features
    E,          # experts
    G,          # grid points
    BLOCK_F: tl.constexpr,   # features per program
    BLOCK_G: tl.constexpr,   # next power of two >= G
):
    f_offs, fmask, g_offs, gmask, t = _program_block(grid_ptr, F, G, BLOCK_F, BLOCK_G)
    eps = tl.load(eps_ptr).to(tl.float32)
    _, _, s = _softmax_stats(v_ptr, w_ptr, b_ptr, f_offs, fmask, t, E, eps, BLOCK_F, BLOCK_G)
    o = tl.load(o_ptr + f_offs, mask=fmask, other=0.0).to(tl.float32)
    c = tl.load(c_ptr + f_offs, mask=fmask, other=0.0).to(tl.float32)
    table = o[:, None] * s + c[:, None]
    tl.store(out_ptr + f_offs[:, None] * G + g_offs[None, :], table,
             mask=fmask[:, None] & gmask[None, :])


# Backward, for an upstream gradient Gt on T[i, t], summed over the grid inside the program
# (deterministic, no atomics), with a_k = exp(q_k - m) / z recomputed:
#   dc = sum Gt,  do = sum Gt s,  dv_k = sum Gt o a_k t,
#   r_k = Gt o a_k (v_k t - s),  db_k = sum r_k 2 (t - b_k) / den_k,
#   dw_k = sum r_k 2 w_k (t - b_k)^2 / den_k^2.

@triton.jit
def _psa_table_bwd_kernel(
    v_ptr, w_ptr, b_ptr,   # *v, *w, *b: (F, E) expert parameters
    o_ptr,                 # *o: (F,) output scale
    eps_ptr,               # *eps: one element
    grid_ptr,              # *t: (G,) grid points
    gt_ptr,                # *Gt: (F, G) upstream gradient of the table, contiguous
    gv_ptr, gw_ptr, gb_ptr,  # *dv, *dw, *db: (F, E) fp32 outputs
    go_ptr, gc_ptr,        # *do, *dc: (F,) fp32 outputs
    F, E, G,               # features, experts, grid points
    BLOCK_F: tl.constexpr,  # features per program
    BLOCK_G: tl.constexpr,  # next power of two >= G
):
    f_offs, fmask, g_offs, gmask, t = _program_block(grid_ptr, F, G, BLOCK_F, BLOCK_G)
    eps = tl.load(eps_ptr).to(tl.float32)
    m, z, s = _softmax_stats(v_ptr, w_ptr, b_ptr, f_offs, fmask, t, E, eps, BLOCK_F, BLOCK_G)
    mask2 = fmask[:, None] & gmask[None, :]
    gt = tl.load(gt_ptr + f_offs[:, None] * G + g_offs[None, :], mask=mask2, other=0.0).to(tl.float32)
    o = tl.load(o_ptr + f_offs, mask=fmask, other=0.0).to(tl.float32)
    tl.store(gc_ptr + f_offs, tl.sum(gt, axis=1), mask=fmask)
    tl.store(go_ptr + f_offs, tl.sum(gt * s, axis=1), mask=fmask)
    go_ = gt * o[:, None]
    for k in range(0, E):
        vk = tl.load(v_ptr + f_offs * E + k, mask=fmask, other=0.0).to(tl.float32)
        wk = tl.load(w_ptr + f_offs * E + k, mask=fmask, other=1.0).to(tl.float32)
        bk = tl.load(b_ptr + f_offs * E + k, mask=fmask, other=0.0).to(tl.float32)
        den = (wk * wk + eps)[:, None]
        d = t[None, :] - bk[:, None]
        a = tl.exp(-tl.div_rn(d * d, den) - m) / z
        ga = go_ * a
        r = ga * (vk[:, None] * t[None, :] - s)
        gv = tl.sum(ga * t[None, :], axis=1)
        gb = tl.sum(r * 2.0 * d / den, axis=1)
        gw = tl.sum(r * 2.0 * wk[:, None] * d * d / (den * den), axis=1)
        tl.store(gv_ptr + f_offs * E + k, gv, mask=fmask)
        tl.store(gb_ptr + f_offs * E + k, gb, mask=fmask)
        tl.store(gw_ptr + f_offs * E + k, gw, mask=fmask)


# --- launch constants (shared with scripts/gpu_compile_check.py) -------------------------------

LERP_FWD_BLOCK = 1024
LERP_BWD_WARPS = 4


def lerp_bwd_blocks(G: int):
    """(BLOCK_F, BLOCK_G) of the LERP backward for a G-point table."""
    return (32 if G <= 64 else 16), triton.next_power_of_2(G)


def psa_blocks(G: int):
    """(BLOCK_F, BLOCK_G) of the PSA-table kernels: about 1024 tile elements. (2048, as
    first written, needed all 255 registers per thread on sm_80/sm_90 with 4 warps:
    scripts/gpu_compile_check.py.)"""
    BLOCK_G = triton.next_power_of_2(G)
    return max(1, min(32, 1024 // BLOCK_G)), BLOCK_G


# --- launchers --------------------------------------------------------------------------------

def _interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def usable(device_type: str):
    """(ok, reason): CUDA tensors, or CPU tensors under the interpreter."""
    if device_type == "cuda" or (device_type == "cpu" and _interpreting()):
        return True, ""
    return False, ("impl='triton' needs CUDA tensors (or TRITON_INTERPRET=1 set before triton "
                   "is imported, to run the kernels on the CPU)")


@functools.lru_cache(maxsize=None)
def _sm_count(index: int) -> int:
    return torch.cuda.get_device_properties(index).multi_processor_count


def _programs_target(device) -> int:
    if device.type == "cuda":
        return 4 * _sm_count(device.index if device.index is not None else torch.cuda.current_device())
    return 8


def lerp_forward(x, table, grid_range):
    F_, G = table.shape
    x2 = x.contiguous().view(-1, F_) if F_ else x.reshape(0, 0)
    y = torch.empty_like(x2)
    numel = x2.numel()
    if numel:
        _lerp_fwd_kernel[(triton.cdiv(numel, LERP_FWD_BLOCK),)](
            x2, table.detach().contiguous(), y, numel, F_, G, float(grid_range),
            grid_scale(G, grid_range), BLOCK=LERP_FWD_BLOCK)
    return y.view(x.shape)


def lerp_backward(x, table, grad_y, grid_range, need_x, need_table):
    F_, G = table.shape
    x2 = x.contiguous().view(-1, F_) if F_ else x.reshape(0, 0)
    gy = grad_y.to(x.dtype).contiguous().view(x2.shape)
    N = x2.shape[0]
    gx = torch.empty_like(x2) if need_x else None
    BLOCK_F, BLOCK_G = lerp_bwd_blocks(G)
    f_blocks = triton.cdiv(F_, BLOCK_F) if F_ else 1
    # Enough row chunks to fill the device; each writes one fp32 partial table.
    n_blocks = max(1, min(triton.cdiv(N, 16), triton.cdiv(_programs_target(x2.device), f_blocks)))
    rows = triton.cdiv(N, n_blocks) if N else 1
    n_blocks = triton.cdiv(N, rows) if N else 1
    part = (torch.empty((n_blocks, F_, G), device=x2.device, dtype=torch.float32)
            if need_table else None)
    if N and F_:
        _lerp_bwd_kernel[(n_blocks, f_blocks)](
            x2, table.detach().contiguous(), gy, gx if need_x else x2, part if need_table else x2,
            N, F_, G, float(grid_range), grid_scale(G, grid_range), rows,
            NEED_GX=need_x, NEED_GT=need_table, BLOCK_F=BLOCK_F, BLOCK_G=BLOCK_G,
            num_warps=LERP_BWD_WARPS)
    gt = None
    if need_table:
        gt = part.sum(0) if N else torch.zeros((F_, G), device=x2.device, dtype=torch.float32)
        gt = gt.to(table.dtype)
    return (gx.view(x.shape) if need_x else None), gt


bspline_forward = lerp_forward
bspline_backward = lerp_backward


def psa_table_forward(v, w, b, o, c, eps, grid):
    ps = [t.detach().contiguous() for t in (v, w, b, o, c)]
    g = grid.detach().to(torch.float32).contiguous()
    F_, E = v.shape
    G = g.numel()
    BLOCK_F, BLOCK_G = psa_blocks(G)
    out = torch.empty(F_, G, device=v.device, dtype=torch.float32)
    if F_:
        _psa_table_fwd_kernel[(triton.cdiv(F_, BLOCK_F),)](
            *ps, eps.detach().reshape(-1), g, out, F_, E, G, BLOCK_F=BLOCK_F, BLOCK_G=BLOCK_G)
    return out.to(v.dtype)


def psa_table_backward(v, w, b, o, c, eps, grid, grad_table):
    v_, w_, b_, o_ = (t.detach().contiguous() for t in (v, w, b, o))
    g = grid.detach().to(torch.float32).contiguous()
    F_, E = v.shape
    G = g.numel()
    BLOCK_F, BLOCK_G = psa_blocks(G)
    f32 = dict(device=v.device, dtype=torch.float32)
    gv, gw, gb = (torch.empty(F_, E, **f32) for _ in range(3))
    go, gc = torch.empty(F_, **f32), torch.empty(F_, **f32)
    if F_:
        _psa_table_bwd_kernel[(triton.cdiv(F_, BLOCK_F),)](
            v_, w_, b_, o_, eps.detach().reshape(-1), g, grad_table.contiguous(),
            gv, gw, gb, go, gc, F_, E, G, BLOCK_F=BLOCK_F, BLOCK_G=BLOCK_G)
    return tuple(t.to(p.dtype) for t, p in zip((gv, gw, gb, go, gc), (v, w, b, o, c)))
