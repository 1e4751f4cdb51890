"""Checkpoint I/O: our native layout and the authors' released layout.

A checkpoint file is a plain ``state_dict`` in the authors' key layout (docs/METHOD.md
section 7), so files move freely between their code and ours. It does not store the model's
arguments; :func:`describe_checkpoint` reads them back from the tensor shapes (and, for
LERP-PSA, from the stored grid), and :func:`build_from_checkpoint` builds the right model from
the path alone: a ResMLP of any shape and activation, or the ResNet-20 teacher.

For ResMLP the authors' layout differs from ``ResMLP.state_dict()`` in two places only:

* B-spline layers store ``_coefficients_vect`` (F * K,) flat, feature-major, where we keep
  ``coefficients`` (F, K);
* LERP-PSA layers also store the derived buffers ``psa.grid`` (G, F) (the grid points,
  repeated per feature) and ``psa.grid_ifeat_offset`` (1, F) = i * G, which we recompute.

:func:`checkpoint_filter_fn` is the one place that maps the authors' layout to ours (and
checks the derived buffers); :func:`export_authors_state_dict` goes back. ResNet-20 keys are
the same in both.

:func:`load_checkpoint` checks, in this order, and stops at the first problem with a
one-line :class:`CheckpointError` that names the fix: the architecture, then each setting
(activation, hidden size, channels, embed dim, blocks, classes, PSA expansion, grid size,
grid range, spline size), then the derived buffers of every layer, then that every key is
consumed and every model key present, then the shape of every tensor.
"""
from __future__ import annotations

import math
import os
import re
import tempfile
from collections import OrderedDict
from typing import Any, Dict, Optional, Union

import torch

from activations import BSpline, LerpPSA
from errors import UserError

from .resmlp import canonical_act, hidden_size

_VECT = "._coefficients_vect"
_COEF = ".coefficients"
_MLP0 = "layers.0.layers.1.layers."  # the cross-channel MLP of block 0
_RESNET_STAGES = ("layer1", "layer2", "layer3")


class CheckpointError(UserError, ValueError):
    """A checkpoint cannot be read or does not fit the model (one-line message)."""


def _fmt(v: float) -> str:
    return f"{v:g}"


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


# --- describe: the model's arguments read back from the tensors ------------------------------

def _shape(sd, key, ndim: int):
    """Shape of ``sd[key]``, which must exist and have ``ndim`` dimensions."""
    if key not in sd:
        raise CheckpointError(f"checkpoint has no {key}; it is not a complete ResMLP or "
                              "ResNet-20 state_dict")
    shape = tuple(sd[key].shape)
    if len(shape) != ndim:
        raise CheckpointError(f"checkpoint tensor {key} has shape {shape}, expected "
                              f"{ndim} dimension(s); the file is damaged or not ours")
    return shape


def _describe_resnet(sd) -> Dict[str, Any]:
    out_c, in_c, _, _ = _shape(sd, "conv1.weight", 4)
    num_classes, feat = _shape(sd, "linear.weight", 2)
    widths = []
    for stage in _RESNET_STAGES:
        blocks = sorted({int(m.group(1)) for k in sd
                         for m in [re.match(re.escape(stage) + r"\.(\d+)\.", k)] if m})
        if blocks != [0, 1, 2]:
            raise CheckpointError(f"checkpoint has {len(blocks)} block(s) in {stage}, ResNet-20 "
                                  "has 3; it is not a ResNet-20 state_dict")
        widths.append(_shape(sd, f"{stage}.0.conv1.weight", 4)[0])
    if (out_c, *widths, feat) != (16, 16, 32, 64, 64):
        raise CheckpointError(f"checkpoint has ResNet widths {(out_c, *widths)} and a "
                              f"{feat}-feature classifier; ResNet-20 has (16, 16, 32, 64) and 64")
    return dict(arch="resnet20", in_channels=int(in_c), num_classes=int(num_classes))


