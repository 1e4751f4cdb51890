"""The kernel backends, registered as data, and the one rule that picks one.

A backend is a module of ``kernels.backends`` exporting the same launchers (see
``kernels/backends/__init__.py``). Its record names the device types whose
tensors it takes, the device types for which ``impl='auto'`` picks it (in
registry order), whether it computes in fp64 for fp64 inputs, how to check that
it can run, and what ``impl='auto'`` uses instead when it cannot (``fallback``: warn
and use that backend). A backend asked for by name that cannot run is an error, one line
with the reason: the caller chose it, so a silent or merely warned substitute would
mislead (a timing of "cpu" that ran the reference path, say).
"""
from __future__ import annotations

import importlib
import warnings
from dataclasses import dataclass
from typing import Callable, Optional, Tuple

from ._common import KernelArgumentError


def _always(device_type: str):
    return True, ""


def _cpu_usable(device_type: str):
    from .backends import cpu
    if cpu.available():
        return True, ""
    return False, f"fast CPU lookup kernels unavailable ({cpu.unavailable_reason()})"


def _triton_usable(device_type: str):
    # Import only when asked for: TRITON_INTERPRET must be set before triton is imported.
    try:
        from .backends import triton as backend
    except ImportError as exc:
        return False, f"impl='triton' needs the triton package ({exc})"
    return backend.usable(device_type)


@dataclass(frozen=True)
class Backend:
    name: str
    module: str                          # kernels.backends.<module>
    devices: Tuple[str, ...]             # device types whose tensors it takes
    auto_for: Tuple[str, ...]            # device types for which impl='auto' picks it
    fp64: bool                           # computes in fp64 for fp64 inputs (else fp32 always)
    usable: Callable[[str], Tuple[bool, str]]  # device type -> (ok, reason if not)
    fallback: Optional[str]              # used by impl='auto', with a warning, when not usable
    summary: str

    def load(self):
        return importlib.import_module(f"kernels.backends.{self.module}")


BACKENDS: Tuple[Backend, ...] = (
    Backend("triton", "triton", devices=("cuda", "cpu"), auto_for=("cuda",), fp64=False,
            usable=_triton_usable, fallback=None,
            summary="fused Triton kernels (CUDA; CPU only under TRITON_INTERPRET=1)"),
    Backend("cpu", "cpu", devices=("cpu",), auto_for=("cpu",), fp64=True,
            usable=_cpu_usable, fallback="reference",
            summary="fused C/OpenMP kernels compiled at first use, called through ctypes"),
    Backend("reference", "reference", devices=("cpu", "cuda", "meta", "xpu", "mps"),
            auto_for=("cpu", "cuda", "meta", "xpu", "mps"), fp64=True,
            usable=_always, fallback=None,
            summary="plain PyTorch: the ground truth of the tests"),
)
BY_NAME = {b.name: b for b in BACKENDS}
IMPLS = tuple(BY_NAME)

_warned = set()


def available_impls():
    return ["auto", *IMPLS]


def resolve(op: str, impl: str, device_type: str) -> str:
    """Map ``impl`` (possibly ``'auto'``) to the name of a backend that runs ``device_type``."""
    if impl == "auto":
        for b in BACKENDS:
            if device_type in b.auto_for:
                ok, why = b.usable(device_type)
                if ok:
                    return b.name
                if b.fallback is not None:
                    _warn(b, why)
                    return resolve(op, b.fallback, device_type)
        raise KernelArgumentError(f"{op}: no kernel backend runs on {device_type} tensors")
    b = BY_NAME.get(impl)
    if b is None:
        raise KernelArgumentError(
            f"unknown {op} implementation {impl!r}; choose one of {available_impls()}")
    if device_type not in b.devices:
        raise KernelArgumentError(
            f"{op}: impl={impl!r} does not run on {device_type} tensors; use impl='auto' or one of "
            f"{[c.name for c in BACKENDS if device_type in c.devices]}")
    ok, why = b.usable(device_type)
    if ok:
        return b.name
    instead = f"; or use impl='auto', which falls back to {b.fallback}" if b.fallback else ""
    raise KernelArgumentError(f"{op}: impl={impl!r} cannot run here: {why}{instead}")


def _warn(b: Backend, why: str):
    if b.name not in _warned:
        _warned.add(b.name)
        warnings.warn(f"{why}; using the slower {b.fallback} path", RuntimeWarning, stacklevel=4)


_modules = {}


def backend(name: str):
    """The launcher module of a concrete backend name (imported once)."""
    mod = _modules.get(name)
    if mod is None:
        mod = _modules[name] = BY_NAME[name].load()
    return mod
