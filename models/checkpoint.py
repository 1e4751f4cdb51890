"""Checkpoint I/O: our native layout and the authors' released layout.

The authors' layout (SPEC section 7) differs from ``ResMLP.state_dict()`` in
two places only:

* B-spline layers store ``_coefficients_vect`` (F * K,) flat, feature-major,
  where we keep ``coefficients`` (F, K);
* LERP-PSA layers also store the derived buffers ``psa.grid`` (G, F) and
  ``psa.grid_ifeat_offset`` (1, F) = i * G, which we recompute.

``load_checkpoint`` accepts either layout (or a dict wrapping one under
``state_dict``), checks every key and shape, and explains mismatches in one
line; ``export_authors_state_dict`` goes the other way; ``save_checkpoint``
writes the authors' layout atomically so files work with both code bases.
"""
from __future__ import annotations

import os
import re
import tempfile
from collections import OrderedDict
from typing import Any, Dict, Union

import torch

from errors import UserError

from activations import BSpline, LerpPSA

from .resmlp import canonical_act

_VECT = "._coefficients_vect"
_COEF = ".coefficients"


class CheckpointError(UserError, ValueError):
    """A checkpoint cannot be read or does not fit the model (one-line message)."""


def _fmt_h(h: float) -> str:
    return f"{h:g}"


def read_state_dict(path_or_state_dict: Union[str, os.PathLike, Dict[str, Any]]):
    """Load a state dict from a file or pass one through; unwrap ``{'state_dict': ...}``."""
    if isinstance(path_or_state_dict, (str, os.PathLike)):
        path = os.path.expanduser(os.fspath(path_or_state_dict))
        if not os.path.isfile(path):
            raise CheckpointError(f"checkpoint file not found: {path} (check the path, or train "
                                  "the model first)")
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises many types for corrupt files
            raise CheckpointError(f"checkpoint file {path} is corrupt or not a PyTorch "
                                  f"state_dict ({type(exc).__name__}); re-download or retrain "
                                  "it") from None
    else:
        obj = path_or_state_dict
        path = "<state_dict>"
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not obj or not all(
            isinstance(k, str) and torch.is_tensor(v) for k, v in obj.items()):
        raise CheckpointError(f"checkpoint {path} does not hold a state_dict of tensors")
    return obj


