"""Each stage of the streaming INT8 ResMLP RTL against its integer primitive (fpga.int_ops).

One Verilator build of ``fpga/tb/stage_harness.v`` holds every stage module on its own
stream (including the two-lane channel MLPs and the folded Linears, and dot products with 1,
2 and 3 adder levels per pipeline stage); random parameters and inputs are chosen to hit the
corners: full-range weights, biases and inputs (both saturations), every shift 0..31, rows
and channels whose accumulator is a single input so that rounding ties (v = k * 2^s +
2^(s-1), positive and negative) occur, every input code on every LERP table, and several
images back to back through the buffered stages. The inputs are streamed twice: at full rate
and with random input bubbles and output stalls (30 % each), to check that flow control
keeps every code. The testbench drives the end-of-image markers and fails on any stage's
error flag or a misplaced output marker; a stream with one code missing must raise it.
"""
import os
import subprocess
import tempfile

import numpy as np
import pytest

from fpga import int_ops as ops
from fpga.hexdump import write_hex_files
from tests.oracles import need_program

from fpga.sim import rtl_sources

SOURCES = [f for f in rtl_sources("resmlp")
           if not f.endswith(("/resmlp_top.v", "/resmlp_axis.v"))] + ["tb/stage_harness.v"]
E = ops.LUT_ENTRIES


def _shifts(rng, n):
    """Every shift 0..31 at least once when n >= 32, then mostly small ones."""
    s = np.concatenate([np.arange(32), rng.integers(0, 9, max(0, n - 32))])[:n]
    return rng.permutation(s)


def _linear_params(rng, O, I, ties=True):
    W = rng.integers(-128, 128, (O, I))
    b = rng.integers(-128, 128, O)
    s = _shifts(rng, O)
    if ties:  # rows 0..3: acc = one input (or its negative), shifts 1..4 -> exact ties
        for o in range(min(4, O)):
            W[o] = 0
            W[o, o % I] = 1 if o % 2 == 0 else -1
            s[o] = 1 + o
            b[o] = rng.integers(-4, 5)
    return W, b, s


def _affine_params(rng, C):
    w = rng.integers(-128, 128, C)
    b = rng.integers(-128, 128, C)
    s = _shifts(rng, C)
    w[0], s[0] = 1, 1          # channel 0: ties of x / 2
    w[1], s[1] = -3, 2         # channel 1: ties of -3x / 4
    return w, b, s


def _codes(rng, shape):
    x = rng.integers(-128, 128, shape)
    flat = x.reshape(-1)
    flat[:4] = [-128, 127, -128, 127]
    return x


def _pre_clip(acc, s, b):
    """rshift(acc, s) + b before the clip (to assert that saturation was exercised)."""
    return ops._rshift64(np.asarray(acc, np.int64), np.asarray(s, np.int64)) + b


def _ties(acc, s):
    acc, s = np.broadcast_arrays(np.asarray(acc, np.int64), np.asarray(s, np.int64))
    m = s > 0
    half = np.where(m, np.int64(1) << np.maximum(s - 1, 0), 0)
    r = acc & ((np.int64(1) << s) - 1)
    tie = m & (r == half)
    return int((tie & (acc > 0)).sum()), int((tie & (acc < 0)).sum())


# stream -> (input codes per image, output codes per image): the ROWS of each harness stage
PER_IMAGE = {0: (5 * 96, 5 * 20), 1: (4 * 8, 4 * 12), 2: (6 * 8, 6 * 6), 3: (4 * 7, 4 * 7),
             4: (8 * 5, 8 * 5), 5: (48, 48), 6: (48, 48), 7: (48, 48), 8: (48, 6),
             9: (48, 48), 10: (48, 48), 11: (96, 10), 12: (2 * 12, 2 * 6)}


