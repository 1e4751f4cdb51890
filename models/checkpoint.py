"""Checkpoint I/O: our native layout and the authors' released layout.

A checkpoint file is a plain ``state_dict`` in the authors' key layout (docs/METHOD.md
section 7), so files move freely between their code and ours. It does not store the model's
arguments; :func:`describe_checkpoint` reads them back from the tensor shapes (and, for
LERP-PSA, from the stored grid), and :func:`build_from_checkpoint` builds the right model from
the path alone: a ResMLP of any shape and activation, or the ResNet-20 teacher.

For ResMLP the authors' layout differs from ``ResMLP.state_dict()`` only where an
activation's description says so (``models.registry``, ``CheckpointForm.layout``): B-spline
layers store ``_coefficients_vect`` (F * K,) flat, feature-major, where we keep
``coefficients`` (F, K); LERP-PSA layers also store the derived buffers ``psa.grid`` (G, F)
(the grid points, repeated per feature) and ``psa.grid_ifeat_offset`` (1, F) = i * G, which
we recompute. Which activation a file holds, and the settings it stores, are read the same
way, from block 0's MLP.

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

import inspect
import math
import os
import re
from collections import OrderedDict
from typing import Any, Dict, Optional, Union

import torch

from errors import write_atomic

from . import registry
from .registry import MLP0 as _MLP0
from .registry import CheckpointError, activation, activation_of, canonical_act
from .registry import fmt as _fmt
from .registry import layout_of, layouts
from .registry import shape_of as _shape
from .resmlp import hidden_size

_RESNET_STAGES = ("layer1", "layer2", "layer3")


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
    obj = unwrap_state_dict(obj)
    if not isinstance(obj, dict) or not obj or not all(
            isinstance(k, str) and torch.is_tensor(v) for k, v in obj.items()):
        raise CheckpointError(f"checkpoint {path} does not hold a state_dict of tensors")
    return obj


# Containers a training script wraps its state_dict in, looked into in this order.
CONTAINER_KEYS = ("state_dict", "model_state_dict", "model")
# Prefixes added to every key by a wrapper: DistributedDataParallel / DataParallel, torch.compile.
WRAPPER_PREFIXES = ("module.", "_orig_mod.")


def unwrap_state_dict(obj):
    """The state_dict inside the usual containers: ``{"state_dict": ...}``,
    ``{"model_state_dict": ...}`` or ``{"model": ...}`` (a training checkpoint with optimiser
    state and epoch beside it), with the ``module.`` prefix of DistributedDataParallel and the
    ``_orig_mod.`` prefix of ``torch.compile`` taken off every key (in any nesting)."""
    while isinstance(obj, dict) and not (obj and all(torch.is_tensor(v) for v in obj.values())):
        inner = next((obj[k] for k in CONTAINER_KEYS if isinstance(obj.get(k), dict)), None)
        if inner is None:
            break
        obj = inner
    if isinstance(obj, dict) and obj and all(isinstance(k, str) for k in obj):
        stripped = True
        while stripped:
            stripped = False
            for prefix in WRAPPER_PREFIXES:
                if all(k.startswith(prefix) for k in obj):
                    obj = {k[len(prefix):]: v for k, v in obj.items()}
                    stripped = True
    return obj


# --- describe: the model's arguments read back from the tensors ------------------------------

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
    spec = next((a for a in registry.ACTIVATIONS.values() if a.checkpoint.shows(sd, _MLP0)), None)
    if spec is None:
        labels = [a.label for a in registry.ACTIVATIONS.values()]
        raise CheckpointError("checkpoint has no recognisable MLP in block 0 (neither "
                              f"{', '.join(labels[:-1])} nor {labels[-1]} keys)")
    hidden = _shape(sd, _MLP0 + spec.checkpoint.hidden_key, 2)[0]
    info = dict(arch="resmlp", act=spec.name, hidden=int(hidden), hidden_factor=hidden / embed_dim,
                embed_dim=int(embed_dim), depth=len(blocks), in_channels=in_feats // patch ** 2,
                patch_size=patch, img_size=int(img_size), num_patches=int(num_patches),
                num_classes=int(num_classes), layout="native")
    info.update(spec.checkpoint.describe(sd, _MLP0, int(embed_dim)))
    return info


def describe_checkpoint(path_or_state_dict, img_size: int = 32) -> Dict[str, Any]:
    """What a checkpoint holds: everything needed to rebuild the model from the file.

    ResNet-20: ``arch='resnet20', in_channels, num_classes``.

    ResMLP: ``arch='resmlp'``, ``act`` (a name of ``models.registry``), ``hidden``,
    ``hidden_factor`` (hidden / embed_dim), ``embed_dim``, ``depth`` (blocks),
    ``in_channels``, ``patch_size``, ``img_size`` (assumed, default 32: the file only fixes
    the number of tokens), ``num_patches``, ``num_classes``, ``layout`` ('authors' or
    'native') and the activation's settings as the file stores them: for LERP-PSA
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
        spec = activation_of(mod)
        if spec is not None:
            info.update(spec.module_settings(mod))
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
    for spec in registry.ACTIVATIONS.values():
        for setting in spec.settings:
            if setting.name == key:
                return setting.mismatch(file, model)
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
    if info.get("act") is not None:
        for key in activation(info["act"]).setting_names:
            if differs(key):
                raise CheckpointError(_mismatch(key, info[key], want[key], role))


