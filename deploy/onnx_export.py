"""ONNX graphs of the ResMLP (ReLU, B-spline, LERP-PSA) and ResNet-20, standard operators only.

The graph is written node by node with ``onnx.helper`` from the modules' eval-mode state (no
tracing): every node is in the default ``ai.onnx`` domain, the batch dimension is symbolic
(``batch``), the input is ``images`` (N, C, H, W) float32 and the output ``logits`` (N, classes)
float32.

**Learned activations** become their eval-mode tables plus elementwise nodes and two
``GatherElements`` nodes.

By default a LERP table (a LERP-PSA layer; its table is ``T + t`` for the residual sublayer
``x + LerpPSA(x)``, the table the PyTorch forward reads, taken from the module itself; and a
B-spline with ``bspline_as_lerp``) is the *lean lookup* (:func:`lean_lerp_nodes`): the MLP runs
on (rows, channels), the tables are (segments, F) read along axis 0 at the segment index, and
the value is ``c[j] + u d[j]`` (intercept and slope of the segment): 9 nodes with the BatchNorm
in front folded into the index multiply-add, 7 when the Linear before it gives the grid
coordinate (the index scale and offset folded into its weight and bias). Equal to the
kernels up to fp32 rounding (tests/test_onnx_export.py).

``kernel_lerp=True`` writes the kernels' operations instead (kernels/backends/reference.py,
docs/METHOD.md sections 4 and 5), bit for bit. For an activation of F features the table is
flattened feature-major, so feature i's row starts at i * P (P points), and the index of an
input is ``j + i * P`` (an int32 ``Add`` of the per-feature offsets, broadcast over the leading
axes)::

    u    = (x + R) * ((G - 1) / (2R))          Add, Mul (a multiplication, as the kernels)
    j    = clamp(floor(u), 0, G - 2)            Floor, Clip
    j    = 0 where u is NaN                     IsNaN, Where (a NaN reads row 0: NaN out, no
                                                out-of-range gather)
    frac = u - j                                Sub (unclamped: the edge segments extrapolate)
    a    = T[j];  b = T[j + 1]                  Cast, Add, then Shape, Reshape, Add,
                                                GatherElements x 2, Reshape x 2 (_gather_pair)
    y    = a + frac * (b - a)                   Sub, Mul, Add

19 nodes, the kernel's operations in the kernel's order, so onnxruntime's output equals the
reference backend's bit for bit (tests/test_onnx_export.py). The table is stored once, G floats
per feature.

B-spline (K coefficients c on knots k * D, D = 2R / (K - 1)), the kernel's formula::

    s    = clip(x, -(K//2) D, (K//2 - 1) D) / D    Clip, Div
    n    = floor(s) (0 where NaN);  frac = s - n    Floor, IsNaN, Where, Sub
    y    = c[n] (1 - frac) + c[n + 1] frac          Add, Cast, Add, _gather_pair (7 nodes),
                                                    Sub, Mul, Mul, Add
    y   += min(x + (K//2) D, 0) / D * (c[1] - c[0])       Add, Min, Div, Mul, Add
    y   += max(x - (K//2 - 1) D, 0) / D * (c[K-1] - c[K-2])  Sub, Max, Div, Mul, Add

``bspline_as_lerp=True`` writes a B-spline instead as the K-point LERP table it equals (the
same piecewise-linear function with the same edge extrapolation, docs/METHOD.md section 5):
19 nodes instead of 30, outputs equal up to fp32 rounding (the segment index of an input
within rounding of a knot can differ; both segments meet there).

**Folding.** A per-feature affine map (a BatchNorm in eval mode, ResMLP's ``A2`` scale and
shift) is folded into the Linear or convolution next to it when nothing non-linear sits
between them; the algebra is exact and is done in float64, then rounded once to float32, so
the graph differs from PyTorch only by rounding (about 1e-7 relative). Folded: ResNet-20's
every BatchNorm into its convolution; ResMLP's token-mixing BatchNorm and ``A2`` around the
token Linear (into one scale and one (tokens, channels) shift after the ``MatMul``); the
channel-mixing BatchNorm into the MLP's first Linear for ReLU; every ``A2`` into the MLP's last
Linear; the head BatchNorm through the token mean into the classifier; with the lean lookup,
the channel-mixing BatchNorm into the first lookup's index (``(x s + b + R) * scale`` written
as ``x s' + b'``). Not folded: that BatchNorm in front of a B-spline written by its kernel
formula or of a ``kernel_lerp`` lookup: floor() of the rewritten index picks the neighbouring
segment for inputs within rounding of a grid point, so the graph would no longer compute the
kernels' index. It stays one ``Mul`` and one ``Add``.
"""
from __future__ import annotations

