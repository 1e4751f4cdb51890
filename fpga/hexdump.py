"""The INT8 ResMLP's parameters as ``$readmemh`` files, the only thing the RTL reads.

``write_hex_files(params, meta, out_dir)`` writes one file per tensor of
``quant_params.npz`` (docs/METHOD.md section 10), named ``<key>.hex`` (``embed.W.hex``,
``blocks.0.tm.lin.s.hex``, ``blocks.3.mlp.lut2.hex``, ``head.b.hex``, ...), plus
``manifest.json`` (the model's meta and the list of files). Layout, every value in two's
complement, hexadecimal, most significant digit first:

* a weight matrix ``*.W`` of shape (O, I): O lines, line o holds the whole row W[o, :] as one
  ``8 * I``-bit word, 2 hex digits per weight with W[o, I-1] first and W[o, 0] last (so that
  bits [8i+7 : 8i] of the word are W[o, i]);
* a vector (``*.b``, ``*.w``, ``*.s``): one value per line, 2 hex digits (shifts are 0..31);
* a LERP table set ``*.lut1`` / ``*.lut2`` of shape (F, 2^M + 1): one entry per line,
  feature-major (feature 0's entries 0..2^M, then feature 1's, ...), the layout of
  ``fpga/rtl/lerp_layer.v``;
* with ``lanes`` = L > 1 (the RTL's lin1 with L output lanes, ``fpga/rtl/linear_rom.v``), each
  channel MLP's ``lin1`` tensors also as ``<key>.x<L>.hex``: L consecutive outputs per line,
  the highest first (line j holds outputs jL + L - 1, ..., jL, each written as above).

Each file is written to a temporary name and renamed, so a reader never sees half a file.
"""
from __future__ import annotations

import json
import os
from typing import Dict, List

import numpy as np

from errors import UserError, write_atomic


class HexDumpError(UserError):
    """A tensor that cannot be written as the RTL's hex files."""


def _int8_rows(key: str, a) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype.kind not in "iu":
        raise HexDumpError(f"{key} has dtype {a.dtype}; hex files hold integer codes")
    a = a.astype(np.int64)
    lo, hi = (0, 31) if key.endswith(".s") else (-128, 127)
    if a.size and (a.min() < lo or a.max() > hi):
        raise HexDumpError(f"{key} holds values {int(a.min())}..{int(a.max())} outside {lo}..{hi}")
    return a


def hex_lines(key: str, a) -> str:
    """The text of ``<key>.hex`` for the tensor ``a`` (layout in the module docstring)."""
    a = _int8_rows(key, a)
    b = a & 0xFF
    if key.endswith(".W"):
        if a.ndim != 2:
            raise HexDumpError(f"{key} must be a matrix (out, in), got shape {a.shape}")
        return "".join("".join(f"{int(v):02x}" for v in row[::-1]) + "\n" for row in b)
    return "".join(f"{int(v):02x}\n" for v in b.reshape(-1))


def _atomic_write(path: str, text: str) -> None:
    write_atomic(path, lambda f: f.write(text))


def grouped_hex_lines(key: str, a, lanes: int) -> str:
    """The text of ``<key>.x<lanes>.hex``: ``lanes`` consecutive outputs per line (a Linear's
    ``W`` rows, or its ``b`` / ``s`` values), the highest output first."""
    lines = hex_lines(key, a).split()
    if lanes < 1 or len(lines) % lanes:
        raise HexDumpError(f"{key}: {len(lines)} outputs do not split into groups of {lanes}")
    return "".join("".join(reversed(lines[j:j + lanes])) + "\n" for j in range(0, len(lines), lanes))


def lane_keys(params) -> List[str]:
    """The tensors the RTL reads in groups of lanes: every channel MLP's lin1 W, b and s
    (keys ``<prefix>.lin1.W``, ``.b``, ``.s``)."""
    return [k for k in sorted(params)
            if k.split(".")[-2:-1] == ["lin1"] and k.rsplit(".", 1)[-1] in ("W", "b", "s")]


def write_hex_files(params: Dict[str, np.ndarray], meta: dict, out_dir, lanes: int = 1) -> List[str]:
    """Write ``<key>.hex`` for every tensor (and, for ``lanes`` > 1, ``<key>.x<lanes>.hex`` of
    the lin1 tensors) and ``manifest.json``; return the paths written (hex files in key
    order, the grouped files after them, the manifest last)."""
    out_dir = os.fspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    paths = []
    for key in sorted(params):
        path = os.path.join(out_dir, f"{key}.hex")
        _atomic_write(path, hex_lines(key, params[key]))
        paths.append(path)
    if lanes > 1:
        for key in lane_keys(params):
            path = os.path.join(out_dir, f"{key}.x{lanes}.hex")
            _atomic_write(path, grouped_hex_lines(key, params[key], lanes))
            paths.append(path)
    manifest = {"meta": meta, "files": {k: f"{k}.hex" for k in sorted(params)},
                "layout": "W: one row per line, W[o, I-1] first; vectors and tables: one "
                          "value per line, tables feature-major; two's complement hex"}
    path = os.path.join(out_dir, "manifest.json")
    _atomic_write(path, json.dumps(manifest, indent=1, sort_keys=True, default=str) + "\n")
    paths.append(path)
    return paths


def read_hex_tensor(path, shape, key: str = "") -> np.ndarray:
    """Read back one file written by :func:`write_hex_files` (tests, debugging)."""
    with open(path) as f:
        words = f.read().split()
    if key.endswith(".W") or (not key and len(shape) == 2 and len(words) == shape[0]):
        O, I = shape
        out = np.zeros((O, I), np.int64)
        for o, w in enumerate(words):
            v = int(w, 16)
            for i in range(I):
                out[o, i] = (v >> (8 * i)) & 0xFF
    else:
        out = np.array([int(w, 16) for w in words], np.int64).reshape(shape)
    if not key.endswith(".s"):
        out = np.where(out >= 128, out - 256, out)
    return out
