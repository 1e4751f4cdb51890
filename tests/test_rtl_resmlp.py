"""The whole INT8 ResMLP as streaming RTL (fpga/rtl/resmlp_top.v) under Verilator, bit-exact
against the integer model (fpga.int_resmlp.forward), and its measured initiation interval.

Synthetic random_params models: ReLU h = 2 (P = 16), the balanced ReLU h = 2 (two lanes in
lin1 / lin2), ReLU h = 1 (P = 48, the CIFAR-shaped patches) and LERP-PSA h = 1 (P = 16), 64
images each, streamed back to back; the shipped Fashion-MNIST dumps on 64 real images; and
the full-size verification run: random valid/ready stalls on both ends, long stretches of
output back-pressure that reach the input, random power-up values of every register, the
end-of-image markers checked at every stage (a miscounted input stream must stop the run).
One Verilator build per configuration (cached in fpga/build).
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from fpga.hexdump import hex_lines, read_hex_tensor, write_hex_files
from fpga.int_resmlp import param_shapes, random_params, save_params, save_samples
from tests.oracles import need_program

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
N_IMAGES = 64
# name: (act, hidden, patch values, lanes)
CONFIGS = {"relu_h2": ("base", 192, 16, 1), "relu_h2_lanes2": ("base", 192, 16, 2),
           "relu_h1": ("base", 96, 48, 1), "psa_h1": ("psa", 96, 16, 1)}


def model(name, seed=0):
    act, hidden, P, _ = CONFIGS[name]
    params, meta = random_params(act, hidden, patch_values=P, seed=seed)
    rng = np.random.default_rng(100 + seed)
    x = rng.integers(-128, 128, (N_IMAGES, int(meta["tokens"]), P)).astype(np.int8)
    return params, meta, x


@pytest.fixture(scope="module")
def results():
    need_program("verilator", "apt-get install -y verilator")
    from fpga.sim_resmlp import compare, run
    out = {}
    for name, (*_, lanes) in CONFIGS.items():
        params, meta, x = model(name)
        sim = run(params, meta, x, lanes=lanes)
        out[name] = compare(params, meta, x, None, sim, lanes)
        out[name]["_logits"] = sim["logits"]
    return out


@pytest.mark.parametrize("name", list(CONFIGS))
def test_pipeline_bit_exact(results, name, capsys):
    r = results[name]
    assert r["images"] == N_IMAGES
    assert r["mismatches"] == 0 and r["mismatched_logits"] == 0, r
    logits = r["_logits"]
    # A meaningful comparison: the logits vary from image to image and class to class.
    assert len(np.unique(logits)) > 20 and len({tuple(v) for v in logits}) == N_IMAGES
    with capsys.disabled():
        print(f"\n  {name}: {N_IMAGES} images, 0 mismatches, II {r['ii_cycles']} cycles, "
              f"latency {r['latency_cycles']} cycles, {r['multipliers']} multipliers")


def test_ii_follows_the_architecture(results):
    """II = T * max(C, H / lanes) clocks (+ a few): the slowest stage makes one element per
    clock. LERP-PSA costs no throughput; halving H halves the II, and so do two lanes."""
    for name, r in results.items():
        _, hidden, _, lanes = CONFIGS[name]
        bound = 64 * max(96, hidden // lanes)
        assert bound <= r["ii_cycles"] <= 1.01 * bound, (name, r["ii_cycles"])
        # Each token mixer holds an image through its fill (the compute streams out as it
        # goes): latency above depth x T x C clocks.
        assert r["latency_cycles"] > 4 * 64 * 96
    ii = {k: r["ii_cycles"] for k, r in results.items()}
    assert abs(ii["psa_h1"] - ii["relu_h1"]) <= 0.02 * ii["relu_h1"]
    assert ii["relu_h2"] >= 1.9 * ii["psa_h1"]
    assert abs(ii["relu_h2_lanes2"] - ii["relu_h1"]) <= 0.02 * ii["relu_h1"]


def test_multipliers_counted_from_the_elaborated_design(results):
    """mul8 instances per configuration, against the count by hand: embed P, per block the
    token mixer's T products and 3 affines, the channel MLP's res affine, lanes x C in lin1
    and H in lin2, and the 8 of the folded head."""
    for name, r in results.items():
        _, H, P, lanes = CONFIGS[name]
        assert r["multipliers"] == P + 4 * (64 + 3 + 1 + lanes * 96 + H) + 8, (name, r["multipliers"])


def test_full_size_stalls_back_pressure_and_random_reset():
    """The full-size verification run: LERP-PSA h = 1 with other weights, 32 images; random
    valid/ready stalls (30 %) on the input and the output, the output's ready also held low
    from clock 100 000 to 200 000 (every second window of 100 000 clocks), every register and
    memory powered up with random values. Bit-exact, no stage error, out_last on every
    image's last logit, and the output back-pressure filled every buffer and reached the
    input: refused for more than 20 000 clocks in a row (an image's II is 6 144; without
    back-pressure a refusal lasts about one embed row, under 100 clocks)."""
    need_program("verilator", "apt-get install -y verilator")
    from fpga.sim_resmlp import compare, run
    params, meta, x = model("psa_h1", seed=3)
    x = x[:32]
    sim = run(params, meta, x, in_stall=0.3, out_stall=0.3, hold=100000, random_reset=True, seed=5)
    r = compare(params, meta, x, None, sim)
    assert r["mismatches"] == 0 and r["images"] == 32
    assert r["max_in_refused"] > 20000, r["max_in_refused"]


def test_heavy_input_bubbles_keep_every_code():
    """85 % input stalls (the input becomes the bottleneck), ReLU h = 1: still bit-exact."""
    need_program("verilator", "apt-get install -y verilator")
    from fpga.sim_resmlp import compare, run
    params, meta, x = model("relu_h1", seed=4)
    x = x[:3]
    sim = run(params, meta, x, in_stall=0.85, out_stall=0.6, seed=6)
    r = compare(params, meta, x, None, sim)
    assert r["mismatches"] == 0 and r["images"] == 3
    # 64 * 48 codes at 15 % of the clocks: about 20 000 clocks per image, not 6 144.
    assert r["ii_cycles"] > 2 * 64 * 96, "the stalls did not happen"


def test_a_miscounted_input_stops_at_the_embed_stage():
    """One code left out of the first image (its end-of-image marker kept on its last code):
    the embed stage's check stops the run instead of shifting every later image."""
    need_program("verilator", "apt-get install -y verilator")
    from fpga.sim import SimError
    from fpga.sim_resmlp import run
    params, meta, x = model("relu_h1", seed=5)
    with pytest.raises(SimError, match=r"stage embed.*end-of-image marker"):
        run(params, meta, x[:2], drop=100)


