"""The integer ResMLP of ``fpga.int_resmlp`` (docs/METHOD.md section 10) as an ONNX graph.

Default-domain operators only, integer arithmetic only after the input table: the graph's
logits equal ``fpga.int_resmlp.forward``'s bit for bit (tests/test_onnx_int8.py).

**Input and output.** ``images``: uint8 (batch, C, S, S), the raw pixels as the data set stores
them (Fashion-MNIST: the 28 x 28 image with 2 zero pixels on every side, S = 32). ``logits``:
int32 (batch, classes), the integer model's logit codes (-128..127; the head is a ``linear``,
so they are int8 values carried in int32).

**Codes.** Between layers an activation is held as its *offset code* ``u = x + 128`` (0..255):
uint8 where it feeds a ``MatMulInteger`` (zero point 128 gives back x), int32 where it indexes
a table (``GatherElements`` takes int32 indices). Every activation is (tokens of the batch,
features), 2-D, except around the token-mixing product.

**Tables.** Every per-feature function of one 8-bit code is one ``GatherElements`` (axis 0)
from a (256, F) table, row u holding the output for input code u - 128 (computed with the
integer primitives of ``fpga.int_ops`` on all 256 codes):

* the input quantiser (pixel value -> patch code, per image channel);
* the affines ``tm.res``, ``tm.aff1``, ``tm.aff2``, ``mlp.res`` (``clip8(rshift(x w, s) + b)``);
* each LERP-PSA sublayer ``lerp8(x, lut)`` with its residual (the 65-entry table of section 9
  interpolated at every code: ``lut1`` is the whole ``x -> RP(BN(x))``).

**Linear** ``clip8(rshift(x @ W^T, s) + b)``: ``MatMulInteger`` (uint8 codes, zero point 128,
times int8 W: onnxruntime's fast u8s8 kernel; ``unsigned_weights=True`` stores W + 128 as
uint8 with zero point 128, the u8u8 kernel), int32 accumulation, then the requantisation
in four int32 nodes::

    z = acc + (2^(s-1) + (b + 128) 2^s)     Add (per output channel; 2^(s-1) is 0 for s = 0)
    z = max(z, 0)                            Clip
    q = z / 2^s                              Div: z >= 0, so truncation is floor
    u = min(q, 255)                          Clip

which is ``clip8(floor((acc + 2^(s-1)) / 2^s) + b) + 128``, the arithmetic shift rounding half
up: floor is monotone, so clipping z below at 0 (= code -128) before the division and q above
at 255 after it is the clip8. ONNX ``Div`` alone truncates towards zero and ``QuantizeLinear``
rounds half to even; on a non-negative numerator with the rounding constant added first
neither matters. The token-mixing product uses the (tokens, tokens) weight as its first
operand (u8u8, broadcast over the batch) and requantises per token.

**add8** ``clip8(t + r)``: the table of ``tm.aff2`` (or the MLP's last requantisation) gives the
offset code of t, the residual's table gives r as a signed code: ``Add`` then ``Clip(0, 255)``.
**relu8**: ``Max(u, 128)`` on the uint8 codes, one node. **Mean pool** over T = 2^k tokens:
``ReduceSum`` of the offset codes (non-negative), ``+ 2^(k-1)``, ``Div`` by 2^k: the rounded
mean of the codes is the offset code of ``rshift(sum x, k)`` because 128 T / 2^k = 128.
"""
from __future__ import annotations

import contextlib
import glob
import os
from typing import Dict, Optional

import numpy as np

from .onnx_export import BATCH, DEFAULT_OPSET, ExportError, _Graph, check_opset, require_onnx

INPUT = "images"
OUTPUT = "logits"
CODES = 256
_INT32_MAX = (1 << 31) - 1


def _int_ops():
    from fpga import int_ops
    return int_ops


def all_codes() -> np.ndarray:
    """The 256 int8 codes -128..127, row u of a table is the code u - 128."""
    return np.arange(-128, 128, dtype=np.int64)


def affine_table(w, b, s) -> np.ndarray:
    """(256, C) int8: ``clip8(rshift(x * w, s) + b)`` of every code x, per channel."""
    x = np.broadcast_to(all_codes()[:, None], (CODES, len(w)))
    return _int_ops().affine(x, w, b, s)