import collections
import os
from typing import Dict, List

import numpy as np
import torch
from torch import nn

from errors import UserError, write_atomic

DEFAULT_OPSET = 17
MIN_OPSET = 17
INPUT = "images"
OUTPUT = "logits"
BATCH = "batch"
INSTALL = "pip install -r requirements-deploy.txt"


class ExportError(UserError, ValueError):
    """A model or an option the exporter cannot handle (one-line message)."""


def require_onnx():
    """The ``onnx`` module, or a one-line :class:`ExportError` naming the install command."""
    try:
        import onnx
    except ImportError:
        raise ExportError(f"the onnx package is not installed; install it with: {INSTALL}") \
            from None
    return onnx


def max_opset() -> int:
    """The newest default-domain opset the installed ``onnx`` knows."""
    return int(require_onnx().defs.onnx_opset_version())


def check_opset(opset: int) -> int:
    top = max_opset()
    if not MIN_OPSET <= int(opset) <= top:
        raise ExportError(f"opset {opset} is outside {MIN_OPSET}..{top} (the installed onnx "
                          f"knows opsets up to {top}); pass --opset {DEFAULT_OPSET}")
    return int(opset)


# --- float64 parameters and the folds --------------------------------------------------------

def _f64(t: torch.Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float64).numpy()


def _f32(a) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(a, dtype=np.float32))


def bn_affine(bn: nn.modules.batchnorm._BatchNorm):
    """``(scale, shift)`` in float64 with ``bn(x) = x * scale + shift`` per channel (eval mode)."""
    if bn.running_mean is None or bn.running_var is None:
        raise ExportError(f"BatchNorm {bn} keeps no running statistics; its eval-mode output "
                          "depends on the batch and cannot be exported")
    mean, var = _f64(bn.running_mean), _f64(bn.running_var)
    gamma = _f64(bn.weight) if bn.weight is not None else np.ones_like(mean)
    beta = _f64(bn.bias) if bn.bias is not None else np.zeros_like(mean)
    scale = gamma / np.sqrt(var + float(bn.eps))
    return scale, beta - mean * scale


def fold_into_linear(weight: np.ndarray, bias: np.ndarray, pre=None, post=None):
    """``(W', b')`` of ``post(Linear(pre(x)))`` for per-feature affine maps ``pre`` on the
    input and ``post`` on the output, each ``(scale, shift)`` or None (float64)."""
    w, b = weight.copy(), bias.copy()
    if pre is not None:
        s, t = pre
        b = b + w @ t
        w = w * s[None, :]
    if post is not None:
        s, t = post
        w = w * s[:, None]
        b = b * s + t
    return w, b


# --- the graph builder ------------------------------------------------------------------------

class _Graph:
    """Nodes and initializers with unique names; every node in the default domain."""

    def __init__(self, opset: int):
        self.opset = opset
        self.nodes: List = []
        self.inits: List = []
        self._used = collections.Counter()
        self._consts: Dict = {}

    def name(self, base: str) -> str:
        self._used[base] += 1
        n = self._used[base]
        return base if n == 1 else f"{base}_{n}"

    def const(self, base: str, value, dtype=np.float32) -> str:
        from onnx import numpy_helper
        arr = np.ascontiguousarray(np.asarray(value, dtype=dtype))
        if arr.size <= 16:  # share small constants (scalars, shapes, offsets are not small)
            key = (arr.dtype.str, arr.shape, arr.tobytes())
            if key in self._consts:
                return self._consts[key]
        name = self.name(base)
        self.inits.append(numpy_helper.from_array(arr, name))
        if arr.size <= 16:
            self._consts[key] = name
        return name

    def op(self, op_type: str, inputs, base: str, **attrs) -> str:
        from onnx import helper
        out = self.name(base)
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], name=out, **attrs))
        return out

    # small helpers for the nodes used more than once
    def linear(self, x: str, w: np.ndarray, b: np.ndarray, base: str) -> str:
        """``x @ w.T + b`` on the last axis of any-rank ``x``."""
        y = self.op("MatMul", [x, self.const(base + ".weight_t", _f32(w.T))], base + "/matmul")
        return self.op("Add", [y, self.const(base + ".bias", _f32(b))], base + "/add")

    def affine(self, x: str, scale, shift, base: str) -> str:
        y = self.op("Mul", [x, self.const(base + ".scale", _f32(scale))], base + "/mul")
        return self.op("Add", [y, self.const(base + ".shift", _f32(shift))], base + "/add")

    def reduce_mean(self, x: str, axes, base: str) -> str:
        if self.opset >= 18:  # axes became an input in opset 18
            return self.op("ReduceMean", [x, self.const(base + ".axes", axes, np.int64)],
                           base, keepdims=0)
        return self.op("ReduceMean", [x], base, axes=list(axes), keepdims=0)


