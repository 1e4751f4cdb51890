"""Integer primitives of the INT8 ResMLP (docs/METHOD.md section 10), vectorised in NumPy.

Every value is an integer; there is no float anywhere. Codes are signed 8-bit
(-128..127), accumulators 32-bit, shifts ``s`` integers in 0..31 (one per output
channel). Internally everything is computed in int64 so that nothing can wrap;
results come back as ``int8`` (codes) or ``int32`` (``rshift``).

    rshift(v, s) = (v + 2^(s-1)) >> s   for s >= 1 (arithmetic shift: round half up); v for s = 0
    clip8(v)     = min(max(v, -128), 127)
    linear(x (.., T, I), W (O, I), b (O), s (O)) = clip8(rshift(x @ W^T, s) + b)   per column o
    affine(x (.., T, C), w (C), b (C), s (C))    = clip8(rshift(x * w, s) + b)     per channel c
    lerp8(x (.., C), lut (C, 2^M + 1))           = the 8-bit LERP of section 9, M = 6
    relu8(x) = max(x, 0);   add8(a, b) = clip8(a + b)

Leading axes of ``x`` broadcast (a batch of images, or one image).

The dot products of ``linear``: NumPy has no BLAS for integer matrices (an int64 ``@`` runs
about 100x slower than float), so by default ``x @ W^T`` is computed by float64 BLAS and
converted back to int64. That is an exact integer dot product, not an approximation: every
product and every partial sum is an integer of magnitude below ``I * 2^14 < 2^53``, which
float64 represents exactly in any summation order (checked per call). ``int64_matmul=True``
(``python -m fpga.int_resmlp --int64-matmul``) runs the same product in int64; the tests check
that both agree bit for bit.
"""
from __future__ import annotations

import numpy as np

from . import lerp8 as _lerp8

LUT_ADDR_BITS = 6                      # M: table address bits (L = 8 - M fraction bits)
LUT_ENTRIES = (1 << LUT_ADDR_BITS) + 1  # 65: entry 2^M closes the top segment
INT8_MIN, INT8_MAX = -128, 127
SHIFT_MAX = 31


def _as_int(a, name: str) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype.kind not in "iub":
        raise TypeError(f"{name} must be an integer array, got dtype {a.dtype}")
    return a.astype(np.int64, copy=False)


def _shifts(s) -> np.ndarray:
    s = _as_int(s, "s")
    if s.size and (s.min() < 0 or s.max() > SHIFT_MAX):
        raise ValueError(f"shifts must lie in 0..{SHIFT_MAX}, got {int(s.min())}..{int(s.max())}")
    return s


def _rshift64(v: np.ndarray, s: np.ndarray) -> np.ndarray:
    # s = 0 -> v; else (v + 2^(s-1)) >> s. (1 << (s-1)) >> 1 trick avoids a negative shift.
    half = (np.int64(1) << s) >> 1
    return (v + half) >> s


def rshift(v, s) -> np.ndarray:
    """Rounding arithmetic right shift: ``(v + 2^(s-1)) >> s`` (half up), ``v`` when s = 0.
    ``s`` broadcasts against ``v`` (a scalar, or one shift per last-axis channel)."""
    v = _as_int(v, "v")
    return _rshift64(v, _shifts(s)).astype(np.int32)


def clip8(v) -> np.ndarray:
    """Saturate to the signed 8-bit range."""
    return np.clip(_as_int(v, "v"), INT8_MIN, INT8_MAX).astype(np.int8)


EXACT_F64 = 1 << 53


def matmul_int(x: np.ndarray, W: np.ndarray, int64_matmul: bool = False) -> np.ndarray:
    """``x @ W^T`` of integer arrays, exactly, as int64 (see the module note on float64 BLAS)."""
    x = _as_int(x, "x")
    W = _as_int(W, "W")
    if int64_matmul:
        return x @ W.T
    bound = (int(np.abs(x).max(initial=0)) * int(np.abs(W).max(initial=0)) * int(W.shape[1]))
    if bound >= EXACT_F64:
        return x @ W.T                      # too wide for an exact float64 sum: stay in int64
    return (x.astype(np.float64) @ W.T.astype(np.float64)).astype(np.int64)


def linear(x, W, b, s, int64_matmul: bool = False) -> np.ndarray:
    """``clip8(rshift(x @ W^T, s) + b)``: x (..., I) codes, W (O, I), b (O), s (O) -> (..., O) int8."""
    x = _as_int(x, "x")
    W = _as_int(W, "W")
    b = _as_int(b, "b")
    s = _shifts(s)
    if W.ndim != 2 or x.shape[-1] != W.shape[1]:
        raise ValueError(f"linear: x has {x.shape[-1]} inputs per row, W has shape {W.shape}")
    if b.shape != (W.shape[0],) or s.shape != (W.shape[0],):
        raise ValueError(f"linear: b and s must have shape ({W.shape[0]},), got {b.shape}, {s.shape}")
    acc = matmul_int(x, W, int64_matmul)
    return np.clip(_rshift64(acc, s) + b, INT8_MIN, INT8_MAX).astype(np.int8)


def affine(x, w, b, s) -> np.ndarray:
    """``clip8(rshift(x * w, s) + b)`` per channel (last axis): w, b, s of shape (C,)."""
    x = _as_int(x, "x")
    w = _as_int(w, "w")
    b = _as_int(b, "b")
    s = _shifts(s)
    C = x.shape[-1]
    if w.shape != (C,) or b.shape != (C,) or s.shape != (C,):
        raise ValueError(f"affine: w, b, s must have shape ({C},), got {w.shape}, {b.shape}, {s.shape}")
    return np.clip(_rshift64(x * w, s) + b, INT8_MIN, INT8_MAX).astype(np.int8)


def lerp8(x, lut) -> np.ndarray:
    """Per-channel 8-bit LERP (section 9, M = 6): x (..., C) codes, lut (C, 65) int8 -> int8.
    The result lies between two table entries, so it needs no clip."""
    return _lerp8.lerp8(_as_int(x, "x"), _as_int(lut, "lut"), LUT_ADDR_BITS)


def relu8(x) -> np.ndarray:
    return np.maximum(_as_int(x, "x"), 0).astype(np.int8)


def add8(a, b) -> np.ndarray:
    """Saturating add of two code tensors."""
    return np.clip(_as_int(a, "a") + _as_int(b, "b"), INT8_MIN, INT8_MAX).astype(np.int8)


def mean_pool(x) -> np.ndarray:
    """``rshift(sum over the token axis (-2), log2 T)``: the rounded mean of T = 2^k tokens.
    Stays within int8 (the rounded mean of int8 values)."""
    x = _as_int(x, "x")
    T = x.shape[-2]
    k = T.bit_length() - 1
    if T != 1 << k:
        raise ValueError(f"mean_pool needs a power-of-two token count, got {T}")
    return _rshift64(x.sum(axis=-2), np.int64(k)).astype(np.int8)