def lerp_table(lut) -> np.ndarray:
    """(256, F) int8: ``lerp8`` of every code x through the (F, 65) table."""
    x = np.broadcast_to(all_codes()[:, None], (CODES, lut.shape[0]))
    return _int_ops().lerp8(x, lut)


def input_table(meta: dict) -> np.ndarray:
    """(256, C) int8: the patch code of pixel value v in image channel c, computed as the data
    pipeline and ``fpga.int_resmlp.dataset_codes`` compute it (float32, elementwise)."""
    import torch
    from fpga.int_resmlp import input_codes
    C = int(meta["in_channels"])
    mean = torch.tensor([float(m) for m in meta["mean"]]).view(1, -1)
    std = torch.tensor([float(s) for s in meta["std"]]).view(1, -1)
    if mean.shape[1] != C or std.shape[1] != C:
        raise ExportError(f"meta: mean and std need {C} values (one per image channel), got "
                          f"{mean.shape[1]} and {std.shape[1]}; re-dump the parameters")
    v = torch.arange(CODES, dtype=torch.uint8).view(-1, 1).expand(CODES, C)
    img = v.float().div_(255.0)
    bits = int(meta.get("bits", {}).get("input", 8))
    codes = input_codes((img - mean) / std, meta["input_scale"], bits)
    return codes.to(torch.int64).numpy().astype(np.int8)


def _offset(codes: np.ndarray, dtype) -> np.ndarray:
    return (np.asarray(codes, np.int64) + 128).astype(dtype)


def requant_constants(W: np.ndarray, b: np.ndarray, s: np.ndarray, where: str):
    """``(add, divisor)`` int32 per output channel of ``clip8(rshift(acc, s) + b) + 128``
    written as ``min(max(acc + add, 0) / divisor, 255)``. A shift above every accumulator's
    reach (2^(s-1) > the largest |acc|, so the shifted value is 0) is lowered to the smallest
    such shift, which gives the same codes and keeps 2^s in int32."""
    W = np.asarray(W, np.int64)
    s = np.asarray(s, np.int64).copy()
    reach = 128 * np.abs(W).sum(axis=1)  # the largest |acc| of any input codes
    for o in range(len(s)):
        while s[o] > 1 and (1 << (int(s[o]) - 2)) > reach[o]:  # 2^(s-2) > reach: s-1 also gives 0
            s[o] -= 1
    half = np.where(s > 0, (1 << s) >> 1, 0)
    add = half + (np.asarray(b, np.int64) + 128) * (1 << s)
    if int((reach + np.abs(add)).max()) > _INT32_MAX or int(s.max()) > 30:
        raise ExportError(f"{where}: the requantisation needs more than 32 bits (shift "
                          f"{int(s.max())}, accumulators up to {int(reach.max())}); the "
                          "integer model's layers must keep their sums within int32")
    return add.astype(np.int32), (np.int64(1) << s).astype(np.int32)