def make_cases(seed=0):
    """Parameters, inputs and the integer-primitive reference of every harness stream."""
    rng = np.random.default_rng(seed)
    P, cases = {}, {}
    stats = {}

    # 0: row_linear I = 96, O = 20
    W, b, s = _linear_params(rng, 20, 96)
    x = _codes(rng, (30, 96))
    P.update({"lin.W": W, "lin.b": b, "lin.s": s})
    acc = x @ W.T
    pre = _pre_clip(acc, s, b)
    stats["lin"] = dict(sat_hi=int((pre > 127).sum()), sat_lo=int((pre < -128).sum()),
                        ties=_ties(acc, s))
    cases[0] = (x, ops.linear(x, W, b, s))

    # 1: row_linear I = 8, O = 12, relu8
    W, b, s = _linear_params(rng, 12, 8)
    x = _codes(rng, (40, 8))
    P.update({"linr.W": W, "linr.b": b, "linr.s": s})
    cases[1] = (x, ops.relu8(ops.linear(x, W, b, s)))

    # 2: row_linear I = 8, O = 6, LERP tables on the outputs
    W, b, s = _linear_params(rng, 6, 8)
    lut = rng.integers(-128, 128, (6, E))
    x = _codes(rng, (60, 8))
    P.update({"linl.W": W, "linl.b": b, "linl.s": s, "linl.lut": lut})
    cases[2] = (x, ops.lerp8(ops.linear(x, W, b, s), lut))

    # 3: ew_stage affine, F = 7
    w, b, s = _affine_params(rng, 7)
    x = np.concatenate([np.repeat(np.arange(-128, 128)[:, None], 7, 1), _codes(rng, (100, 7))])
    P.update({"aff.w": w, "aff.b": b, "aff.s": s})
    acc = x * w
    stats["aff"] = dict(ties=_ties(acc, s), sat=int((np.abs(_pre_clip(acc, s, b)) > 127).sum()))
    cases[3] = (x, ops.affine(x, w, b, s))

    # 4: ew_stage LERP, F = 5: every code on every table
    lut = rng.integers(-128, 128, (5, E))
    x = np.repeat(np.arange(-128, 128)[:, None], 5, 1)
    x = np.concatenate([x, rng.permutation(x)])
    P["lut"] = lut
    cases[4] = (x, ops.lerp8(x, lut))

    # 5: token_mixer T = 8, C = 6, 4 images
    T, C = 8, 6
    for name in ("res", "aff1", "aff2"):
        w, b, s = _affine_params(rng, C)
        P.update({f"tm.{name}.w": w, f"tm.{name}.b": b, f"tm.{name}.s": s})
    W, b, s = _linear_params(rng, T, T)
    P.update({"tm.lin.W": W, "tm.lin.b": b, "tm.lin.s": s})
    x = _codes(rng, (4, T, C))

    def aff(pre, v):
        return ops.affine(v, P[f"{pre}.w"], P[f"{pre}.b"], P[f"{pre}.s"])

    def lin(pre, v):
        return ops.linear(v, P[f"{pre}.W"], P[f"{pre}.b"], P[f"{pre}.s"])

    r = aff("tm.res", x)
    t = np.swapaxes(lin("tm.lin", np.swapaxes(aff("tm.aff1", x), -1, -2)), -1, -2)
    cases[5] = (x, ops.add8(aff("tm.aff2", t), r))

    # 6, 7, 9, 10: channel_mlp ReLU (C = 6, H = 10), LERP-PSA (H = 4) and with two lanes
    # ReLU (H = 12) and LERP-PSA (H = 8), 40 tokens each
    for k, name, H in ((6, "mlpr", 10), (7, "mlpl", 4), (9, "mlp2r", 12), (10, "mlp2l", 8)):
        w, b, s = _affine_params(rng, C)
        P.update({f"{name}.res.w": w, f"{name}.res.b": b, f"{name}.res.s": s})
        for li, (o, i) in (("lin1", (H, C)), ("lin2", (C, H))):
            W, b, s = _linear_params(rng, o, i)
            P.update({f"{name}.{li}.W": W, f"{name}.{li}.b": b, f"{name}.{li}.s": s})
        x = _codes(rng, (40, C))
        r = aff(f"{name}.res", x)
        if name in ("mlpl", "mlp2l"):
            P[f"{name}.lut1"] = rng.integers(-128, 128, (C, E))
            P[f"{name}.lut2"] = rng.integers(-128, 128, (H, E))
            t = ops.lerp8(lin(f"{name}.lin1", ops.lerp8(x, P[f"{name}.lut1"])), P[f"{name}.lut2"])
        else:
            t = ops.relu8(lin(f"{name}.lin1", x))
        cases[k] = (x, ops.add8(lin(f"{name}.lin2", t), r))

    # 8: mean_pool T = 8, C = 6: extremes and ties (sums = 4 mod 8) among 6 images
    x = _codes(rng, (6, T, C))
    x[0] = 127
    x[1] = -128
    x[2] = 0
    x[2, 0] = [4, -4, 12, -12, 3, -3]        # sums 4, -4, 12, -12: ties of /8
    cases[8] = (x, ops.mean_pool(x))

    # 11: row_linear I = 96, O = 10 folded on 8 multipliers (the head), 20 rows
    W, b, s = _linear_params(rng, 10, 96)
    x = _codes(rng, (20, 96))
    P.update({"head.W": W, "head.b": b, "head.s": s})
    cases[11] = (x, ops.linear(x, W, b, s))

    # 12: row_linear I = 12, O = 6 folded on 4 multipliers, LERP tables on the outputs
    W, b, s = _linear_params(rng, 6, 12)
    lut = rng.integers(-128, 128, (6, E))
    x = _codes(rng, (30, 12))
    P.update({"linf.W": W, "linf.b": b, "linf.s": s, "linf.lut": lut})
    cases[12] = (x, ops.lerp8(ops.linear(x, W, b, s), lut))
    return P, cases, stats


