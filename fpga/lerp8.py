"""Integer reference of the 8-bit LERP unit (docs/METHOD.md section 9), in numpy and torch.

Input ``x`` is a signed 8-bit code; ``idx = x + 128`` (0..255). With ``M``
table-address bits and ``L = 8 - M`` fraction bits: ``hi = idx >> L``,
``lo = idx & (2^L - 1)``. A feature's table has ``2^M + 1`` signed 8-bit
entries; entry ``k`` is the function at code ``k * 2^L - 128``. Then

    y = T[hi] + ((T[hi + 1] - T[hi]) * lo + 2^(L-1)) >> L      (arithmetic shift)

which rounds half up and always lies between T[hi] and T[hi + 1].
"""
from __future__ import annotations

import numpy as np


def check_addr_bits(m: int) -> int:
    if not 1 <= int(m) <= 7:
        raise ValueError(f"address bits M must be in 1..7, got {m}")
    return int(m)


def entries(m: int) -> int:
    return (1 << check_addr_bits(m)) + 1


def table_codes(m: int) -> np.ndarray:
    """The input code each table entry stands for: k * 2^L - 128, k = 0..2^M."""
    L = 8 - check_addr_bits(m)
    return np.arange(entries(m), dtype=np.int64) * (1 << L) - 128


def lerp8(x: np.ndarray, tables: np.ndarray, m: int, features=None) -> np.ndarray:
    """Evaluate int8 codes ``x`` through int8 ``tables`` (F, 2^M + 1).

    ``features[n]`` gives the feature of ``x[n]``; by default ``x`` has shape
    (..., F) and the last axis is the feature.
    """
    m = check_addr_bits(m)
    L = 8 - m
    x = np.asarray(x, dtype=np.int64)
    t = np.asarray(tables, dtype=np.int64)
    if t.ndim != 2 or t.shape[1] != entries(m):
        raise ValueError(f"tables must have shape (F, {entries(m)}) for M = {m}, got {t.shape}")
    if x.size and (x.min() < -128 or x.max() > 127):
        raise ValueError("inputs must be signed 8-bit codes (-128..127)")
    if t.size and (t.min() < -128 or t.max() > 127):
        raise ValueError("table entries must be signed 8-bit values (-128..127)")
    if features is None:
        if x.shape[-1] != t.shape[0]:
            raise ValueError(f"last axis of x has {x.shape[-1]} features, tables have {t.shape[0]}")
        features = np.broadcast_to(np.arange(t.shape[0]), x.shape)
    idx = x + 128
    hi = idx >> L
    lo = idx & ((1 << L) - 1)
    y0 = t[features, hi]
    y1 = t[features, hi + 1]
    y = y0 + (((y1 - y0) * lo + (1 << (L - 1))) >> L)
    return y.astype(np.int8)


def lerp8_stream(x: np.ndarray, tables: np.ndarray, m: int) -> np.ndarray:
    """Stream order of ``lerp_layer.v``: element n belongs to feature n mod F."""
    x = np.asarray(x).reshape(-1)
    F = np.asarray(tables).shape[0]
    return lerp8(x, tables, m, features=np.arange(x.size) % F)


# --- hex files ($readmemh: one two's-complement byte per line) ------------------------------

def write_hex(path, values) -> None:
    v = np.asarray(values, dtype=np.int64).reshape(-1)
    if v.size and (v.min() < -128 or v.max() > 127):
        raise ValueError("hex files hold signed 8-bit values")
    with open(path, "w") as f:
        f.write("".join(f"{int(b) & 0xFF:02x}\n" for b in v))


def read_hex(path) -> np.ndarray:
    with open(path) as f:
        words = [w for line in f for w in line.split("//")[0].split()]
    try:
        v = np.array([int(w, 16) for w in words], dtype=np.int64)
    except ValueError:
        raise ValueError(f"{path} is not a hex file of bytes") from None
    if v.size and v.max() > 0xFF:
        raise ValueError(f"{path} holds values wider than one byte")
    return np.where(v >= 128, v - 256, v).astype(np.int8)
