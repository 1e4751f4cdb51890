"""The activations of the ResMLP, each described once.

An :class:`Activation` says everything the rest of the code needs to know about one
activation: its name and aliases, the module of one activation sublayer and the block MLP
built around it, the settings it takes (and the flag that sets each), which of its
parameters are spline coefficients (their own optimiser), its regulariser, whether the INT8
model has it, and how a checkpoint shows it (:class:`CheckpointForm`). The model builder,
the checkpoint reader and writer, the command lines, the optimisers, the training loop and
the exporters all read this table; none of them names an activation.

Adding an activation is one :func:`register` call below plus its module in ``activations/``.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple

import torch
from torch import nn

from activations import BSpline, LerpPSA, ResidualLerpPSA
from errors import UserError


class UnknownActivationError(UserError, ValueError):
    """An activation name that is none of the registered names or their aliases."""


class ModelConfigError(UserError, ValueError):
    """A model size or setting that cannot be built (one-line message)."""


class CheckpointError(UserError, ValueError):
    """A checkpoint cannot be read or does not fit the model (one-line message)."""


def fmt(v) -> str:
    return f"{v:g}"


def shape_of(sd, key: str, ndim: int) -> Tuple[int, ...]:
    """Shape of ``sd[key]``, which must exist and have ``ndim`` dimensions."""
    if key not in sd:
        raise CheckpointError(f"checkpoint has no {key}; it is not a complete ResMLP or "
                              "ResNet-20 state_dict")
    shape = tuple(sd[key].shape)
    if len(shape) != ndim:
        raise CheckpointError(f"checkpoint tensor {key} has shape {shape}, expected "
                              f"{ndim} dimension(s); the file is damaged or not ours")
    return shape


# --- the description ----------------------------------------------------------------------

@dataclass(frozen=True)
class Setting:
    """A keyword setting of an activation sublayer that a checkpoint may or may not show.

    ``holds`` and ``built`` phrase the file's and the model's value in the one-line message of a
    mismatch (``{}`` is the value): "checkpoint holds <holds> but the model was built <built>;
    pass <flag> <file value>"."""
    name: str
    flag: str
    holds: str
    built: str = "with {}"

    def mismatch(self, file, model) -> str:
        return (f"checkpoint holds {self.holds.format(fmt(file))} but the model was built "
                f"{self.built.format(fmt(model))}; pass {self.flag} {fmt(file)}")


@dataclass(frozen=True)
class Layout:
    """How the authors' files store the tensors of one module class differently from its
    ``state_dict`` (both directions; see ``models.checkpoint``).

    ``export(module, prefix, leaf, value)`` -> the (key, tensor) entries the authors' file
    holds for the native entry ``prefix.leaf``; ``load(key, value, modules)`` -> the native
    entries for a file entry, or None when the entry is not this layout's."""
    module: type
    export: Callable[[nn.Module, str, str, torch.Tensor], List[Tuple[str, torch.Tensor]]]
    load: Callable[[str, torch.Tensor, Dict[str, nn.Module]], Optional[List[Tuple[str, torch.Tensor]]]]


@dataclass(frozen=True)
class CheckpointForm:
    """How a checkpoint shows the activation, read from block 0's MLP (keys relative to it).

    ``marks``: key prefixes present only for this activation; ``hidden_key``: the tensor whose
    first dimension is the hidden size; ``describe(sd, mlp_prefix, embed_dim)`` -> the
    settings the file stores and its ``layout`` ('authors' or 'native'); ``layout``: the
    tensors stored differently by the authors' code (None: the same in both)."""
    marks: Tuple[str, ...]
    hidden_key: str
    describe: Callable[[Dict[str, torch.Tensor], str, int], Dict[str, Any]]
    layout: Optional[Layout] = None
    # settings that come from the file or from the caller, never from the default: a file that
    # lacks one (a native LERP-PSA state_dict has no grid) is refused unless it is given
    required: Tuple[str, ...] = ()

    def shows(self, sd, mlp_prefix: str) -> bool:
        return any(k.startswith(mlp_prefix + m) for k in sd for m in self.marks)