def check_compatible(model, info, role: str = "student") -> None:
    """Raise a one-line CheckpointError when the checkpoint described by ``info`` was made
    for a model of other settings than ``model``."""
    _compare(info, describe_model(model), role)


# --- the layout boundary -----------------------------------------------------------------------

# Entries a checkpoint may carry beside the model's tensors, dropped when it is loaded into a
# model: the description of a user's own training data (``data.own.CHECKPOINT_KEY``).
EXTRA_KEYS = ("own_data_info",)


def checkpoint_filter_fn(state_dict, model) -> "OrderedDict[str, torch.Tensor]":
    """Map an authors'-layout state dict (or a native one) to ``model``'s native keys.

    The one remapping function of the load boundary, driven by the activations' layouts
    (``models.registry``): B-spline ``_coefficients_vect`` (F*K,) becomes ``coefficients``
    (F, K); LERP-PSA's derived ``grid`` and ``grid_ifeat_offset`` are checked against the
    grid the model computes (size and range) and dropped. The :data:`EXTRA_KEYS` entries
    (not model tensors) are dropped.
    """
    modules = dict(model.named_modules())
    out = OrderedDict()
    for key, value in state_dict.items():
        if key in EXTRA_KEYS:
            continue
        for layout in layouts():
            entries = layout.load(key, value, modules)
            if entries is not None:
                out.update(entries)
                break
        else:
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
        layout = layout_of(mod)
        if layout is None:
            out[key] = value.detach().clone()
        else:
            out.update(layout.export(mod, prefix, leaf, value))
    return out


def atomic_torch_save(obj, path) -> None:
    """``torch.save`` through :func:`errors.write_atomic` (never a half-written file)."""
    write_atomic(path, lambda f: torch.save(obj, f), binary=True)


def save_checkpoint(model, path, extra=None) -> None:
    """Save ``model`` in the authors' layout, atomically, with the :data:`EXTRA_KEYS` entries
    of ``extra`` (a dict of tensors) after the model's."""
    sd = export_authors_state_dict(model)
    for key, value in (extra or {}).items():
        if key not in EXTRA_KEYS or not torch.is_tensor(value):
            raise ValueError(f"save_checkpoint: extra entry {key!r} is not one of {EXTRA_KEYS} "
                             "or not a tensor")
        sd[key] = value
    atomic_torch_save(sd, path)


# --- build from the file alone ------------------------------------------------------------------

def build_from_checkpoint(path_or_state_dict, *, act: Optional[str] = None,
                          hidden_factor: Optional[float] = None, resnet: Optional[bool] = None,
                          in_channels: Optional[int] = None, num_classes: Optional[int] = None,
                          embed_dim: Optional[int] = None, depth: Optional[int] = None,
                          img_size: int = 32, role: str = "student", impl: str = "auto",
                          **settings):
    """Build the model a checkpoint was made for and load it: everything comes from the file.

    Every other argument is optional: ``None`` means "not given". A given value (a flag
    the user typed) must agree with the file, or a one-line ``CheckpointError`` says which
    flag to drop or change. ``resnet=True`` asks for a ResNet-20, ``False`` for a ResMLP.
    ``settings`` are activation settings (``models.registry``: expansion, grid_size,
    grid_range, spline_size, spline_range); one the file does not store (the grid of a
    native LERP-PSA state_dict, a B-spline range) is taken from here, else the activation's
    default. ``impl`` goes to the activations; ``role`` ('student'/'teacher') chooses the
    flag names in messages.
    """
    from .resmlp import build_resmlp
    from .resnet import build_resnet20
    known = {n for a in registry.ACTIVATIONS.values() for n in a.setting_names}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise TypeError(f"build_from_checkpoint() got an unexpected keyword argument {unknown[0]!r}")
    sd = read_state_dict(path_or_state_dict)
    info = describe_checkpoint(sd, img_size=img_size)
    want: Dict[str, Any] = dict(in_channels=in_channels, num_classes=num_classes, **settings)
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
        spec = activation(info["act"])
        missing = [s for s in spec.settings if s.name in spec.checkpoint.required
                   and info.get(s.name) is None and settings.get(s.name) is None]
        if missing:
            where = (os.path.expanduser(os.fspath(path_or_state_dict))
                     if isinstance(path_or_state_dict, (str, os.PathLike)) else "the state_dict")
            names = " and ".join(s.name.replace("_", " ") for s in missing)
            defaults = inspect.signature(spec.module).parameters
            example = " ".join(f"{s.flag} {_fmt(defaults[s.name].default)}" for s in missing)
            raise CheckpointError(f"{where} is a {spec.label} state_dict that does not store its "
                                  f"{names} (a native state_dict); pass the values it was "
                                  f"trained with, e.g. {example} (the defaults)")
        kw: Dict[str, Any] = dict(impl=impl)
        for key in spec.setting_names:
            value = info[key] if info.get(key) is not None else settings.get(key)
            if value is not None:
                kw[key] = value
        model = build_resmlp(info["act"], info["hidden_factor"], in_channels=info["in_channels"],
                             img_size=info["img_size"], num_classes=info["num_classes"],
                             embed_dim=info["embed_dim"], depth=info["depth"],
                             patch_size=info["patch_size"], **kw)
    return load_checkpoint(model, sd, role=role)
