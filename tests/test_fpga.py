"""8-bit LERP: integer reference, export, Verilog under Verilator (bit-exact)."""
import json
import math
import os
import shutil

import numpy as np
import pytest
import torch

from fpga import lerp8 as L8
from fpga.eval_quantized import QuantizedTableActivation

from tests.oracles import need_program


@pytest.fixture
def verilator_needed():
    need_program("verilator", "apt-get install -y verilator")


needs_verilator = pytest.mark.usefixtures("verilator_needed")


def scalar_lerp8(x, row, m):
    """docs/METHOD.md section 9 one value at a time with exact rationals (independent of lerp8)."""
    Lb = 8 - m
    idx = x + 128
    hi, lo = idx // 2 ** Lb, idx % 2 ** Lb
    y0, y1 = int(row[hi]), int(row[hi + 1])
    return y0 + math.floor((y1 - y0) * lo / 2 ** Lb + 0.5)  # round half up


@pytest.mark.parametrize("m", range(1, 8))
def test_lerp8_matches_scalar_formula_exhaustively(m):
    rng = np.random.default_rng(m)
    tables = rng.integers(-128, 128, (3, 2 ** m + 1))
    x = np.arange(-128, 128)
    for f in range(3):
        got = L8.lerp8(x[:, None].repeat(3, 1), tables, m)[:, f]
        want = [scalar_lerp8(int(v), tables[f], m) for v in x]
        assert got.tolist() == want, f"feature {f}"
        lo_bound = np.minimum(tables[f][(x + 128) >> (8 - m)], tables[f][((x + 128) >> (8 - m)) + 1])
        assert (got >= lo_bound).all()


def test_lerp8_hits_table_entries_at_table_codes():
    t = np.random.default_rng(0).integers(-128, 128, (2, 65))
    codes = L8.table_codes(6)[:-1]  # the last code (128) is one past the input range
    y = L8.lerp8(np.stack([codes, codes], 1), t, 6)
    assert (y == t[:, :-1].T).all()


def test_lerp8_rejects_bad_input():
    with pytest.raises(ValueError, match="M must be in 1..7"):
        L8.lerp8(np.zeros((1, 1)), np.zeros((1, 2)), 0)
    with pytest.raises(ValueError, match=r"shape \(F, 65\)"):
        L8.lerp8(np.zeros((1, 1)), np.zeros((1, 64)), 6)
    with pytest.raises(ValueError, match="8-bit codes"):
        L8.lerp8(np.full((1, 1), 200), np.zeros((1, 65)), 6)


def test_hex_round_trip(tmp_path):
    v = np.array([-128, -1, 0, 1, 127])
    L8.write_hex(tmp_path / "a.hex", v)
    assert (tmp_path / "a.hex").read_text() == "80\nff\n00\n01\n7f\n"
    assert L8.read_hex(tmp_path / "a.hex").tolist() == v.tolist()


@pytest.mark.parametrize("m", [4, 6, 7])
def test_quantized_module_is_bit_exact(m):
    t = np.random.default_rng(1).integers(-128, 128, (5, 2 ** m + 1))
    q = QuantizedTableActivation(t, s_in=0.05, s_out=0.1, m=m)
    codes = torch.randint(-128, 128, (300, 5))
    assert (q.forward_codes(codes).numpy() == L8.lerp8(codes.numpy(), t, m)).all()
    x = torch.randn(7, 5) * 3
    torch.testing.assert_close(q(x), q.forward_codes(q.codes(x)).float() * 0.1)


def test_tabulate_relu_independently():
    from fpga.export import tabulate
    t = tabulate(torch.nn.ReLU(), 2, s_in=0.03, s_out=0.02, m=6)
    codes = L8.table_codes(6)
    want = np.clip(np.round(np.maximum(codes * np.float32(0.03), 0) / 0.02), -128, 127)
    assert (t == want[None, :].repeat(2, 0)).all()


# --- RTL ------------------------------------------------------------------------------------