class _IntGraph(_Graph):
    def __init__(self, opset: int, unsigned_weights: bool):
        super().__init__(opset)
        self.unsigned_weights = unsigned_weights

    def gather(self, table: np.ndarray, idx: str, base: str) -> str:
        """One ``GatherElements`` (axis 0) of the (256, F) ``table`` at int32 offset codes
        ``idx`` (rows, F)."""
        return self.op("GatherElements", [self.const(base + ".table", table, table.dtype), idx],
                       base, axis=0)

    def requant(self, acc: str, add, div, base: str, shape=None) -> str:
        """int32 offset codes ``min(max(acc + add, 0) / div, 255)`` (see the module doc)."""
        shape = shape or (-1,)
        z = self.op("Add", [acc, self.const(base + ".round_bias", np.reshape(add, shape),
                                            np.int32)], base + "/add")
        z = self.op("Clip", [z, self.const("i32_zero", 0, np.int32)], base + "/clip_low")
        q = self.op("Div", [z, self.const(base + ".divisor", np.reshape(div, shape), np.int32)],
                    base + "/shift")
        return self.op("Clip", [q, "", self.const("i32_255", 255, np.int32)], base + "/clip_high")

    def linear(self, u8: str, W, b, s, base: str) -> str:
        """Offset codes (int32) of ``linear(x, W, b, s)`` for uint8 offset codes ``u8``
        (rows, I)."""
        W = np.asarray(W, np.int64)
        if self.unsigned_weights:
            w = self.const(base + ".weight_t", _offset(W.T, np.uint8), np.uint8)
            wzp = self.const("u8_zero_point", 128, np.uint8)
        else:
            w = self.const(base + ".weight_t", W.T, np.int8)
            wzp = self.const("i8_zero", 0, np.int8)
        acc = self.op("MatMulInteger", [u8, w, self.const("u8_zero_point", 128, np.uint8), wzp],
                      base + "/matmul")
        add, div = requant_constants(W, b, s, base)
        return self.requant(acc, add, div, base)

    def to_u8(self, codes: str, base: str) -> str:
        return self.op("Cast", [codes], base + "/u8", to=2)  # TensorProto.UINT8

    def add8(self, t: str, r: str, base: str) -> str:
        """Offset codes of ``clip8(t + r)``: t as offset codes, r as signed codes (int32)."""
        z = self.op("Add", [t, r], base + "/add")
        return self.op("Clip", [z, self.const("i32_zero", 0, np.int32),
                                self.const("i32_255", 255, np.int32)], base + "/clip")