def _describe_resmlp(sd, img_size: int) -> Dict[str, Any]:
    embed_dim, in_feats = _shape(sd, "embed_linear.weight", 2)
    num_classes, cls_in = _shape(sd, "classifier.weight", 2)
    if cls_in != embed_dim:
        raise CheckpointError(f"checkpoint tensor classifier.weight has shape "
                              f"{(num_classes, cls_in)}, expected {cls_in} == embed dim "
                              f"{embed_dim}; the file is damaged")
    blocks = sorted({int(m.group(1)) for k in sd for m in [re.match(r"layers\.(\d+)\.", k)] if m})
    if not blocks or blocks != list(range(len(blocks))):
        raise CheckpointError(f"checkpoint blocks are numbered {blocks}, expected 0..n-1; the "
                              "file is damaged")
    num_patches = _shape(sd, "layers.0.layers.0.layers.weight", 2)[0]
    grid = math.isqrt(num_patches)
    patch = img_size // grid if grid and img_size % grid == 0 else 0
    if grid * grid != num_patches or not patch or in_feats % (patch * patch):
        raise CheckpointError(
            f"checkpoint has {num_patches} tokens of {in_feats} values, which is no square "
            f"patch grid over {img_size}x{img_size} images; it is not a ResMLP for this image size")
    if any(k.startswith(_MLP0 + "0.psa.") for k in sd):
        act, hidden = "psa", _shape(sd, _MLP0 + "1.weight", 2)[0]
    elif (_MLP0 + "0" + _VECT) in sd or (_MLP0 + "0" + _COEF) in sd:
        act, hidden = "bspline", _shape(sd, _MLP0 + "1.weight", 2)[0]
    elif (_MLP0 + "0.weight") in sd:
        act, hidden = "base", _shape(sd, _MLP0 + "0.weight", 2)[0]
    else:
        raise CheckpointError("checkpoint has no recognisable MLP in block 0 (neither ReLU, "
                              "B-spline nor LERP-PSA keys)")
    info = dict(arch="resmlp", act=act, hidden=int(hidden), hidden_factor=hidden / embed_dim,
                embed_dim=int(embed_dim), depth=len(blocks), in_channels=in_feats // patch ** 2,
                patch_size=patch, img_size=int(img_size), num_patches=int(num_patches),
                num_classes=int(num_classes), layout="native")
    if act == "psa":
        info["expansion"] = _shape(sd, _MLP0 + "0.psa.v_weight", 2)[1]
        info["grid_size"] = info["grid_range"] = None  # not in a native state_dict
        if (_MLP0 + "0.psa.grid") in sd:
            info["layout"] = "authors"
            g = sd[_MLP0 + "0.psa.grid"]
            if g.dim() != 2 or g.shape[0] < 2 or not torch.equal(g[0], -g[-1]):
                raise CheckpointError(f"checkpoint tensor {_MLP0}0.psa.grid is no symmetric "
                                      "grid of points; the file is damaged")
            info["grid_size"] = int(g.shape[0])
            info["grid_range"] = float(f"{float(g[-1, 0]):.6g}")  # float32 -> the value given
    elif act == "bspline":
        if (_MLP0 + "0" + _VECT) in sd:
            info["layout"] = "authors"
            n = sd[_MLP0 + "0" + _VECT].numel()
            size = n // embed_dim
            if size * embed_dim != n:
                raise CheckpointError(f"checkpoint tensor {_MLP0}0{_VECT} has {n} coefficients, "
                                      f"not a multiple of the {embed_dim} features")
        else:
            size = _shape(sd, _MLP0 + "0" + _COEF, 2)[1]
        info["spline_size"] = int(size)
        info["spline_range"] = None  # neither layout stores it: models use 4 unless told
    else:
        info["layout"] = "authors"  # the same in both
    return info