# --- learned activations ------------------------------------------------------------------------

def _offsets(g: _Graph, features: int, points: int, base: str) -> str:
    return g.const(base + ".row_offset", np.arange(features, dtype=np.int64) * points, np.int32)


def _index_guard(g: _Graph, value: str, clamped: str, base: str) -> str:
    """``clamped`` with 0 where ``value`` is NaN (the kernels' nan_to_num on the index)."""
    nan = g.op("IsNaN", [value], base + "/isnan")
    return g.op("Where", [nan, g.const("zero", 0.0), clamped], base + "/index_nan_to_0")


def _gather_pair(g: _Graph, x: str, flat_table: np.ndarray, idx: str, base: str):
    """``(table[idx], table[idx + 1])`` in the shape of ``x``, for the flat ``table``.

    GatherElements on the flattened index, not Gather: onnxruntime's Gather copies one block
    per index (a 4-byte memcpy here) and took 70 % of a LERP-PSA model's time; GatherElements
    reads element by element, about 8 times faster. The Reshapes are free (aliases)."""
    shape = g.op("Shape", [x], base + "/shape")
    table = g.const(base + ".table", flat_table)
    flat = g.op("Reshape", [idx, g.const("flat_shape", [-1], np.int64)], base + "/index_1d")
    nxt = g.op("Add", [flat, g.const("one_index", 1, np.int32)], base + "/next_index")
    left = g.op("GatherElements", [table, flat], base + "/gather_left", axis=0)
    right = g.op("GatherElements", [table, nxt], base + "/gather_right", axis=0)
    return (g.op("Reshape", [left, shape], base + "/left"),
            g.op("Reshape", [right, shape], base + "/right"))


def lerp_nodes(g: _Graph, x: str, table: np.ndarray, grid_range: float, base: str) -> str:
    """Per-feature linear interpolation of ``x`` (..., F) in ``table`` (F, G) on [-R, R],
    extrapolating along the edge segments (kernels/backends/reference.py ``lerp_forward``)."""
    features, points = table.shape
    if points < 2:
        raise ExportError(f"{base}: a LERP table needs at least 2 points, got {points}")
    scale = (points - 1) / (2.0 * float(grid_range))  # grid_scale: a Python float, as the kernels
    u = g.op("Mul", [g.op("Add", [x, g.const(base + ".range", float(grid_range))], base + "/shift"),
                     g.const(base + ".scale", scale)], base + "/u")
    j = g.op("Clip", [g.op("Floor", [u], base + "/floor"), g.const("zero", 0.0),
                      g.const(base + ".last_segment", float(points - 2))], base + "/clip")
    j = _index_guard(g, u, j, base)
    frac = g.op("Sub", [u, j], base + "/frac")
    idx = g.op("Add", [g.op("Cast", [j], base + "/index", to=_INT32),
                       _offsets(g, features, points, base)], base + "/flat_index")
    left, right = _gather_pair(g, x, _f32(table).reshape(-1), idx, base)
    slope = g.op("Sub", [right, left], base + "/diff")
    return g.op("Add", [left, g.op("Mul", [frac, slope], base + "/step")], base + "/out")


