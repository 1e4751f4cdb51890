"""The fake-quantised ResMLP of quantisation-aware training (docs/METHOD.md section 10).

The model works in the *code domain*: every activation tensor is carried as its int8 codes
(integer-valued float32) and its step is a separate learned scalar. Each layer computes its
forward value exactly as the integer model does (``fpga.int_resmlp``: int32 accumulators,
rounding right shifts, half-up rounding, int8 saturation) and attaches a straight-through
surrogate for the backward pass:

    out = exact.detach() + (surrogate - surrogate.detach())

so the value is bit-for-bit the integer model's and the gradients are those of the
continuous surrogate (LSQ, Esser et al. 2019). Hence the acceptance property: the
fake-quantised model's eval predictions equal the integer model's image for image.

Quantisers (all steps learned, as their logarithms, with their own learning rate):
* activations: one step per tensor, initialised by calibration (mean over the calibration
  batches of the tensor's abs-max, / Qp);
* weights: one step per output channel; the step actually used is forced to
  ``s_out * 2^-shift / s_in`` with ``shift = floor(log2(s_out / (s_in * s_w)))`` in 0..31,
  i.e. the power of two that the integer model's right shift realises;
* biases: int8 codes on the output grid (added after the shift);
* LERP-PSA sublayers: the 65-entry table of the current float parameters
  (entry k = round(g((4k - 128) * s_in) / s_out)) then the exact 8-bit interpolation of
  section 9, with straight-through gradients to the PSA parameters and to the input.

BatchNorms and layer-scales are folded before quantisation (section 10): the token mixer
keeps aff1 (its BN) and aff2 (its layer-scale) as affines; the channel MLP's BN folds into
lin1 (ReLU) or into the first table (LERP-PSA); its layer-scale into lin2; the head BN into
the head Linear. ``res`` is a learned per-channel affine on each skip path, identity-initialised.
"""
from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
from torch import nn

from errors import UserError

LUT_ADDR_BITS = 6
LUT_FRAC_BITS = 8 - LUT_ADDR_BITS
LUT_ENTRIES = (1 << LUT_ADDR_BITS) + 1
STATE_FORMAT = "resmlp-int8-qat"
TINY = 1e-12


class QuantError(UserError):
    """A bad flag or file for quantisation-aware training (one line)."""


@dataclass
class QConfig:
    """Everything needed to rebuild a QAT model (stored in its state file)."""
    act: str                       # 'base' (ReLU) or 'psa' (LERP-PSA)
    hidden: int
    hidden_factor: float
    in_channels: int = 3
    channels: int = 96
    depth: int = 4
    tokens: int = 64
    patch_size: int = 4
    img_size: int = 32
    num_classes: int = 10
    expansion: int = 8             # PSA experts
    grid_size: int = 64            # float LERP-PSA grid
    grid_range: float = 4.0
    input_bits: int = 8
    weight_bits: int = 8
    bias_bits: int = 8
    output_bits: int = 8
    dataset: str = ""
    mean: List[float] = field(default_factory=list)
    std: List[float] = field(default_factory=list)

    @property
    def patch_values(self) -> int:
        return self.in_channels * self.patch_size ** 2


def qrange(bits: int) -> Tuple[int, int]:
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


# --- straight-through pieces ------------------------------------------------------------------

class _RoundClamp(torch.autograd.Function):
    """clamp(floor(v + 0.5), lo, hi) forward (half up); identity gradient inside [lo, hi]."""

    @staticmethod
    def forward(ctx, v, lo, hi):
        ctx.save_for_backward(v)
        ctx.lo, ctx.hi = lo, hi
        return torch.clamp(torch.floor(v + 0.5), lo, hi)

    @staticmethod
    def backward(ctx, g):
        (v,) = ctx.saved_tensors
        return g * ((v >= ctx.lo) & (v <= ctx.hi)).to(g.dtype), None, None


