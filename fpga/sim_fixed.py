"""Run the fixed-SIMD INT8 ResMLP engine (rtl/simd_axi.v) under Verilator, bit-exact check.

  python -m fpga.sim_fixed --params D/quant_params.npz --samples D/quant_samples.npz --images N
      [--tile 16] [--port-bytes 16] [--burst 16] [--mem-latency 16] [--mem-stall 0.3]
      [--mem-jitter 8] [--out-stall 0.3] [--random-reset] [--seed S]

The engine (simd_axi: simd_top behind an AXI4-Lite register block, an AXI4 read master and
AXI4-Stream image and logits ports) runs one image at a time: software (the testbench)
writes the settings and the stream addresses into the registers and starts it, streams the
image in, takes the logits and reads STATUS and CYCLES; the engine reads every weight and
parameter through its AXI4 read master (INCR bursts of up to ``--burst`` beats of
``--port-bytes`` bytes) from a memory model whose first beat comes ``--mem-latency`` clocks
after the address at the earliest, plus a random 0 .. ``--mem-jitter`` clocks per burst, with
ARREADY low and RVALID held back on each clock with probability ``--mem-stall`` (seeded by
``--seed``). The model checks every burst (INCR, full beats, no longer than ``--burst``, no
4 KB boundary crossed). The engine computes the whole integer ResMLP on a ``--tile`` x
``--tile`` array of int8 multipliers. This command lays the model out in a memory image
(``memory_image``: the weight stream and the parameter stream in the order the engine uses
them, then the images), builds the Verilator model (cached under fpga/build/, keyed on the
sources in ``rtl/simd.f``, the testbench, the parameters and the tool versions; one build
serves every model up to ``--hmax`` hidden units), runs the images through it, compares every
image's logits with the integer model (``fpga.int_resmlp.forward``) and prints the latency.

The LAST line is one JSON object: images, mismatches (images whose logits differ anywhere),
latency_cycles (the CYCLES register: clocks from the start to the last logit, the median over
the images), latency_min / latency_max, tile, port_bytes, burst, mem_latency, mem_stall,
mem_jitter, bursts / beats / max_burst / page_cuts (the AR bursts the memory saw, their
beats, the longest, and how many were cut short at a 4 KB boundary),
images_per_s_at_200mhz (one image at a time: 200 MHz / latency), multipliers (mul8 instances
of the elaborated design, counted by Verilator), rtl_accuracy, sim_clocks_per_s,
sim_images_per_s and the configuration. Exit status 1 on any mismatch, 2 (one line) on bad
input or when the engine reports an error bit in STATUS.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from typing import Dict, List, Optional, Tuple

import numpy as np

from errors import UserError, report

from .sim import (SimError, add_dump_args, add_run_args, build_model, count_instances,
                  load_dump, rtl_sources, run_testbench)

RTL = rtl_sources("simd")            # relative to fpga/
TOP = "simd_axi"
TB = "tb/tb_simd.cpp"
CLOCK_HZ = 200e6
ALIGN = 64                           # every region starts on a 64-byte boundary (>= any port)
ACT_CODE = {"base": 0, "psa": 1}


# --- the memory image -------------------------------------------------------------------------

def _words(a: np.ndarray, tw: int) -> np.ndarray:
    """A vector as words of ``tw`` bytes (zero padded): (ceil(n / tw), tw) int8."""
    a = np.asarray(a, np.int64).reshape(-1)
    out = np.zeros(-(-a.size // tw) * tw, np.int64)
    out[:a.size] = a
    return out.reshape(-1, tw)


def _tiles(W: np.ndarray, tw: int) -> np.ndarray:
    """The weight tiles of a channel Linear W (O, I) in the engine's pass order: for each
    output tile o, for each input chunk k, the tw rows W[o tw + j, k tw : (k + 1) tw]."""
    O, I = W.shape
    no, nk = -(-O // tw), -(-I // tw)
    Wp = np.zeros((no * tw, nk * tw), np.int64)
    Wp[:O, :I] = W
    return Wp.reshape(no, tw, nk, tw).transpose(0, 2, 1, 3).reshape(-1, tw)


def _tables(lut: np.ndarray, tw: int) -> np.ndarray:
    """LERP tables (F, E) as words: word f_loc * E + e holds entry e of features
    f_loc * tw + j in byte j (lane j's RAM holds the tables of the features j mod tw)."""
    F, E = lut.shape
    return np.asarray(lut, np.int64).reshape(F // tw, tw, E).transpose(0, 2, 1).reshape(-1, tw)


def check_shape(meta: dict, tw: int, pb: int, hmax: int) -> None:
    T, C, H = int(meta["tokens"]), int(meta["channels"]), int(meta["hidden"])
    P = int(meta["patch_values"])
    for v, name in ((tw, "--tile"), (pb, "--port-bytes")):
        if v < 2 or v & (v - 1):
            raise SimError(f"{name} must be a power of two >= 2, got {v}")
    if pb > 64:
        raise SimError(f"--port-bytes {pb}: the memory image is aligned for ports up to 64 bytes")
    if T % (2 * tw) or C % tw or H % tw:
        raise SimError(f"--tile {tw} must divide channels {C} and hidden {H}, and 2 x tile the "
                       f"tokens {T}")
    if not H <= hmax or hmax % tw:
        raise SimError(f"--hmax {hmax} must be a multiple of --tile {tw} and at least hidden {H}")
    if (T * (-(-P // tw)) * tw) % pb:
        raise SimError(f"an image of {T} x {-(-P // tw)} words of {tw} bytes is not a whole "
                       f"number of {pb}-byte beats")


def memory_image(params: Dict[str, np.ndarray], meta: dict, x: np.ndarray, tw: int,
                 pb: int) -> Tuple[np.ndarray, dict]:
    """The external memory of the engine for a model and the images ``x`` (N, T, P):
    (bytes (uint8), layout). The layout (addresses in beats of ``pb`` bytes): the weight
    stream at ``wbase`` (every channel Linear's tiles in pass order: embed, then lin1 and lin2
    of each block, then head), the parameter stream at ``pbase`` (per op, in op order:
    embed b, s; token mixer res, aff1, aff2 (w, b, s each), lin b, s and the token weights
    T x T; channel MLP res (w, b, s), [lut1], lin1 b, s, [lut2]; lin2 b, s; head b, s), and
    image n at ``img_base + n * img_stride``. Every vector is cut into words of ``tw`` bytes,
    every region starts on a 64-byte boundary. Must match rtl/simd_top.v."""
    T = int(meta["tokens"])
    depth, psa = int(meta["depth"]), meta["act"] == "psa"
    g = lambda k: np.asarray(params[k], np.int64)     # noqa: E731
    wstream = [_tiles(g("embed.W"), tw)]
    pstream = [_words(g("embed.b"), tw), _words(g("embed.s"), tw)]
    for i in range(depth):
        b = f"blocks.{i}"
        for a in ("res", "aff1", "aff2"):
            pstream += [_words(g(f"{b}.tm.{a}.{v}"), tw) for v in "wbs"]
        Wt = g(f"{b}.tm.lin.W")
        pstream += [_words(g(f"{b}.tm.lin.b"), tw), _words(g(f"{b}.tm.lin.s"), tw),
                    Wt.reshape(T, T // tw, tw).reshape(-1, tw)]
        pstream += [_words(g(f"{b}.mlp.res.{v}"), tw) for v in "wbs"]
        if psa:
            pstream.append(_tables(g(f"{b}.mlp.lut1"), tw))
        pstream += [_words(g(f"{b}.mlp.lin1.b"), tw), _words(g(f"{b}.mlp.lin1.s"), tw)]
        if psa:
            pstream.append(_tables(g(f"{b}.mlp.lut2"), tw))
        pstream += [_words(g(f"{b}.mlp.lin2.b"), tw), _words(g(f"{b}.mlp.lin2.s"), tw)]
        wstream += [_tiles(g(f"{b}.mlp.lin1.W"), tw), _tiles(g(f"{b}.mlp.lin2.W"), tw)]
    wstream.append(_tiles(g("head.W"), tw))
    pstream += [_words(g("head.b"), tw), _words(g("head.s"), tw)]
    x = np.asarray(x, np.int64)
    npc = -(-x.shape[2] // tw)
    imgs = np.zeros((x.shape[0], T, npc * tw), np.int64)
    imgs[:, :, :x.shape[2]] = x

    def region(words) -> np.ndarray:
        b = (np.concatenate(words).reshape(-1) & 0xFF).astype(np.uint8)
        return np.concatenate([b, np.zeros(-b.size % ALIGN, np.uint8)])

    w, p = region(wstream), region(pstream)
    img_bytes = T * npc * tw
    stride = img_bytes + (-img_bytes % ALIGN)
    images = np.zeros((x.shape[0], stride), np.uint8)
    images[:, :img_bytes] = (imgs.reshape(x.shape[0], -1) & 0xFF).astype(np.uint8)
    mem = np.concatenate([w, p, images.reshape(-1)])
    wlen = sum(a.shape[0] for a in wstream) * tw
    plen = sum(a.shape[0] for a in pstream) * tw
    layout = {"wbase": 0, "wbeats": -(-wlen // pb), "pbase": w.size // pb,
              "pbeats": -(-plen // pb), "img_base": (w.size + p.size) // pb,
              "img_stride": stride // pb, "weight_bytes": wlen, "param_bytes": plen,
              "image_bytes": img_bytes, "bytes": int(mem.size)}
    return mem, layout


# --- the Verilator model ----------------------------------------------------------------------

MFAW = 6                             # log2 of each reader's beat FIFO (simd_top's default)


def check_memory_flags(burst: int, mem_latency: int, mem_stall: float, mem_jitter: int) -> None:
    """The memory model's settings; a SimError (one line) names the bad flag."""
    if not 1 <= burst <= min(256, 1 << MFAW):
        raise SimError(f"--burst must be in 1..{min(256, 1 << MFAW)} beats, got {burst}")
    if mem_latency < 1:
        raise SimError(f"--mem-latency must be >= 1 clock, got {mem_latency}")
    if not 0 <= mem_stall < 1:
        raise SimError(f"--mem-stall must be a probability in [0, 1), got {mem_stall}")
    if mem_jitter < 0:
        raise SimError(f"--mem-jitter must be >= 0 clocks, got {mem_jitter}")


def rtl_params(meta: dict, tw: int, pb: int, hmax: int, lerp: int = 1,
               burst: int = 16) -> Dict[str, int]:
    if meta["act"] not in ACT_CODE:
        raise SimError(f"act {meta['act']!r}: the engine runs base (ReLU) and psa (LERP-PSA)")
    check_shape(meta, tw, pb, hmax)
    return {"TW": tw, "PB": pb, "T": int(meta["tokens"]), "C": int(meta["channels"]),
            "HMAX": hmax, "P": int(meta["patch_values"]), "K": int(meta["num_classes"]),
            "DEPTH": int(meta["depth"]), "LERP": lerp, "M": int(meta["lut_addr_bits"]),
            "BL": burst}


def build(meta: dict, tw: int, pb: int, hmax: int, build_root: Optional[str] = None, log=None,
          burst: int = 16) -> str:
    return build_model(TOP, RTL, TB, rtl_params(meta, tw, pb, hmax, burst=burst),
                       build_root=build_root, log=log)


def multipliers(meta: dict, tw: int, pb: int, hmax: int, lerp: int = 1) -> Dict[str, int]:
    """mul8 and lerp_unit instances of the elaborated engine."""
    return count_instances(TOP, RTL, rtl_params(meta, tw, pb, hmax, lerp),
                           ("mul8", "lerp_unit"))


def run(params: Dict[str, np.ndarray], meta: dict, x: np.ndarray, tw: int = 16, pb: int = 16,
        mem_latency: int = 16, out_stall: float = 0.0, hmax: Optional[int] = None,
        random_reset: bool = False, seed: int = 1, build_root: Optional[str] = None, log=None,
        progress: bool = False, burst: int = 16, mem_stall: float = 0.0, mem_jitter: int = 0,
        slverr_beat: int = -1, comb_check: int = 0) -> dict:
    """Run the images ``x`` (N, T, P) through the engine one at a time; return the logits
    (N, K), the clocks of each image, the memory model's burst counts and the wall / CPU time
    of the simulation. ``slverr_beat`` >= 0: the memory answers that beat (counted over the
    run) with SLVERR; the engine must then report ERR_RESP (a SimError naming it).
    ``comb_check`` N > 0: on every N-th clock the testbench inverts every input port between
    the clock edges and fails the run if an output port follows (a combinational path)."""
    check_memory_flags(burst, mem_latency, mem_stall, mem_jitter)
    hmax = hmax or max(192, int(meta["hidden"]))
    exe = build(meta, tw, pb, hmax, build_root, log, burst)
    x = np.ascontiguousarray(np.asarray(x, dtype=np.int8))
    n, K = x.shape[0], int(meta["num_classes"])
    mem, lay = memory_image(params, meta, x, tw, pb)
    work = tempfile.mkdtemp(prefix="sim_fixed_")
    try:
        mem.tofile(os.path.join(work, "mem.bin"))
        cmd = [exe, f"mem={os.path.join(work, 'mem.bin')}", f"out={os.path.join(work, 'out.bin')}",
               f"timing={os.path.join(work, 'timing.txt')}", f"images={n}",
               f"img_base={lay['img_base']}", f"img_stride={lay['img_stride']}",
               f"wbase={lay['wbase']}", f"wbeats={lay['wbeats']}", f"pbase={lay['pbase']}",
               f"pbeats={lay['pbeats']}", f"h={int(meta['hidden'])}", f"act={ACT_CODE[meta['act']]}",
               f"k={K}", f"pbytes={pb}", f"tw={tw}", f"burst={burst}",
               f"img_words={lay['image_bytes'] // tw}", f"latency={mem_latency}",
               f"jitter={mem_jitter}", f"mem_stall={mem_stall}", f"out_stall={out_stall}",
               f"slverr_beat={slverr_beat}", f"comb_check={comb_check}", f"seed={seed}"]
        if random_reset:
            cmd += ["+verilator+rand+reset+2", f"+verilator+seed+{seed}"]
        lines, logits, timing, wall, cpu = run_testbench(cmd, work, n, K, progress)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    mem_stats = {}
    for line in lines:
        if line.startswith("bursts="):
            mem_stats = {k: int(v) for k, v in (f.split("=") for f in line.split())}
    if set(mem_stats) != {"bursts", "beats", "max_len", "page_cuts"}:
        raise SimError("the testbench printed no burst counts (bursts=... beats=... max_len=... "
                       "page_cuts=...)")
    return {"logits": logits, "timing": timing, "wall_s": wall, "cpu_s": cpu,
            "layout": lay, "hmax": hmax, "memory": mem_stats}


def compare(params, meta, x, labels, sim: dict, tw: int, pb: int, mem_latency: int,
            burst: int = 16, mem_stall: float = 0.0, mem_jitter: int = 0) -> dict:
    """Compare the RTL logits with the integer model; the summary dict (the JSON line)."""
    from .int_resmlp import forward
    want = forward(params, meta, x)
    got = sim["logits"]
    bad = ~(got == want).all(axis=1)
    lat = sim["timing"][:, 1] - sim["timing"][:, 0]
    med = float(np.median(lat))
    clocks = int(sim["timing"][-1, 1])
    out = {
        "images": int(x.shape[0]),
        "mismatches": int(bad.sum()),
        "latency_cycles": med,
        "latency_min": int(lat.min()),
        "latency_max": int(lat.max()),
        "tile": tw,
        "port_bytes": pb,
        "burst": burst,
        "mem_latency": mem_latency,
        "mem_stall": mem_stall,
        "mem_jitter": mem_jitter,
        "bursts": sim["memory"]["bursts"],
        "beats": sim["memory"]["beats"],
        "max_burst": sim["memory"]["max_len"],
        "page_cuts": sim["memory"]["page_cuts"],
        "images_per_s_at_200mhz": CLOCK_HZ / med,
        "multipliers": multipliers(meta, tw, pb, sim["hmax"])["mul8"],
        "rtl_accuracy": float((got.argmax(1) == labels).mean()) if labels is not None else None,
        "sim_clocks_per_s": clocks / sim["wall_s"] if sim["wall_s"] > 0 else None,
        "sim_images_per_s": x.shape[0] / sim["wall_s"] if sim["wall_s"] > 0 else None,
        "sim_images_per_cpu_s": x.shape[0] / sim["cpu_s"] if sim.get("cpu_s") else None,
        "weight_bytes": sim["layout"]["weight_bytes"],
        "param_bytes": sim["layout"]["param_bytes"],
        "config": {"act": meta["act"], "hidden": int(meta["hidden"]),
                   **rtl_params(meta, tw, pb, sim["hmax"], burst=burst)},
    }
    if bad.any():
        out["first_mismatch"] = int(np.flatnonzero(bad)[0])
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m fpga.sim_fixed", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_dump_args(p)
    p.add_argument("--tile", type=int, default=16, help="tile width: a tile x tile multiplier array (16)")
    p.add_argument("--port-bytes", type=int, default=16, help="memory port width, bytes per clock (16)")
    p.add_argument("--burst", type=int, default=16,
                   help="longest AXI4 read burst in beats, an RTL parameter (16)")
    p.add_argument("--mem-latency", type=int, default=16,
                   help="clocks from a burst's address to its first beat, at least (16)")
    p.add_argument("--mem-stall", type=float, default=0.0,
                   help="probability of ARREADY low, and of RVALID held back before a beat, on a "
                        "clock (0)")
    p.add_argument("--mem-jitter", type=int, default=0,
                   help="random extra latency per burst, 0 .. J clocks (0)")
    p.add_argument("--hmax", type=int, default=None,
                   help="hidden width the engine's buffers hold (default max(192, hidden): one "
                        "build for the h = 1 and h = 2 models)")
    p.add_argument("--out-stall", type=float, default=0.0,
                   help="probability of holding the logits' ready low on a clock (0)")
    add_run_args(p, "the stalls, the memory latency jitter and the power-up values")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    prog = "python -m fpga.sim_fixed"
    args = build_parser().parse_args(argv)
    try:
        check_memory_flags(args.burst, args.mem_latency, args.mem_stall, args.mem_jitter)
        if not 0 <= args.out_stall < 1:
            raise SimError(f"--out-stall must be a probability in [0, 1), got {args.out_stall}")
        params, meta, x, labels = load_dump(args)
        hmax = args.hmax or max(192, int(meta["hidden"]))
        rtl_params(meta, args.tile, args.port_bytes, hmax)      # bad flags: one line, no build
        sim = run(params, meta, x, args.tile, args.port_bytes, args.mem_latency, args.out_stall,
                  hmax, args.random_reset, args.seed, args.build_dir,
                  log=lambda s: print(s, file=sys.stderr), progress=not args.disable_tqdm,
                  burst=args.burst, mem_stall=args.mem_stall, mem_jitter=args.mem_jitter)
        res = compare(params, meta, x, labels, sim, args.tile, args.port_bytes, args.mem_latency,
                      args.burst, args.mem_stall, args.mem_jitter)
    except UserError as exc:
        return report(prog, exc)
    print(f"fixed-SIMD engine {meta['act']} H={meta['hidden']} "
          f"tile {args.tile} port {args.port_bytes} B/clock, bursts of {args.burst}, memory "
          f"latency {args.mem_latency} + 0..{args.mem_jitter}, stall {args.mem_stall}: "
          f"{res['images']} images, {res['mismatches']} with logits differing from the integer model")
    print(f"latency {res['latency_cycles']:.0f} cycles/image (min {res['latency_min']}, max "
          f"{res['latency_max']}; {res['images_per_s_at_200mhz']:.0f} images/s at 200 MHz), "
          f"{res['multipliers']} 8x8 multipliers; {res['bursts']} bursts, {res['beats']} beats, "
          f"longest {res['max_burst']}, {res['page_cuts']} cut at a 4 KB boundary")
    acc = res["rtl_accuracy"]
    print(f"RTL accuracy on these images {100 * acc:.2f} %; Verilator "
          f"{res['sim_clocks_per_s']:.0f} clocks/s, {res['sim_images_per_s']:.2f} images/s")
    print(json.dumps(res))
    return 1 if res["mismatches"] else 0


if __name__ == "__main__":
    sys.exit(main())