def describe_checkpoint(path_or_state_dict, img_size: int = 32) -> Dict[str, Any]:
    """What a checkpoint holds: everything needed to rebuild the model from the file.

    ResNet-20: ``arch='resnet20', in_channels, num_classes``.

    ResMLP: ``arch='resmlp'``, ``act`` (base|bspline|psa), ``hidden``, ``hidden_factor``
    (hidden / embed_dim), ``embed_dim``, ``depth`` (blocks), ``in_channels``, ``patch_size``,
    ``img_size`` (assumed, default 32: the file only fixes the number of tokens),
    ``num_patches``, ``num_classes``, ``layout`` ('authors' or 'native'); for LERP-PSA
    ``expansion``, ``grid_size`` and ``grid_range`` (both None for a native state_dict, which
    does not store the grid); for B-spline ``spline_size`` and ``spline_range`` (None: no
    layout stores it).
    """
    sd = read_state_dict(path_or_state_dict)
    if "conv1.weight" in sd and "linear.weight" in sd:
        return _describe_resnet(sd)
    if "embed_linear.weight" in sd and "classifier.weight" in sd:
        return _describe_resmlp(sd, img_size)
    raise CheckpointError("checkpoint is neither a ResMLP state_dict (embed_linear, classifier) "
                          "nor a ResNet-20 one (conv1, linear)")


def describe_model(model) -> Dict[str, Any]:
    """The same description as :func:`describe_checkpoint`, of a built model (with the
    grid and spline ranges the modules were built with)."""
    info = describe_checkpoint(export_authors_state_dict(model),
                               img_size=getattr(model, "img_size", 32))
    for mod in model.modules():
        if isinstance(mod, LerpPSA):
            info["grid_range"] = mod.grid_range
        if isinstance(mod, BSpline):
            info["spline_range"] = mod.range_
    return info


# --- settings: one message per mismatch, naming the fix ---------------------------------------

def _arch_name(arch: str) -> str:
    return {"resnet20": "ResNet-20", "resmlp": "ResMLP"}.get(arch, arch)


def _mismatch(key: str, file, model, role: str) -> str:
    """One line: the file holds ``file`` where the model (or the flags) ask for ``model``."""
    other = "teacher" if role == "student" else "student"
    if key == "arch":
        fix = (f"pass --{role}-resnet" if file == "resnet20" else f"drop --{role}-resnet")
        return (f"checkpoint holds a {_arch_name(file)} but the model is a {_arch_name(model)}; "
                f"{fix} or pick the right file")
    if key == "act":
        return (f"checkpoint holds a '{file}' model but the flags ask for '{model}'; pass "
                f"--{role}-nl-act {file} (or --{other}-nl-act) or pick the right file")
    if key == "hidden":
        (fh, ff), (mh, mf) = file, model
        return (f"checkpoint holds hidden factor {_fmt(ff)} (hidden {fh}) but the model was "
                f"built with hidden factor {_fmt(mf)} (hidden {mh}); pass "
                f"--{role}-hidden-factor {_fmt(ff)} (or --{other}-hidden-factor)")
    if key == "in_channels":
        return (f"checkpoint expects {file}-channel images but the model takes {model}; pick "
                "the --dataset it was trained on")
    if key == "num_classes":
        return (f"checkpoint has {file} classes but the model {model}; pick the --dataset it "
                "was trained on")
    if key in ("embed_dim", "depth", "num_patches"):
        (fe, fd, fn), (me, md, mn) = file, model
        return (f"checkpoint holds a ResMLP with embed dim {fe}, {fd} blocks and {fn} tokens "
                f"but the model has embed dim {me}, {md} blocks and {mn} tokens; pick the "
                "--dataset it was trained on (SVHN: embed 64, 2 blocks)")
    if key == "expansion":
        return (f"checkpoint holds LERP-PSA expansion {file} but the model was built with "
                f"{model}; pass --psa-expansion {file}")
    if key == "grid_size":
        return (f"checkpoint holds a LERP-PSA grid of {file} points but the model was built "
                f"with {model}; pass --grid-size {file}")
    if key == "grid_range":
        return (f"checkpoint holds a LERP-PSA grid over [-{_fmt(file)}, {_fmt(file)}] but the "
                f"model was built for [-{_fmt(model)}, {_fmt(model)}]; pass --grid-range "
                f"{_fmt(file)}")
    if key == "spline_size":
        return (f"checkpoint holds B-splines of {file} coefficients but the model was built "
                f"with {model}; pass --spline-size {file}")
    return f"checkpoint has {key} {file} but the model {model}"


