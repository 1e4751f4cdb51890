"""CPU backend: the fused C/OpenMP kernels of ``csrc/lookup_cpu.c``, compiled
with the system C compiler at first use and called through ctypes.

* LERP forward: one pass computes index, fraction and interpolation,
  parallel over rows.
* LERP backward: recomputes index and fraction from ``x``; work is split into
  (row chunk, feature block) pairs, each accumulating the table gradient in
  its own double partial table, summed in chunk order. Chunks depend on the
  row count only, so the gradient is bit-reproducible whatever the thread
  count, and 24 or 96 features still use every thread.
* A linear B-spline with K knots on [-R, R] is the same piecewise-linear
  function as a K-point table with edge extrapolation (output, input
  gradient and coefficient gradient), so ``bspline_*`` are the LERP kernels.
* PSA table: forward and closed-form backward (softmax recomputed), one
  feature per iteration, 64 grid points at a time so the loops vectorise
  (an fp32 exponential of our own that vectorises), gradients accumulated
  in double.

Computes in fp64 for fp64 inputs, else fp32. bfloat16 activations (what a Linear gives under
``torch.autocast``) are read and written as bfloat16 by the LERP kernels themselves, fp32 inside,
table and table gradient fp32: the same numbers as converting to fp32 and back, without the two
conversion passes. Without a C compiler
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
    if not shutil.which(cc):
        raise RuntimeError(f"no C compiler at {cc} (the CC variable): install gcc or fix CC")
    with open(_SRC, "rb") as f:
        src = f.read()
    # -fno-math-errno/-fno-trapping-math let floor vectorise (the fp32 exponential of the PSA
    # table is the kernel's own; libm's exp does not vectorise without -ffast-math); results
    # are unchanged by these two flags.
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
    for suf in ("f32", "bf16", "f64"):
        getattr(lib, f"lerp_forward_{suf}").argtypes = [vp, vp, vp, i64, i64, i64, dbl, cint]
        getattr(lib, f"lerp_backward_{suf}").argtypes = [vp, vp, vp, vp, vp, vp, i64, i64, i64,
                                                         dbl, cint]
        getattr(lib, f"lerp_forward_{suf}").restype = None
        # Returns 0, or 1 when a work buffer could not be allocated.
        getattr(lib, f"lerp_backward_{suf}").restype = cint
    for suf in ("f32", "f64"):
        getattr(lib, f"psa_table_forward_{suf}").argtypes = [vp] * 5 + [dbl, vp, vp, i64, i64, i64, cint]
        getattr(lib, f"psa_table_backward_{suf}").argtypes = (
            [vp] * 4 + [dbl, vp, vp] + [vp] * 5 + [i64, i64, i64, cint])
        for name in ("psa_table_forward", "psa_table_backward"):
            getattr(lib, f"{name}_{suf}").restype = cint
    lib.lerp_backward_workspace.argtypes = [i64, i64, i64]
    lib.lerp_backward_workspace.restype = i64
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


_SUFFIX = {torch.float64: "f64", torch.float32: "f32", torch.bfloat16: "bf16"}


def _fn(name, dtype):
    return getattr(_lib if _lib is not None else library(), f"{name}_{_SUFFIX[dtype]}")


def _threads(work: int) -> int:
    """OpenMP threads for ``work`` elements: one for small jobs (an OpenMP team costs more
    than it saves there, the more so on a busy machine), else torch's thread count."""
    return 1 if work < 65536 else torch.get_num_threads()


def _check(status, what):
    if status:
        raise MemoryError(f"the C {what} kernel could not allocate its work buffer")


def _ptr(t):
    return t.data_ptr() if t is not None else None


def _as(t, dtype):
    """``t`` in ``dtype``, contiguous; ``t`` itself when it already is (a ``.to`` that changes
    nothing still costs a dispatch, and these launchers run on small tensors many times a step)."""
    if t.dtype != dtype:
        t = t.to(dtype)
    return t if t.is_contiguous() else t.contiguous()