def round_clamp(v, lo: int, hi: int):
    return _RoundClamp.apply(v, lo, hi)


class _Requant(torch.autograd.Function):
    """``clamp(floor(acc * 2^-s + 0.5) + b, lo, hi)``: the integer model's
    ``clip8(rshift(acc, s) + b)`` computed exactly in float32 (valid while |acc| < 2^23: then
    ``acc * 2^-s + 0.5`` is exact, see ``ACC_LIMIT``). Backward: straight through the rounding,
    zero where the output saturates; d/d acc = 2^-s, d/d b = 1."""

    @staticmethod
    def forward(ctx, acc, scale, b, lo, hi):
        y = torch.floor(acc * scale + 0.5) + b
        out = torch.clamp(y, lo, hi)
        if any(ctx.needs_input_grad):
            ctx.save_for_backward(out == y, scale)
            ctx.b_shape = b.shape
        return out

    @staticmethod
    def backward(ctx, g):
        mask, scale = ctx.saved_tensors
        gm = g * mask.to(g.dtype)
        gb = gm.reshape(-1, gm.shape[-1]).sum(0).reshape(ctx.b_shape) if ctx.needs_input_grad[2] else None
        return gm * scale, None, gb, None, None


ACC_LIMIT = 1 << 23


def step_value(log_step: torch.Tensor) -> torch.Tensor:
    """Steps are learned as their natural logarithm (positive, scale-free under Adam)."""
    return torch.exp(log_step)


def with_surrogate(exact: torch.Tensor, surrogate: Optional[torch.Tensor]) -> torch.Tensor:
    """Forward value ``exact`` (bit for bit), backward through ``surrogate``."""
    if surrogate is None or not surrogate.requires_grad:
        return exact
    return exact + (surrogate - surrogate.detach())


def shifts_for(s_in, s_out, s_w) -> torch.Tensor:
    """Per-channel shift: floor(log2(s_out / (s_in * s_w))) clamped to 0..31 (no gradient)."""
    with torch.no_grad():
        r = torch.log2(s_out.detach() / (s_in.detach() * s_w.detach()))
        return torch.clamp(torch.floor(r), 0, 31).to(torch.int64)


# --- layers -----------------------------------------------------------------------------------

