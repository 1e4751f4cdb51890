"""CPU backend: the fused C/OpenMP kernels of ``csrc/lookup_cpu.c``, compiled
with the system C compiler at first use and called through ctypes.

* LERP forward: one pass computes index, fraction and interpolation,
  parallel over rows.
* LERP backward: recomputes index and fraction from ``x`` and accumulates
  the table gradient per block of features in one thread each, in double,
  so it is bit-reproducible whatever the thread count.
* A linear B-spline with K knots on [-R, R] is the same piecewise-linear
  function as a K-point table with edge extrapolation (output, input
  gradient and coefficient gradient), so ``bspline_*`` are the LERP kernels.
* PSA table: forward and closed-form backward (softmax recomputed), one
  feature per iteration, gradients accumulated in double.

Computes in fp64 for fp64 inputs, else fp32. Without a C compiler
``available()`` is False (with the reason in ``unavailable_reason()``).
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

import torch

from .._common import compute_dtype

_SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "csrc",
                    "lookup_cpu.c")
_lock = threading.Lock()
_lib = None
_failed = None  # the reason, once a build failed


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
             "-shared", "-fPIC", "-std=gnu11"]
    # -march=native: key the cached library by the processor as well.
    cpu = platform.machine() + platform.processor() + _cpu_model()
    tag = hashlib.sha1(src + " ".join([cc, cpu] + flags).encode()).hexdigest()[:16]
    out = os.path.join(_cache_dir(), f"lookup_cpu_{tag}.so")
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
        getattr(lib, f"psa_table_forward_{suf}").argtypes = [vp] * 5 + [dbl, vp, vp, i64, i64, i64, cint]
        getattr(lib, f"psa_table_backward_{suf}").argtypes = (
            [vp] * 4 + [dbl, vp, vp] + [vp] * 5 + [i64, i64, i64, cint])
        for name in ("lerp_forward", "lerp_backward", "psa_table_forward", "psa_table_backward"):
            getattr(lib, f"{name}_{suf}").restype = None
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
    return _lib


def available() -> bool:
    return library() is not None


def unavailable_reason() -> str:
    library()
    return _failed or ""


def _fn(name, dtype):
    return getattr(_lib if _lib is not None else library(),
                   f"{name}_{'f64' if dtype == torch.float64 else 'f32'}")


def _threads(work: int) -> int:
    """OpenMP threads for ``work`` elements: one for small jobs (an OpenMP team costs more
    than it saves there, the more so on a busy machine), else torch's thread count."""
    return 1 if work < 65536 else torch.get_num_threads()


def _ptr(t):
    return t.data_ptr() if t is not None else None


def _prepare(x, params):
    """x as a contiguous (n, f) array and params contiguous, both in the compute dtype."""
    cdt = compute_dtype(x.dtype)
    return x.to(cdt).contiguous(), params.detach().to(cdt).contiguous()


# --- LERP (and the B-spline, the same function) ----------------------------------------------

def lerp_forward(x, table, grid_range):
    xc, tc = _prepare(x, table)
    F_, G = tc.shape
    y = torch.empty_like(xc)
    n = xc.numel() // F_ if F_ else 0
    _fn("lerp_forward", xc.dtype)(_ptr(xc), _ptr(tc), _ptr(y), n, F_, G, float(grid_range),
                                  _threads(xc.numel()))
    return y.to(x.dtype)


def lerp_backward(x, table, grad_y, grid_range, need_x, need_table):
    xc, tc = _prepare(x, table)
    F_, G = tc.shape
    gy = grad_y.to(xc.dtype).contiguous()
    gx = torch.empty_like(xc) if need_x else None
    gt = torch.empty_like(tc) if need_table else None
    n = xc.numel() // F_ if F_ else 0
    _fn("lerp_backward", xc.dtype)(_ptr(xc), _ptr(tc), _ptr(gy), _ptr(gx), _ptr(gt), n, F_, G,
                                   float(grid_range), _threads(xc.numel()))
    return (gx.to(x.dtype) if need_x else None, gt.to(table.dtype) if need_table else None)


bspline_forward = lerp_forward
bspline_backward = lerp_backward


# --- PSA table --------------------------------------------------------------------------------

def _psa_inputs(ps, eps, grid):
    cdt = compute_dtype(ps[0].dtype)
    return ([p.detach().to(cdt).contiguous() for p in ps], float(eps.reshape(-1)[0]),
            grid.detach().to(cdt).contiguous())


def psa_table_forward(v, w, b, o, c, eps, grid):
    (v_, w_, b_, o_, c_), e, g = _psa_inputs((v, w, b, o, c), eps, grid)
    F_, E = v_.shape
    table = torch.empty(F_, g.numel(), dtype=v_.dtype)
    _fn("psa_table_forward", v_.dtype)(*[_ptr(t) for t in (v_, w_, b_, o_, c_)], e, _ptr(g),
                                       _ptr(table), F_, E, g.numel(), _threads(F_ * E * g.numel()))
    return table.to(v.dtype)


def psa_table_backward(v, w, b, o, c, eps, grid, grad_table):
    (v_, w_, b_, o_), e, g = _psa_inputs((v, w, b, o), eps, grid)
    F_, E = v_.shape
    gt = grad_table.to(v_.dtype).contiguous()
    outs = [torch.empty_like(v_), torch.empty_like(w_), torch.empty_like(b_),
            torch.empty_like(o_), torch.empty_like(o_)]
    _fn("psa_table_backward", v_.dtype)(*[_ptr(t) for t in (v_, w_, b_, o_)], e, _ptr(g), _ptr(gt),
                                        *[_ptr(t) for t in outs], F_, E, g.numel(),
                                        _threads(F_ * E * g.numel()))
    return tuple(t.to(p.dtype) for t, p in zip(outs, (v, w, b, o, c)))
