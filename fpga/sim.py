"""Simulate ``rtl/lerp_layer.v`` under Verilator on hex files.

  python -m fpga.sim --tables T.hex --inputs X.hex --features F --addr-bits M --out Y.hex

Builds (once per F, M and RTL/testbench version, cached under fpga/build/) a
Verilator model with a C++ testbench, streams the inputs (element n belongs
to feature n mod F), writes the outputs in the same hex format and prints
cycles and elements per cycle.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys

from .lerp8 import check_addr_bits, entries, read_hex

HERE = os.path.dirname(os.path.abspath(__file__))
RTL = [os.path.join(HERE, "rtl", "lerp_unit.v"), os.path.join(HERE, "rtl", "lerp_layer.v")]
TB = os.path.join(HERE, "tb", "tb_lerp_layer.cpp")
INSTALL_HINT = "install it with: sudo apt-get install -y verilator"


class SimError(RuntimeError):
    pass


def verilator() -> str:
    exe = shutil.which("verilator")
    if not exe:
        raise SimError(f"verilator not found; {INSTALL_HINT}")
    return exe


def build(features: int, addr_bits: int, build_root: str | None = None, log=None) -> str:
    """Build (or reuse) the simulator for (F, M); returns its folder. The ROM
    is read at run time from ``<folder>/tables.hex``."""
    check_addr_bits(addr_bits)
    if features < 1:
        raise SimError("--features must be >= 1")
    h = hashlib.sha1()
    for p in RTL + [TB]:
        with open(p, "rb") as f:
            h.update(f.read())
    root = build_root or os.path.join(HERE, "build")
    folder = os.path.join(root, f"sim_F{features}_M{addr_bits}_{h.hexdigest()[:10]}")
    exe = os.path.join(folder, "obj_dir", "Vlerp_layer")
    if os.path.exists(exe):
        return folder
    os.makedirs(folder, exist_ok=True)
    table_path = os.path.join(folder, "tables.hex")
    cmd = [verilator(), "--cc", "--exe", "--build", "-O3", "-Wall", "-Wno-fatal",
           "--top-module", "lerp_layer", f"-GF={features}", f"-GM={addr_bits}",
           f'-GTABLE_FILE="{table_path}"', "-j", str(os.cpu_count() or 2),
           "--Mdir", os.path.join(folder, "obj_dir"), *RTL, TB]
    if log:
        log(f"building the Verilator model for F={features}, M={addr_bits} in {folder}")
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0 or not os.path.exists(exe):
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise SimError("Verilator build failed:\n" + "\n".join(tail))
    return folder


def simulate(tables_hex: str, inputs_hex: str, features: int, addr_bits: int, out_hex: str,
             bubbles: int = 0, seed: int = 1, build_root: str | None = None, log=None) -> dict:
    """Run the RTL on ``inputs_hex``; returns the summary (cycles, elements, ...)."""
    n_tab = read_hex(tables_hex).size
    if n_tab != features * entries(addr_bits):
        raise SimError(f"{tables_hex} has {n_tab} entries, expected F * (2^M + 1) = "
                       f"{features} * {entries(addr_bits)} = {features * entries(addr_bits)}")
    read_hex(inputs_hex)  # validates the format
    folder = build(features, addr_bits, build_root, log)
    shutil.copyfile(tables_hex, os.path.join(folder, "tables.hex"))
    exe = os.path.join(folder, "obj_dir", "Vlerp_layer")
    proc = subprocess.run([exe, os.path.abspath(inputs_hex), os.path.abspath(out_hex), str(bubbles),
                           str(seed)], capture_output=True, text=True, cwd=folder)
    if proc.returncode != 0:
        raise SimError(f"simulation failed: {(proc.stderr or proc.stdout).strip()}")
    m = re.search(r"cycles=(\d+) elements=(\d+) elements_per_cycle=([\d.]+) latency=(\d+)", proc.stdout)
    if not m:
        raise SimError(f"unexpected simulator output: {proc.stdout.strip()}")
    return dict(cycles=int(m.group(1)), elements=int(m.group(2)),
                elements_per_cycle=float(m.group(3)), latency=int(m.group(4)))


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m fpga.sim", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tables", required=True, help="$readmemh file, F * (2^M + 1) bytes")
    p.add_argument("--inputs", required=True, help="hex file of input codes (stream order)")
    p.add_argument("--features", "-F", type=int, required=True)
    p.add_argument("--addr-bits", "-M", type=int, default=6)
    p.add_argument("--out", required=True, help="hex file to write the outputs to")
    p.add_argument("--bubbles", type=int, default=0, help="percent of idle input cycles (0)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--check", action="store_true", help="also compare with the lerp8 reference")
    args = p.parse_args(argv)
    try:
        for path in (args.tables, args.inputs):
            if not os.path.isfile(path):
                raise SimError(f"file not found: {os.path.abspath(path)}")
        r = simulate(args.tables, args.inputs, args.features, args.addr_bits, args.out,
                     args.bubbles, args.seed, log=lambda s: print(s, file=sys.stderr))
    except (SimError, ValueError) as exc:
        print(f"python -m fpga.sim: error: {exc}", file=sys.stderr)
        return 2
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