@needs_verilator
@pytest.mark.parametrize("m", [4, 5, 6, 7])
def test_rtl_exhaustive_all_codes(m, tmp_path, capsys):
    from fpga.sim import simulate
    F = 4   # the F of the other lerp_layer tests: one Verilator build for M = 6
    tables = np.random.default_rng(10 + m).integers(-128, 128, (F, 2 ** m + 1))
    x = np.repeat(np.arange(-128, 128), F)  # every code on every feature
    L8.write_hex(tmp_path / "t.hex", tables)
    L8.write_hex(tmp_path / "x.hex", x)
    r = simulate(str(tmp_path / "t.hex"), str(tmp_path / "x.hex"), F, m, str(tmp_path / "y.hex"))
    got = L8.read_hex(tmp_path / "y.hex")
    want = L8.lerp8_stream(x, tables, m)
    assert got.size == x.size
    assert int((got != want).sum()) == 0, "RTL and lerp8 disagree"
    assert r["latency"] == 4 and r["elements_per_cycle"] > 0.99
    with capsys.disabled():
        print(f"\n  M={m}: {x.size} codes checked, 0 mismatches, {r['elements_per_cycle']:.4f} elements/cycle")


@needs_verilator
def test_rtl_with_bubbles_keeps_feature_order(tmp_path):
    from fpga.sim import simulate
    F, m = 4, 6
    tables = np.random.default_rng(3).integers(-128, 128, (F, 65))
    x = np.random.default_rng(4).integers(-128, 128, 2000)
    L8.write_hex(tmp_path / "t.hex", tables)
    L8.write_hex(tmp_path / "x.hex", x)
    r = simulate(str(tmp_path / "t.hex"), str(tmp_path / "x.hex"), F, m, str(tmp_path / "y.hex"),
                 bubbles=40, seed=7)
    assert (L8.read_hex(tmp_path / "y.hex") == L8.lerp8_stream(x, tables, m)).all()
    assert r["elements_per_cycle"] < 0.8  # bubbles really happened


@needs_verilator
def test_rtl_on_exported_lerp_psa_layer(tmp_path, capsys):
    """A real layer: a LERP-PSA ResMLP (freshly built), calibrated on data,
    tabulated, and 10 000 of its real input activations through the RTL."""
    from fpga.export import export_model
    from fpga.sim import simulate
    import data
    from models import build_resmlp
    torch.manual_seed(0)
    train, _, info = data.get_datasets("synthetic", synthetic_size=400, augment=False)
    model = build_resmlp("psa", 0.5, in_channels=info["in_channels"]).eval()
    loader = torch.utils.data.DataLoader(train, batch_size=64)
    out = tmp_path / "export"
    manifest = export_model(model, loader, str(out), m=6, calib_batches=3, dump_inputs=10000,
                            log=lambda s: None)
    assert json.loads((out / "manifest.json").read_text())["layers"][0]["features"] == 96
    assert len(manifest["layers"]) == 8
    layer = manifest["layers"][2]  # block 1, first RP(96)
    assert layer["n_inputs"] == 10000 and layer["features"] == 96
    r = simulate(str(out / layer["tables"]), str(out / layer["inputs"]), layer["features"], 6,
                 str(tmp_path / "y.hex"))
    tables = L8.read_hex(out / layer["tables"]).reshape(layer["features"], 65)
    x = L8.read_hex(out / layer["inputs"])
    got = L8.read_hex(tmp_path / "y.hex")
    assert int((got != L8.lerp8_stream(x, tables, 6)).sum()) == 0
    # The 8-bit table approximates the float sublayer x + LerpPSA(x).
    sub = model.get_submodule(layer["name"])
    xf = torch.tensor(x[: 50 * 96].reshape(50, 96), dtype=torch.float32) * layer["s_in"]
    with torch.no_grad():
        yf = sub(xf).numpy()
    err = np.abs(got[: 50 * 96].reshape(50, 96) * layer["s_out"] - yf).max()
    assert err < 3 * layer["s_out"], f"8-bit result off by {err / layer['s_out']:.1f} output steps"
    with capsys.disabled():
        print(f"\n  exported layer {layer['name']}: {r['elements']} activations, 0 mismatches, "
              f"{r['elements_per_cycle']:.4f} elements/cycle, max error {err / layer['s_out']:.2f} LSB")


