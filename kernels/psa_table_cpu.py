"""PSA lookup table on the CPU: forward and closed-form backward in C
(``csrc/lerp_cpu.c``, built by ``lerp_cpu``), one feature per iteration,
gradients accumulated in double. Replaces ~40 small PyTorch ops per step."""
from __future__ import annotations

import torch

from .lerp_cpu import _ptr, _suffix, library

MAX_EXPERTS = 64


def supported(v_weight) -> bool:
    return (library() is not None and v_weight.device.type == "cpu"
            and v_weight.shape[1] <= MAX_EXPERTS)


def _bind(lib, suf):
    import ctypes
    i64, dbl, cint, vp = ctypes.c_int64, ctypes.c_double, ctypes.c_int, ctypes.c_void_p
    fwd = getattr(lib, f"psa_table_forward_{suf}")
    bwd = getattr(lib, f"psa_table_backward_{suf}")
    if fwd.argtypes is None:
        fwd.argtypes = [vp] * 5 + [dbl, vp, vp, vp, vp, i64, i64, i64, cint]
        bwd.argtypes = [vp] * 4 + [dbl, vp, vp, vp, vp] + [vp] * 5 + [i64, i64, i64, cint]
        fwd.restype = bwd.restype = cint
    return fwd, bwd


class PSATableCPUFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, v, w, b, o, c, epsilon, grid):
        cdt = torch.float64 if v.dtype == torch.float64 else torch.float32
        ps = [t.detach().to(cdt).contiguous() for t in (v, w, b, o, c)]
        g = grid.detach().to(cdt).contiguous()
        F_, E = ps[0].shape
        G = g.numel()
        eps = float(epsilon)
        table = torch.empty(F_, G, dtype=cdt)
        # Softmax weights and mixtures (F*G*(E+1) values, small) kept for backward.
        a = torch.empty(F_, G, E, dtype=cdt)
        s = torch.empty(F_, G, dtype=cdt)
        fwd, _ = _bind(library(), _suffix(cdt))
        rc = fwd(*[_ptr(t) for t in ps], eps, _ptr(g), _ptr(table), _ptr(a), _ptr(s), F_, E, G,
                 torch.get_num_threads())
        if rc:
            raise RuntimeError(f"PSA table kernel supports at most {MAX_EXPERTS} experts")
        ctx.save_for_backward(*ps[:4], g, a, s)
        ctx.eps = eps
        ctx.dtypes = [t.dtype for t in (v, w, b, o, c)]
        return table.to(v.dtype)

    @staticmethod
    def backward(ctx, grad_table):
        v, w, b, o, g, a, s = ctx.saved_tensors
        F_, E = v.shape
        G = g.numel()
        gt = grad_table.to(v.dtype).contiguous()
        outs = [torch.empty_like(v), torch.empty_like(w), torch.empty_like(b),
                torch.empty_like(o), torch.empty_like(o)]
        _, bwd = _bind(library(), _suffix(v.dtype))
        bwd(_ptr(v), _ptr(w), _ptr(b), _ptr(o), ctx.eps, _ptr(g), _ptr(a), _ptr(s), _ptr(gt),
            *[_ptr(t) for t in outs], F_, E, G, torch.get_num_threads())
        grads = [t.to(dt) if need else None
                 for t, dt, need in zip(outs, ctx.dtypes, ctx.needs_input_grad[:5])]
        return (*grads, None, None)


def psa_table_cpu(v_weight, q_weight, q_bias, o_weight, o_bias, epsilon, grid):
    return PSATableCPUFunction.apply(v_weight, q_weight, q_bias, o_weight, o_bias,
                                     float(epsilon), grid)