def _compare(info: Dict[str, Any], want: Dict[str, Any], role: str) -> None:
    """Raise the first mismatch between a file's description and the wanted settings.

    Settings missing from ``want`` or None on either side (unknown, or not given) pass.
    """
    def differs(key):
        a, b = info.get(key), want.get(key)
        if a is None or b is None:
            return False
        if isinstance(a, float) or isinstance(b, float):
            return not math.isclose(a, b, rel_tol=1e-5)
        return a != b

    if differs("arch"):
        raise CheckpointError(_mismatch("arch", info["arch"], want["arch"], role))
    if differs("act"):
        raise CheckpointError(_mismatch("act", info["act"], want["act"], role))
    shape = ("embed_dim", "depth", "num_patches")
    if any(differs(k) for k in shape):
        raise CheckpointError(_mismatch("embed_dim", tuple(info[k] for k in shape),
                                        tuple(want.get(k) or info[k] for k in shape), role))
    if differs("hidden"):
        raise CheckpointError(_mismatch("hidden", (info["hidden"], info["hidden_factor"]),
                                        (want["hidden"], want["hidden_factor"]), role))
    for key in ("in_channels", "num_classes"):
        if differs(key):
            raise CheckpointError(_mismatch(key, info[key], want[key], role))
    for key in ("expansion", "grid_size", "grid_range", "spline_size"):
        if differs(key):
            raise CheckpointError(_mismatch(key, info[key], want[key], role))


def check_compatible(model, info, role: str = "student") -> None:
    """Raise a one-line CheckpointError when the checkpoint described by ``info`` was made
    for a model of other settings than ``model``."""
    _compare(info, describe_model(model), role)


# --- the layout boundary -----------------------------------------------------------------------

def _psa_grid_buffers(mod: LerpPSA):
    t = mod.grid_points(dtype=torch.float32)
    return {"grid": t.unsqueeze(1).expand(-1, mod.num_features).contiguous(),
            "grid_ifeat_offset": (torch.arange(mod.num_features, dtype=torch.int64)
                                  * mod.grid_size).unsqueeze(0)}


def checkpoint_filter_fn(state_dict, model) -> "OrderedDict[str, torch.Tensor]":
    """Map an authors'-layout state dict (or a native one) to ``model``'s native keys.

    The one remapping function of the load boundary: B-spline ``_coefficients_vect`` (F*K,)
    becomes ``coefficients`` (F, K); LERP-PSA's derived ``grid`` and ``grid_ifeat_offset``
    are checked against the grid the model computes (size and range) and dropped.
    """
    modules = dict(model.named_modules())
    out = OrderedDict()
    for key, value in state_dict.items():
        if key.endswith(_VECT):
            prefix = key[: -len(_VECT)]
            mod = modules.get(prefix)
            if isinstance(mod, BSpline):
                if value.numel() != mod.num_features * mod.size:
                    raise CheckpointError(
                        f"checkpoint tensor {key} has {value.numel()} coefficients, the model "
                        f"expects {mod.num_features} x {mod.size}; pass the spline size the "
                        "checkpoint was made with")
                value = value.reshape(mod.num_features, mod.size)
            out[prefix + _COEF] = value
            continue
        m = re.match(r"(.*)\.(grid|grid_ifeat_offset)$", key)
        if m and isinstance(modules.get(m.group(1)), LerpPSA):
            mod = modules[m.group(1)]
            expect = _psa_grid_buffers(mod)[m.group(2)]
            if tuple(value.shape) != tuple(expect.shape):
                raise CheckpointError(
                    f"checkpoint tensor {key} has shape {tuple(value.shape)} but the model "
                    f"expects {tuple(expect.shape)} (a grid of {mod.grid_size} points over "
                    f"{mod.num_features} features); pass the grid size the checkpoint was "
                    "made with")
            if not torch.allclose(value.to(expect.dtype), expect, atol=1e-5, rtol=0):
                raise CheckpointError(
                    f"checkpoint tensor {key} does not match a {mod.grid_size}-point grid over "
                    f"[-{_fmt(mod.grid_range)}, {_fmt(mod.grid_range)}]; pass the grid range "
                    "it was made with")
            continue  # derived buffers: recomputed, not stored
        out[key] = value
    return out


