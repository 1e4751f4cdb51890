"""Yosys figures of the streaming INT8 ResMLP, stage by stage (``make -C fpga synth-resmlp``).

  python -m fpga.synth_resmlp --out fpga/build/synth_resmlp [--params quant_params.npz]

Synthesises each distinct stage of ``rtl/resmlp_top.v`` on its own (the embed Linear for
P = 16 and 48, one token mixer, the channel MLP of ReLU h = 2, ReLU h = 1 and LERP-PSA h = 1,
the mean pool, the head) twice: the coarse part of Yosys' generic ``synth`` (word-level
cells: $mul, $add/$alu, $dff, $mem, ...) and ``synth_xilinx -family xcup`` (UltraScale+
LUT/FF/DSP48E2/RAMB). The
ROMs are filled from ``--params`` or, by default, from a random model of the same shape. A
configuration's totals are embed + DEPTH x (token mixer + channel MLP) + pool + head (the
blocks differ only in their ROM contents). Yosys runs at low priority (``--nice``, 10) with a
time limit per run; each stage's figures are written to ``<out>/<stage>.<flow>.json`` as soon as
it finishes, and the summary table goes to ``<out>/summary.md`` and stdout.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from typing import Dict, List, Optional

from errors import UserError, report

from .hexdump import write_hex_files

HERE = os.path.dirname(os.path.abspath(__file__))
RTL = ["rtl/token_mixer.v", "rtl/channel_mlp.v", "rtl/row_linear.v", "rtl/ew_stage.v",
       "rtl/mean_pool.v", "rtl/stream_fifo.v", "rtl/requant.v", "rtl/hex_rom.v",
       "rtl/lut_rom.v", "rtl/lerp_unit.v"]
CONFIGS = {"relu_h2": ("base", 192), "relu_h1": ("base", 96), "psa_h1": ("psa", 96)}


class SynthError(UserError):
    pass


def stages(depth: int = 4) -> Dict[str, tuple]:
    """stage name -> (module, parameters, which hex folder)."""
    s = {
        "embed_p16": ("row_linear", {"I": 16, "O": 96, "NAME": '"embed"'}, "relu_h1_p16"),
        "embed_p48": ("row_linear", {"I": 48, "O": 96, "NAME": '"embed"'}, "relu_h1_p48"),
        "token_mixer": ("token_mixer", {"T": 64, "C": 96, "NAME": '"blocks.0.tm"'}, "relu_h1_p16"),
        "mlp_relu_h2": ("channel_mlp", {"C": 96, "H": 192, "ACT": 0, "NAME": '"blocks.0.mlp"'}, "relu_h2_p16"),
        "mlp_relu_h1": ("channel_mlp", {"C": 96, "H": 96, "ACT": 0, "NAME": '"blocks.0.mlp"'}, "relu_h1_p16"),
        "mlp_psa_h1": ("channel_mlp", {"C": 96, "H": 96, "ACT": 1, "NAME": '"blocks.0.mlp"'}, "psa_h1_p16"),
        "mean_pool": ("mean_pool", {"T": 64, "C": 96}, None),
        "head": ("row_linear", {"I": 96, "O": 10, "NAME": '"head"'}, "relu_h1_p16"),
    }
    return s


def write_params(out: str, params_path: Optional[str]) -> None:
    from .int_resmlp import load_params, random_params
    given = load_params(params_path) if params_path else None
    for cfg, (act, hidden) in CONFIGS.items():
        for P in (16, 48):
            params, meta = random_params(act, hidden, patch_values=P, seed=0)
            if given is not None:   # the real model fills the ROMs of its own configuration
                p2, m2 = given
                if m2["act"] == act and int(m2["hidden"]) == hidden and int(m2["patch_values"]) == P:
                    params, meta = p2, m2
            write_hex_files(params, meta, os.path.join(out, f"hex_{cfg}_p{P}"))


STAT_CELL = re.compile(r"^\s+(\S+)\s+(\d+)\s*$")


def parse_stat(text: str) -> Dict[str, int]:
    """Cell counts of the last 'stat' report (top module or design total)."""
    block = text.split("=== design hierarchy ===")[-1]
    cells: Dict[str, int] = {}
    m = re.findall(r"Number of cells:\s+(\d+)", block)
    if m:
        cells["cells"] = int(m[-1])
    m = re.findall(r"Number of wire bits:\s+(\d+)", block)
    for line in block.split("Number of cells:")[-1].splitlines()[1:]:
        mm = STAT_CELL.match(line)
        if mm:
            cells[mm.group(1)] = int(mm.group(2))
        elif line.strip() and not line.startswith(" "):
            break
    return cells


def run_yosys(module: str, params: dict, hexdir: Optional[str], flow: str, timeout: int,
              log_path: str, nice: int = 10) -> Dict[str, int]:
    sets = " ".join(f"-set {k} {v}" for k, v in params.items())
    if hexdir:
        sets += f' -set HEXDIR "{hexdir}"'
    files = " ".join(os.path.join(HERE, f) for f in RTL)
    if flow == "generic":
        # Word-level generic cells (multipliers, adders, registers, memories): the coarse
        # part of Yosys' synth; gate-level mapping of ~1 000 multipliers is too slow here.
        script = (f"read_verilog -defer {files}; chparam {sets} {module}; "
                  f"synth -top {module} -flatten -run begin:fine; stat -width")
    else:
        script = (f"read_verilog -defer {files}; chparam {sets} {module}; "
                  f"synth_xilinx -family xcup -top {module} -flatten; stat")
    t0 = time.time()
    try:
        proc = subprocess.run(["nice", "-n", str(nice), "yosys", "-q", "-p", f"{script}; tee -o {log_path} stat"],
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"timeout_s": timeout}
    if proc.returncode != 0:
        raise SynthError(f"yosys failed on {module} ({flow}): "
                         + " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:]))
    with open(log_path) as f:
        cells = parse_stat(f.read())
    cells["yosys_s"] = round(time.time() - t0, 1)
    return cells


XILINX_GROUPS = {
    "LUT": lambda c: sum(v for k, v in c.items() if re.fullmatch(r"LUT\d", k)),
    "FF": lambda c: sum(v for k, v in c.items() if k in ("FDRE", "FDSE", "FDCE", "FDPE")),
    "DSP": lambda c: c.get("DSP48E2", 0),
    "BRAM36": lambda c: c.get("RAMB36E2", 0),
    "BRAM18": lambda c: c.get("RAMB18E2", 0),
    "LUTRAM": lambda c: sum(v for k, v in c.items() if k.startswith("RAM") and not k.startswith("RAMB")),
    "CARRY8": lambda c: c.get("CARRY8", 0) + c.get("CARRY4", 0),
}


def summarise(res: Dict[str, Dict[str, Dict[str, int]]], depth: int) -> str:
    lines = ["| stage | generic cells | $macc/$mul | $mem | LUT | FF | DSP | BRAM36 | BRAM18 | LUTRAM | yosys s |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, flows in res.items():
        g, x = flows.get("generic", {}), flows.get("xilinx", {})
        row = [name, g.get("cells", "timeout" if "timeout_s" in g else "-"),
               sum(v for k, v in g.items() if k.startswith(("$mul", "$macc"))),
               sum(v for k, v in g.items() if k.startswith("$mem"))]
        row += [XILINX_GROUPS[k](x) if x and "timeout_s" not in x else "-" for k in
                ("LUT", "FF", "DSP", "BRAM36", "BRAM18", "LUTRAM")]
        row.append(f"{g.get('yosys_s', '-')} / {x.get('yosys_s', '-')}")
        lines.append("| " + " | ".join(str(v) for v in row) + " |")
    lines += ["", f"Totals (embed + {depth} x (token mixer + channel MLP) + pool + head):", "",
              "| configuration | generic cells | LUT | FF | DSP | BRAM36 | BRAM18 | LUTRAM |",
              "|---|---|---|---|---|---|---|---|"]
    for cfg in CONFIGS:
        for P in (16, 48):
            parts = [(f"embed_p{P}", 1), ("token_mixer", depth), (f"mlp_{cfg}", depth),
                     ("mean_pool", 1), ("head", 1)]
            if any(p not in res or "timeout_s" in res[p].get("xilinx", {"timeout_s": 0})
                   or "timeout_s" in res[p].get("generic", {"timeout_s": 0}) for p, _ in parts):
                continue
            tot = [sum(n * res[p]["generic"].get("cells", 0) for p, n in parts)]
            tot += [sum(n * XILINX_GROUPS[k](res[p]["xilinx"]) for p, n in parts)
                    for k in ("LUT", "FF", "DSP", "BRAM36", "BRAM18", "LUTRAM")]
            lines.append(f"| {cfg} P={P} | " + " | ".join(str(v) for v in tot) + " |")
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
                   help="comma-separated: generic (word-level cells), xilinx (synth_xilinx)")
    p.add_argument("--depth", type=int, default=4, help="blocks in the totals (4)")
    p.add_argument("--nice", type=int, default=10, help="niceness of the Yosys runs (10)")
    args = p.parse_args(argv)
    try:
        os.makedirs(args.out, exist_ok=True)
        write_params(args.out, args.params)
        todo = stages(args.depth)
        if args.stages:
            unknown = set(args.stages.split(",")) - set(todo)
            if unknown:
                raise SynthError(f"unknown stage {sorted(unknown)[0]}; choose from {', '.join(todo)}")
        res: Dict[str, Dict[str, Dict[str, int]]] = {}
        for name, (module, params, hexcfg) in todo.items():
            res[name] = {}
            for flow in args.flows.split(","):
                path = os.path.join(args.out, f"{name}.{flow}.json")
                if args.stages and name not in args.stages.split(","):
                    continue
                hexdir = os.path.join(args.out, f"hex_{hexcfg}") if hexcfg else None
                print(f"yosys {flow}: {name} ...", file=sys.stderr, flush=True)
                cells = run_yosys(module, params, hexdir, flow, args.timeout,
                                  os.path.join(args.out, f"{name}.{flow}.stat.txt"), args.nice)
                with open(path, "w") as f:
                    json.dump(cells, f)
                res[name][flow] = cells
                print(f"  {json.dumps(cells)}", file=sys.stderr, flush=True)
        for name in todo:   # figures of earlier runs (other stages or flows)
            for flow in ("generic", "xilinx"):
                path = os.path.join(args.out, f"{name}.{flow}.json")
                if flow not in res.get(name, {}) and os.path.exists(path):
                    with open(path) as f:
                        res.setdefault(name, {})[flow] = json.load(f)
        text = summarise(res, args.depth)
        with open(os.path.join(args.out, "summary.md"), "w") as f:
            f.write(text)
        print(text)
    except UserError as exc:
        return report(prog, exc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