@dataclass(frozen=True)
class Activation:
    """One activation of the ResMLP's channel MLP.

    ``module(features, **settings, impl=...)`` builds one sublayer (``features`` omitted for a
    fixed function). A ``learnable`` activation stands before each Linear of the MLP,
    ``act(C) -> Linear(C, H) -> act(H) -> Linear(H, C)`` (the paper's students); a fixed one
    between them, ``Linear(C, H) -> act -> Linear(H, C)``. ``module_settings(sublayer)``: the
    settings a built sublayer uses (what ``models.describe_model`` reports).
    ``spline_parameters(sublayer)``: the parameters that take the spline optimiser (Adam at
    ``--bspline-lr``); ``regulariser(sublayer)``: its term of the loss, weighted by
    ``--bspline-lambda``; ``int8``: the INT8 model (``quant``, ``fpga``) has it."""
    name: str
    label: str
    module: Callable[..., nn.Module]
    sublayer: type
    checkpoint: CheckpointForm
    aliases: Tuple[str, ...] = ()
    learnable: bool = True
    settings: Tuple[Setting, ...] = ()
    module_settings: Callable[[nn.Module], Dict[str, Any]] = field(default=lambda m: {})
    spline_parameters: Optional[Callable[[nn.Module], Iterable[nn.Parameter]]] = None
    regulariser: Optional[Callable[[nn.Module], torch.Tensor]] = None
    int8: bool = False

    @property
    def setting_names(self) -> Tuple[str, ...]:
        return tuple(s.name for s in self.settings)

    def check_settings(self, kwargs: Dict[str, Any]) -> Dict[str, Any]:
        """``kwargs`` checked: a key that is not one of this activation's settings is refused."""
        kwargs = dict(kwargs)
        unknown = sorted(set(kwargs) - set(self.setting_names) - {"impl"})
        if unknown:
            takes = ", ".join(self.setting_names + ("impl",))
            raise ModelConfigError(f"activation {self.name} takes no setting {unknown[0]!r}; it "
                                   f"takes {takes}")
        return kwargs

    def pick(self, **values) -> Dict[str, Any]:
        """The entries of ``values`` that this activation takes (``impl`` and its settings)."""
        return {k: v for k, v in values.items() if k == "impl" or k in self.setting_names}

    def mlp(self, dim: int, hidden: int, **kwargs) -> nn.Module:
        """The channel MLP of one block (sublayers built in forward order)."""
        kwargs = self.check_settings(kwargs)
        if self.learnable:
            return nn.Sequential(self.module(dim, **kwargs), nn.Linear(dim, hidden),
                                 self.module(hidden, **kwargs), nn.Linear(hidden, dim))
        return nn.Sequential(nn.Linear(dim, hidden), self.module(**kwargs), nn.Linear(hidden, dim))


_REGISTRY: Dict[str, Activation] = {}
_ALIASES: Dict[str, str] = {}


def register(spec: Activation) -> Activation:
    """Add ``spec`` to the table (its name and aliases must be new)."""
    for key in (spec.name,) + spec.aliases:
        if key.lower() in _ALIASES:
            raise ValueError(f"activation name {key!r} is taken by {_ALIASES[key.lower()]!r}")
    _REGISTRY[spec.name] = spec
    for key in (spec.name,) + spec.aliases:
        _ALIASES[key.lower()] = spec.name
    return spec


class _View(Mapping):
    """A read-only live view of the table of activations: it follows later :func:`register`
    calls."""

    def __init__(self, table: Dict[str, Any], value: Callable[[Any], Any] = lambda v: v):
        self._table, self._value = table, value

    def __getitem__(self, key):
        return self._value(self._table[key])

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._table))

    def __len__(self) -> int:
        return len(self._table)


ACTIVATIONS: Mapping = _View(_REGISTRY)                          # name -> Activation


def metavar() -> str:
    """``{base,bspline,psa}``: the names a ``--*-nl-act`` flag takes."""
    return "{" + ",".join(_REGISTRY) + "}"


def canonical_act(name) -> str:
    key = str(name).lower()
    if key not in _ALIASES:
        known = ", ".join(s.name + (f" ({', '.join(s.aliases)})" if s.aliases else "")
                          for s in _REGISTRY.values())
        raise UnknownActivationError(f"unknown activation {name!r}; use one of {known}")
    return _ALIASES[key]


def activation(name) -> Activation:
    """The description of activation ``name`` (a name or an alias)."""
    return _REGISTRY[canonical_act(name)]


def activation_of(module: nn.Module) -> Optional[Activation]:
    """The activation whose sublayer ``module`` is, or None."""
    for spec in _REGISTRY.values():
        if isinstance(module, spec.sublayer):
            return spec
    return None


