"""Fast CPU path for LERP tables and linear B-splines: a small C/OpenMP
library (``csrc/lerp_cpu.c``) compiled at first use and called via ctypes.

One fused pass computes index, fraction and interpolation; backward
recomputes them from ``x`` (the only tensor saved) and accumulates the table
gradient per feature block in one thread each, so it is deterministic.
Without a C compiler, ``available()`` is False and dispatch falls back to the
reference path with a one-line warning.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import threading
import warnings

import torch

_SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "csrc", "lerp_cpu.c")
_lock = threading.Lock()
_lib = None
_failed = None  # reason string once a build failed


def _cache_dir():
    base = os.environ.get("LERP_CPU_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "lerp_psa_repro")
    os.makedirs(base, exist_ok=True)
    return base


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("model name", "flags")):
                    return line
    except OSError:
        pass
    return ""


def _build():
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if not cc:
        raise RuntimeError("no C compiler found (install gcc)")
    with open(_SRC, "rb") as f:
        src = f.read()
    # -fno-math-errno/-fno-trapping-math let floor and exp vectorise; results are unchanged.
    flags = ["-O3", "-march=native", "-fno-math-errno", "-fno-trapping-math", "-fopenmp",
             "-shared", "-fPIC", "-std=c11"]
    # -march=native: key the cached library by the processor as well.
    cpu = platform.machine() + platform.processor() + _cpu_model()
    tag = hashlib.sha1(src + " ".join([cc, cpu] + flags).encode()).hexdigest()[:16]
    out = os.path.join(_cache_dir(), f"lerp_cpu_{tag}.so")
    if not os.path.exists(out):
        fd, tmp = tempfile.mkstemp(suffix=".so", dir=os.path.dirname(out))
        os.close(fd)
        proc = subprocess.run([cc, *flags, _SRC, "-o", tmp, "-lm"], capture_output=True, text=True)
        if proc.returncode != 0:
            os.unlink(tmp)
            first = (proc.stderr.strip().splitlines() or ["unknown error"])[0]
            raise RuntimeError(f"compiling {os.path.basename(_SRC)} failed: {first}")
        os.replace(tmp, out)  # atomic: concurrent builders never load half a file
    lib = ctypes.CDLL(out)
    i64, dbl, cint, vp = ctypes.c_int64, ctypes.c_double, ctypes.c_int, ctypes.c_void_p
    for suf in ("f32", "f64"):
        getattr(lib, f"lerp_forward_{suf}").argtypes = [vp, vp, vp, i64, i64, i64, dbl, cint]
        getattr(lib, f"lerp_backward_{suf}").argtypes = [vp, vp, vp, vp, vp, i64, i64, i64, dbl, cint]
    return lib


def library():
    """The loaded library, building it on first use; None if that failed."""
    global _lib, _failed
    if _lib is not None or _failed is not None:
        return _lib
    with _lock:
        if _lib is None and _failed is None:
            try:
                _lib = _build()
            except Exception as exc:  # no compiler, no OpenMP, read-only cache...
                _failed = str(exc)
                warnings.warn(f"fast CPU lookup kernels unavailable ({_failed}); using the "
                              "slower reference path", RuntimeWarning, stacklevel=3)
    return _lib


def available() -> bool:
    return library() is not None


def _ptr(t):
    return ctypes.c_void_p(t.data_ptr()) if t is not None else None


def _suffix(dtype):
    return "f64" if dtype == torch.float64 else "f32"


class LerpCPUFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, table, grid_range: float, save_memory: bool):
        lib = library()
        cdt = torch.float64 if x.dtype == torch.float64 else torch.float32
        F_, G = table.shape
        xc = x.to(cdt).contiguous()
        tc = table.detach().to(cdt).contiguous()
        y = torch.empty_like(xc)
        n = xc.numel() // F_ if F_ else 0
        getattr(lib, f"lerp_forward_{_suffix(cdt)}")(
            _ptr(xc), _ptr(tc), _ptr(y), n, F_, G, float(grid_range), torch.get_num_threads())
        # Index and fraction are recomputed in backward, so x is all we keep
        # (save_memory is therefore always honoured).
        ctx.save_for_backward(xc, tc)
        ctx.grid_range = float(grid_range)
        ctx.dtypes = (x.dtype, table.dtype)
        return y.to(x.dtype)

    @staticmethod
    def backward(ctx, grad_y):
        xc, tc = ctx.saved_tensors
        lib = library()
        F_, G = tc.shape
        gy = grad_y.to(xc.dtype).contiguous()
        gx = torch.empty_like(xc) if ctx.needs_input_grad[0] else None
        gt = torch.empty_like(tc) if ctx.needs_input_grad[1] else None
        n = xc.numel() // F_ if F_ else 0
        getattr(lib, f"lerp_backward_{_suffix(xc.dtype)}")(
            _ptr(xc), _ptr(tc), _ptr(gy), _ptr(gx), _ptr(gt), n, F_, G, ctx.grid_range,
            torch.get_num_threads())
        x_dtype, t_dtype = ctx.dtypes
        return (gx.to(x_dtype) if gx is not None else None,
                gt.to(t_dtype) if gt is not None else None, None, None)


def lerp_cpu(x, table, grid_range, save_memory=False):
    return LerpCPUFunction.apply(x, table, float(grid_range), bool(save_memory))


def bspline_cpu(x, coefficients, range_, save_memory=False):
    """A linear B-spline with K knots on [-range_, range_] is a K-point LERP table."""
    return LerpCPUFunction.apply(x, coefficients, float(range_), bool(save_memory))
