"""scripts/plot_kt_splines.py without its two KT runs: the students it would train are put in
--work beforehand (it reuses them), so the figures, the table, the JSON line, the PNG and the
one-line errors are checked in seconds."""
import json
import os
import sys

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))

import plot_kt_splines as pk  # noqa: E402
from models import build_resmlp, save_checkpoint  # noqa: E402
from tests.oracles import need_path  # noqa: E402


def test_layer_figures_are_the_tv2_and_deviation_formulas():
    torch.manual_seed(0)
    init = build_resmlp("bspline", 0.5, in_channels=1)
    trained = build_resmlp("bspline", 0.5, in_channels=1)
    with torch.no_grad():
        for p in trained.parameters():
            p.add_(0.01 * torch.randn_like(p))
    layer, start = pk.spline_layers(trained)[1][0], pk.spline_layers(init)[1][0]
    tv, dev = pk.layer_figures(layer, start)
    c = layer.coefficients.detach().double()
    # independent: the regulariser the training loop adds (a sum over features), per feature
    assert tv == pytest.approx(float(layer.tv2().detach()) / layer.num_features, rel=1e-5)
    assert dev == pytest.approx(float((c - start.coefficients.detach().double()).abs().mean()), rel=1e-12)
    assert pk.layer_figures(start, start)[1] == 0.0


def _students(work, h=0.5, seed=2023):
    os.makedirs(work, exist_ok=True)
    for i, mode in enumerate(pk.MODES):
        torch.manual_seed(i)
        m = build_resmlp("bspline", h, in_channels=1)
        with torch.no_grad():
            for layer in (x for b in pk.spline_layers(m).values() for x in b):
                layer.coefficients.add_(0.02 * torch.randn_like(layer.coefficients))
        save_checkpoint(m, os.path.join(work, f"bspline_h0.5_seed{seed}_kt_{mode}.bin"))


@pytest.fixture()
def teacher():
    root = pk.M.model_root("fashion-mnist")
    return need_path(pk.M.teacher_path(root), "the shipped Fashion-MNIST teacher",
                     "git checkout -- output/")


def test_plot_from_reused_students(tmp_path, capsys, teacher):
    work = tmp_path / "work"
    _students(str(work))
    out = tmp_path / "kt.png"
    assert pk.main(["--work", str(work), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert text.count("reusing ") == 2
    assert "| 4 | 2 |" in text                       # every block and layer in the table
    last = json.loads(text.strip().splitlines()[-1])
    assert set(last["blocks"]) == set(pk.MODES) and len(last["blocks"]["authors"]) == 4
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(os.listdir(tmp_path)) == ["kt.png", "work"]


def test_bad_features_is_one_line_before_any_training(tmp_path, capsys, teacher):
    out = tmp_path / "kt.png"
    # an empty --work: a training run would start if the check came after it
    rc = pk.main(["--work", str(tmp_path / "empty"), "--out", str(out), "--features", "0", "96"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err == ["plot_kt_splines.py: error: --features [96]: the first B-spline "
                               "layer has features 0..95"]
    assert not out.exists() and not (tmp_path / "empty").exists()