def layout_of(module: Optional[nn.Module]) -> Optional[Layout]:
    """The authors'-file layout of ``module``'s own tensors, or None."""
    if module is None:
        return None
    for spec in _REGISTRY.values():
        lay = spec.checkpoint.layout
        if lay is not None and isinstance(module, lay.module):
            return lay
    return None


def layouts() -> List[Layout]:
    return [s.checkpoint.layout for s in _REGISTRY.values() if s.checkpoint.layout is not None]


def spline_parameters(modules: Iterable[nn.Module]) -> List[nn.Parameter]:
    """The trainable spline coefficients among ``modules`` and their submodules, in module order."""
    out = []
    for module in modules:
        for mod in module.modules():
            spec = activation_of(mod)
            if spec is not None and spec.spline_parameters is not None:
                out.extend(p for p in spec.spline_parameters(mod) if p.requires_grad)
    return out


def regularised(model: nn.Module) -> List[Tuple[Callable[[nn.Module], torch.Tensor], nn.Module]]:
    """(regulariser, sublayer) of every sublayer of ``model`` that has one, in module order."""
    out = []
    for mod in model.modules():
        spec = activation_of(mod)
        if spec is not None and spec.regulariser is not None:
            out.append((spec.regulariser, mod))
    return out


def regularisation(terms) -> Optional[torch.Tensor]:
    """The sum of the terms listed by :func:`regularised` (None if there are none)."""
    total = None
    for reg, mod in terms:
        total = reg(mod) if total is None else total + reg(mod)
    return total


# --- the registered activations --------------------------------------------------------------

MLP0 = "layers.0.layers.1.layers."  # block 0's channel MLP, where a checkpoint shows its activation
_VECT = "._coefficients_vect"        # B-spline coefficients in the authors' files: (F * K,) flat
_COEF = ".coefficients"              # ... and in ours: (F, K)
_GRID = re.compile(r"(.*)\.(grid|grid_ifeat_offset)$")


def _relu(impl: str = "auto") -> nn.Module:
    """ReLU; ``impl`` (a kernel choice) does not apply to it."""
    return nn.ReLU()


def _bspline(features: int, spline_size: int = 65, spline_range: float = 4.0,
             impl: str = "auto") -> nn.Module:
    return BSpline(features, size=spline_size, range_=spline_range, impl=impl)


def _psa(features: int, expansion: int = 8, grid_size: int = 64, grid_range: float = 4.0,
         impl: str = "auto") -> nn.Module:
    return ResidualLerpPSA(features, expansion=expansion, grid_size=grid_size,
                           grid_range=grid_range, impl=impl)


def _describe_base(sd, mlp: str, embed_dim: int) -> Dict[str, Any]:
    return dict(layout="authors")  # the same in both layouts


def _describe_bspline(sd, mlp: str, embed_dim: int) -> Dict[str, Any]:
    if (mlp + "0" + _VECT) in sd:
        n = sd[mlp + "0" + _VECT].numel()
        size = n // embed_dim
        if size * embed_dim != n:
            raise CheckpointError(f"checkpoint tensor {mlp}0{_VECT} has {n} coefficients, "
                                  f"not a multiple of the {embed_dim} features")
        layout = "authors"
    else:
        size, layout = shape_of(sd, mlp + "0" + _COEF, 2)[1], "native"
    # neither layout stores the range: models use 4 unless told
    return dict(layout=layout, spline_size=int(size), spline_range=None)


def _describe_psa(sd, mlp: str, embed_dim: int) -> Dict[str, Any]:
    info = dict(layout="native", expansion=shape_of(sd, mlp + "0.psa.v_weight", 2)[1],
                grid_size=None, grid_range=None)  # a native state_dict does not store the grid
    if (mlp + "0.psa.grid") in sd:
        info["layout"] = "authors"
        g = sd[mlp + "0.psa.grid"]
        if g.dim() != 2 or g.shape[0] < 2 or not torch.equal(g[0], -g[-1]):
            raise CheckpointError(f"checkpoint tensor {mlp}0.psa.grid is no symmetric grid of "
                                  "points; the file is damaged")
        info["grid_size"] = int(g.shape[0])
        info["grid_range"] = float(f"{float(g[-1, 0]):.6g}")  # float32 -> the value given
    return info