def bspline_nodes(g: _Graph, x: str, coefficients: np.ndarray, range_: float, base: str) -> str:
    """Linear B-spline of ``x`` (..., F), K coefficients per feature on [-R, R], as
    kernels/backends/reference.py ``bspline_forward`` computes it: clamp, interpolate, then the
    two edge-extrapolation terms."""
    features, size = coefficients.shape
    if size < 3 or size % 2 == 0:
        raise ExportError(f"{base}: a B-spline needs an odd number >= 3 of coefficients, got "
                          f"{size}")
    half = size // 2
    spacing = 2.0 * float(range_) / (size - 1)  # knot_spacing, a Python float as in the kernels
    c = _f32(coefficients)
    left_slope = c[:, 1] - c[:, 0]  # fp32, as the kernel's c[:, 1] - c[:, 0]
    right_slope = c[:, -1] - c[:, -2]
    d = g.const(base + ".spacing", spacing)
    zero = g.const("zero", 0.0)
    xc = g.op("Clip", [x, g.const(base + ".low", -half * spacing),
                       g.const(base + ".high", (half - 1) * spacing)], base + "/clip")
    s = g.op("Div", [xc, d], base + "/s")
    n = _index_guard(g, s, g.op("Floor", [s], base + "/floor"), base)
    frac = g.op("Sub", [s, n], base + "/frac")
    idx = g.op("Add", [g.op("Cast", [g.op("Add", [n, g.const(base + ".half", float(half))],
                                         base + "/n_plus_half")], base + "/index", to=_INT32),
                       _offsets(g, features, size, base)], base + "/flat_index")
    lo, hi = _gather_pair(g, x, c.reshape(-1), idx, base)
    one_minus = g.op("Sub", [g.const("one", 1.0), frac], base + "/one_minus_frac")
    y = g.op("Add", [g.op("Mul", [lo, one_minus], base + "/w_left"),
                     g.op("Mul", [hi, frac], base + "/w_right")], base + "/interp")
    below = g.op("Div", [g.op("Min", [g.op("Add", [x, g.const(base + ".low_knot", half * spacing)],
                                          base + "/below_shift"), zero], base + "/below_min"), d],
                 base + "/below")
    y = g.op("Add", [y, g.op("Mul", [below, g.const(base + ".left_slope", left_slope)],
                             base + "/below_term")], base + "/add_below")
    above = g.op("Div", [g.op("Max", [g.op("Sub", [x, g.const(base + ".high_knot",
                                                              (half - 1) * spacing)],
                                          base + "/above_shift"), zero], base + "/above_max"), d],
                 base + "/above")
    return g.op("Add", [y, g.op("Mul", [above, g.const(base + ".right_slope", right_slope)],
                                base + "/above_term")], base + "/out")


def lean_lerp_nodes(g: _Graph, x: str, table: np.ndarray, grid_range: float, base: str,
                    pre=None, u_given: bool = False) -> str:
    """The lean lookup of ``x`` (rows, F), 2-D, in ``table`` (F, G) on [-R, R]: the same
    piecewise-linear function with the same edge extrapolation as :func:`lerp_nodes`, in 9 nodes
    (7 when the previous Linear already gives the grid coordinate, ``u_given``)::

        u = x * a + b                 Mul, Add: per-feature a = s (G-1)/(2R), b = (t + R)(G-1)/(2R)
                                      for the affine ``pre`` = (s, t) in front (a BatchNorm)
        j = clip(int(clip(u, 0, G-2)), 0, G-2)   Clip, Cast, Clip (the int Clip maps NaN to 0)
        y = c[j] + u * d[j]           GatherElements x 2 (axis 0 of (G-1, F) tables), Mul, Add

    with the segment's slope ``d[j] = T[j+1] - T[j]`` and intercept ``c[j] = T[j] - j d[j]``
    computed in float64 and rounded once. A NaN input reads segment 0 and gives NaN."""
    features, points = table.shape
    if points < 2:
        raise ExportError(f"{base}: a LERP table needs at least 2 points, got {points}")
    scale = (points - 1) / (2.0 * float(grid_range))
    if not u_given:
        s, t = pre if pre is not None else (np.ones(features), np.zeros(features))
        x = g.op("Mul", [x, g.const(base + ".index_scale", _f32(s * scale))], base + "/scale")
        x = g.op("Add", [x, g.const(base + ".index_shift", _f32((t + float(grid_range)) * scale))],
                 base + "/u")
    last = float(points - 2)
    j = g.op("Clip", [x, g.const("zero", 0.0), g.const(base + ".last_segment", last)],
             base + "/clip")
    j = g.op("Cast", [j], base + "/index", to=_INT32)
    j = g.op("Clip", [j, g.const("i32_zero", 0, np.int32),
                      g.const(base + ".last_index", int(last), np.int32)], base + "/index_clip")
    t64 = np.asarray(table, np.float64)
    slope = t64[:, 1:] - t64[:, :-1]
    intercept = t64[:, :-1] - np.arange(points - 1)[None, :] * slope
    c = g.op("GatherElements", [g.const(base + ".intercept", _f32(intercept.T)), j],
             base + "/intercept", axis=0)
    d = g.op("GatherElements", [g.const(base + ".slope", _f32(slope.T)), j], base + "/slope",
             axis=0)
    return g.op("Add", [c, g.op("Mul", [x, d], base + "/step")], base + "/out")