def load_checkpoint(model, path_or_state_dict, strict: bool = True, role: str = "student"):
    """Load a native or authors'-layout checkpoint into ``model`` (ResMLP or ResNet-20).

    The settings are compared first (see the module docstring); with ``strict`` every key
    must be consumed and every model key present; every shape must match. The first problem
    is raised as a one-line ``CheckpointError``. ``role`` ('student' or 'teacher') only
    chooses which flags the messages name.
    """
    sd = read_state_dict(path_or_state_dict)
    check_compatible(model, describe_checkpoint(sd, img_size=getattr(model, "img_size", 32)),
                     role)
    native = checkpoint_filter_fn(sd, model)
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
    """The model's state in the authors' released layout (docs/METHOD.md section 7)."""
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


# --- build from the file alone ------------------------------------------------------------------

def build_from_checkpoint(path_or_state_dict, *, act: Optional[str] = None,
                          hidden_factor: Optional[float] = None, resnet: Optional[bool] = None,
                          in_channels: Optional[int] = None, num_classes: Optional[int] = None,
                          embed_dim: Optional[int] = None, depth: Optional[int] = None,
                          expansion: Optional[int] = None, grid_size: Optional[int] = None,
                          grid_range: Optional[float] = None, spline_size: Optional[int] = None,
                          spline_range: Optional[float] = None, img_size: int = 32,
                          role: str = "student", impl: str = "auto", save_memory: bool = False):
    """Build the model a checkpoint was made for and load it: everything comes from the file.

    Every other argument is optional: ``None`` means "not given". A given value (a flag
    the user typed) must agree with the file, or a one-line ``CheckpointError`` says which
    flag to drop or change. ``resnet=True`` asks for a ResNet-20, ``False`` for a ResMLP.
    ``spline_range`` (not stored in any file) defaults to 4. ``impl`` and ``save_memory``
    go to the activations. ``role`` ('student'/'teacher') chooses the flag names in messages.
    """
    from .resmlp import build_resmlp
    from .resnet import build_resnet20
    sd = read_state_dict(path_or_state_dict)
    info = describe_checkpoint(sd, img_size=img_size)
    want: Dict[str, Any] = dict(in_channels=in_channels, num_classes=num_classes,
                                expansion=expansion, grid_size=grid_size, grid_range=grid_range,
                                spline_size=spline_size)
    if resnet is not None:
        want["arch"] = "resnet20" if resnet else "resmlp"
    if info["arch"] == "resmlp":
        if act is not None:
            want["act"] = canonical_act(act)
        if hidden_factor is not None:
            want["hidden"] = hidden_size(info["embed_dim"], hidden_factor)
            want["hidden_factor"] = float(hidden_factor)
        if embed_dim is not None or depth is not None:
            want.update(embed_dim=embed_dim, depth=depth)
    _compare(info, want, role)
    if info["arch"] == "resnet20":
        model = build_resnet20(in_channels=info["in_channels"], num_classes=info["num_classes"])
    else:
        kw: Dict[str, Any] = dict(impl=impl, save_memory=save_memory)
        if info["act"] == "psa":
            kw["expansion"] = info["expansion"]
            given = dict(grid_size=grid_size, grid_range=grid_range)
            for key in ("grid_size", "grid_range"):  # None in a native state_dict
                value = info[key] if info[key] is not None else given[key]
                if value is not None:
                    kw[key] = value
        if info["act"] == "bspline":
            kw["spline_size"] = info["spline_size"]
            if spline_range is not None:
                kw["spline_range"] = spline_range
        model = build_resmlp(info["act"], info["hidden_factor"], in_channels=info["in_channels"],
                             img_size=info["img_size"], num_classes=info["num_classes"],
                             embed_dim=info["embed_dim"], depth=info["depth"],
                             patch_size=info["patch_size"], **kw)
    return load_checkpoint(model, sd, role=role)