def _graph(g: _IntGraph, params: Dict[str, np.ndarray], meta: dict) -> str:
    C, T, P = int(meta["channels"]), int(meta["tokens"]), int(meta["patch_values"])
    ch, p = int(meta["in_channels"]), int(meta["patch_size"])
    grid = int(meta["img_size"]) // p
    if grid * grid != T or p * p * ch != P:
        raise ExportError(f"meta: {T} tokens of {P} values do not tile a {meta['img_size']} x "
                          f"{meta['img_size']} image of {ch} channel(s) in {p} x {p} patches")
    i64 = np.int64
    # Patches of the uint8 image, as fpga.int_resmlp.patchify: value index (r p + c) C + channel.
    x = g.op("Reshape", [INPUT, g.const("patch_shape", [-1, ch, grid, p, grid, p], i64)],
             "patchify/split")
    x = g.op("Transpose", [x], "patchify/transpose", perm=[0, 2, 4, 3, 5, 1])
    x = g.op("Reshape", [x, g.const("rows_p", [-1, P], i64)], "patchify/rows")
    x = g.op("Cast", [x], "patchify/index", to=6)  # TensorProto.INT32
    tab = input_table(meta)[:, np.arange(P) % ch]  # column v reads the table of channel v % ch
    x = g.gather(_offset(tab, np.uint8), x, "input_codes")
    x = g.linear(x, params["embed.W"], params["embed.b"], params["embed.s"], "embed")

    def aff_table(name, dtype, offset=True):
        t = affine_table(params[f"{name}.w"], params[f"{name}.b"], params[f"{name}.s"])
        return _offset(t, dtype) if offset else t.astype(dtype)

    for i in range(int(meta["depth"])):
        pre = f"blocks.{i}"
        # Token mixing: x = add8(aff2(linear(aff1(x)^T, W)^T), res(x)).
        r = g.gather(aff_table(f"{pre}.tm.res", np.int32, offset=False), x, f"{pre}.tm.res")
        t = g.gather(aff_table(f"{pre}.tm.aff1", np.uint8), x, f"{pre}.tm.aff1")
        t = g.op("Reshape", [t, g.const("tokens_c", [-1, T, C], i64)], f"{pre}.tm/tokens")
        W = np.asarray(params[f"{pre}.tm.lin.W"], np.int64)
        zp = g.const("u8_zero_point", 128, np.uint8)
        weight = g.const(f"{pre}.tm.lin.weight", _offset(W, np.uint8), np.uint8)
        acc = g.op("MatMulInteger", [weight, t, zp, zp], f"{pre}.tm.lin/matmul")
        add, div = requant_constants(W, params[f"{pre}.tm.lin.b"], params[f"{pre}.tm.lin.s"],
                                     f"{pre}.tm.lin")
        t = g.requant(acc, add, div, f"{pre}.tm.lin", shape=(T, 1))  # per token: a column
        t = g.op("Reshape", [t, g.const("rows_c", [-1, C], i64)], f"{pre}.tm/rows")
        t = g.gather(aff_table(f"{pre}.tm.aff2", np.int32), t, f"{pre}.tm.aff2")
        x = g.add8(t, r, f"{pre}.tm.residual")
        # Channel MLP: x = add8(lin2(act(lin1(...))), res(x)).
        r = g.gather(aff_table(f"{pre}.mlp.res", np.int32, offset=False), x, f"{pre}.mlp.res")
        if meta["act"] == "psa":
            t = g.gather(_offset(lerp_table(params[f"{pre}.mlp.lut1"]), np.uint8), x,
                         f"{pre}.mlp.lut1")
            t = g.linear(t, params[f"{pre}.mlp.lin1.W"], params[f"{pre}.mlp.lin1.b"],
                         params[f"{pre}.mlp.lin1.s"], f"{pre}.mlp.lin1")
            t = g.gather(_offset(lerp_table(params[f"{pre}.mlp.lut2"]), np.uint8), t,
                         f"{pre}.mlp.lut2")
        else:
            t = g.linear(g.to_u8(x, f"{pre}.mlp.lin1"), params[f"{pre}.mlp.lin1.W"],
                         params[f"{pre}.mlp.lin1.b"], params[f"{pre}.mlp.lin1.s"],
                         f"{pre}.mlp.lin1")
            t = g.op("Max", [g.to_u8(t, f"{pre}.mlp.relu"), g.const("u8_zero_point", 128,
                                                                     np.uint8)],
                     f"{pre}.mlp.relu")
        t = g.linear(t, params[f"{pre}.mlp.lin2.W"], params[f"{pre}.mlp.lin2.b"],
                     params[f"{pre}.mlp.lin2.s"], f"{pre}.mlp.lin2")
        x = g.add8(t, r, f"{pre}.mlp.residual")
    # Mean pool: the rounded mean of the T = 2^k offset codes is the pooled offset code.
    k = T.bit_length() - 1
    x = g.op("Reshape", [x, g.const("tokens_c", [-1, T, C], i64)], "pool/tokens")
    sums = g.op("ReduceSum", [x, g.const("token_axis", [1], i64)], "pool/sum", keepdims=0)
    if k:
        sums = g.op("Add", [sums, g.const("pool.round_bias", 1 << (k - 1), np.int32)],
                    "pool/round")
        sums = g.op("Div", [sums, g.const("pool.divisor", 1 << k, np.int32)], "pool/shift")
    u = g.linear(g.to_u8(sums, "pool"), params["head.W"], params["head.b"], params["head.s"],
                 "head")
    return g.op("Sub", [u, g.const("i32_128", 128, np.int32)], OUTPUT)


def export_int8(params: Dict[str, np.ndarray], meta: dict, opset: int = DEFAULT_OPSET,
                unsigned_weights: bool = False):
    """The ``onnx.ModelProto`` of the integer model (``fpga.int_resmlp.load_params``'s
    ``params``, ``meta``), checked with ``onnx.checker`` (full check) before it is returned."""
    onnx = require_onnx()
    from onnx import TensorProto, helper
    from fpga.int_resmlp import check_params
    check_params(params, meta)
    g = _IntGraph(check_opset(opset), unsigned_weights)
    out = _graph(g, params, meta)
    assert out == OUTPUT
    S, ch = int(meta["img_size"]), int(meta["in_channels"])
    graph = helper.make_graph(
        g.nodes, "int8_resmlp",
        [helper.make_tensor_value_info(INPUT, TensorProto.UINT8, [BATCH, ch, S, S])],
        [helper.make_tensor_value_info(OUTPUT, TensorProto.INT32,
                                       [BATCH, int(meta["num_classes"])])], g.inits)
    opsets = [helper.make_opsetid("", g.opset)]
    act = {"base": "ReLU", "psa": "LERP-PSA"}[meta["act"]]
    proto = helper.make_model(graph, opset_imports=opsets, producer_name="resmlp-psa-export",
                              doc_string=f"INT8 ResMLP ({act}, hidden {meta['hidden']}), the "
                                         "integer model of fpga.int_resmlp")
    proto.ir_version = helper.find_min_ir_version_for(opsets)
    onnx.checker.check_model(proto, full_check=True)
    return proto