def lerp_table_of(mod: nn.Module, bspline_as_lerp: bool):
    """``(table (F, G) float64, R)`` of a module the lean lookup can write, else None."""
    from activations import BSpline, LerpPSA, ResidualLerpPSA
    if isinstance(mod, (ResidualLerpPSA, LerpPSA)):
        psa = mod.psa if isinstance(mod, ResidualLerpPSA) else mod
        with torch.no_grad():  # the eval-mode table the PyTorch forward reads
            table = psa.compute_table(residual=isinstance(mod, ResidualLerpPSA))
        return _f64(table), float(psa.grid_range)
    if isinstance(mod, BSpline) and bspline_as_lerp:
        return _f64(mod.coefficients), float(mod.range_)
    return None


def activation_nodes(g: _Graph, x: str, mod: nn.Module, base: str, bspline_as_lerp: bool,
                     kernel_lerp: bool = True) -> str:
    """The nodes of one activation module (ReLU, ResidualLerpPSA, LerpPSA, BSpline);
    ``kernel_lerp=False`` writes a LERP table as :func:`lean_lerp_nodes` (``x`` 2-D)."""
    from activations import BSpline
    if isinstance(mod, nn.ReLU):
        return g.op("Relu", [x], base)
    lerp = lerp_table_of(mod, bspline_as_lerp)
    if lerp is not None:
        if not kernel_lerp:
            return lean_lerp_nodes(g, x, lerp[0], lerp[1], base)
        return lerp_nodes(g, x, lerp[0], lerp[1], base)
    if isinstance(mod, BSpline):
        return bspline_nodes(g, x, _f64(mod.coefficients), mod.range_, base)
    raise ExportError(f"{base}: no ONNX export for a {type(mod).__name__} activation (ReLU, "
                      "B-spline and LERP-PSA are supported)")


# --- ResMLP ---------------------------------------------------------------------------------------

def _mlp_nodes(g: _Graph, x: str, mlp: nn.Sequential, pre, post, base: str,
               bspline_as_lerp: bool, kernel_lerp: bool, tokens: int) -> str:
    """The channel MLP with the affine ``pre`` (the BatchNorm) before it and ``post`` (A2)
    after it, each folded into the adjacent Linear when nothing non-linear sits between.

    Lean lookups (``kernel_lerp=False``) run on 2-D (rows, channels): the MLP is reshaped
    around them (two free Reshapes); the BatchNorm in front of a lookup goes into its index
    multiply-add, and a lookup right after a Linear takes its grid coordinate from that Linear
    (the index scale and offset folded into the weight and bias)."""
    mods = list(mlp)
    lean = not kernel_lerp and any(lerp_table_of(m, bspline_as_lerp) is not None for m in mods)
    channels = next(m.in_features for m in mods if isinstance(m, nn.Linear))
    if lean:
        x = g.op("Reshape", [x, g.const("rows_shape", [-1, channels], np.int64)], base + "/rows")
    u_given = False
    for k, mod in enumerate(mods):
        name = f"{base}.{k}"
        if isinstance(mod, nn.Linear):
            last = k == len(mods) - 1
            w, b = fold_into_linear(_f64(mod.weight), _f64(mod.bias) if mod.bias is not None
                                    else np.zeros(mod.out_features), pre, post if last else None)
            pre = None
            if last:
                post = None
            nxt = lerp_table_of(mods[k + 1], bspline_as_lerp) if lean and not last else None
            if nxt is not None:  # the next lookup's grid coordinate u = y (G-1)/(2R) + (G-1)/2
                scale = (nxt[0].shape[1] - 1) / (2.0 * nxt[1])
                w, b = fold_into_linear(w, b, post=(np.full(len(b), scale),
                                                    np.full(len(b), nxt[1] * scale)))
                u_given = True
            x = g.linear(x, w, b, name)
        else:
            lerp = lerp_table_of(mod, bspline_as_lerp) if lean else None
            if lerp is not None:
                x = lean_lerp_nodes(g, x, lerp[0], lerp[1], name, pre=pre, u_given=u_given)
                pre, u_given = None, False
                continue
            if pre is not None:  # a BatchNorm right before a learned activation: kept
                x = g.affine(x, *pre, name + ".pre_affine")
                pre = None
            x = activation_nodes(g, x, mod, name, bspline_as_lerp)
    if post is not None:
        x = g.affine(x, *post, base + ".post_affine")
    if lean:
        x = g.op("Reshape", [x, g.const("tokens_shape", [-1, tokens, channels], np.int64)],
                 base + "/tokens")
    return x