def describe_checkpoint(path_or_state_dict) -> Dict[str, Any]:
    """Say what a ResMLP checkpoint holds: activation, hidden factor and sizes."""
    sd = read_state_dict(path_or_state_dict)
    if "embed_linear.weight" not in sd or "classifier.weight" not in sd:
        raise CheckpointError("checkpoint is not a ResMLP state_dict (no embed_linear/classifier)")
    embed_dim, in_feats = sd["embed_linear.weight"].shape
    depth = len({int(m.group(1)) for k in sd for m in [re.match(r"layers\.(\d+)\.", k)] if m})
    mlp = "layers.0.layers.1.layers."
    if any(k.startswith(mlp + "0.psa.") for k in sd):
        act = "psa"
        hidden = sd[mlp + "1.weight"].shape[0]
    elif (mlp + "0" + _VECT) in sd or (mlp + "0" + _COEF) in sd:
        act = "bspline"
        hidden = sd[mlp + "1.weight"].shape[0]
    elif (mlp + "0.weight") in sd:
        act = "base"
        hidden = sd[mlp + "0.weight"].shape[0]
    else:
        raise CheckpointError("checkpoint has no recognisable MLP in block 0")
    info = dict(act=act, hidden=int(hidden), hidden_factor=hidden / embed_dim,
                embed_dim=int(embed_dim), depth=depth,
                in_channels=int(in_feats) // 16, num_classes=int(sd["classifier.weight"].shape[0]))
    if act == "psa":
        info["expansion"] = int(sd[mlp + "0.psa.v_weight"].shape[1])
        if (mlp + "0.psa.grid") in sd:
            info["grid_size"] = int(sd[mlp + "0.psa.grid"].shape[0])
    if act == "bspline":
        key = mlp + "0" + (_COEF if (mlp + "0" + _COEF) in sd else _VECT)
        v = sd[key]
        info["spline_size"] = int(v.shape[1] if v.dim() == 2 else v.numel() // embed_dim)
    return info


def _to_native(sd, model):
    """Convert an authors'-layout state dict (or a native one) to native keys."""
    modules = dict(model.named_modules())
    out = OrderedDict()
    for key, value in sd.items():
        if key.endswith(_VECT):
            prefix = key[: -len(_VECT)]
            mod = modules.get(prefix)
            if isinstance(mod, BSpline):
                if value.numel() != mod.num_features * mod.size:
                    raise CheckpointError(
                        f"{key} has {value.numel()} coefficients, the model expects "
                        f"{mod.num_features} x {mod.size}")
                value = value.reshape(mod.num_features, mod.size)
            out[prefix + _COEF] = value
            continue
        m = re.match(r"(.*)\.(grid|grid_ifeat_offset)$", key)
        if m and isinstance(modules.get(m.group(1)), LerpPSA):
            mod = modules[m.group(1)]
            expect = _psa_grid_buffers(mod)[m.group(2)]
            if tuple(value.shape) != tuple(expect.shape):
                raise CheckpointError(
                    f"{key} has shape {tuple(value.shape)} but the model expects "
                    f"{tuple(expect.shape)} (a grid of {mod.grid_size} points over "
                    f"{mod.num_features} features); pass the grid size the checkpoint was made with")
            if not torch.allclose(value.to(expect.dtype), expect, atol=1e-5):
                raise CheckpointError(
                    f"{key} does not match a {mod.grid_size}-point grid over "
                    f"[-{mod.grid_range:g}, {mod.grid_range:g}]; pass the grid range it was made with")
            continue  # derived buffers: recomputed, not stored
        out[key] = value
    return out


def _psa_grid_buffers(mod: LerpPSA):
    t = mod.grid_points(dtype=torch.float32)
    return {"grid": t.unsqueeze(1).expand(-1, mod.num_features).contiguous(),
            "grid_ifeat_offset": (torch.arange(mod.num_features, dtype=torch.int64)
                                  * mod.grid_size).unsqueeze(0)}


def check_compatible(model, info) -> None:
    """Raise a one-line CheckpointError when the checkpoint's activation or
    hidden size differs from the model's."""
    act = getattr(model, "act", None)
    if act is not None and info["act"] != act:
        raise CheckpointError(
            f"checkpoint holds a '{info['act']}' model but the flags ask for '{act}'; "
            f"pass --student-nl-act {info['act']} (or --teacher-nl-act) or pick the right file")
    hidden_model = model.layers[0].layers[1].layers
    h_model = (hidden_model[0].out_features if act == "base" else hidden_model[1].out_features)
    if info["hidden"] != h_model:
        emb = model.embed_linear.out_features
        raise CheckpointError(
            f"checkpoint holds hidden factor {_fmt_h(info['hidden_factor'])} (hidden "
            f"{info['hidden']}) but the model was built with hidden factor "
            f"{_fmt_h(h_model / emb)} (hidden {h_model}); pass --student-hidden-factor "
            f"{_fmt_h(info['hidden_factor'])} (or --teacher-hidden-factor)")
    if info["in_channels"] != model.in_channels:
        raise CheckpointError(
            f"checkpoint expects {info['in_channels']}-channel images but the model takes "
            f"{model.in_channels}; pick the --dataset it was trained on")


def load_checkpoint(model, path_or_state_dict, strict: bool = True):
    """Load a native or authors'-layout checkpoint into ``model``.

    Every key must be consumed and every shape must match (``strict``); the
    first problem is raised as a one-line ``CheckpointError``.
    """
    sd = read_state_dict(path_or_state_dict)
    check_compatible(model, describe_checkpoint(sd))
    native = _to_native(sd, model)
    own = model.state_dict()
    missing = [k for k in own if k not in native]
    unexpected = [k for k in native if k not in own]
    if strict and (missing or unexpected):
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} key(s), first {missing[0]}")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} key(s), first {unexpected[0]}")
        raise CheckpointError("checkpoint does not fit the model: " + "; ".join(parts))
    for k, v in native.items():
        if k in own and tuple(own[k].shape) != tuple(v.shape):
            raise CheckpointError(f"checkpoint tensor {k} has shape {tuple(v.shape)}, the model "
                                  f"expects {tuple(own[k].shape)}")
    model.load_state_dict(native, strict=strict)
    return model


def export_authors_state_dict(model) -> "OrderedDict[str, torch.Tensor]":
    """The model's state in the authors' released layout (SPEC section 7)."""
    modules = dict(model.named_modules())
    out = OrderedDict()
    for key, value in model.state_dict().items():
        prefix, _, leaf = key.rpartition(".")
        mod = modules.get(prefix)
        if isinstance(mod, BSpline) and leaf == "coefficients":
            out[prefix + _VECT] = value.detach().reshape(-1).clone()
            continue
        out[key] = value.detach().clone()
        if isinstance(mod, LerpPSA) and leaf == "epsilon":
            for name, buf in _psa_grid_buffers(mod).items():
                out[f"{prefix}.{name}"] = buf.to(value.device)
    return out


def atomic_torch_save(obj, path) -> None:
    """``torch.save`` to a temporary file in the same folder, fsync, rename."""
    path = os.path.expanduser(os.fspath(path))
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the usual file mode
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_checkpoint(model, path) -> None:
    """Save ``model`` in the authors' layout, atomically."""
    atomic_torch_save(export_authors_state_dict(model), path)


def build_from_checkpoint(path_or_state_dict, **act_kwargs):
    """Build a ResMLP matching a checkpoint and load it."""
    from .resmlp import build_resmlp
    sd = read_state_dict(path_or_state_dict)
    info = describe_checkpoint(sd)
    kw = dict(act_kwargs)
    if "grid_size" in info:
        kw.setdefault("grid_size", info["grid_size"])
    if "expansion" in info:
        kw.setdefault("expansion", info["expansion"])
    if "spline_size" in info:
        kw.setdefault("spline_size", info["spline_size"])
    model = build_resmlp(canonical_act(info["act"]), info["hidden_factor"],
                         in_channels=info["in_channels"], num_classes=info["num_classes"],
                         embed_dim=info["embed_dim"], depth=info["depth"], **kw)
    return load_checkpoint(model, sd)