def image_batch(meta: dict, dataset_dir: Optional[str] = None, limit: Optional[int] = None):
    """``(uint8 images (N, C, S, S), labels (N,))`` of the Fashion-MNIST test set as the data
    pipeline pads them, the first ``limit``."""
    import data as datasets
    from fpga.int_resmlp import ParamsError
    if int(meta["in_channels"]) != 1 or int(meta["img_size"]) != 32:
        raise ExportError("the INT8 check runs on Fashion-MNIST (1 x 32 x 32); these parameters "
                          f"take {meta['in_channels']} x {meta['img_size']} x {meta['img_size']}")
    try:
        _, test, _ = datasets.fashion_mnist(dataset_dir, augment=False)
    except datasets.DatasetError as exc:
        raise ParamsError(str(exc)) from None
    n = len(test) if limit is None else min(int(limit), len(test))
    return test.images[:n].numpy(), test.labels[:n].numpy()


def codes_of_images(meta: dict, images: np.ndarray) -> np.ndarray:
    """The int8 patch codes (N, tokens, P) of uint8 ``images`` as ``dataset_codes`` computes
    them (the independent path the check compares against)."""
    import torch
    from fpga.int_resmlp import input_codes, patchify
    mean = torch.tensor([float(m) for m in meta["mean"]]).view(-1, 1, 1)
    std = torch.tensor([float(s) for s in meta["std"]]).view(-1, 1, 1)
    img = (torch.from_numpy(np.ascontiguousarray(images)).float().div_(255.0) - mean) / std
    bits = int(meta.get("bits", {}).get("input", 8))
    return input_codes(patchify(img, int(meta["patch_size"])), meta["input_scale"], bits) \
        .to(torch.int8).numpy()


@contextlib.contextmanager
def single_thread_blas():
    """NumPy's OpenBLAS on one thread for the duration (the reference's float64 products).

    On the shared 2-core machine, with onnxruntime's and PyTorch's pools alive in the same
    process, OpenBLAS's own threads made ``fpga.int_resmlp.forward`` about 30 times slower. The
    library is the one NumPy loaded (numpy.libs); where it is not found nothing changes."""
    import ctypes
    lib = None
    folder = os.path.join(os.path.dirname(os.path.dirname(np.__file__)), "numpy.libs")
    for path in glob.glob(os.path.join(folder, "*openblas*.so*")):
        try:
            handle = ctypes.CDLL(path)
            lib = (handle.scipy_openblas_get_num_threads64_,
                   handle.scipy_openblas_set_num_threads64_)
            break
        except (OSError, AttributeError):
            continue
    if lib is None:
        yield
        return
    before = int(lib[0]())
    lib[1](1)
    try:
        yield
    finally:
        lib[1](before)


def check_int8(session, params, meta, images: np.ndarray, labels=None, batch: int = 500) -> Dict:
    """onnxruntime's logits against ``fpga.int_resmlp.forward`` on ``images``: ``images``,
    ``differing_logits``, ``differing_images`` and both accuracies when ``labels`` are given."""
    from fpga.int_resmlp import forward
    got = np.concatenate([session.run(None, {INPUT: np.ascontiguousarray(images[i:i + batch])})[0]
                          for i in range(0, len(images), batch)])
    with single_thread_blas():
        ref = forward(params, meta, codes_of_images(meta, images)).astype(np.int32)
    out = dict(images=int(len(images)), differing_logits=int((got != ref).sum()),
               differing_images=int((got != ref).any(axis=1).sum()))
    if labels is not None:
        out["accuracy_onnx"] = round(100.0 * float((got.argmax(1) == labels).mean()), 2)
        out["accuracy_reference"] = round(100.0 * float((ref.argmax(1) == labels).mean()), 2)
    return out


__all__ = ["export_int8", "check_int8", "image_batch", "codes_of_images", "input_table",
           "affine_table", "lerp_table", "requant_constants", "INPUT", "OUTPUT"]