def _resmlp_graph(g: _Graph, model, bspline_as_lerp: bool, kernel_lerp: bool) -> tuple:
    C, S, p = model.in_channels, model.img_size, model.patch_size
    grid = model.grid
    # Patches as model.patchify: (B, C, g, p, g, p) -> (B, g, g, p, p, C) -> (B, g*g, p*p*C).
    x = g.op("Reshape", [INPUT, g.const("patch_shape", [-1, C, grid, p, grid, p], np.int64)],
             "patchify/split")
    x = g.op("Transpose", [x], "patchify/transpose", perm=[0, 2, 4, 3, 5, 1])
    x = g.op("Reshape", [x, g.const("token_shape", [-1, grid * grid, p * p * C], np.int64)],
             "patchify/tokens")
    x = g.linear(x, _f64(model.embed_linear.weight), _f64(model.embed_linear.bias), "embed_linear")
    for i, block in enumerate(model.layers):
        cross_patch, cross_channel = block.layers[0], block.layers[1]
        base = f"layers.{i}"
        # Token mixing: x + A2(W @ BN(x)) with W (T, T) acting on the token axis of (B, T, D):
        # W @ (x s + b) = (W @ x) s + rowsum(W) b, then A2: * w2 + b2. One MatMul with W as
        # the first operand (broadcast over the batch), one scale (D,), one shift (T, D).
        s, t = bn_affine(cross_patch.affine_1.bn)
        w2, b2 = _f64(cross_patch.affine_2.weight), _f64(cross_patch.affine_2.bias)
        W, bias = _f64(cross_patch.layers.weight), _f64(cross_patch.layers.bias)
        shift = (W.sum(1)[:, None] * t[None, :] + bias[:, None]) * w2[None, :] + b2[None, :]
        h = g.op("MatMul", [g.const(base + ".token_mix.weight", _f32(W)), x],
                 base + ".token_mix/matmul")
        h = g.affine(h, s * w2, shift, base + ".token_mix")
        x = g.op("Add", [x, h], base + ".token_mix/residual")
        # Channel mixing: x + A2(MLP(BN(x))).
        h = _mlp_nodes(g, x, cross_channel.layers, bn_affine(cross_channel.affine_1.bn),
                       (_f64(cross_channel.affine_2.weight), _f64(cross_channel.affine_2.bias)),
                       base + ".channel_mlp", bspline_as_lerp, kernel_lerp, grid * grid)
        x = g.op("Add", [x, h], base + ".channel_mix/residual")
    # Head: classifier(mean_t(BN(x))) = classifier'(mean_t(x)), the BatchNorm folded through
    # the (linear) token mean into the classifier.
    x = g.reduce_mean(x, [1], "head/token_mean")
    w, b = fold_into_linear(_f64(model.classifier.weight), _f64(model.classifier.bias),
                            pre=bn_affine(model.affine.bn))
    out = g.op("Gemm", [x, g.const("classifier.weight", _f32(w)),
                        g.const("classifier.bias", _f32(b))], OUTPUT, transB=1)
    return [BATCH, C, S, S], [BATCH, model.classifier.out_features], out


