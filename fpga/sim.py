"""Simulate ``rtl/lerp_layer.v`` under Verilator on hex files.

  python -m fpga.sim --tables T.hex --inputs X.hex --features F --addr-bits M --out Y.hex

Builds (once per configuration, cached under fpga/build/) a Verilator model with a C++
testbench, streams the inputs (element n belongs to feature n mod F), writes the outputs in
the same hex format and prints cycles and elements per cycle.

The tables are read by the simulator at run time (the plusarg ``+tables=PATH``), so a cached
model holds nothing that depends on where the checkout or the tables live. The cache key
covers everything that is compiled in: the RTL and testbench sources, the parameters, the
Verilator and C++ compiler versions and the flags. A model is built in a private temporary
folder and renamed into the cache, so concurrent runs never share a half-built model, and
each run reads and writes only the files it was given.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from typing import Dict, List, Optional, Sequence

from errors import UserError

from .lerp8 import check_addr_bits, entries, read_hex

HERE = os.path.dirname(os.path.abspath(__file__))
RTL = ["rtl/lerp_unit.v", "rtl/lerp_layer.v"]          # relative to HERE
TB = "tb/tb_lerp_layer.cpp"
INSTALL_HINT = "install it with: sudo apt-get install -y verilator"
# -O1 C++ builds: the models are small, compile time dominates the test budget.
CXX_OPT = ["-MAKEFLAGS", "OPT_FAST=-O1 OPT_SLOW=-O1 OPT_GLOBAL=-O1"]


class SimError(UserError):
    """Verilator missing, a build that failed, or a simulation that went wrong."""


def verilator() -> str:
    exe = shutil.which("verilator")
    if not exe:
        raise SimError(f"verilator not found; {INSTALL_HINT}")
    return exe


def _tool_version(cmd: Sequence[str]) -> str:
    try:
        proc = subprocess.run(list(cmd), capture_output=True, text=True)
    except OSError:
        return "missing"
    return (proc.stdout + proc.stderr).strip()


def cache_key(top: str, sources: Sequence[str], params: Dict[str, object],
              flags: Sequence[str]) -> str:
    """Hash of everything compiled into a model: the sources (names relative to fpga/ and
    contents), the top module, its parameters, the flags, and the Verilator and C++
    compiler versions."""
    h = hashlib.sha256()
    h.update(f"top={top}\n".encode())
    for rel in sources:
        h.update(f"file={rel}\n".encode())
        with open(os.path.join(HERE, rel), "rb") as f:
            h.update(hashlib.sha256(f.read()).digest())
    for k in sorted(params):
        h.update(f"param {k}={params[k]}\n".encode())
    h.update(("flags=" + " ".join(flags) + "\n").encode())
    h.update(_tool_version([verilator(), "--version"]).encode())
    h.update(_tool_version([os.environ.get("CXX", "g++"), "--version"]).encode())
    return h.hexdigest()


def build_model(top: str, rtl: Sequence[str], tb: str, params: Dict[str, object],
                build_root: Optional[str] = None, jobs: Optional[int] = None,
                extra_flags: Sequence[str] = (), log=None) -> str:
    """Build (or reuse) the Verilator model of ``top`` with ``params``; return the path of
    its executable. ``rtl`` and ``tb`` are paths relative to fpga/ (so that no absolute path
    ends up in the model); the cache folder is ``<build_root>/<top>_<key>``. Parallel jobs:
    ``jobs``, else the environment variable FPGA_BUILD_JOBS, else min(2, CPUs)."""
    flags = ["--cc", "--exe", "--build", "-Wall", *CXX_OPT, *extra_flags,
             "--top-module", top, *[f"-G{k}={v}" for k, v in sorted(params.items())]]
    sources = [*rtl, tb]
    key = cache_key(top, sources, params, flags)
    root = os.path.abspath(build_root or os.path.join(HERE, "build"))
    folder = os.path.join(root, f"{top}_{key[:20]}")
    exe = os.path.join(folder, f"V{top}")
    if os.path.isfile(exe):
        return exe
    os.makedirs(root, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".tmp_{top}_", dir=root)
    try:
        jobs = jobs or int(os.environ.get("FPGA_BUILD_JOBS", "0") or 0) or min(2, os.cpu_count() or 1)
        cmd = [verilator(), *flags, "-j", str(jobs),
               "--Mdir", tmp, *rtl, os.path.join(HERE, tb)]   # make needs the C++ file's full path
        if log:
            log(f"building the Verilator model of {top} "
                f"({', '.join(f'{k}={v}' for k, v in sorted(params.items()))}) in {folder}")
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=HERE)
        if proc.returncode != 0 or not os.path.isfile(os.path.join(tmp, f"V{top}")):
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-8:]
            raise SimError(f"Verilator build of {top} failed: " + " | ".join(tail))
        try:
            os.rename(tmp, folder)          # atomic; loses to a concurrent build of the same key
        except OSError:
            if not os.path.isfile(exe):
                raise
    finally:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
    return exe


def rtl_sources(listing: str) -> List[str]:
    """The RTL files of a design, relative to fpga/, from its file list ``rtl/<listing>.f``
    (one file name per line, relative to rtl/; the one list that the simulators, the synthesis
    script, the tests and the Makefile all read)."""
    path = os.path.join(HERE, "rtl", f"{listing}.f")
    try:
        with open(path) as f:
            names = [ln.split("//")[0].strip() for ln in f]
    except FileNotFoundError:
        raise SimError(f"{path} does not exist (a list of the RTL files of {listing})") from None
    return [f"rtl/{n}" for n in names if n]


def add_dump_args(p: argparse.ArgumentParser) -> None:
    """The flags of the whole-model simulators (sim_resmlp, sim_fixed) that name the dump."""
    p.add_argument("--params", required=True, help="quant_params.npz (cifar10_quant.py --dump-params)")
    p.add_argument("--samples", required=True, help="quant_samples.npz: x (N, 64, P) codes, labels")
    p.add_argument("--images", type=int, default=None, help="first N images (default: all)")


def add_run_args(p: argparse.ArgumentParser, seed_of: str) -> None:
    """The run flags both whole-model simulators share; ``seed_of`` says what the seed draws."""
    p.add_argument("--random-reset", action="store_true",
                   help="random power-up values of every register and memory")
    p.add_argument("--seed", type=int, default=1, help=f"seed of {seed_of} (>= 1)")
    p.add_argument("--build-dir", default=None, help="model cache folder (default fpga/build)")
    p.add_argument("--disable-tqdm", action="store_true", help="no progress bar")


def load_dump(args: argparse.Namespace):
    """(params, meta, x, labels) from ``--params``/``--samples``/``--images``, with ``--seed``
    checked; every problem is one SimError line."""
    from .int_resmlp import load_params, load_samples
    if args.seed < 1:
        raise SimError(f"--seed must be >= 1, got {args.seed}")
    params, meta = load_params(args.params)
    x, labels, _ = load_samples(args.samples)
    if args.images is not None:
        if not 1 <= args.images <= x.shape[0]:
            raise SimError(f"--images must be in 1..{x.shape[0]} ({args.samples} holds "
                           f"{x.shape[0]} images), got {args.images}")
        x, labels = x[:args.images], labels[:args.images]
    if x.shape[1:] != (int(meta["tokens"]), int(meta["patch_values"])):
        raise SimError(f"{args.samples} holds images of shape {x.shape[1:]}, the parameters "
                       f"expect ({meta['tokens']}, {meta['patch_values']})")
    return params, meta, x, labels


def run_testbench(cmd: List[str], work: str, images: int, logits: int, progress: bool = True,
                  where=None):
    """Run a whole-model testbench (``cmd``, in the folder ``work``) that writes ``out.bin``
    (``images`` x ``logits`` int8 logits) and ``timing.txt`` there and prints a line starting
    with ``image `` per finished image (a progress bar follows them). Returns (its other stdout
    lines, the logits (images, logits), the timing rows, wall seconds, CPU seconds). A failing
    testbench is one SimError line: ``where(lines)`` may name the stage, then the RTL's first
    ``ERROR`` line and the last lines it printed."""
    import numpy as np
    import resource
    import time
    t0 = time.time()
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=work)
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=images, desc="RTL images", unit="img", file=sys.stderr)
    lines = []
    for line in proc.stdout:
        if line.startswith("image "):
            if bar is not None:
                bar.update(1)
        else:
            lines.append(line)
    err = proc.stderr.read()
    proc.wait()
    if bar is not None:
        bar.close()
    wall = time.time() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
    if proc.returncode != 0:
        rtl_said = [ln.strip() for ln in lines if ln.startswith("ERROR")][:1]
        raise SimError(f"simulation failed{where(lines) if where else ''}: " + " | ".join(
            rtl_said + (err or "".join(lines)).strip().splitlines()[-4:]))
    out = np.fromfile(os.path.join(work, "out.bin"), dtype=np.int8)
    if out.size != images * logits:
        raise SimError(f"the simulator wrote {out.size} logits, expected {images * logits}")
    timing = np.loadtxt(os.path.join(work, "timing.txt"), dtype=np.int64, ndmin=2)
    return lines, out.reshape(images, logits), timing, wall, cpu


def count_instances(top: str, rtl: Sequence[str], params: Dict[str, object],
                    modules: Sequence[str] = ("mul8",)) -> Dict[str, int]:
    """How many instances of each module in ``modules`` the design ``top`` with ``params``
    holds once elaborated (generate loops unrolled): read from the instance tree of
    ``verilator --xml-only``, not computed from the parameters. (Remembered per source
    contents, top, parameters and modules for the life of the process.)"""
    key = cache_key(top, list(rtl), params, list(modules))
    if key not in _INSTANCES:
        _INSTANCES[key] = _count_instances(top, rtl, params, modules)
    return dict(_INSTANCES[key])


_INSTANCES: Dict[str, Dict[str, int]] = {}


def _count_instances(top, rtl, params, modules) -> Dict[str, int]:
    import xml.etree.ElementTree as ET
    tmp = tempfile.mkdtemp(prefix="xml_")
    try:
        cmd = [verilator(), "--xml-only", "--top-module", top, "--Mdir", tmp,
               *[f"-G{k}={v}" for k, v in sorted(params.items())], *rtl]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=HERE)
        xml = os.path.join(tmp, f"V{top}.xml")
        if proc.returncode != 0 or not os.path.isfile(xml):
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-4:]
            raise SimError(f"verilator --xml-only of {top} failed: " + " | ".join(tail))
        cells = ET.parse(xml).getroot().iter("cell")
        names = [c.get("submodname", "") for c in cells]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    # A parameterised module is renamed <name>__<suffix>; mul8 has no parameters.
    return {m: sum(1 for n in names if n == m or n.startswith(m + "__")) for m in modules}


def build(features: int, addr_bits: int, build_root: str | None = None, log=None) -> str:
    """Build (or reuse) the lerp_layer simulator for (F, M); returns its executable."""
    check_addr_bits(addr_bits)
    if features < 1:
        raise SimError("--features must be >= 1")
    return build_model("lerp_layer", RTL, TB, {"F": features, "M": addr_bits},
                       build_root=build_root, log=log)


def simulate(tables_hex: str, inputs_hex: str, features: int, addr_bits: int, out_hex: str,
             bubbles: int = 0, seed: int = 1, build_root: str | None = None, log=None) -> dict:
    """Run the RTL on ``inputs_hex``; returns the summary (cycles, elements, ...)."""
    n_tab = read_hex(tables_hex).size
    if n_tab != features * entries(addr_bits):
        raise SimError(f"{tables_hex} has {n_tab} entries, expected F * (2^M + 1) = "
                       f"{features} * {entries(addr_bits)} = {features * entries(addr_bits)}")
    read_hex(inputs_hex)  # validates the format
    exe = build(features, addr_bits, build_root, log)
    proc = subprocess.run([exe, f"+tables={os.path.abspath(tables_hex)}", os.path.abspath(inputs_hex),
                           os.path.abspath(out_hex), str(bubbles), str(seed)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise SimError(f"simulation failed: {' | '.join((proc.stderr or proc.stdout).strip().splitlines())}")
    m = re.search(r"cycles=(\d+) elements=(\d+) elements_per_cycle=([\d.]+) latency=(\d+)", proc.stdout)
    if not m:
        raise SimError(f"unexpected simulator output: {proc.stdout.strip()}")
    return dict(cycles=int(m.group(1)), elements=int(m.group(2)),
                elements_per_cycle=float(m.group(3)), latency=int(m.group(4)))


def main(argv: Optional[List[str]] = None) -> int:
    from errors import report
    prog = "python -m fpga.sim"
    p = argparse.ArgumentParser(prog=prog, description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tables", required=True, help="$readmemh file, F * (2^M + 1) bytes")
    p.add_argument("--inputs", required=True, help="hex file of input codes (stream order)")
    p.add_argument("--features", "-F", type=int, required=True)
    p.add_argument("--addr-bits", "-M", type=int, default=6)
    p.add_argument("--out", required=True, help="hex file to write the outputs to")
    p.add_argument("--bubbles", type=int, default=0, help="percent of idle input cycles (0)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--build-dir", default=None, help="model cache folder (default fpga/build)")
    p.add_argument("--check", action="store_true", help="also compare with the lerp8 reference")
    args = p.parse_args(argv)
    try:
        for path in (args.tables, args.inputs):
            if not os.path.isfile(path):
                raise SimError(f"file not found: {os.path.abspath(path)}")
        r = simulate(args.tables, args.inputs, args.features, args.addr_bits, args.out,
                     args.bubbles, args.seed, build_root=args.build_dir,
                     log=lambda s: print(s, file=sys.stderr))
    except UserError as exc:
        return report(prog, exc)
    except ValueError as exc:
        return report(prog, SimError(str(exc)))
    print(f"{r['elements']} elements in {r['cycles']} cycles: {r['elements_per_cycle']:.4f} "
          f"elements/cycle (latency {r['latency']} cycles) -> {args.out}")
    if args.check:
        from .lerp8 import lerp8_stream
        tables = read_hex(args.tables).reshape(args.features, entries(args.addr_bits))
        want = lerp8_stream(read_hex(args.inputs), tables, args.addr_bits)
        got = read_hex(args.out)
        bad = int((want != got).sum())
        print(f"lerp8 reference: {bad} mismatches of {got.size}")
        return 1 if bad else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
