#!/usr/bin/env python
"""Compile every @triton.jit kernel of kernels/ for real GPUs, offline (no GPU needed).

Uses Triton's own compiler and its bundled ptxas: ``triton.compile(ASTSource(kernel,
signature, constexprs), target=GPUTarget("cuda", cc, 32))`` for each target (sm_80,
sm_90), each dtype the dispatch can launch (fp32, bf16, fp16 activations/parameters)
and the block sizes and constexpr flags the launchers in kernels/backends/triton.py
use. Registers, local memory (spills) and shared memory are read from the cubin with
the bundled ``cuobjdump --dump-resource-usage``.

Prints a table (kernel x target x dtype x variant) and, as the last line, one JSON
object: {"kernels": distinct kernels, "compiled": variants compiled, "failed": variants
that did not compile, "spills": variants with local memory > 0, "targets": [...]}.
Exit status 1 on any compile error, any spill, or a @triton.jit kernel that has no
launch configuration here (add it to VARIANTS); 2 on bad arguments.

  python scripts/gpu_compile_check.py                  # sm_80 and sm_90, every variant
  python scripts/gpu_compile_check.py --targets 90 --dtypes fp32 -j 2
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor

# The interpreter replaces @triton.jit functions by Python ones: compile the real thing.
os.environ.pop("TRITON_INTERPRET", None)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

DTYPES = ("fp32", "bf16", "fp16")
TARGETS = (80, 90)
# Grid sizes the launchers see in practice: LERP-PSA's 64-point table, the B-spline's 65
# coefficients (a 128-wide tile), and a larger table (128 points).
GRID_SIZES = (64, 65, 128)


def variants():
    """(kernel name, signature, constexprs, num_warps, label) for every launch the
    dispatch can make, per activation dtype ``dt`` (returned as a function of dt)."""
    from kernels.backends import triton as tb

    out = []
    for dt in DTYPES:
        # lerp / bspline forward: x, y in the activation dtype, the table in fp32 (parameters).
        sig = {"x_ptr": f"*{dt}", "t_ptr": "*fp32", "y_ptr": f"*{dt}", "numel": "i32", "F": "i32",
               "G": "i32", "R": "fp32", "inv_h": "fp32", "BLOCK": "constexpr"}
        out.append(("_lerp_fwd_kernel", dt, sig, {"BLOCK": tb.LERP_FWD_BLOCK}, 4,
                    f"BLOCK={tb.LERP_FWD_BLOCK}"))
        # lerp / bspline backward, for each tile shape and which gradients are needed.
        seen = set()
        for G in GRID_SIZES:
            bf, bg = tb.lerp_bwd_blocks(G)
            if (bf, bg) in seen:
                continue
            seen.add((bf, bg))
            for need_gx, need_gt in ((True, True), (False, True), (True, False)):
                sig = {"x_ptr": f"*{dt}", "t_ptr": "*fp32", "gy_ptr": f"*{dt}", "gx_ptr": f"*{dt}",
                       "part_ptr": "*fp32", "N": "i32", "F": "i32", "G": "i32", "R": "fp32",
                       "inv_h": "fp32", "rows_per_prog": "i32", "NEED_GX": "constexpr",
                       "NEED_GT": "constexpr", "BLOCK_F": "constexpr", "BLOCK_G": "constexpr"}
                out.append(("_lerp_bwd_kernel", dt, sig,
                            {"NEED_GX": need_gx, "NEED_GT": need_gt, "BLOCK_F": bf, "BLOCK_G": bg},
                            tb.LERP_BWD_WARPS,
                            f"BLOCK_F={bf} BLOCK_G={bg} gx={int(need_gx)} gt={int(need_gt)}"))
        # PSA table: parameters in dt (a model converted with .to(dt)), the grid in fp32.
        seen = set()
        for G in GRID_SIZES:
            bf, bg = tb.psa_blocks(G)
            if (bf, bg) in seen:
                continue
            seen.add((bf, bg))
            p = f"*{dt}"
            sig = {"v_ptr": p, "w_ptr": p, "b_ptr": p, "o_ptr": p, "c_ptr": p, "eps_ptr": p,
                   "grid_ptr": "*fp32", "out_ptr": "*fp32", "F": "i32", "E": "i32", "G": "i32",
                   "BLOCK_F": "constexpr", "BLOCK_G": "constexpr"}
            out.append(("_psa_table_fwd_kernel", dt, sig, {"BLOCK_F": bf, "BLOCK_G": bg}, 4,
                        f"BLOCK_F={bf} BLOCK_G={bg}"))
            sig = {"v_ptr": p, "w_ptr": p, "b_ptr": p, "o_ptr": p, "eps_ptr": p, "grid_ptr": "*fp32",
                   "gt_ptr": p, "gv_ptr": "*fp32", "gw_ptr": "*fp32", "gb_ptr": "*fp32",
                   "go_ptr": "*fp32", "gc_ptr": "*fp32", "F": "i32", "E": "i32", "G": "i32",
                   "BLOCK_F": "constexpr", "BLOCK_G": "constexpr"}
            out.append(("_psa_table_bwd_kernel", dt, sig, {"BLOCK_F": bf, "BLOCK_G": bg}, 4,
                        f"BLOCK_F={bf} BLOCK_G={bg}"))
    return out


def jit_kernels():
    """Names of the @triton.jit launch kernels (``*_kernel``) of the Triton backend."""
    from triton.runtime.jit import JITFunction

    from kernels.backends import triton as tb
    return sorted(n for n, v in vars(tb).items() if isinstance(v, JITFunction) and n.endswith("_kernel"))


def _tool(name):
    import triton
    path = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", name)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{name} is not bundled with this triton ({path})")
    return path


def resource_usage(cubin: bytes, kernel: str):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "k.cubin")
        with open(path, "wb") as f:
            f.write(cubin)
        out = subprocess.run([_tool("cuobjdump"), "--dump-resource-usage", path],
                             capture_output=True, text=True, check=True).stdout
    m = re.search(rf"Function {re.escape(kernel)}:\s*\n?\s*(.*)", out)
    fields = dict(re.findall(r"(\w+(?:\[\d+\])?):(\d+)", m.group(1) if m else out))
    return {k: int(fields.get(k, -1)) for k in ("REG", "LOCAL", "SHARED", "STACK")}


def compile_one(job):
    name, dt, sig, constexprs, num_warps, label, cc = job
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from kernels.backends import triton as tb
    t0 = time.perf_counter()
    try:
        src = ASTSource(getattr(tb, name), sig, constexprs=constexprs)
        k = triton.compile(src, target=GPUTarget("cuda", cc, 32), options={"num_warps": num_warps})
        usage = resource_usage(k.asm["cubin"], name)
        return dict(kernel=name, target=f"sm_{cc}", dtype=dt, variant=label, ok=True,
                    regs=usage["REG"], local=usage["LOCAL"], shared=usage["SHARED"],
                    stack=usage["STACK"], seconds=time.perf_counter() - t0)
    except Exception as exc:  # a compile error is a result, not a crash of the check
        msg = " ".join(str(exc).split())[:300]
        return dict(kernel=name, target=f"sm_{cc}", dtype=dt, variant=label, ok=False,
                    error=f"{type(exc).__name__}: {msg}", seconds=time.perf_counter() - t0)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--targets", nargs="+", type=int, default=list(TARGETS),
                   help="compute capabilities (default: 80 90)")
    p.add_argument("--dtypes", nargs="+", choices=DTYPES, default=list(DTYPES))
    p.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1, help="parallel compiles")
    args = p.parse_args(argv)
    if any(cc < 75 for cc in args.targets):
        p.error("--targets: Triton needs compute capability 75 or newer (e.g. 80, 90)")
    try:
        import triton  # noqa: F401
        _tool("ptxas"), _tool("cuobjdump")
    except (ImportError, FileNotFoundError) as exc:
        print(f"gpu_compile_check.py: error: {exc}; install the pinned torch (it brings triton)",
              file=sys.stderr)
        return 2
    table = variants()
    covered = {v[0] for v in table}
    missing = [k for k in jit_kernels() if k not in covered]
    jobs = [(*v, cc) for cc in args.targets for v in table if v[1] in args.dtypes]
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as pool:
            rows = list(pool.map(compile_one, jobs))
    else:
        rows = [compile_one(j) for j in jobs]
    print(f"| kernel | target | dtype | variant | registers | local (spill) B | shared B |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        if r["ok"]:
            print(f"| {r['kernel']} | {r['target']} | {r['dtype']} | {r['variant']} | {r['regs']} | "
                  f"{r['local']} | {r['shared']} |")
        else:
            print(f"| {r['kernel']} | {r['target']} | {r['dtype']} | {r['variant']} | FAILED: {r['error']} | | |")
    for k in missing:
        print(f"kernel {k} has no launch configuration in scripts/gpu_compile_check.py: add it to variants()")
    failed = sum(not r["ok"] for r in rows)
    spills = sum(r["ok"] and r["local"] > 0 for r in rows)
    summary = dict(kernels=len({r["kernel"] for r in rows}), compiled=sum(r["ok"] for r in rows),
                   failed=failed, spills=spills, targets=[f"sm_{cc}" for cc in args.targets],
                   uncovered=missing)
    print(json.dumps(summary))
    return 1 if failed or spills or missing else 0


if __name__ == "__main__":
    sys.exit(main())