# --- ResNet-20 ------------------------------------------------------------------------------------

def _conv_bn(g: _Graph, x: str, conv: nn.Conv2d, bn, base: str) -> str:
    """``bn(conv(x))`` as one Conv with the BatchNorm folded into its weight and bias."""
    if conv.groups != 1 or conv.padding_mode != "zeros" or isinstance(conv.padding, str):
        raise ExportError(f"{base}: only plain zero-padded convolutions are exported")
    s, t = bn_affine(bn)
    w = _f64(conv.weight) * s[:, None, None, None]
    b = t + (_f64(conv.bias) * s if conv.bias is not None else 0.0)
    ph, pw = conv.padding
    return g.op("Conv", [x, g.const(base + ".weight", _f32(w)), g.const(base + ".bias", _f32(b))],
                base, kernel_shape=list(conv.kernel_size), strides=list(conv.stride),
                pads=[ph, pw, ph, pw], dilations=list(conv.dilation), group=1)


def _resnet_graph(g: _Graph, model) -> tuple:
    from models.resnet import SubsamplePadShortcut
    x = g.op("Relu", [_conv_bn(g, INPUT, model.conv1, model.bn1, "conv1")], "conv1/relu")
    for stage in ("layer1", "layer2", "layer3"):
        for k, block in enumerate(getattr(model, stage)):
            base = f"{stage}.{k}"
            h = g.op("Relu", [_conv_bn(g, x, block.conv1, block.bn1, base + ".conv1")],
                     base + ".conv1/relu")
            h = _conv_bn(g, h, block.conv2, block.bn2, base + ".conv2")
            sc = x
            if isinstance(block.shortcut, SubsamplePadShortcut):
                # x[:, :, ::2, ::2], then zero channels: `before` in front, `after` behind.
                big = np.iinfo(np.int64).max
                sc = g.op("Slice", [x, g.const("zeros2", [0, 0], np.int64),
                                    g.const("ends2", [big, big], np.int64),
                                    g.const("axes_hw", [2, 3], np.int64),
                                    g.const("steps2", [2, 2], np.int64)],
                          base + ".shortcut/subsample")
                pads = [0, block.shortcut.before, 0, 0, 0, block.shortcut.after, 0, 0]
                sc = g.op("Pad", [sc, g.const(base + ".shortcut.pads", pads, np.int64)],
                          base + ".shortcut/pad", mode="constant")
            elif not isinstance(block.shortcut, nn.Identity):
                raise ExportError(f"{base}: unknown shortcut {type(block.shortcut).__name__}")
            x = g.op("Relu", [g.op("Add", [h, sc], base + "/residual")], base + "/relu")
    x = g.op("Flatten", [g.op("GlobalAveragePool", [x], "pool")], "pool/flatten", axis=1)
    lin = model.linear
    out = g.op("Gemm", [x, g.const("linear.weight", _f32(_f64(lin.weight))),
                        g.const("linear.bias", _f32(_f64(lin.bias)))], OUTPUT, transB=1)
    return [BATCH, model.in_channels, "height", "width"], [BATCH, model.num_classes], out


# --- the model ------------------------------------------------------------------------------

_INT32 = 6  # onnx.TensorProto.INT32 (kept literal so this module imports without onnx)


