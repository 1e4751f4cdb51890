"""Run the whole INT8 ResMLP as streaming RTL under Verilator and check it bit for bit.

  python -m fpga.sim_resmlp --params D/quant_params.npz --samples D/quant_samples.npz --images N

Builds (once per configuration; cached under fpga/build/, keyed on the RTL, the testbench,
the parameters P, C, H, activation, M, depth, tokens, classes, the Verilator and compiler
versions and the flags) a Verilator model of ``rtl/resmlp_top.v``, writes the parameters as
``$readmemh`` files into a private temporary folder (``fpga.hexdump``; the simulator reads
them at run time through ``+hexdir=``, nothing is compiled in), streams N images back to
back, compares every image's logits with the integer model (``fpga.int_resmlp.forward``) and
prints a summary. The LAST line is one JSON object: images, mismatches (images whose logits
differ anywhere), mismatched_logits, ii_cycles (median clocks between the last logits of
consecutive images over the second half of the run: the measured steady-state initiation
interval), latency_cycles (first code of image 0 taken to its last logit out, empty
pipeline), fps_at_200mhz, rtl_accuracy (against the labels), sim_images_per_s (wall clock),
sim_images_per_cpu_s and the configuration.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional

import numpy as np

from errors import UserError, report

from .hexdump import write_hex_files
from .sim import SimError, build_model

RTL = ["rtl/resmlp_top.v", "rtl/token_mixer.v", "rtl/channel_mlp.v", "rtl/row_linear.v",
       "rtl/ew_stage.v", "rtl/mean_pool.v", "rtl/stream_fifo.v", "rtl/requant.v",
       "rtl/hex_rom.v", "rtl/lut_rom.v", "rtl/lerp_unit.v"]          # relative to fpga/
TB = "tb/tb_resmlp.cpp"
ACT_CODE = {"base": 0, "psa": 1}
CLOCK_HZ = 200e6


def rtl_params(meta: dict) -> Dict[str, int]:
    """The Verilog parameters of resmlp_top for a model's meta."""
    if meta["act"] not in ACT_CODE:
        raise SimError(f"act {meta['act']!r}: the RTL implements base (ReLU) and psa (LERP-PSA)")
    depth = int(meta["depth"])
    if not 1 <= depth <= 10:
        raise SimError(f"depth {depth}: the RTL supports 1..10 blocks")
    return {"P": int(meta["patch_values"]), "C": int(meta["channels"]), "H": int(meta["hidden"]),
            "ACT": ACT_CODE[meta["act"]], "M": int(meta["lut_addr_bits"]), "DEPTH": depth,
            "T": int(meta["tokens"]), "K": int(meta["num_classes"])}


def build(meta: dict, build_root: Optional[str] = None, log=None) -> str:
    return build_model("resmlp_top", RTL, TB, rtl_params(meta), build_root=build_root, log=log)


