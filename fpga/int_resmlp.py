"""The integer-only ResMLP (docs/METHOD.md section 10): the reference the RTL must match.

After the input codes there is no float: weights, biases, tables and activations are int8
codes, accumulators int32, and every rescaling is a rounding right shift (``fpga.int_ops``).
One image is x (64, P) int8 patch codes (P = 16 for one channel, 48 for three):

    x = linear(x, embed)
    for each block:
        r = affine(x, tm.res);  t = affine(x, tm.aff1)
        t = linear(t^T, tm.lin)^T                      # W (64, 64): across the tokens
        x = add8(affine(t, tm.aff2), r)
        r = affine(x, mlp.res)
        ReLU:      t = linear(relu8(linear(x, mlp.lin1)), mlp.lin2)
        LERP-PSA:  t = linear(lerp8(linear(lerp8(x, mlp.lut1), mlp.lin1), mlp.lut2), mlp.lin2)
        x = add8(t, r)
    p = rshift(sum over the 64 tokens of x, 6)
    logits = linear(p, head)

Parameter file (``quant_params.npz``, ``np.load(..., allow_pickle=False)``): integer arrays
``embed.{W,b,s}``, per block i ``blocks.i.tm.{res,aff1,aff2}.{w,b,s}``, ``blocks.i.tm.lin.{W,b,s}``,
``blocks.i.mlp.res.{w,b,s}``, ``blocks.i.mlp.{lin1,lin2}.{W,b,s}`` and for LERP-PSA
``blocks.i.mlp.lut1`` (C, 65), ``blocks.i.mlp.lut2`` (H, 65); ``head.{W,b,s}``. W is
(out, in). W, w, b, lut hold int8 values, s 0..31. ``meta`` is a 0-d unicode array of JSON
(act, hidden, sizes, lut_addr_bits, the input scale and the normalisation; see
``input_codes``).

  python -m fpga.int_resmlp --params D/quant_params.npz --dataset fashion-mnist
prints the integer model's test accuracy (and, with --samples, checks the dumped logits).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Dict, List, Optional, Tuple

import numpy as np

from errors import UserError, write_atomic

from . import int_ops as ops

META_KEYS = ("act", "hidden", "channels", "depth", "tokens", "patch_values", "num_classes",
             "lut_addr_bits", "input_scale", "mean", "std", "patch_size", "in_channels",
             "img_size")
ACTS = ("base", "psa")


class ParamsError(UserError):
    """A parameter or sample file that is missing, malformed or out of range."""


# --- layout --------------------------------------------------------------------------------

def param_shapes(meta: dict) -> Dict[str, Tuple[int, ...]]:
    """Key -> shape of every integer array the model of ``meta`` needs, in forward order."""
    C, H, T = int(meta["channels"]), int(meta["hidden"]), int(meta["tokens"])
    P, K = int(meta["patch_values"]), int(meta["num_classes"])
    E = (1 << int(meta["lut_addr_bits"])) + 1
    shp: Dict[str, Tuple[int, ...]] = {}

    def lin(name, o, i):
        shp.update({f"{name}.W": (o, i), f"{name}.b": (o,), f"{name}.s": (o,)})

    def aff(name, c):
        shp.update({f"{name}.w": (c,), f"{name}.b": (c,), f"{name}.s": (c,)})

    lin("embed", C, P)
    for i in range(int(meta["depth"])):
        pre = f"blocks.{i}"
        aff(f"{pre}.tm.res", C)
        aff(f"{pre}.tm.aff1", C)
        lin(f"{pre}.tm.lin", T, T)
        aff(f"{pre}.tm.aff2", C)
        aff(f"{pre}.mlp.res", C)
        if meta["act"] == "psa":
            shp[f"{pre}.mlp.lut1"] = (C, E)
        lin(f"{pre}.mlp.lin1", H, C)
        if meta["act"] == "psa":
            shp[f"{pre}.mlp.lut2"] = (H, E)
        lin(f"{pre}.mlp.lin2", C, H)
    lin("head", K, C)
    return shp


def _value_range(key: str) -> Tuple[int, int]:
    return (0, ops.SHIFT_MAX) if key.endswith(".s") else (ops.INT8_MIN, ops.INT8_MAX)


def check_meta(meta: dict, where: str = "meta") -> dict:
    if not isinstance(meta, dict):
        raise ParamsError(f"{where} is not a JSON object; re-dump the parameters with "
                          "cifar10_quant.py --dump-params")
    missing = [k for k in META_KEYS if k not in meta]
    if missing:
        raise ParamsError(f"{where} lacks {', '.join(missing)}; re-dump the parameters with "
                          "cifar10_quant.py --dump-params")
    if meta["act"] not in ACTS:
        raise ParamsError(f"{where}: act {meta['act']!r} is not one of {', '.join(ACTS)} "
                          "(the integer model has ReLU and LERP-PSA MLPs)")
    if int(meta["lut_addr_bits"]) != ops.LUT_ADDR_BITS:
        raise ParamsError(f"{where}: lut_addr_bits is {meta['lut_addr_bits']}, the integer model "
                          f"uses M = {ops.LUT_ADDR_BITS}")
    T = int(meta["tokens"])
    if T < 1 or T & (T - 1):
        raise ParamsError(f"{where}: tokens = {T} is not a power of two (the mean pool is a shift)")
    for k in ("hidden", "channels", "depth", "patch_values", "num_classes"):
        if int(meta[k]) < 1:
            raise ParamsError(f"{where}: {k} = {meta[k]} must be positive")
    if not float(meta["input_scale"]) > 0:
        raise ParamsError(f"{where}: input_scale must be positive, got {meta['input_scale']}")
    return meta


def check_params(params: Dict[str, np.ndarray], meta: dict, where: str = "params") -> None:
    """Raise ``ParamsError`` naming the first key that is missing, extra, misshapen, not
    integer or out of range."""
    check_meta(meta, where)
    shapes = param_shapes(meta)
    for key, shape in shapes.items():
        if key not in params:
            raise ParamsError(f"{where} lacks the key {key}; re-dump it with "
                              "cifar10_quant.py --dump-params")
        a = np.asarray(params[key])
        if a.dtype.kind not in "iu":
            raise ParamsError(f"{where}: {key} has dtype {a.dtype}, expected integers")
        if a.shape != shape:
            raise ParamsError(f"{where}: {key} has shape {a.shape}, expected {shape} for "
                              f"act={meta['act']} hidden={meta['hidden']}")
        lo, hi = _value_range(key)
        if a.size and (int(a.min()) < lo or int(a.max()) > hi):
            raise ParamsError(f"{where}: {key} holds values {int(a.min())}..{int(a.max())} "
                              f"outside {lo}..{hi}")
    extra = sorted(set(params) - set(shapes))
    if extra:
        raise ParamsError(f"{where}: unexpected key {extra[0]} for act={meta['act']} "
                          f"depth={meta['depth']}")


def load_params(path) -> Tuple[Dict[str, np.ndarray], dict]:
    """Read and validate ``quant_params.npz`` -> (params: key -> int array, meta dict)."""
    path = os.fspath(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            raw = {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise ParamsError(f"{path} does not exist; pass the quant_params.npz written by "
                          "cifar10_quant.py --dump-params") from None
    except (ValueError, OSError, EOFError) as exc:
        raise ParamsError(f"{path} is not a readable .npz parameter file ({exc})") from None
    if "meta" not in raw:
        raise ParamsError(f"{path} lacks the key meta; re-dump it with cifar10_quant.py --dump-params")
    m = raw.pop("meta")
    try:
        meta = json.loads(str(m[()]) if m.shape == () else "")
    except (json.JSONDecodeError, TypeError, ValueError):
        raise ParamsError(f"{path}: meta is not a JSON string; re-dump it with "
                          "cifar10_quant.py --dump-params") from None
    check_params(raw, meta, where=path)
    params = {k: v.astype(np.int8) for k, v in raw.items()}
    return params, meta


def _atomic_savez(path, arrays: Dict[str, np.ndarray]) -> None:
    write_atomic(path, lambda f: np.savez_compressed(f, **arrays), binary=True)


def save_params(path, params: Dict[str, np.ndarray], meta: dict) -> None:
    """Validate and write ``params`` + ``meta`` (JSON) atomically (temp file, then rename)."""
    check_params(params, meta, where="params to save")
    arrays = {k: np.asarray(params[k]).astype(np.int8) for k in param_shapes(meta)}
    arrays["meta"] = np.array(json.dumps(meta, sort_keys=True))
    _atomic_savez(path, arrays)


def save_samples(path, x: np.ndarray, labels: np.ndarray, logits: np.ndarray) -> None:
    _atomic_savez(path, {"x": np.asarray(x, np.int8), "labels": np.asarray(labels, np.int64),
                         "logits": np.asarray(logits, np.int8)})


def load_samples(path) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    path = os.fspath(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            x, labels, logits = z["x"], z["labels"], z["logits"]
    except FileNotFoundError:
        raise ParamsError(f"{path} does not exist; pass the quant_samples.npz written by "
                          "cifar10_quant.py --dump-params") from None
    except KeyError as exc:
        raise ParamsError(f"{path} lacks the key {exc.args[0]}; it must hold x, labels, logits") from None
    except (ValueError, OSError, EOFError) as exc:
        raise ParamsError(f"{path} is not a readable .npz sample file ({exc})") from None
    if x.ndim != 3 or labels.shape != (x.shape[0],) or logits.shape[0] != x.shape[0]:
        raise ParamsError(f"{path}: x {x.shape}, labels {labels.shape}, logits {logits.shape} "
                          "do not describe the same N images")
    return x.astype(np.int8), labels.astype(np.int64), logits.astype(np.int8)


# --- the model -----------------------------------------------------------------------------

def _forward(params, meta, x, trace: Optional[dict] = None, int64_matmul: bool = False) -> np.ndarray:
    def keep(name, v):
        if trace is not None:
            trace[name] = v
        return v

    def lin(name, v):
        return ops.linear(v, params[f"{name}.W"], params[f"{name}.b"], params[f"{name}.s"],
                          int64_matmul=int64_matmul)

    def aff(name, v):
        return ops.affine(v, params[f"{name}.w"], params[f"{name}.b"], params[f"{name}.s"])

    x = keep("embed", lin("embed", x))
    for i in range(int(meta["depth"])):
        pre = f"blocks.{i}"
        r = keep(f"{pre}.tm.res", aff(f"{pre}.tm.res", x))
        t = keep(f"{pre}.tm.aff1", aff(f"{pre}.tm.aff1", x))
        t = keep(f"{pre}.tm.lin", np.swapaxes(lin(f"{pre}.tm.lin", np.swapaxes(t, -1, -2)), -1, -2))
        t = keep(f"{pre}.tm.aff2", aff(f"{pre}.tm.aff2", t))
        x = keep(f"{pre}.tm.add", ops.add8(t, r))
        r = keep(f"{pre}.mlp.res", aff(f"{pre}.mlp.res", x))
        if meta["act"] == "psa":
            t = keep(f"{pre}.mlp.lut1", ops.lerp8(x, params[f"{pre}.mlp.lut1"]))
            t = keep(f"{pre}.mlp.lin1", lin(f"{pre}.mlp.lin1", t))
            t = keep(f"{pre}.mlp.lut2", ops.lerp8(t, params[f"{pre}.mlp.lut2"]))
        else:
            t = keep(f"{pre}.mlp.lin1", lin(f"{pre}.mlp.lin1", x))
            t = keep(f"{pre}.mlp.relu", ops.relu8(t))
        t = keep(f"{pre}.mlp.lin2", lin(f"{pre}.mlp.lin2", t))
        x = keep(f"{pre}.mlp.add", ops.add8(t, r))
    p = keep("pool", ops.mean_pool(x))
    return keep("logits", lin("head", p))


def _check_input(x, meta) -> np.ndarray:
    x = np.asarray(x)
    T, P = int(meta["tokens"]), int(meta["patch_values"])
    if x.shape[-2:] != (T, P):
        raise ParamsError(f"inputs have shape {x.shape}, expected (..., {T}, {P}) patch codes")
    if x.dtype.kind not in "iu" or (x.size and (x.min() < -128 or x.max() > 127)):
        raise ParamsError("inputs must be int8 patch codes (-128..127)")
    return x


def forward(params, meta, x, batch: int = 256, int64_matmul: bool = False) -> np.ndarray:
    """Integer logits (N, classes) int8 of x (N, tokens, P) int8 patch codes (or one image
    (tokens, P) -> (classes,)). ``int64_matmul``: see ``fpga.int_ops.matmul_int``."""
    x = _check_input(x, meta)
    if x.ndim == 2:
        return _forward(params, meta, x, int64_matmul=int64_matmul)
    out = [_forward(params, meta, x[i:i + batch], int64_matmul=int64_matmul)
           for i in range(0, x.shape[0], batch)]
    return np.concatenate(out) if out else np.zeros((0, int(meta["num_classes"])), np.int8)


def forward_trace(params, meta, x, int64_matmul: bool = False) -> Dict[str, np.ndarray]:
    """Every intermediate of one image x (tokens, P), in forward order: ``embed``; per block
    ``blocks.i.tm.{res,aff1,lin,aff2,add}`` and ``blocks.i.mlp.{res,lin1,relu|lut1,lut2,lin2,add}``
    (``lin`` in token-row layout (tokens, C)); ``pool`` (C,); ``logits`` (classes,)."""
    x = _check_input(x, meta)
    if x.ndim != 2:
        raise ParamsError(f"forward_trace takes one image (tokens, P), got shape {x.shape}")
    trace: Dict[str, np.ndarray] = {}
    _forward(params, meta, x, trace, int64_matmul=int64_matmul)
    return trace


# --- random models (tests, RTL benches) ------------------------------------------------------

def random_params(act: str, hidden: int, patch_values: int = 16, channels: int = 96,
                  depth: int = 4, tokens: int = 64, seed: int = 0,
                  num_classes: int = 10) -> Tuple[Dict[str, np.ndarray], dict]:
    """A valid random integer model whose activations stay mostly unsaturated: each Linear's
    shift is log2 of (sqrt(fan-in) * rms of its weight row), so a row keeps its input's spread;
    affines scale by 0.5..1.5; tables are smooth monotone-ish random functions."""
    if act not in ACTS:
        raise ParamsError(f"act {act!r} is not one of {', '.join(ACTS)}")
    rng = np.random.default_rng(seed)
    in_ch = max(1, patch_values // 16)
    meta = dict(act=act, hidden=int(hidden), hidden_factor=hidden / channels, channels=channels,
                depth=depth, tokens=tokens, patch_values=patch_values, num_classes=num_classes,
                lut_addr_bits=ops.LUT_ADDR_BITS, input_scale=1.0 / 64, mean=[0.5] * in_ch,
                std=[0.25] * in_ch, patch_size=4, in_channels=in_ch,
                img_size=int(round(np.sqrt(tokens))) * 4, bits=dict(input=8, weight=8, bias=8, output=8))
    E = ops.LUT_ENTRIES
    params: Dict[str, np.ndarray] = {}
    for key, shape in param_shapes(meta).items():
        kind = key.rsplit(".", 1)[-1]
        if kind == "W":
            W = rng.integers(-127, 128, size=shape)
            rms = np.sqrt((W.astype(np.float64) ** 2).mean(axis=1))
            params[key] = W
            params[key[:-1] + "s"] = np.clip(np.round(np.log2(np.sqrt(shape[1]) * rms)), 0, 31)
        elif kind == "w":
            s = rng.integers(4, 7, size=shape)
            params[key] = np.round(rng.uniform(0.5, 1.5, size=shape) * (1 << s)) \
                * rng.choice([-1, 1], size=shape)
            params[key[:-1] + "s"] = s
        elif kind == "b":
            params[key] = rng.integers(-8, 9, size=shape)
        elif kind.startswith("lut"):
            steps = rng.integers(-1, 5, size=(shape[0], E - 1))
            t = np.concatenate([np.zeros((shape[0], 1), np.int64), np.cumsum(steps, axis=1)], 1)
            t = t - t[:, E // 2:E // 2 + 1] + rng.integers(-4, 5, size=(shape[0], 1))
            params[key] = np.clip(t, -128, 127)
    params = {k: np.asarray(v).astype(np.int8) for k, v in params.items()}
    check_params(params, meta, where="random_params")
    return params, meta


# --- input codes -----------------------------------------------------------------------------

def input_codes(patches, input_scale: float, bits: int = 8):
    """Normalised float patches (torch, (..., tokens, P)) -> int8-valued codes
    ``clamp(floor(x / s + 0.5), -2^(bits-1), 2^(bits-1) - 1)`` in float32, exactly as the QAT
    model's input quantiser computes them (same dtype, same division)."""
    import torch
    s = torch.tensor(float(input_scale), dtype=torch.float32)
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return torch.clamp(torch.floor(patches.float() / s + 0.5), lo, hi)