def _prepare(x, params):
    """x contiguous in the dtype the kernels read it in (bfloat16 natively, else the compute
    dtype) and params contiguous in the compute dtype."""
    cdt = compute_dtype(x.dtype)
    return _as(x, x.dtype if x.dtype == torch.bfloat16 else cdt), _as(params.detach(), cdt)


_workspace = threading.local()


def _work(doubles: int) -> torch.Tensor:
    """A float64 scratch buffer of at least ``doubles`` entries, kept per thread between calls
    (grown, never shrunk): its pages stay mapped, where a fresh buffer of this size would be
    mapped, zeroed and faulted in by the OS on every backward call."""
    buf = getattr(_workspace, "buf", None)
    if buf is None or buf.numel() < doubles:
        buf = torch.empty(doubles, dtype=torch.float64)
        _workspace.buf = buf
    return buf


# --- LERP (and the B-spline, the same function) ----------------------------------------------

def lerp_forward(x, table, grid_range):
    xc, tc = _prepare(x, table)
    F_, G = tc.shape
    y = torch.empty_like(xc)
    n = xc.numel() // F_ if F_ else 0
    _fn("lerp_forward", xc.dtype)(_ptr(xc), _ptr(tc), _ptr(y), n, F_, G, float(grid_range),
                                  _threads(xc.numel()))
    return _as(y, x.dtype)


def lerp_backward(x, table, grad_y, grid_range, need_x, need_table):
    xc, tc = _prepare(x, table)
    F_, G = tc.shape
    gy = _as(grad_y, xc.dtype)
    gx = torch.empty_like(xc) if need_x else None
    gt = torch.empty_like(tc) if need_table else None
    n = xc.numel() // F_ if F_ else 0
    work = _work(library().lerp_backward_workspace(n, F_, G)) if need_table else None
    _check(_fn("lerp_backward", xc.dtype)(_ptr(xc), _ptr(tc), _ptr(gy), _ptr(gx), _ptr(gt),
                                          _ptr(work), n, F_, G, float(grid_range),
                                          _threads(xc.numel())),
           "LERP backward")
    return (_as(gx, x.dtype) if need_x else None, _as(gt, table.dtype) if need_table else None)


bspline_forward = lerp_forward
bspline_backward = lerp_backward


# --- PSA table --------------------------------------------------------------------------------

def _psa_inputs(ps, eps, grid):
    cdt = compute_dtype(ps[0].dtype)
    return ([_as(p.detach(), cdt) for p in ps], float(eps.reshape(-1)[0]),
            _as(grid.detach(), cdt))


def psa_table_forward(v, w, b, o, c, eps, grid):
    (v_, w_, b_, o_, c_), e, g = _psa_inputs((v, w, b, o, c), eps, grid)
    F_, E = v_.shape
    table = torch.empty(F_, g.numel(), dtype=v_.dtype)
    _check(_fn("psa_table_forward", v_.dtype)(*[_ptr(t) for t in (v_, w_, b_, o_, c_)], e, _ptr(g),
                                              _ptr(table), F_, E, g.numel(),
                                              _threads(F_ * E * g.numel())), "PSA table")
    return _as(table, v.dtype)


def psa_table_backward(v, w, b, o, c, eps, grid, grad_table):
    (v_, w_, b_, o_), e, g = _psa_inputs((v, w, b, o), eps, grid)
    F_, E = v_.shape
    gt = _as(grad_table, v_.dtype)
    outs = [torch.empty_like(v_), torch.empty_like(w_), torch.empty_like(b_),
            torch.empty_like(o_), torch.empty_like(o_)]
    _check(_fn("psa_table_backward", v_.dtype)(*[_ptr(t) for t in (v_, w_, b_, o_)], e, _ptr(g),
                                               _ptr(gt), *[_ptr(t) for t in outs], F_, E, g.numel(),
                                               _threads(F_ * E * g.numel())), "PSA table backward")
    return tuple(_as(t, p.dtype) for t, p in zip(outs, (v, w, b, o, c)))
