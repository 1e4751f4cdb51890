"""Run the whole INT8 ResMLP as streaming RTL under Verilator and check it bit for bit.

  python -m fpga.sim_resmlp --params D/quant_params.npz --samples D/quant_samples.npz --images N
      [--lanes 2] [--stall 0.3] [--hold 50000] [--random-reset]

Builds (once per configuration; cached under fpga/build/, keyed on the RTL, the testbench,
the parameters P, C, H, activation, M, depth, tokens, classes, lanes, the Verilator and
compiler versions and the flags) a Verilator model of ``rtl/resmlp_axis.v`` (resmlp_top with
AXI4-Stream ports; the sources are listed in ``rtl/resmlp.f``), writes the parameters as ``$readmemh`` files into a private
temporary folder (``fpga.hexdump``; the simulator reads them at run time through
``+hexdir=``, nothing is compiled in), streams N images back to back, compares every image's
logits with the integer model (``fpga.int_resmlp.forward``) and prints a summary.

The testbench drives the end-of-image marker (in_last) and checks, on every clock, that no
stage raises its error flag (a marker that disagrees with the stage's own count, a write
into a full FIFO) and that out_last closes every image. ``--stall P`` holds the input's
valid and the output's ready low with probability P on each clock; ``--hold L`` also holds
the output's ready low in every second window of L clocks (back-pressure that reaches the
input); ``--random-reset`` gives every register and memory a random power-up
value (Verilator ``+verilator+rand+reset+2``), so a missing reset shows.

The LAST line is one JSON object: images, mismatches (images whose logits differ anywhere),
mismatched_logits, ii_cycles (median clocks between the last logits of consecutive images
over the second half of the run: the measured steady-state initiation interval),
latency_cycles (first code of image 0 taken to its last logit out, empty pipeline),
multipliers (mul8 instances of the elaborated design, counted by Verilator),
max_in_refused (the longest run of clocks in which the input was offered and refused),
fps_at_200mhz, rtl_accuracy (against the labels), sim_images_per_s (wall clock),
sim_images_per_cpu_s, the stall settings and the configuration.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from typing import Dict, List, Optional

import numpy as np

from errors import UserError, report

from .hexdump import write_hex_files
from .sim import (SimError, add_dump_args, add_run_args, build_model, count_instances,
                  load_dump, rtl_sources, run_testbench)

RTL = rtl_sources("resmlp")          # relative to fpga/
TB = "tb/tb_resmlp.cpp"
ACT_CODE = {"base": 0, "psa": 1}
CLOCK_HZ = 200e6


def rtl_params(meta: dict, lanes: int = 1) -> Dict[str, int]:
    """The Verilog parameters of resmlp_top for a model's meta and the lanes of lin1."""
    if meta["act"] not in ACT_CODE:
        raise SimError(f"act {meta['act']!r}: the RTL implements base (ReLU) and psa (LERP-PSA)")
    depth = int(meta["depth"])
    if not 1 <= depth <= 30:
        raise SimError(f"depth {depth}: the testbench reads one error bit per stage, 1..30 blocks")
    H, C = int(meta["hidden"]), int(meta["channels"])
    if lanes < 1 or H % lanes:
        raise SimError(f"--lanes {lanes} must divide the hidden width {H}")
    if C % 8:
        raise SimError(f"channels {C}: the head is folded onto 8 multipliers, C must be a multiple of 8")
    return {"P": int(meta["patch_values"]), "C": C, "H": H,
            "ACT": ACT_CODE[meta["act"]], "M": int(meta["lut_addr_bits"]), "DEPTH": depth,
            "T": int(meta["tokens"]), "K": int(meta["num_classes"]), "LANES": int(lanes)}


def build(meta: dict, lanes: int = 1, build_root: Optional[str] = None, log=None) -> str:
    return build_model("resmlp_axis", RTL, TB, rtl_params(meta, lanes), build_root=build_root,
                       log=log)


def multipliers(meta: dict, lanes: int = 1) -> int:
    """8 x 8 multipliers (mul8 instances) of the elaborated resmlp_top for this model."""
    return count_instances("resmlp_axis", RTL, rtl_params(meta, lanes), ("mul8",))["mul8"]


def stage_names(depth: int) -> List[str]:
    """Name of each bit of resmlp_top's err port."""
    names = ["embed"]
    for i in range(depth):
        names += [f"blocks.{i}.tm", f"blocks.{i}.mlp"]
    return names + ["mean pool", "head"]