def steady_ii(last_out: np.ndarray) -> Optional[float]:
    """Median interval between consecutive images' last outputs over the second half."""
    if last_out.size < 3:
        return None
    d = np.diff(last_out.astype(np.int64))
    return float(np.median(d[d.size // 2:]))


def run(params: Dict[str, np.ndarray], meta: dict, x: np.ndarray, bubble: int = 0,
        stall: int = 0, seed: int = 1, build_root: Optional[str] = None, log=None,
        progress: bool = False) -> dict:
    """Stream the images ``x`` (N, T, P) int8 through the RTL; return the logits (N, K), the
    per-image timing (first_in, last_in, last_out) and the wall time of the simulation."""
    exe = build(meta, build_root, log)
    x = np.ascontiguousarray(np.asarray(x, dtype=np.int8))
    n, K = x.shape[0], int(meta["num_classes"])
    work = tempfile.mkdtemp(prefix="sim_resmlp_")   # private to this run
    try:
        write_hex_files(params, meta, os.path.join(work, "hex"))
        x.tofile(os.path.join(work, "in.bin"))
        cmd = [exe, f"+hexdir={os.path.join(work, 'hex')}", f"in={os.path.join(work, 'in.bin')}",
               f"out={os.path.join(work, 'out.bin')}", f"timing={os.path.join(work, 'timing.txt')}",
               f"images={n}", f"in_per_image={x.shape[1] * x.shape[2]}", f"out_per_image={K}",
               f"bubble={bubble}", f"stall={stall}", f"seed={seed}"]
        t0 = time.time()
        cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                cwd=work)
        bar = None
        if progress:
            from tqdm import tqdm
            bar = tqdm(total=n, desc="RTL images", unit="img", file=sys.stderr)
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
            raise SimError("simulation failed: " + " | ".join((err or "".join(lines)).strip().splitlines()[-4:]))
        logits = np.fromfile(os.path.join(work, "out.bin"), dtype=np.int8)
        if logits.size != n * K:
            raise SimError(f"the simulator wrote {logits.size} logits, expected {n * K}")
        timing = np.loadtxt(os.path.join(work, "timing.txt"), dtype=np.int64, ndmin=2)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {"logits": logits.reshape(n, K), "timing": timing, "wall_s": wall, "cpu_s": cpu}


def compare(params, meta, x, labels, sim: dict) -> dict:
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
        "fps_at_200mhz": (CLOCK_HZ / ii) if ii else None,
        "total_cycles": int(timing[-1, 2]),
        "rtl_accuracy": float((got.argmax(1) == labels).mean()) if labels is not None else None,
        "sim_images_per_s": float(x.shape[0] / sim["wall_s"]) if sim["wall_s"] > 0 else None,
        "sim_images_per_cpu_s": float(x.shape[0] / sim["cpu_s"]) if sim.get("cpu_s") else None,
        "config": {"act": meta["act"], "hidden": int(meta["hidden"]), **rtl_params(meta)},
    }
    if bad_img.any():
        out["first_mismatch"] = int(np.flatnonzero(bad_img)[0])
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m fpga.sim_resmlp", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--params", required=True, help="quant_params.npz (cifar10_quant.py --dump-params)")
    p.add_argument("--samples", required=True, help="quant_samples.npz: x (N, 64, P) codes, labels")
    p.add_argument("--images", type=int, default=None, help="first N images (default: all)")
    p.add_argument("--bubble", type=int, default=0, help="percent of clocks with no input offered (0)")
    p.add_argument("--stall", type=int, default=0, help="percent of clocks the output is not taken (0)")
    p.add_argument("--seed", type=int, default=1, help="seed of the bubble/stall pattern")
    p.add_argument("--build-dir", default=None, help="model cache folder (default fpga/build)")
    p.add_argument("--disable-tqdm", action="store_true", help="no progress bar")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    prog = "python -m fpga.sim_resmlp"
    args = build_parser().parse_args(argv)
    try:
        from .int_resmlp import load_params, load_samples
        for v, name in ((args.bubble, "--bubble"), (args.stall, "--stall")):
            if not 0 <= v < 100:
                raise SimError(f"{name} must be a percentage in 0..99, got {v}")
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
        sim = run(params, meta, x, args.bubble, args.stall, args.seed, args.build_dir,
                  log=lambda s: print(s, file=sys.stderr), progress=not args.disable_tqdm)
        res = compare(params, meta, x, labels, sim)
    except UserError as exc:
        return report(prog, exc)
    c = res["config"]
    print(f"RTL {meta['act']} P={c['P']} C={c['C']} H={c['H']} depth={c['DEPTH']}: "
          f"{res['images']} images, {res['mismatches']} with logits differing from the integer model")
    if res["ii_cycles"]:
        print(f"initiation interval {res['ii_cycles']:.0f} cycles/image "
              f"({res['fps_at_200mhz']:.0f} images/s at 200 MHz), latency {res['latency_cycles']} cycles")
    print(f"RTL accuracy on these images {100 * res['rtl_accuracy']:.2f} %; Verilator "
          f"{res['sim_images_per_s']:.1f} images/s ({res['sim_images_per_cpu_s'] or 0:.1f} per CPU second)")
    print(json.dumps(res))
    return 1 if res["mismatches"] else 0


if __name__ == "__main__":
    sys.exit(main())