@pytest.fixture(scope="module")
def harness_exe():
    need_program("verilator", "apt-get install -y verilator")
    from fpga.sim import build_model
    return build_model("stage_harness", SOURCES[:-1] + ["tb/stage_harness.v"], "tb/tb_stages.cpp",
                       {"M": 6})


def run_harness(exe, P, cases, bubble=0, stall=0, seed=1, per=PER_IMAGE, expect_ok=True,
                random_reset=False):
    with tempfile.TemporaryDirectory() as d:
        write_hex_files(P, {}, os.path.join(d, "hex"), lanes=2)
        args = [exe, f"+hexdir={os.path.join(d, 'hex')}", f"bubble={bubble}", f"stall={stall}",
                f"seed={seed}"]
        if random_reset:    # every register and memory starts from a random value
            args += ["+verilator+rand+reset+2", f"+verilator+seed+{seed}"]
        for k, (x, want) in cases.items():
            np.asarray(x, np.int8).tofile(os.path.join(d, f"in{k}.bin"))
            args += [f"in{k}={os.path.join(d, f'in{k}.bin')}", f"out{k}={os.path.join(d, f'out{k}.bin')}",
                     f"n_out{k}={want.size}", f"per{k}={per[k][0]}", f"oper{k}={per[k][1]}"]
        proc = subprocess.run(args, capture_output=True, text=True)
        if not expect_ok:
            return proc
        assert proc.returncode == 0, proc.stderr + proc.stdout
        return {k: np.fromfile(os.path.join(d, f"out{k}.bin"), np.int8) for k in cases}


NAMES = {0: "row_linear (linear)", 1: "row_linear + relu8", 2: "row_linear + lerp8",
         3: "ew_stage affine", 4: "ew_stage lerp8", 5: "token_mixer", 6: "channel_mlp ReLU",
         7: "channel_mlp LERP-PSA", 8: "mean_pool", 9: "channel_mlp ReLU, 2 lanes",
         10: "channel_mlp LERP-PSA, 2 lanes", 11: "row_linear folded (head)",
         12: "row_linear folded + lerp8"}


def test_cases_reach_the_corners():
    """The random cases really contain saturation and rounding ties of both signs."""
    _, _, stats = make_cases()
    assert stats["lin"]["sat_hi"] > 0 and stats["lin"]["sat_lo"] > 0
    assert min(stats["lin"]["ties"]) > 0 and min(stats["aff"]["ties"]) > 0
    assert stats["aff"]["sat"] > 0


@pytest.mark.parametrize("bubble,stall,random_reset", [(0, 0, False), (30, 30, True)])
def test_every_stage_matches_its_primitive(harness_exe, bubble, stall, random_reset):
    """Full rate from a zeroed power-up, then 30 % bubbles and stalls from random power-up
    values of every register and memory (a missing reset shows there)."""
    P, cases, _ = make_cases(seed=bubble)
    got = run_harness(harness_exe, P, cases, bubble, stall, seed=7, random_reset=random_reset)
    bad = {NAMES[k]: int((got[k] != want.reshape(-1)).sum()) for k, (_, want) in cases.items()}
    assert all(v == 0 for v in bad.values()), f"mismatching codes per stage: {bad}"
    assert all(got[k].size == want.size for k, (_, want) in cases.items())


@pytest.mark.parametrize("k", [0, 5, 9])
def test_a_miscounted_stream_raises_err(harness_exe, k):
    """The end-of-image check: stream k with its images marked one code early (as if the
    first image were one code short) must stop the testbench with that stream's error flag."""
    P, cases, _ = make_cases()
    per = dict(PER_IMAGE)
    per[k] = (per[k][0] - 1, per[k][1])
    proc = run_harness(harness_exe, P, {k: cases[k]}, per=per, expect_ok=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"stream {k} raised err" in proc.stderr, proc.stderr
    assert "ERROR" in proc.stdout and "end-of-image marker" in proc.stdout