def steady_ii(last_out: np.ndarray) -> Optional[float]:
    """Median interval between consecutive images' last outputs over the second half."""
    if last_out.size < 3:
        return None
    d = np.diff(last_out.astype(np.int64))
    return float(np.median(d[d.size // 2:]))


def run(params: Dict[str, np.ndarray], meta: dict, x: np.ndarray, in_stall: float = 0.0,
        out_stall: float = 0.0, hold: int = 0, random_reset: bool = False, lanes: int = 1,
        seed: int = 1, drop: Optional[int] = None, build_root: Optional[str] = None, log=None,
        progress: bool = False) -> dict:
    """Stream the images ``x`` (N, T, P) int8 through the RTL; return the logits (N, K), the
    per-image timing (first_in, last_in, last_out) and the wall time of the simulation.
    ``in_stall`` / ``out_stall``: probability of holding the input's valid / the output's
    ready low on a clock; ``hold``: also hold the output's ready low in every second window of
    that many clocks; ``random_reset``: random power-up values; ``drop``: leave
    out that input code (a miscounted stream, for the end-of-image checks)."""
    exe = build(meta, lanes, build_root, log)
    x = np.ascontiguousarray(np.asarray(x, dtype=np.int8))
    n, K = x.shape[0], int(meta["num_classes"])
    work = tempfile.mkdtemp(prefix="sim_resmlp_")   # private to this run
    try:
        write_hex_files(params, meta, os.path.join(work, "hex"), lanes=lanes)
        x.tofile(os.path.join(work, "in.bin"))
        cmd = [exe, f"+hexdir={os.path.join(work, 'hex')}", f"in={os.path.join(work, 'in.bin')}",
               f"out={os.path.join(work, 'out.bin')}", f"timing={os.path.join(work, 'timing.txt')}",
               f"images={n}", f"in_per_image={x.shape[1] * x.shape[2]}", f"out_per_image={K}",
               f"in_stall={in_stall}", f"out_stall={out_stall}", f"hold={hold}", f"seed={seed}"]
        if drop is not None:
            cmd.append(f"drop={drop}")
        if random_reset:
            cmd += ["+verilator+rand+reset+2", f"+verilator+seed+{seed}"]

        def where(lines):
            stages = [int(ln.rsplit("=", 1)[1]) for ln in lines if " err stage=" in ln]
            return f" (stage {stage_names(int(meta['depth']))[stages[-1]]})" if stages else ""

        lines, logits, timing, wall, cpu = run_testbench(cmd, work, n, K, progress, where)
        refused = None
        for line in lines:
            if line.startswith("cycles=") and "max_in_refused=" in line:
                refused = int(line.rsplit("max_in_refused=", 1)[1])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {"logits": logits, "timing": timing, "wall_s": wall, "cpu_s": cpu,
            "max_in_refused": refused}


def compare(params, meta, x, labels, sim: dict, lanes: int = 1, settings: Optional[dict] = None) -> dict:
    """Compare the RTL logits with the integer model; the summary dict (the JSON line)."""
    from .int_resmlp import forward
    want = forward(params, meta, x)
    got = sim["logits"]
    bad_img = ~(got == want).all(axis=1)
    timing = sim["timing"]
    ii = steady_ii(timing[:, 2])
    latency = int(timing[0, 2] - timing[0, 0] + 1)
    out = {
        "images": int(x.shape[0]),
        "mismatches": int(bad_img.sum()),
        "mismatched_logits": int((got != want).sum()),
        "ii_cycles": ii,
        "latency_cycles": latency,
        "multipliers": multipliers(meta, lanes),
        "fps_at_200mhz": (CLOCK_HZ / ii) if ii else None,
        "total_cycles": int(timing[-1, 2]),
        "max_in_refused": sim.get("max_in_refused"),
        "rtl_accuracy": float((got.argmax(1) == labels).mean()) if labels is not None else None,
        "sim_images_per_s": float(x.shape[0] / sim["wall_s"]) if sim["wall_s"] > 0 else None,
        "sim_images_per_cpu_s": float(x.shape[0] / sim["cpu_s"]) if sim.get("cpu_s") else None,
        "stall": dict(settings or {}),
        "config": {"act": meta["act"], "hidden": int(meta["hidden"]), **rtl_params(meta, lanes)},
    }
    if bad_img.any():
        out["first_mismatch"] = int(np.flatnonzero(bad_img)[0])
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m fpga.sim_resmlp", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_dump_args(p)
    p.add_argument("--lanes", type=int, default=1,
                   help="output lanes of lin1 (input lanes of lin2); --lanes 2 balances h = 2 (1)")
    p.add_argument("--stall", type=float, default=0.0,
                   help="probability of a stall on each clock, on the input's valid and on the "
                        "output's ready (0)")
    p.add_argument("--hold", type=int, default=0,
                   help="also hold the output's ready low in every second window of this many "
                        "clocks (0: off)")
    add_run_args(p, "the stall pattern and the random power-up values")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    prog = "python -m fpga.sim_resmlp"
    args = build_parser().parse_args(argv)
    try:
        if not 0 <= args.stall < 1:
            raise SimError(f"--stall must be a probability in [0, 1), got {args.stall}")
        if args.hold < 0:
            raise SimError(f"--hold must be >= 0 clocks, got {args.hold}")
        params, meta, x, labels = load_dump(args)
        rtl_params(meta, args.lanes)          # bad --lanes: one line before any build
        settings = {"stall": args.stall, "hold": args.hold, "random_reset": args.random_reset,
                    "seed": args.seed}
        sim = run(params, meta, x, in_stall=args.stall, out_stall=args.stall, hold=args.hold,
                  random_reset=args.random_reset, lanes=args.lanes, seed=args.seed,
                  build_root=args.build_dir, log=lambda s: print(s, file=sys.stderr),
                  progress=not args.disable_tqdm)
        res = compare(params, meta, x, labels, sim, args.lanes, settings)
    except UserError as exc:
        return report(prog, exc)
    c = res["config"]
    print(f"RTL {meta['act']} P={c['P']} C={c['C']} H={c['H']} depth={c['DEPTH']} "
          f"lanes={c['LANES']}: {res['images']} images, {res['mismatches']} with logits differing "
          f"from the integer model")
    if res["ii_cycles"]:
        print(f"initiation interval {res['ii_cycles']:.1f} cycles/image "
              f"({res['fps_at_200mhz']:.0f} images/s at 200 MHz), latency {res['latency_cycles']} "
              f"cycles, {res['multipliers']} 8x8 multipliers")
    print(f"RTL accuracy on these images {100 * res['rtl_accuracy']:.2f} %; Verilator "
          f"{res['sim_images_per_s']:.1f} images/s ({res['sim_images_per_cpu_s'] or 0:.1f} per CPU second)")
    print(json.dumps(res))
    return 1 if res["mismatches"] else 0


if __name__ == "__main__":
    sys.exit(main())
