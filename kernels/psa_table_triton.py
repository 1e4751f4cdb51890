"""PSA lookup table in Triton: T[i, j] = f_i(t_j) for a block of features and
all grid points per program, with an online softmax over the experts; the
backward recomputes the softmax and reduces each parameter gradient over the
grid inside the program (deterministic, no atomics)."""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from .lerp_triton import check_device


@triton.jit
def _softmax_stats(v_ptr, w_ptr, b_ptr, f_offs, fmask, t, E, eps, BLOCK_F: tl.constexpr,
                   BLOCK_G: tl.constexpr):
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
    """This program's features (offsets, mask) and the grid points (offsets, mask, values)."""
    f_offs = tl.program_id(0) * BLOCK_F + tl.arange(0, BLOCK_F)
    g_offs = tl.arange(0, BLOCK_G)
    gmask = g_offs < G
    t = tl.load(grid_ptr + g_offs, mask=gmask, other=0.0).to(tl.float32)
    return f_offs, f_offs < F, g_offs, gmask, t


@triton.jit
def _psa_table_fwd_kernel(v_ptr, w_ptr, b_ptr, o_ptr, c_ptr, grid_ptr, out_ptr, F, E, G, eps,
                          BLOCK_F: tl.constexpr, BLOCK_G: tl.constexpr):
    f_offs, fmask, g_offs, gmask, t = _program_block(grid_ptr, F, G, BLOCK_F, BLOCK_G)
    _, _, s = _softmax_stats(v_ptr, w_ptr, b_ptr, f_offs, fmask, t, E, eps, BLOCK_F, BLOCK_G)
    o = tl.load(o_ptr + f_offs, mask=fmask, other=0.0).to(tl.float32)
    c = tl.load(c_ptr + f_offs, mask=fmask, other=0.0).to(tl.float32)
    table = o[:, None] * s + c[:, None]
    tl.store(out_ptr + f_offs[:, None] * G + g_offs[None, :], table,
             mask=fmask[:, None] & gmask[None, :])


@triton.jit
def _psa_table_bwd_kernel(v_ptr, w_ptr, b_ptr, o_ptr, grid_ptr, gt_ptr, gv_ptr, gw_ptr, gb_ptr,
                          go_ptr, gc_ptr, F, E, G, eps,
                          BLOCK_F: tl.constexpr, BLOCK_G: tl.constexpr):
    f_offs, fmask, g_offs, gmask, t = _program_block(grid_ptr, F, G, BLOCK_F, BLOCK_G)
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


def _blocks(G):
    BLOCK_G = triton.next_power_of_2(G)
    return max(1, min(32, 2048 // BLOCK_G)), BLOCK_G


class PSATableTritonFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, v, w, b, o, c, epsilon, grid):
        check_device(v)
        ps = [t.detach().contiguous() for t in (v, w, b, o, c)]
        g = grid.detach().to(torch.float32).contiguous()
        F_, E = v.shape
        G = g.numel()
        BLOCK_F, BLOCK_G = _blocks(G)
        out = torch.empty(F_, G, device=v.device, dtype=torch.float32)
        _psa_table_fwd_kernel[(triton.cdiv(F_, BLOCK_F),)](
            *ps, g, out, F_, E, G, float(epsilon), BLOCK_F=BLOCK_F, BLOCK_G=BLOCK_G)
        ctx.save_for_backward(*ps[:4], g)
        ctx.eps = float(epsilon)
        ctx.dtypes = [t.dtype for t in (v, w, b, o, c)]
        return out.to(v.dtype)

    @staticmethod
    def backward(ctx, grad_table):
        v, w, b, o, g = ctx.saved_tensors
        F_, E = v.shape
        G = g.numel()
        BLOCK_F, BLOCK_G = _blocks(G)
        gt = grad_table.contiguous()
        f32 = dict(device=v.device, dtype=torch.float32)
        gv, gw, gb = (torch.empty(F_, E, **f32) for _ in range(3))
        go, gc = torch.empty(F_, **f32), torch.empty(F_, **f32)
        _psa_table_bwd_kernel[(triton.cdiv(F_, BLOCK_F),)](
            v, w, b, o, g, gt, gv, gw, gb, go, gc, F_, E, G, ctx.eps,
            BLOCK_F=BLOCK_F, BLOCK_G=BLOCK_G)
        grads = [t.to(dt) if need else None
                 for t, dt, need in zip((gv, gw, gb, go, gc), ctx.dtypes, ctx.needs_input_grad[:5])]
        return (*grads, None, None)


def psa_table_triton(v_weight, q_weight, q_bias, o_weight, o_bias, epsilon, grid):
    return PSATableTritonFunction.apply(v_weight, q_weight, q_bias, o_weight, o_bias,
                                        float(epsilon), grid)