def _bspline_export(mod, prefix, leaf, value):
    if leaf == "coefficients":
        return [(prefix + _VECT, value.detach().reshape(-1).clone())]
    return [(f"{prefix}.{leaf}", value.detach().clone())]


def _bspline_load(key, value, modules):
    if not key.endswith(_VECT):
        return None
    prefix = key[: -len(_VECT)]
    mod = modules.get(prefix)
    if isinstance(mod, BSpline):
        if value.numel() != mod.num_features * mod.size:
            raise CheckpointError(
                f"checkpoint tensor {key} has {value.numel()} coefficients, the model expects "
                f"{mod.num_features} x {mod.size}; pass the spline size the checkpoint was made "
                "with")
        value = value.reshape(mod.num_features, mod.size)
    return [(prefix + _COEF, value)]


def psa_grid_buffers(mod: LerpPSA) -> Dict[str, torch.Tensor]:
    """The derived grid buffers the authors' files store for a LerpPSA."""
    t = mod.grid_points(dtype=torch.float32)
    return {"grid": t.unsqueeze(1).expand(-1, mod.num_features).contiguous(),
            "grid_ifeat_offset": (torch.arange(mod.num_features, dtype=torch.int64)
                                  * mod.grid_size).unsqueeze(0)}


def _psa_export(mod, prefix, leaf, value):
    out = [(f"{prefix}.{leaf}", value.detach().clone())]
    if leaf == "epsilon":
        out += [(f"{prefix}.{name}", buf.to(value.device))
                for name, buf in psa_grid_buffers(mod).items()]
    return out


def _psa_load(key, value, modules):
    m = _GRID.match(key)
    if not (m and isinstance(modules.get(m.group(1)), LerpPSA)):
        return None
    mod = modules[m.group(1)]
    expect = psa_grid_buffers(mod)[m.group(2)]
    if tuple(value.shape) != tuple(expect.shape):
        raise CheckpointError(
            f"checkpoint tensor {key} has shape {tuple(value.shape)} but the model expects "
            f"{tuple(expect.shape)} (a grid of {mod.grid_size} points over {mod.num_features} "
            "features); pass the grid size the checkpoint was made with")
    if not torch.allclose(value.to(expect.dtype), expect, atol=1e-5, rtol=0):
        raise CheckpointError(
            f"checkpoint tensor {key} does not match a {mod.grid_size}-point grid over "
            f"[-{fmt(mod.grid_range)}, {fmt(mod.grid_range)}]; pass the grid range it was "
            "made with")
    return []  # derived buffers: recomputed, not stored


register(Activation(
    name="base", aliases=("relu", "baseline"), label="ReLU", module=_relu, sublayer=nn.ReLU,
    learnable=False, int8=True,
    checkpoint=CheckpointForm(marks=("0.weight",), hidden_key="0.weight",
                              describe=_describe_base)))

register(Activation(
    name="bspline", aliases=("b-spline",), label="B-spline", module=_bspline, sublayer=BSpline,
    settings=(Setting("spline_size", "--spline-size", "B-splines of {} coefficients"),
              Setting("spline_range", "--spline-range", "B-splines over [-{0}, {0}]",
                      "for [-{0}, {0}]")),
    module_settings=lambda m: dict(spline_range=m.range_),
    spline_parameters=lambda m: m.parameters(recurse=False),
    regulariser=lambda m: m.tv2(),
    checkpoint=CheckpointForm(marks=("0" + _VECT, "0" + _COEF), hidden_key="1.weight",
                              describe=_describe_bspline,
                              layout=Layout(BSpline, _bspline_export, _bspline_load))))

register(Activation(
    name="psa", aliases=("lerp_psa", "lerp-psa"), label="LERP-PSA", module=_psa,
    sublayer=ResidualLerpPSA, int8=True,
    settings=(Setting("expansion", "--psa-expansion", "LERP-PSA expansion {}"),
              Setting("grid_size", "--grid-size", "a LERP-PSA grid of {} points"),
              Setting("grid_range", "--grid-range", "a LERP-PSA grid over [-{0}, {0}]",
                      "for [-{0}, {0}]")),
    module_settings=lambda m: dict(grid_range=m.psa.grid_range),
    checkpoint=CheckpointForm(marks=("0.psa.",), hidden_key="1.weight", describe=_describe_psa,
                              layout=Layout(LerpPSA, _psa_export, _psa_load),
                              required=("grid_size", "grid_range"))))