def test_cli_prints_summary_and_json_last(tmp_path):
    need_program("verilator", "apt-get install -y verilator")
    from fpga.int_resmlp import forward
    params, meta, x = model("psa_h1", seed=4)
    save_params(tmp_path / "quant_params.npz", params, meta)
    labels = np.arange(N_IMAGES) % 10
    save_samples(tmp_path / "quant_samples.npz", x, labels, forward(params, meta, x))
    proc = subprocess.run([sys.executable, "-m", "fpga.sim_resmlp", "--params",
                           str(tmp_path / "quant_params.npz"), "--samples",
                           str(tmp_path / "quant_samples.npz"), "--images", "4", "--disable-tqdm"],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    res = json.loads(lines[-1])
    assert res["images"] == 4 and res["mismatches"] == 0 and res["ii_cycles"] > 0
    assert res["latency_cycles"] > 0 and res["config"]["ACT"] == 1
    assert res["multipliers"] == 16 + 4 * (64 + 3 + 1 + 96 + 96) + 8
    assert "0 with logits differing" in proc.stdout
    # Bad input: one line, exit status 2.
    proc = subprocess.run([sys.executable, "-m", "fpga.sim_resmlp", "--params",
                           str(tmp_path / "quant_params.npz"), "--samples",
                           str(tmp_path / "quant_samples.npz"), "--images", "0"],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0
    assert "--images must be in 1..64" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "fpga.sim_resmlp", "--params",
                           str(tmp_path / "none.npz"), "--samples", str(tmp_path / "none.npz")],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2 and "does not exist" in proc.stderr
    assert proc.stderr.strip().count("\n") == 0
    for flags, words in ((["--lanes", "5"], "--lanes 5 must divide the hidden width 96"),
                         (["--stall", "1.5"], "--stall must be a probability")):
        proc = subprocess.run([sys.executable, "-m", "fpga.sim_resmlp", "--params",
                               str(tmp_path / "quant_params.npz"), "--samples",
                               str(tmp_path / "quant_samples.npz"), *flags],
                              capture_output=True, text=True, cwd=ROOT)
        assert proc.returncode == 2 and words in proc.stderr, proc.stderr
        assert proc.stderr.strip().count("\n") == 0


# --- hex files (no Verilator needed) ---------------------------------------------------------

def test_hex_layout_by_example(tmp_path):
    assert hex_lines("a.W", np.array([[1, -2, 127], [-128, 0, 16]])) == "7ffe01\n100080\n"
    assert hex_lines("a.b", np.array([-1, 5])) == "ff\n05\n"
    assert hex_lines("a.s", np.array([31, 0])) == "1f\n00\n"
    assert hex_lines("a.lut1", np.array([[1, 2], [3, -4]])) == "01\n02\n03\nfc\n"


def test_hex_lane_groups_by_example(tmp_path):
    from fpga.hexdump import grouped_hex_lines
    W = np.array([[1, 2], [3, 4], [5, -1], [7, 8]])
    assert grouped_hex_lines("x.lin1.W", W, 2) == "04030201\n0807ff05\n"
    assert grouped_hex_lines("x.lin1.b", np.array([1, 2, 3, 4]), 2) == "0201\n0403\n"
    params, meta = random_params("base", 192, seed=2)
    paths = write_hex_files(params, meta, tmp_path, lanes=2)
    assert len(paths) == len(params) + 4 * 3 + 1
    line = (tmp_path / "blocks.3.mlp.lin1.W.x2.hex").read_text().split()[5]
    assert line == hex_lines("a.W", params["blocks.3.mlp.lin1.W"][11:12]).strip() + \
        hex_lines("a.W", params["blocks.3.mlp.lin1.W"][10:11]).strip()


def test_hex_round_trip_every_tensor(tmp_path):
    params, meta = random_params("psa", 192, patch_values=48, seed=1)
    paths = write_hex_files(params, meta, tmp_path)
    assert len(paths) == len(params) + 1 and paths[-1].endswith("manifest.json")
    shapes = param_shapes(meta)
    for key, shape in shapes.items():
        back = read_hex_tensor(tmp_path / f"{key}.hex", shape, key)
        assert (back == params[key]).all(), key
    assert json.load(open(tmp_path / "manifest.json"))["meta"]["hidden"] == 192
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".tmp_")]