def patchify(images, patch_size: int):
    """(B, C, H, W) torch -> (B, tokens, p*p*C), value index (r * p + c) * C + channel."""
    B, C, H, W = images.shape
    p = patch_size
    x = images.reshape(B, C, H // p, p, W // p, p).permute(0, 2, 4, 3, 5, 1)
    return x.reshape(B, (H // p) * (W // p), p * p * C)


def dataset_codes(meta: dict, dataset: str, dataset_dir: Optional[str] = None,
                  limit: Optional[int] = None, batch_size: int = 500,
                  progress: bool = True, synthetic_size: int = 4000) -> Tuple[np.ndarray, np.ndarray]:
    """The test set as (N, tokens, P) int8 codes and (N,) labels."""
    import torch
    from data import DatasetError, get_datasets
    try:
        _, test, info = get_datasets(dataset, dataset_dir, augment=False,
                                     synthetic_size=synthetic_size)
    except DatasetError as exc:
        raise ParamsError(str(exc)) from None
    if info["in_channels"] != int(meta["in_channels"]):
        raise ParamsError(f"{dataset} has {info['in_channels']} channel(s), the parameters were "
                          f"dumped for {meta['in_channels']}; pass the matching --dataset")
    n = len(test) if limit is None else min(limit, len(test))
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(test, range(n)),
                                         batch_size=batch_size, shuffle=False)
    xs, ys = [], []
    from tqdm import tqdm
    for img, y in tqdm(loader, desc="input codes", disable=not progress, leave=False):
        bits = int(meta.get("bits", {}).get("input", 8))
        xs.append(input_codes(patchify(img, int(meta["patch_size"])), meta["input_scale"], bits)
                  .to(torch.int8).numpy())
        ys.append(y.numpy())
    return np.concatenate(xs), np.concatenate(ys).astype(np.int64)


# --- command line ----------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m fpga.int_resmlp",
        description="Run the integer-only INT8 ResMLP (no float after the input codes) on a "
                    "test set and print its accuracy.")
    p.add_argument("--params", required=True, help="quant_params.npz from cifar10_quant.py --dump-params")
    p.add_argument("--dataset", default="fashion-mnist",
                   help="cifar10, fashion-mnist or synthetic (default fashion-mnist)")
    p.add_argument("--dataset-dir", default=None, help="folder holding the dataset files")
    p.add_argument("--limit", type=int, default=None, help="only the first N test images")
    p.add_argument("--synthetic-size", type=int, default=4000,
                   help="--dataset synthetic: training images (4000; the test set is a quarter)")
    p.add_argument("--samples", default=None,
                   help="also check the logits stored in this quant_samples.npz")
    p.add_argument("--expect", type=float, default=None,
                   help="fail (exit 1) unless the accuracy equals this percentage (2 decimals)")
    p.add_argument("--int64-matmul", action="store_true",
                   help="dot products in int64 instead of (exact) float64 BLAS; ~100x slower")
    p.add_argument("--disable-tqdm", action="store_true", help="no progress bars")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    prog = "python -m fpga.int_resmlp"
    args = build_parser().parse_args(argv)
    try:
        params, meta = load_params(args.params)
        status = 0
        if args.samples:
            x, labels, logits = load_samples(args.samples)
            got = forward(params, meta, x, int64_matmul=args.int64_matmul)
            same = int((got == logits).all(axis=1).sum())
            print(f"samples: {same}/{x.shape[0]} images with identical logits")
            if same != x.shape[0]:
                status = 1
        x, labels = dataset_codes(meta, args.dataset, args.dataset_dir, args.limit,
                                  progress=not args.disable_tqdm,
                                  synthetic_size=args.synthetic_size)
        logits = forward(params, meta, x, int64_matmul=args.int64_matmul)
        correct = int((logits.argmax(axis=1) == labels).sum())
        acc = 100.0 * correct / len(labels)
        print(f"integer model ({meta['act']}, hidden {meta['hidden']}): test accuracy "
              f"{acc:.2f} % ({correct}/{len(labels)})")
        if args.expect is not None and round(acc, 2) != round(args.expect, 2):
            print(f"expected {args.expect:.2f} %, got {acc:.2f} %")
            status = 1
        return status
    except UserError as exc:
        from errors import report
        return report(prog, exc)


if __name__ == "__main__":
    sys.exit(main())