@needs_verilator
def test_sim_rejects_wrong_table_size(tmp_path):
    from fpga.sim import SimError, simulate
    L8.write_hex(tmp_path / "t.hex", np.zeros(10))
    L8.write_hex(tmp_path / "x.hex", np.zeros(3))
    with pytest.raises(SimError, match=r"expected F \* \(2\^M \+ 1\) = 2 \* 65"):
        simulate(str(tmp_path / "t.hex"), str(tmp_path / "x.hex"), 2, 6, str(tmp_path / "y.hex"))


@needs_verilator
def test_verilator_lint_clean():
    import subprocess
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run(["make", "-s", "-C", os.path.join(root, "fpga"), "lint"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Warning" not in proc.stdout + proc.stderr


def test_eval_quantized_cli_runs(capsys):
    from fpga.eval_quantized import main
    rc = main(["--dataset", "synthetic", "--act", "base", "--hidden-factor", "0.25",
               "--calib-batches", "1", "--limit-test-batches", "2"])
    out = capsys.readouterr().out
    assert rc == 0 and "float32 activations" in out and "8-bit tables (M = 6" in out


def test_export_and_sim_cli_errors(tmp_path, capsys):
    from fpga.export import main as export_main
    from fpga.sim import main as sim_main
    assert export_main(["--dataset", "synthetic", "--addr-bits", "9", "--out", str(tmp_path / "e")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "M must be in 1..7" in err[0]
    assert not (tmp_path / "e" / "manifest.json").exists()
    assert export_main(["--dataset", "synthetic", "--checkpoint", str(tmp_path / "none.bin")]) == 2
    assert "checkpoint file not found" in capsys.readouterr().err
    rc = sim_main(["--tables", str(tmp_path / "t.hex"), "--inputs", str(tmp_path / "x.hex"),
                   "--features", "2", "--out", str(tmp_path / "y.hex")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "file not found" in err[0]


# --- the simulation cache: nothing path-dependent compiled in, no shared files ---------------

def _copy_checkout(dst):
    """The parts of the checkout that ``python -m fpga.sim`` needs, with its build cache."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    shutil.copytree(os.path.join(root, "fpga"), os.path.join(dst, "fpga"),
                    ignore=shutil.ignore_patterns("__pycache__", ".tmp_*"))
    shutil.copy(os.path.join(root, "errors.py"), dst)
    return root


def test_sim_cache_survives_a_copied_checkout(tmp_path):
    """Simulate, copy the checkout with its build cache, simulate new tables in the copy:
    the copy reuses the cached model (no rebuild) and is bit-exact on the new tables."""
    import subprocess
    import sys
    from fpga.sim import build, simulate
    need_program("verilator", "apt-get install -y verilator")
    F, m = 4, 6
    rng = np.random.default_rng(21)
    x = np.tile(np.arange(-128, 128), F)
    L8.write_hex(tmp_path / "x.hex", x)
    old = rng.integers(-128, 128, (F, 65))
    L8.write_hex(tmp_path / "old.hex", old)
    simulate(str(tmp_path / "old.hex"), str(tmp_path / "x.hex"), F, m, str(tmp_path / "y_old.hex"))
    assert (L8.read_hex(tmp_path / "y_old.hex") == L8.lerp8_stream(x, old, m)).all()
    exe = build(F, m)
    copy = tmp_path / "copy"
    root = _copy_checkout(copy)
    new = rng.integers(-128, 128, (F, 65))
    L8.write_hex(tmp_path / "new.hex", new)
    os.remove(tmp_path / "old.hex")      # a model that still read the old tables would fail
    proc = subprocess.run([sys.executable, "-m", "fpga.sim", "--tables", str(tmp_path / "new.hex"),
                           "--inputs", str(tmp_path / "x.hex"), "--features", str(F),
                           "--addr-bits", str(m), "--out", str(tmp_path / "y_new.hex"), "--check"],
                          capture_output=True, text=True, cwd=copy)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "building" not in proc.stderr, "the copy rebuilt instead of reusing the cached model"
    assert os.path.relpath(exe, os.path.join(root, "fpga")).startswith("build")
    assert (L8.read_hex(tmp_path / "y_new.hex") == L8.lerp8_stream(x, new, m)).all()
    assert "0 mismatches" in proc.stdout


def test_sim_concurrent_runs_share_no_files(tmp_path):
    """Two simulations of the same F and M at once, different tables: both bit-exact."""
    import subprocess
    import sys
    need_program("verilator", "apt-get install -y verilator")
    from fpga.sim import build
    F, m = 4, 6
    build(F, m)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    rng = np.random.default_rng(5)
    x = rng.integers(-128, 128, 40000)
    L8.write_hex(tmp_path / "x.hex", x)
    procs, tables = [], []
    for k in range(2):
        t = rng.integers(-128, 128, (F, 65))
        tables.append(t)
        L8.write_hex(tmp_path / f"t{k}.hex", t)
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "fpga.sim", "--tables", str(tmp_path / f"t{k}.hex"), "--inputs",
             str(tmp_path / "x.hex"), "--features", str(F), "--addr-bits", str(m), "--out",
             str(tmp_path / f"y{k}.hex")], cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    for p in procs:
        assert p.wait() == 0, p.stderr.read()
    for k in range(2):
        assert (L8.read_hex(tmp_path / f"y{k}.hex") == L8.lerp8_stream(x, tables[k], m)).all()


def test_sim_cache_key_covers_what_is_compiled_in(monkeypatch):
    """Parameters, flags, sources and the tool versions all change the key."""
    import fpga.sim as S
    need_program("verilator", "apt-get install -y verilator")
    base = S.cache_key("lerp_layer", S.RTL + [S.TB], {"F": 4, "M": 6}, ["-O1"])
    assert base != S.cache_key("lerp_layer", S.RTL + [S.TB], {"F": 4, "M": 5}, ["-O1"])
    assert base != S.cache_key("lerp_layer", S.RTL + [S.TB], {"F": 4, "M": 6}, ["-O2"])
    assert base != S.cache_key("lerp_layer", S.RTL, {"F": 4, "M": 6}, ["-O1"])
    monkeypatch.setattr(S, "_tool_version", lambda cmd: "verilator 9.9" if "verilator" in cmd[0] else "g++")
    assert base != S.cache_key("lerp_layer", S.RTL + [S.TB], {"F": 4, "M": 6}, ["-O1"])


def test_fpga_tools_take_the_model_from_the_checkpoint(tmp_path, capsys):
    """--checkpoint alone defines the model; --act/--hidden-factor are only checked."""
    from fpga.eval_quantized import main
    from models import build_resmlp, save_checkpoint
    ckpt = str(tmp_path / "psa_h05.bin")
    save_checkpoint(build_resmlp("psa", 0.5, in_channels=3), ckpt)
    rc = main(["--dataset", "synthetic", "--checkpoint", ckpt, "--calib-batches", "1",
               "--limit-test-batches", "1"])
    out = capsys.readouterr().out
    assert rc == 0 and "(psa, h = 0.5)" in out
    for flags, words in ((["--act", "base"], "holds a psa model, not base; drop --act"),
                         (["--hidden-factor", "1"], "holds hidden factor 0.5, not 1; drop --hidden-factor")):
        rc = main(["--dataset", "synthetic", "--checkpoint", ckpt, *flags])
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and len(err) == 1 and words in err[0], err