def test_hex_rejects_out_of_range():
    from fpga.hexdump import HexDumpError
    with pytest.raises(HexDumpError, match="blocks.0.tm.lin.s holds values 0..32 outside 0..31"):
        hex_lines("blocks.0.tm.lin.s", np.array([0, 32]))
    with pytest.raises(HexDumpError, match="outside -128..127"):
        hex_lines("embed.W", np.array([[200]]))


def test_synth_report_parsing_and_totals():
    """fpga.synth_resmlp reads Yosys' stat and ltp reports and sums a configuration correctly."""
    from fpga.synth_resmlp import parse_ltp, parse_stat, parts, summarise
    text = """=== top ===

   Number of wires:                443
   Number of cells:                 12
     $alu                            5
     DSP48E2                         4
     FDRE                            2
     LUT3                            1

"""
    assert parse_stat(text) == {"cells": 12, "$alu": 5, "DSP48E2": 4, "FDRE": 2, "LUT3": 1}
    ltp = """Longest topological path in dot_tree (length=4):
    0: \\lv[2].g_add.g_reg.r [57]
    1: $auto$alumacc.cc:485:replace_alu$1727.X [3] (via $abc$3397$auto$blifparse.cc:525:parse_blif$3615)
    2: $auto$alumacc.cc:485:replace_alu$1727.CO [3] (via $auto$alumacc.cc:485:replace_alu$1727.genblk1.slice[0].genblk1.carry4)
    3: \\lv[3].g_add.s [35] (via $auto$alumacc.cc:485:replace_alu$1727.genblk1.slice[1].genblk1.carry4)
    4: $mul$x.Y [0] (via $flatten\\u.$mul$/x/mul8.v:24$1392)
"""
    got = parse_ltp(ltp)
    assert got["ltp"] == 4 and got["ltp_carry"] == 2 and got["ltp_lut"] == 1 and got["ltp_dsp"] == 1
    one = {"generic": {"cells": 10, "$macc": 3}, "xilinx": {"LUT2": 5, "LUT6": 1, "FDRE": 7,
                                                            "DSP48E2": 2, "RAMB36E2": 1}}
    names = {p for p, _ in parts("relu_h1")}
    assert names == {"embed_p16", "token_mixer", "mlp_res", "lin1_relu_h1", "lin2_h1",
                     "mean_pool", "head"}
    table = summarise({name: one for name in names}, depth=4)
    # embed + 4 x (tm + res + lin1 + lin2) + pool + head = 19 copies of each figure
    assert "| relu_h1 | 114 | 133 | 38 | 19 | 0 | 0 |" in table
    assert "| psa_h1 | missing: mlp_lut1, lin1_psa_h1 |" in table


@pytest.mark.parametrize("folder", ["baseline/quant/h_mul_2", "lerp_psa_64/quant/h_mul_1"])
def test_shipped_fashion_mnist_dump_bit_exact(folder):
    """The shipped QAT models (same RTL configurations as relu_h2 and psa_h1 above, so no
    extra build): 64 real test images, logits equal to the integer model and to the dump."""
    from tests.oracles import shipped_int8_dump
    need_program("verilator", "apt-get install -y verilator")
    from fpga.sim_resmlp import compare, run
    params, meta, x, labels, logits = shipped_int8_dump(folder, N_IMAGES)
    sim = run(params, meta, x)
    r = compare(params, meta, x, labels, sim)
    assert r["mismatches"] == 0 and r["images"] == N_IMAGES
    assert (sim["logits"] == logits).all()
    assert r["rtl_accuracy"] > 0.7          # a trained model, not noise