def export_model(model: nn.Module, opset: int = DEFAULT_OPSET, bspline_as_lerp: bool = False,
                 kernel_lerp: bool = False):
    """The ``onnx.ModelProto`` of ``model`` (a ``ResMLP`` or ``ResNet20``) in eval mode.

    The graph holds default-domain nodes only, opset ``opset`` (17 or later), float32 weights,
    a symbolic batch dimension. It is checked with ``onnx.checker`` (full check, with shape
    inference) before it is returned. ``model`` is left in the mode it was in. LERP tables are
    written as :func:`lean_lerp_nodes` unless ``kernel_lerp`` (then :func:`lerp_nodes`, the
    kernels' operations bit for bit, 19 nodes per lookup plus the BatchNorm's two).
    """
    onnx = require_onnx()
    from onnx import TensorProto, helper
    from models import ResMLP, ResNet20
    opset = check_opset(opset)
    g = _Graph(opset)
    was_training = model.training
    model.eval()
    try:
        if isinstance(model, ResMLP):
            in_shape, out_shape, out = _resmlp_graph(g, model, bspline_as_lerp, kernel_lerp)
            kind = f"ResMLP ({getattr(model, 'act', '?')}, hidden factor " \
                   f"{getattr(model, 'hidden_factor', float('nan')):g})"
        elif isinstance(model, ResNet20):
            in_shape, out_shape, out = _resnet_graph(g, model)
            kind = "ResNet-20"
        else:
            raise ExportError(f"no ONNX export for a {type(model).__name__}; the exporter "
                              "handles ResMLP and ResNet-20")
    finally:
        model.train(was_training)
    assert out == OUTPUT
    graph = helper.make_graph(
        g.nodes, "resmlp" if isinstance(model, ResMLP) else "resnet20",
        [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, out_shape)], g.inits)
    opsets = [helper.make_opsetid("", opset)]
    proto = helper.make_model(graph, opset_imports=opsets, producer_name="resmlp-psa-export",
                              doc_string=f"{kind}, exported from PyTorch eval mode")
    # The oldest IR version that carries this opset: what every runtime of that opset reads.
    proto.ir_version = helper.find_min_ir_version_for(opsets)
    onnx.checker.check_model(proto, full_check=True)
    return proto


def export_activation(mod: nn.Module, opset: int = DEFAULT_OPSET, bspline_as_lerp: bool = False,
                      kernel_lerp: bool = False):
    """One activation module (ReLU, LerpPSA, ResidualLerpPSA, BSpline) as a model of its
    own: input ``x`` (batch, F) float32, output ``y``; the nodes are those of a full export
    (a lean lookup with its own index multiply-add, as in front of a model's first Linear)."""
    onnx = require_onnx()
    from onnx import TensorProto, helper
    g = _Graph(check_opset(opset))
    was_training = mod.training
    mod.eval()
    try:
        y = activation_nodes(g, "x", mod, "act", bspline_as_lerp, kernel_lerp)
    finally:
        mod.train(was_training)
    g.nodes.append(helper.make_node("Identity", [y], ["y"], name="y"))
    features = getattr(mod, "num_features", None)
    io = [helper.make_tensor_value_info(name, TensorProto.FLOAT, [BATCH, features])
          for name in ("x", "y")]
    graph = helper.make_graph(g.nodes, "activation", io[:1], io[1:], g.inits)
    opsets = [helper.make_opsetid("", g.opset)]
    proto = helper.make_model(graph, opset_imports=opsets, producer_name="resmlp-psa-export")
    proto.ir_version = helper.find_min_ir_version_for(opsets)
    onnx.checker.check_model(proto, full_check=True)
    return proto


def summary(proto) -> Dict:
    """``nodes`` (count), ``op_types`` (op -> count, sorted) and ``domains`` of a model."""
    counts = collections.Counter(n.op_type for n in proto.graph.node)
    return dict(nodes=len(proto.graph.node), op_types=dict(sorted(counts.items())),
                domains=sorted({n.domain or "ai.onnx" for n in proto.graph.node}))


def save_model(proto, path: str) -> str:
    """Write ``proto`` to ``path`` atomically (a temporary file in the same folder, then
    rename); returns the absolute path."""
    path = os.path.abspath(os.path.expanduser(os.fspath(path)))
    if os.path.isdir(path):
        raise ExportError(f"--out {path} is a folder; give a file name such as model.onnx")
    folder = os.path.dirname(path)
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"cannot create the folder {folder} ({exc.strerror}); pick another "
                          "--out") from None
    data = proto.SerializeToString()
    try:
        write_atomic(path, lambda f: f.write(data), binary=True)
    except OSError as exc:
        raise ExportError(f"cannot write into {folder} ({exc.strerror}); pick another --out") \
            from None
    return path


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters of the PyTorch model (the paper's size measure)."""
    return sum(p.numel() for p in model.parameters())


__all__ = ["DEFAULT_OPSET", "MIN_OPSET", "INPUT", "OUTPUT", "ExportError", "export_model",
           "export_activation", "save_model", "summary", "max_opset", "check_opset",
           "require_onnx", "bn_affine", "fold_into_linear", "lerp_nodes", "lean_lerp_nodes",
           "bspline_nodes",
           "count_parameters"]
