"""Yosys figures of both INT8 ResMLP accelerators, stage by stage (``make -C fpga synth-resmlp``).

  python -m fpga.synth_resmlp --out fpga/build/synth_resmlp [--params quant_params.npz]
      [--stages a,b] [--flows generic,xilinx,ltp] [--rtl-rev REV] [--timeout S]

Resources (flows ``generic`` and ``xilinx``): each distinct part of the streaming pipeline
(``rtl/resmlp_top.v``: the embed Linear, one token mixer, the parts of one channel MLP for
each configuration, the mean pool, the folded head) and the fixed-SIMD engine
(``rtl/simd_top.v``, one run per model: buffers for its hidden width, LERP lanes only for
LERP-PSA) is synthesised on its own: the coarse part of Yosys' generic ``synth`` (word-level
cells) and ``synth_xilinx -family xcup`` (UltraScale+ LUT / FF / DSP48E2 / RAMB). A streaming
configuration's totals are embed + DEPTH x (token mixer + channel-MLP parts) + pool + head:
the blocks differ only in their ROM contents, and the channel MLP is the sum of its parts
(residual affine, [lut1], lin1, lin2) without the 8-bit saturating add that joins them.

Logic depth (flow ``ltp``): ``synth_xilinx -flatten`` and then Yosys ``ltp -noff`` on every
cell except the flip-flops (``t:FD* %d``), i.e. the longest register-to-register path in
cells: a DSP48E2 counts one, a LUT one, a CARRY4 one (4 bits of a carry chain), an I/O
buffer one. The ``ltp_*`` stages are small enough to map (few outputs, small buffers) and
keep the dot-product widths of the model; ``--rtl-rev REV`` takes the RTL from that git
revision instead of the working tree (the figures before a change; parameters the old
modules lack are left out).

The ROMs are filled from ``--params`` or, by default, from a random model of the same shape.
Yosys runs at low priority (``--nice``) with a time limit per run; each figure goes to
``<out>/<stage>.<flow>.json`` as soon as it is known (a timeout is recorded as such), and the
summary tables to ``<out>/summary.md`` and stdout.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional

from errors import UserError, report

from .hexdump import write_hex_files
from .sim import rtl_sources

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIGS = {"relu_h2": ("base", 192, 1), "relu_h2_lanes2": ("base", 192, 2),
           "relu_h1": ("base", 96, 1), "psa_h1": ("psa", 96, 1)}
FLOWS = ("generic", "xilinx", "ltp")


class SynthError(UserError):
    pass


def _s(name: str) -> str:
    return f'"{name}"'


def stages() -> Dict[str, tuple]:
    """stage name -> (module, parameters, hex folder or None, RTL listing)."""
    r = "resmlp"
    s = {
        # --- the streaming pipeline's parts (resources)
        "embed_p16": ("row_linear", {"I": 16, "O": 96, "ROWS": 64, "NAME": _s("embed")}, "relu_h1_p16", r),
        "embed_p48": ("row_linear", {"I": 48, "O": 96, "ROWS": 64, "NAME": _s("embed")}, "relu_h1_p48", r),
        "token_mixer": ("token_mixer", {"T": 64, "C": 96, "NAME": _s("blocks.0.tm")}, "relu_h1_p16", r),
        "mlp_res": ("ew_stage", {"F": 96, "ROWS": 64, "MODE": 1, "FAW": 10,
                                 "NAME": _s("blocks.0.mlp.res")}, "relu_h1_p16", r),
        "mlp_lut1": ("ew_stage", {"F": 96, "ROWS": 64, "MODE": 2, "NAME": _s("blocks.0.mlp.lut1")},
                     "psa_h1_p16", r),
        "lin1_relu_h2": ("row_linear", {"I": 96, "O": 192, "ROWS": 64, "ACT": 1,
                                        "NAME": _s("blocks.0.mlp.lin1")}, "relu_h2_p16", r),
        "lin1_relu_h2_lanes2": ("row_linear", {"I": 96, "O": 192, "LO": 2, "ROWS": 64, "ACT": 1,
                                               "NAME": _s("blocks.0.mlp.lin1")}, "relu_h2_p16", r),
        "lin1_relu_h1": ("row_linear", {"I": 96, "O": 96, "ROWS": 64, "ACT": 1,
                                        "NAME": _s("blocks.0.mlp.lin1")}, "relu_h1_p16", r),
        "lin1_psa_h1": ("row_linear", {"I": 96, "O": 96, "ROWS": 64, "ACT": 2,
                                       "NAME": _s("blocks.0.mlp.lin1"),
                                       "LUT_NAME": _s("blocks.0.mlp.lut2")}, "psa_h1_p16", r),
        "lin2_h2": ("row_linear", {"I": 192, "O": 96, "ROWS": 64, "NAME": _s("blocks.0.mlp.lin2")},
                    "relu_h2_p16", r),
        "lin2_h2_lanes2": ("row_linear", {"I": 192, "O": 96, "LI": 2, "ROWS": 64,
                                          "NAME": _s("blocks.0.mlp.lin2")}, "relu_h2_p16", r),
        "lin2_h1": ("row_linear", {"I": 96, "O": 96, "ROWS": 64, "NAME": _s("blocks.0.mlp.lin2")},
                    "relu_h1_p16", r),
        "mean_pool": ("mean_pool", {"T": 64, "C": 96}, None, r),
        "head": ("row_linear", {"I": 96, "O": 10, "FOLD": 12, "ROWS": 1, "NAME": _s("head")},
                 "relu_h1_p16", r),
        # --- the fixed-SIMD engine, one per model
        "simd_relu_h2": ("simd_top", {"HMAX": 192, "LERP": 0}, None, "simd"),
        "simd_relu_h1": ("simd_top", {"HMAX": 96, "LERP": 0}, None, "simd"),
        "simd_psa_h1": ("simd_top", {"HMAX": 96, "LERP": 1}, None, "simd"),
        # --- logic depth: small outputs and buffers, the model's dot-product widths
        "ltp_linear_i16": ("row_linear", {"I": 16, "O": 8, "ROWS": 64, "NAME": _s("ltp.i16")}, "ltp", r),
        "ltp_linear_i48": ("row_linear", {"I": 48, "O": 8, "ROWS": 64, "NAME": _s("ltp.i48")}, "ltp", r),
        "ltp_linear_i96": ("row_linear", {"I": 96, "O": 8, "ROWS": 64, "NAME": _s("ltp.i96")}, "ltp", r),
        "ltp_linear_i192": ("row_linear", {"I": 192, "O": 8, "ROWS": 64, "NAME": _s("ltp.i192")}, "ltp", r),
        "ltp_affine": ("ew_stage", {"F": 96, "ROWS": 64, "MODE": 1, "NAME": _s("ltp.aff")}, "ltp", r),
        "ltp_token_mixer": ("token_mixer", {"T": 64, "C": 4, "NAME": _s("ltp.tm")}, "ltp", r),
        "ltp_head": ("row_linear", {"I": 96, "O": 10, "FOLD": 12, "ROWS": 1, "NAME": _s("head")},
                     "relu_h1_p16", r),
        "ltp_simd_array": ("simd_array", {"TW": 16, "ROWS": 64}, None, "simd"),
    }
    return s


# name -> (stage, copies): a configuration of the streaming pipeline
def parts(cfg: str, P: int = 16, depth: int = 4) -> List[tuple]:
    act, hidden, lanes = CONFIGS[cfg]
    h = "h2" if hidden == 192 else "h1"
    ln = "_lanes2" if lanes == 2 else ""
    mlp = [("mlp_res", depth)]
    if act == "psa":
        mlp += [("mlp_lut1", depth), (f"lin1_psa_{h}", depth)]
    else:
        mlp += [(f"lin1_relu_{h}{ln}", depth)]
    mlp += [(f"lin2_{h}{ln}", depth)]
    return [(f"embed_p{P}", 1), ("token_mixer", depth), *mlp, ("mean_pool", 1), ("head", 1)]


def write_params(out: str, params_path: Optional[str]) -> None:
    """Hex folders of random models (or the given one, for its own configuration) and the
    small ltp tensors."""
    import numpy as np
    from .int_resmlp import load_params, random_params
    given = load_params(params_path) if params_path else None
    for act, hidden in (("base", 192), ("base", 96), ("psa", 96)):
        for P in (16, 48):
            params, meta = random_params(act, hidden, patch_values=P, seed=0)
            if given is not None:   # the real model fills the ROMs of its own configuration
                p2, m2 = given
                if m2["act"] == act and int(m2["hidden"]) == hidden and int(m2["patch_values"]) == P:
                    params, meta = p2, m2
            cfg = ("relu" if act == "base" else "psa") + ("_h2" if hidden == 192 else "_h1")
            write_hex_files(params, meta, os.path.join(out, f"hex_{cfg}_p{P}"), lanes=2)
    rng = np.random.default_rng(0)
    small = {}
    for I in (16, 48, 96, 192):
        small.update({f"ltp.i{I}.W": rng.integers(-128, 128, (8, I)), f"ltp.i{I}.b": rng.integers(-8, 9, 8),
                      f"ltp.i{I}.s": rng.integers(4, 12, 8)})
    for a in ("ltp.aff", "ltp.tm.res", "ltp.tm.aff1", "ltp.tm.aff2"):
        n = 96 if a == "ltp.aff" else 4
        small.update({f"{a}.w": rng.integers(-128, 128, n), f"{a}.b": rng.integers(-8, 9, n),
                      f"{a}.s": rng.integers(0, 8, n)})
    small.update({"ltp.tm.lin.W": rng.integers(-128, 128, (64, 64)), "ltp.tm.lin.b": rng.integers(-8, 9, 64),
                  "ltp.tm.lin.s": rng.integers(4, 12, 64)})
    write_hex_files(small, {}, os.path.join(out, "hex_ltp"))


STAT_CELL = re.compile(r"^\s+(\S+)\s+(\d+)\s*$")


def parse_stat(text: str) -> Dict[str, int]:
    """Cell counts of the last 'stat' report (top module or design total)."""
    block = text.split("=== design hierarchy ===")[-1]
    cells: Dict[str, int] = {}
    m = re.findall(r"Number of cells:\s+(\d+)", block)
    if m:
        cells["cells"] = int(m[-1])
    for line in block.split("Number of cells:")[-1].splitlines()[1:]:
        mm = STAT_CELL.match(line)
        if mm:
            cells[mm.group(1)] = int(mm.group(2))
        elif line.strip() and not line.startswith(" "):
            break
    return cells


LTP_HEAD = re.compile(r"Longest topological path in \S+ \(length=(\d+)\):")
LTP_STEP = re.compile(r"^\s+\d+: (\S+) \[\d+\](?: \(via (\S+)\))?")


def parse_ltp(text: str) -> Dict[str, object]:
    """Length of the longest path and what its cells are, read from ``ltp``'s report
    (by name: Yosys names carry-chain slices '...carry4', multipliers '$mul', LUTs '$abc')."""
    m = LTP_HEAD.search(text)
    if not m:
        raise SynthError("no 'Longest topological path' in the ltp report")
    kinds = {"carry": 0, "dsp": 0, "lut": 0, "io": 0, "other": 0}
    for line in text[m.end():].splitlines():
        s = LTP_STEP.match(line)
        if not s:
            continue
        via = s.group(2) or ""
        if not via:
            continue
        if "carry" in via:
            kinds["carry"] += 1
        elif "$mul" in via or "DSP" in via or "dsp" in via or "macc" in via:
            kinds["dsp"] += 1
        elif "$abc" in via or "$lut" in via:
            kinds["lut"] += 1
        elif "iopadmap" in via or "BUF" in via:
            kinds["io"] += 1
        else:
            kinds["other"] += 1
    return {"ltp": int(m.group(1)), **{f"ltp_{k}": v for k, v in kinds.items()}}


def module_params(src_dir: str, files: List[str], module: str) -> set:
    """The parameter names module ``module`` declares in these sources."""
    for f in files:
        with open(os.path.join(src_dir, f)) as fh:
            text = fh.read()
        m = re.search(rf"\bmodule\s+{module}\b(.*?)\)\s*\(", text, re.S)
        if m:
            return set(re.findall(r"parameter\s+(?:integer\s+)?(\w+)", m.group(1)))
    raise SynthError(f"module {module} not found in {src_dir}")


def run_yosys(module: str, params: dict, hexdir: Optional[str], flow: str, timeout: int,
              log_path: str, src_dir: str, files: List[str], nice: int = 10) -> Dict[str, object]:
    known = module_params(src_dir, files, module)
    sets = " ".join(f"-set {k} {v}" for k, v in params.items() if k in known)
    if hexdir and "HEXDIR" in known:
        sets += f' -set HEXDIR "{hexdir}"'
    paths = " ".join(os.path.join(src_dir, f) for f in files)
    chp = f"chparam {sets} {module}; " if sets else ""
    if flow == "generic":
        # Word-level generic cells (multipliers, adders, registers, memories): the coarse
        # part of Yosys' synth; gate-level mapping of ~1 000 multipliers is too slow here.
        script = f"read_verilog -defer {paths}; {chp}synth -top {module} -flatten -run begin:fine; stat -width"
    elif flow == "xilinx":
        script = f"read_verilog -defer {paths}; {chp}synth_xilinx -family xcup -top {module} -flatten; stat"
    else:
        script = (f"read_verilog -defer {paths}; {chp}synth_xilinx -family xcup -top {module} -flatten; "
                  f"tee -o {log_path}.ltp ltp -noff * t:FD* %d; stat")
    t0 = time.time()
    try:
        proc = subprocess.run(["nice", "-n", str(nice), "yosys", "-q", "-p",
                               f"{script}; tee -o {log_path} stat"],
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"timeout_s": timeout}
    if proc.returncode != 0:
        raise SynthError(f"yosys failed on {module} ({flow}): "
                         + " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:]))
    with open(log_path) as f:
        cells: Dict[str, object] = dict(parse_stat(f.read()))
    if flow == "ltp":
        with open(log_path + ".ltp") as f:
            cells.update(parse_ltp(f.read()))
    cells["yosys_s"] = round(time.time() - t0, 1)
    return cells


XILINX_GROUPS = {
    "LUT": lambda c: sum(v for k, v in c.items() if re.fullmatch(r"LUT\d", k)),
    "FF": lambda c: sum(v for k, v in c.items() if k in ("FDRE", "FDSE", "FDCE", "FDPE")),
    "DSP": lambda c: c.get("DSP48E2", 0),
    "BRAM36": lambda c: c.get("RAMB36E2", 0),
    "BRAM18": lambda c: c.get("RAMB18E2", 0),
    "LUTRAM": lambda c: sum(v for k, v in c.items() if k.startswith("RAM") and not k.startswith("RAMB")),
    "CARRY": lambda c: c.get("CARRY8", 0) + c.get("CARRY4", 0),
}
RES = ("LUT", "FF", "DSP", "BRAM36", "BRAM18", "LUTRAM")


def _ok(flows: dict, flow: str) -> bool:
    return flow in flows and "timeout_s" not in flows[flow]


def summarise(res: Dict[str, Dict[str, Dict[str, int]]], depth: int = 4) -> str:
    lines = ["| stage | generic cells | $macc/$mul | $mem | LUT | FF | DSP | BRAM36 | BRAM18 | LUTRAM | ltp | yosys s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, flows in res.items():
        g, x, lt = flows.get("generic", {}), flows.get("xilinx", {}), flows.get("ltp", {})
        row = [name, g.get("cells", "timeout" if "timeout_s" in g else "-"),
               sum(v for k, v in g.items() if k.startswith(("$mul", "$macc"))),
               sum(v for k, v in g.items() if k.startswith("$mem"))]
        row += [XILINX_GROUPS[k](x) if _ok(flows, "xilinx") else ("timeout" if "timeout_s" in x else "-")
                for k in RES]
        row.append(lt.get("ltp", "timeout" if "timeout_s" in lt else "-"))
        row.append(" / ".join(str(f.get("yosys_s", f.get("timeout_s", "-")))
                              for f in (g, x, lt) if f))
        lines.append("| " + " | ".join(str(v) for v in row) + " |")
    lines += ["", f"Streaming pipeline totals (embed + {depth} x (token mixer + channel-MLP parts) "
              "+ pool + head; P = 16):", "",
              "| configuration | " + " | ".join(RES) + " |", "|---" * (len(RES) + 1) + "|"]
    for cfg in CONFIGS:
        ps = parts(cfg, 16, depth)
        if all(p in res and _ok(res[p], "xilinx") for p, _ in ps):
            tot = [sum(n * XILINX_GROUPS[k](res[p]["xilinx"]) for p, n in ps) for k in RES]
            lines.append(f"| {cfg} | " + " | ".join(str(v) for v in tot) + " |")
        else:
            missing = [p for p, _ in ps if not (p in res and _ok(res[p], "xilinx"))]
            lines.append(f"| {cfg} | missing: {', '.join(missing)} |" + " |" * (len(RES) - 1))
    return "\n".join(lines) + "\n"


def main(argv: Optional[List[str]] = None) -> int:
    prog = "python -m fpga.synth_resmlp"
    p = argparse.ArgumentParser(prog=prog, description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=os.path.join(HERE, "build", "synth_resmlp"),
                   help="folder for the hex files, Yosys reports and summary.md")
    p.add_argument("--params", default=None, help="quant_params.npz to fill the ROMs (default random)")
    p.add_argument("--timeout", type=int, default=1200, help="seconds per Yosys run (1200)")
    p.add_argument("--stages", default=None, help="comma-separated subset of the stages")
    p.add_argument("--flows", default="generic,xilinx",
                   help="comma-separated: generic (word-level cells), xilinx (synth_xilinx), "
                        "ltp (synth_xilinx and the longest register-to-register path)")
    p.add_argument("--rtl-rev", default=None,
                   help="take fpga/rtl from this git revision (figures before a change); the "
                        "results go to <out>/<stage>.<flow>.<rev>.json")
    p.add_argument("--summary", action="store_true",
                   help="run nothing: print the tables of the figures already in --out")
    p.add_argument("--depth", type=int, default=4, help="blocks in the totals (4)")
    p.add_argument("--nice", type=int, default=10, help="niceness of the Yosys runs (10)")
    args = p.parse_args(argv)
    tmp = None
    try:
        todo = stages()
        names = args.stages.split(",") if args.stages else list(todo)
        if args.summary:
            names = []
        unknown = sorted(set(names) - set(todo))
        if unknown:
            raise SynthError(f"unknown stage {unknown[0]}; choose from {', '.join(todo)}")
        flows = args.flows.split(",")
        bad = sorted(set(flows) - set(FLOWS))
        if bad:
            raise SynthError(f"unknown flow {bad[0]}; choose from {', '.join(FLOWS)}")
        if names and shutil.which("yosys") is None:
            raise SynthError("yosys not found; install it with: sudo apt-get install -y yosys")
        os.makedirs(args.out, exist_ok=True)
        if names:
            write_params(args.out, args.params)
        src_dir, suffix = HERE, ""
        if args.rtl_rev:
            tmp = tempfile.mkdtemp(prefix="rtl_rev_")
            root = os.path.dirname(HERE)
            arch = subprocess.run(["git", "-C", root, "archive", args.rtl_rev, "fpga/rtl"],
                                  capture_output=True)
            if arch.returncode != 0:
                raise SynthError(f"git archive {args.rtl_rev} fpga/rtl failed: "
                                 + arch.stderr.decode().strip().splitlines()[-1])
            subprocess.run(["tar", "-x", "-C", tmp], input=arch.stdout, check=True)
            src_dir, suffix = os.path.join(tmp, "fpga"), "." + args.rtl_rev
        res: Dict[str, Dict[str, Dict[str, object]]] = {}
        for name in names:
            module, params, hexcfg, listing = todo[name]
            files = ([f for f in os.listdir(os.path.join(src_dir, "rtl")) if f.endswith(".v")]
                     if args.rtl_rev else [f[len("rtl/"):] for f in rtl_sources(listing)])
            files = [os.path.join("rtl", f) for f in sorted(files)]
            res[name] = {}
            for flow in flows:
                hexdir = os.path.join(os.path.abspath(args.out), f"hex_{hexcfg}") if hexcfg else None
                print(f"yosys {flow}: {name}{suffix} ...", file=sys.stderr, flush=True)
                cells = run_yosys(module, params, hexdir, flow, args.timeout,
                                  os.path.join(args.out, f"{name}.{flow}{suffix}.stat.txt"),
                                  src_dir, files, args.nice)
                with open(os.path.join(args.out, f"{name}.{flow}{suffix}.json"), "w") as f:
                    json.dump(cells, f)
                res[name][flow] = cells
                print(f"  {json.dumps(cells)}", file=sys.stderr, flush=True)
        if not args.rtl_rev:
            for name in todo:   # figures of earlier runs (other stages or flows)
                for flow in FLOWS:
                    path = os.path.join(args.out, f"{name}.{flow}.json")
                    if flow not in res.get(name, {}) and os.path.exists(path):
                        with open(path) as f:
                            res.setdefault(name, {})[flow] = json.load(f)
        text = summarise(res, args.depth)
        with open(os.path.join(args.out, f"summary{suffix}.md"), "w") as f:
            f.write(text)
        print(text)
    except UserError as exc:
        return report(prog, exc)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