class QWeighted(nn.Module):
    """Linear (W (O, I)) or per-channel affine (w (C,)) with int8 weight codes, a per-output
    shift, an int8 bias on the output grid and int8 saturation."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor, kind: str, cfg: QConfig):
        super().__init__()
        self.kind = kind                                  # 'linear' or 'affine'
        self.weight = nn.Parameter(weight.detach().clone().float())
        self.bias = nn.Parameter(bias.detach().clone().float())
        wmax = weight.detach().abs().reshape(weight.shape[0], -1).amax(1).float()
        self.w_log_step = nn.Parameter(torch.log(torch.clamp_min(wmax, 1e-8) / qrange(cfg.weight_bits)[1]))
        self.wq, self.bq, self.oq = qrange(cfg.weight_bits), qrange(cfg.bias_bits), qrange(cfg.output_bits)
        fan_in = weight.shape[1] if kind == "linear" else 1
        if fan_in * 128 * 128 >= ACC_LIMIT:
            raise QuantError(f"a Linear with {fan_in} inputs can exceed the exact float32 range "
                             "of the fake-quantised accumulator; use a smaller hidden factor")

    def codes(self, s_in, s_out):
        """(weight codes, bias codes, shifts) for input step s_in and output step s_out."""
        s_w = step_value(self.w_log_step)
        sh = shifts_for(s_in, s_out, s_w)
        # the step actually used: s_out * 2^-sh / s_in (value), learning s_w (gradient)
        s_eff = s_out * torch.exp2(-sh.float()) / s_in * (s_w / s_w.detach())
        w = self.weight / (s_eff[:, None] if self.kind == "linear" else s_eff)
        return round_clamp(w, *self.wq), round_clamp(self.bias / s_out, *self.bq), sh

    def forward(self, x, s_in, s_out):
        W, b, sh = self.codes(s_in, s_out)
        acc = x @ W.t() if self.kind == "linear" else x * W      # exact in fp32 (|acc| < 2^23)
        return _Requant.apply(acc, torch.exp2(-sh.to(acc.dtype)), b, *self.oq)

    def float_forward(self, x):
        return x @ self.weight.t() + self.bias if self.kind == "linear" else x * self.weight + self.bias


class QLut(nn.Module):
    """LERP-PSA sublayer (optionally after a folded BN) as the hardware computes it: a 65-entry
    table per feature tabulated from the current float parameters, then the 8-bit LERP."""

    def __init__(self, rp: nn.Module, cfg: QConfig, bn: Optional[Tuple[torch.Tensor, torch.Tensor]] = None):
        super().__init__()
        self.rp = rp                                       # x -> x + LerpPSA(x) (float)
        if bn is not None:
            self.bn_weight = nn.Parameter(bn[0].detach().clone().float())
            self.bn_bias = nn.Parameter(bn[1].detach().clone().float())
        else:
            self.bn_weight = self.bn_bias = None
        self.oq = qrange(cfg.output_bits)
        self.register_buffer("grid_codes", torch.arange(LUT_ENTRIES, dtype=torch.float32)
                             * (1 << LUT_FRAC_BITS) - 128, persistent=False)

    def function(self, z):
        if self.bn_weight is not None:
            z = z * self.bn_weight + self.bn_bias
        return self.rp(z)

    def table(self, s_in, s_out):
        """(F, 65) int8-valued table codes (with the straight-through gradient)."""
        F = self.rp.num_features
        z = (self.grid_codes * s_in)[:, None].expand(LUT_ENTRIES, F)
        return round_clamp(self.function(z) / s_out, *self.oq).t()

    def forward(self, x, s_in, s_out):
        T = self.table(s_in, s_out).t()                    # (65, F)
        F = T.shape[1]
        step = float(1 << LUT_FRAC_BITS)
        xd = x.detach()
        hi = torch.floor((xd + 128) / step)                # table address, exact in fp32
        lo = xd + 128 - hi * step                          # 0 .. 2^L - 1
        idx = hi.to(torch.int64).reshape(-1, F)
        y0 = torch.gather(T, 0, idx).reshape(x.shape)
        y1 = torch.gather(T, 0, idx + 1).reshape(x.shape)
        y0d, y1d = y0.detach(), y1.detach()
        exact = y0d + torch.floor(((y1d - y0d) * lo + step / 2) / step)   # section 9, half up
        sur = None
        if torch.is_grad_enabled():
            sur = y0 + (y1 - y0) * ((x - (hi * step - 128)) / step)
        return with_surrogate(exact, sur)

    def float_forward(self, x):
        return self.function(x)


def add8(a, b, oq):
    return torch.clamp(a + b, *oq)


def mean_pool(x):
    """rshift(sum over tokens, log2 T) (exact in fp32), with the mean as surrogate."""
    T = x.shape[-2]
    exact = torch.floor(x.detach().sum(-2) / T + 0.5)
    return with_surrogate(exact, x.mean(-2) if torch.is_grad_enabled() else None)


# --- the model --------------------------------------------------------------------------------

def _fold_bn(bn: nn.BatchNorm1d) -> Tuple[torch.Tensor, torch.Tensor]:
    w = bn.weight.detach() / torch.sqrt(bn.running_var.detach() + bn.eps)
    return w, bn.bias.detach() - bn.running_mean.detach() * w


def _psa(cfg: QConfig, features: int) -> nn.Module:
    from activations import ResidualLerpPSA
    return ResidualLerpPSA(features, expansion=cfg.expansion, grid_size=cfg.grid_size,
                           grid_range=cfg.grid_range)


class QBlock(nn.Module):
    def __init__(self, cfg: QConfig):
        super().__init__()
        C, H, T = cfg.channels, cfg.hidden, cfg.tokens
        z = torch.zeros
        self.tm_res = QWeighted(torch.ones(C), z(C), "affine", cfg)
        self.tm_aff1 = QWeighted(torch.ones(C), z(C), "affine", cfg)
        self.tm_lin = QWeighted(torch.eye(T), z(T), "linear", cfg)
        self.tm_aff2 = QWeighted(torch.ones(C), z(C), "affine", cfg)
        self.mlp_res = QWeighted(torch.ones(C), z(C), "affine", cfg)
        if cfg.act == "psa":
            self.lut1 = QLut(_psa(cfg, C), cfg, bn=(torch.ones(C), z(C)))
            self.lin1 = QWeighted(z(H, C), z(H), "linear", cfg)
            self.lut2 = QLut(_psa(cfg, H), cfg)
        else:
            self.lin1 = QWeighted(z(H, C), z(H), "linear", cfg)
        self.lin2 = QWeighted(z(C, H), z(C), "linear", cfg)
        steps = ["aff1", "lin", "tm", "h", "mlp"] + (["l1", "l2"] if cfg.act == "psa" else [])
        self.steps = nn.ParameterDict({k: nn.Parameter(torch.tensor(0.0)) for k in steps})


class QResMLP(nn.Module):
    """Fake-quantised ResMLP; ``forward(images)`` returns real-valued logits (codes x step)."""

    def __init__(self, cfg: QConfig):
        super().__init__()
        if cfg.act not in ("base", "psa"):
            raise QuantError(f"the INT8 model has ReLU (base) or LERP-PSA (psa) MLPs, not {cfg.act!r}")
        self.cfg = cfg
        C, P, K = cfg.channels, cfg.patch_values, cfg.num_classes
        self.embed = QWeighted(torch.zeros(C, P), torch.zeros(C), "linear", cfg)
        self.blocks = nn.ModuleList([QBlock(cfg) for _ in range(cfg.depth)])
        self.head = QWeighted(torch.zeros(K, C), torch.zeros(K), "linear", cfg)
        self.steps = nn.ParameterDict({k: nn.Parameter(torch.tensor(0.0)) for k in ("input", "embed", "logits")})
        self.iq, self.oq = qrange(cfg.input_bits), qrange(cfg.output_bits)
        self._calib: Optional[Dict[str, List[float]]] = None

    # construction from a float student ------------------------------------------------------
    @classmethod
    def from_float(cls, model: nn.Module, cfg: QConfig) -> "QResMLP":
        q = cls(cfg)
        with torch.no_grad():
            def put(layer: QWeighted, w, b):
                layer.weight.copy_(w)
                layer.bias.copy_(b)
                wmax = w.abs().reshape(w.shape[0], -1).amax(1)
                layer.w_log_step.copy_(torch.log(torch.clamp_min(wmax, 1e-8) / layer.wq[1]))

            put(q.embed, model.embed_linear.weight, model.embed_linear.bias)
            for qb, blk in zip(q.blocks, model.layers):
                cp, cc = blk.layers[0], blk.layers[1]
                put(qb.tm_res, torch.ones(cfg.channels), torch.zeros(cfg.channels))
                put(qb.tm_aff1, *_fold_bn(cp.affine_1.bn))
                put(qb.tm_lin, cp.layers.weight, cp.layers.bias)
                put(qb.tm_aff2, cp.affine_2.weight, cp.affine_2.bias)
                put(qb.mlp_res, torch.ones(cfg.channels), torch.zeros(cfg.channels))
                bw, bb = _fold_bn(cc.affine_1.bn)
                ls_w, ls_b = cc.affine_2.weight.detach(), cc.affine_2.bias.detach()
                mlp = cc.layers
                if cfg.act == "psa":
                    qb.lut1.rp.load_state_dict(mlp[0].state_dict())
                    qb.lut1.bn_weight.copy_(bw)
                    qb.lut1.bn_bias.copy_(bb)
                    put(qb.lin1, mlp[1].weight, mlp[1].bias)
                    qb.lut2.rp.load_state_dict(mlp[2].state_dict())
                    l2 = mlp[3]
                else:
                    W1 = mlp[0].weight.detach()
                    put(qb.lin1, W1 * bw[None, :], mlp[0].bias.detach() + W1 @ bb)
                    l2 = mlp[2]
                put(qb.lin2, ls_w[:, None] * l2.weight.detach(), ls_w * l2.bias.detach() + ls_b)
            hw, hb = _fold_bn(model.affine.bn)
            Wh = model.classifier.weight.detach()
            put(q.head, Wh * hw[None, :], model.classifier.bias.detach() + Wh @ hb)
        return q

    # steps ---------------------------------------------------------------------------------------
    def _s(self, pd: nn.ParameterDict, name: str):
        return step_value(pd[name])

    def _rec(self, name: str, *tensors):
        if self._calib is not None:
            m = max(float(t.detach().abs().max()) for t in tensors)
            self._calib.setdefault(name, []).append(m)

    def patchify(self, images):
        from fpga.int_resmlp import patchify
        return patchify(images, self.cfg.patch_size)

    # the folded float model (calibration, and the check that folding is exact) --------------------
    def float_forward(self, images):
        cfg = self.cfg
        x = self.patchify(images)
        self._rec("input", x)
        x = self.embed.float_forward(x)
        self._rec("embed", x)
        for i, b in enumerate(self.blocks):
            t = b.tm_aff1.float_forward(x)
            self._rec(f"{i}.aff1", t)
            t = b.tm_lin.float_forward(t.transpose(-1, -2)).transpose(-1, -2)
            self._rec(f"{i}.lin", t)
            t = b.tm_aff2.float_forward(t)
            r = b.tm_res.float_forward(x)
            x = t + r
            self._rec(f"{i}.tm", x, t, r)
            r = b.mlp_res.float_forward(x)
            if cfg.act == "psa":
                t = b.lut1.float_forward(x)
                self._rec(f"{i}.l1", t)
                t = b.lin1.float_forward(t)
                self._rec(f"{i}.h", t)
                t = b.lut2.float_forward(t)
                self._rec(f"{i}.l2", t)
            else:
                t = b.lin1.float_forward(x)
                self._rec(f"{i}.h", t)
                t = torch.relu(t)
            t = b.lin2.float_forward(t)
            x = t + r
            self._rec(f"{i}.mlp", x, t, r)
        logits = self.head.float_forward(x.mean(-2))
        self._rec("logits", logits)
        return logits

    @torch.no_grad()
    def calibrate(self, batches) -> int:
        """Initial activation steps: mean over the batches of each tensor's abs-max, / Qp."""
        self._calib = {}
        n = 0
        try:
            for images in batches:
                self.float_forward(images)
                n += 1
        finally:
            stats, self._calib = self._calib, None
        if not n:
            raise QuantError("calibration saw no batches")
        qp = self.oq[1]
        for name, vals in stats.items():
            s = math.log(max(float(np.mean(vals)), 1e-6) / (self.iq[1] if name == "input" else qp))
            if "." in name:
                i, k = name.split(".")
                self.blocks[int(i)].steps[k].fill_(s)
            else:
                self.steps[name].fill_(s)
        return n

    # the quantised forward --------------------------------------------------------------------
    def input_codes(self, images):
        """int8-valued codes of the normalised patches: clamp(floor(x / s + 0.5))."""
        s = self._s(self.steps, "input")
        return round_clamp(self.patchify(images).float() / s, *self.iq)

    def forward_codes(self, x, trace: Optional[dict] = None):
        """Integer-valued logit codes from input codes x (B, tokens, P)."""
        cfg, oq = self.cfg, self.oq

        def keep(name, v):
            if trace is not None:
                trace[name] = v.detach()
            return v

        s_x = self._s(self.steps, "input")
        s_e = self._s(self.steps, "embed")
        x = keep("embed", self.embed(x, s_x, s_e))
        s_x = s_e
        for i, b in enumerate(self.blocks):
            pre = f"blocks.{i}"
            s_a1, s_lin, s_tm = (self._s(b.steps, k) for k in ("aff1", "lin", "tm"))
            r = keep(f"{pre}.tm.res", b.tm_res(x, s_x, s_tm))
            t = keep(f"{pre}.tm.aff1", b.tm_aff1(x, s_x, s_a1))
            t = keep(f"{pre}.tm.lin", b.tm_lin(t.transpose(-1, -2), s_a1, s_lin).transpose(-1, -2))
            t = keep(f"{pre}.tm.aff2", b.tm_aff2(t, s_lin, s_tm))
            x = keep(f"{pre}.tm.add", add8(t, r, oq))
            s_x = s_tm
            s_h, s_mlp = self._s(b.steps, "h"), self._s(b.steps, "mlp")
            r = keep(f"{pre}.mlp.res", b.mlp_res(x, s_x, s_mlp))
            if cfg.act == "psa":
                s_l1, s_l2 = self._s(b.steps, "l1"), self._s(b.steps, "l2")
                t = keep(f"{pre}.mlp.lut1", b.lut1(x, s_x, s_l1))
                t = keep(f"{pre}.mlp.lin1", b.lin1(t, s_l1, s_h))
                t = keep(f"{pre}.mlp.lut2", b.lut2(t, s_h, s_l2))
                s_last = s_l2
            else:
                t = keep(f"{pre}.mlp.lin1", b.lin1(x, s_x, s_h))
                t = keep(f"{pre}.mlp.relu", torch.relu(t))
                s_last = s_h
            t = keep(f"{pre}.mlp.lin2", b.lin2(t, s_last, s_mlp))
            x = keep(f"{pre}.mlp.add", add8(t, r, oq))
            s_x = s_mlp
        p = keep("pool", mean_pool(x))
        return keep("logits", self.head(p, s_x, self._s(self.steps, "logits")))

    def forward(self, images):
        codes = self.forward_codes(self.input_codes(images))
        return codes * self._s(self.steps, "logits")

    # export --------------------------------------------------------------------------------------
    @torch.no_grad()
    def export_params(self) -> Tuple[Dict[str, np.ndarray], dict]:
        """(params, meta) of the integer model that this model's eval forward computes."""
        cfg = self.cfg
        if cfg.output_bits != 8:
            raise QuantError(f"--output-bits {cfg.output_bits}: the integer model and the RTL "
                             "saturate activations at 8 bits; dump a model trained with --output-bits 8")
        out: Dict[str, np.ndarray] = {}

        def s(pd, k):
            return self._s(pd, k)

        def put(name, layer: QWeighted, s_in, s_out):
            W, b, sh = layer.codes(s_in, s_out)
            key = "W" if layer.kind == "linear" else "w"
            out[f"{name}.{key}"] = W.to(torch.int64).cpu().numpy().astype(np.int8)
            out[f"{name}.b"] = b.to(torch.int64).cpu().numpy().astype(np.int8)
            out[f"{name}.s"] = sh.cpu().numpy().astype(np.int8)

        s_x = s(self.steps, "input")
        put("embed", self.embed, s_x, s(self.steps, "embed"))
        s_x = s(self.steps, "embed")
        for i, b in enumerate(self.blocks):
            pre = f"blocks.{i}"
            s_a1, s_lin, s_tm, s_h, s_mlp = (s(b.steps, k) for k in ("aff1", "lin", "tm", "h", "mlp"))
            put(f"{pre}.tm.res", b.tm_res, s_x, s_tm)
            put(f"{pre}.tm.aff1", b.tm_aff1, s_x, s_a1)
            put(f"{pre}.tm.lin", b.tm_lin, s_a1, s_lin)
            put(f"{pre}.tm.aff2", b.tm_aff2, s_lin, s_tm)
            s_x = s_tm
            put(f"{pre}.mlp.res", b.mlp_res, s_x, s_mlp)
            if cfg.act == "psa":
                s_l1, s_l2 = s(b.steps, "l1"), s(b.steps, "l2")
                out[f"{pre}.mlp.lut1"] = b.lut1.table(s_x, s_l1).to(torch.int64).cpu().numpy().astype(np.int8)
                put(f"{pre}.mlp.lin1", b.lin1, s_l1, s_h)
                out[f"{pre}.mlp.lut2"] = b.lut2.table(s_h, s_l2).to(torch.int64).cpu().numpy().astype(np.int8)
                put(f"{pre}.mlp.lin2", b.lin2, s_l2, s_mlp)
            else:
                put(f"{pre}.mlp.lin1", b.lin1, s_x, s_h)
                put(f"{pre}.mlp.lin2", b.lin2, s_h, s_mlp)
            s_x = s_mlp
        put("head", self.head, s_x, s(self.steps, "logits"))
        meta = dict(act=cfg.act, hidden=cfg.hidden, hidden_factor=cfg.hidden_factor,
                    channels=cfg.channels, depth=cfg.depth, tokens=cfg.tokens,
                    patch_values=cfg.patch_values, num_classes=cfg.num_classes,
                    lut_addr_bits=LUT_ADDR_BITS, input_scale=float(s(self.steps, "input")),
                    logit_scale=float(s(self.steps, "logits")), mean=list(cfg.mean),
                    std=list(cfg.std), patch_size=cfg.patch_size, in_channels=cfg.in_channels,
                    img_size=cfg.img_size, dataset=cfg.dataset,
                    bits=dict(input=cfg.input_bits, weight=cfg.weight_bits, bias=cfg.bias_bits,
                              output=cfg.output_bits),
                    input_codes="clamp(floor(((pixel/255 - mean) / std) / input_scale + 0.5), "
                                "-2^(bits.input-1), 2^(bits.input-1)-1) in float32, patches "
                                "row-major over the grid, value index (r*p + c)*C + channel")
        return out, meta

    def step_parameters(self):
        """The learned (log) quantiser steps, for their own learning rate."""
        return [p for n, p in self.named_parameters() if "steps." in n or n.endswith("w_log_step")]

    # state files ---------------------------------------------------------------------------------
    def state(self) -> dict:
        return {"format": STATE_FORMAT, "version": 1, "config": asdict(self.cfg),
                "state_dict": {k: v.detach().cpu().clone() for k, v in self.state_dict().items()}}


def load_state(obj_or_path, map_location="cpu") -> QResMLP:
    """Rebuild a QAT model from ``QResMLP.state()`` (a dict or a file)."""
    obj = obj_or_path
    where = "the QAT state"
    if not isinstance(obj, dict):
        where = str(obj_or_path)
        try:
            obj = torch.load(obj_or_path, map_location=map_location, weights_only=True)
        except FileNotFoundError:
            raise QuantError(f"--quant-load file not found: {where}") from None
        except Exception as exc:  # unreadable/corrupt file
            raise QuantError(f"{where} is not a readable torch file ({type(exc).__name__}); "
                             "pass a file written by cifar10_quant.py --save") from None
    if not isinstance(obj, dict) or obj.get("format") != STATE_FORMAT:
        raise QuantError(f"{where} is not a QAT state (a float checkpoint? pass it as --load); "
                         "--quant-load takes a file written by cifar10_quant.py --save")
    try:
        cfg = QConfig(**obj["config"])
        model = QResMLP(cfg)
        model.load_state_dict(obj["state_dict"])
    except (TypeError, KeyError, RuntimeError) as exc:
        raise QuantError(f"{where} does not fit this version's QAT model "
                         f"({str(exc).splitlines()[0][:120]})") from None
    return model
