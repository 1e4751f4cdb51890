"""ONNX export (deploy/onnx_export.py, scripts/export_onnx.py) checked in onnxruntime.

* The lean LERP lookup (the default, 9 nodes) against the reference backend within 1e-5
  relative, NaN and +-inf as the kernels, and against the float64 interpolation below.
* Each learned activation's kernel-form nodes (``kernel_lerp=True`` for LERP) against the
  reference backend, bit for bit (0 mismatches),
  on grid points, one ulp either side of them, the fp32 inputs where the LERP quotient by the
  step picks another segment than the kernels' product, both edges, far outside the grid,
  +-inf and NaN; and against an independent float64 interpolation (numpy.interp, edges
  extended). A graph that divides by the step instead is caught.
* Small ResMLPs of every activation and ResNet-20, with random BatchNorm statistics and A2
  scales so every fold does something: logits within 1e-4 of the largest logit at opsets 17,
  18 and 26, batch 1 and 5 through one graph, default-domain nodes only. A fold that drops the
  BatchNorm is caught.
* The authors' fixtures (LERP-PSA h = 1 ResMLP, ResNet-20): the graph's logits against the
  logits their code computed.
* The 13 shipped Fashion-MNIST checkpoints (teacher + 12 students of the main folder) on
  1 000 test images each: logits within 1e-4 of each image's largest logit and the same top-1
  on every image, except flips at a near tie: a PyTorch margin between the two classes below
  twice that image's largest logit difference (``unexplained_flips`` must be 0; the figures,
  flips included, are printed with -s). No accuracy or flip count is written down here: they
  are computed. The students are skipped while the main folder holds none of them (they were
  being retrained when this was written); once any is there, all 12 must be.
* The command line: the JSON last line, --check, and one-line errors that leave no file;
  scripts/bench_onnx.py end to end on tiny models (a smoke test: no timing is asserted).

Cost on the 2-core machine, measured while a training job ran on it: about 20 s without the
shipped checkpoints; the 13 checkpoints about 40 s more (the teacher alone about 4 s).
"""
import json
import math
import os
import sys

import numpy as np
import pytest
import torch

from tests.oracles import need_module, need_path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))

import experiments  # noqa: E402
import export_onnx  # noqa: E402
import kernels  # noqa: E402
from activations import BSpline, LerpPSA, ResidualLerpPSA  # noqa: E402
from deploy import onnx_export as E  # noqa: E402
from deploy.onnx_check import check_images, compare, compare_logits, make_session  # noqa: E402
from models import build_from_checkpoint, build_resmlp, build_resnet20  # noqa: E402

TOL = 1e-4  # logits: |onnx - torch| <= TOL * the image's largest |logit|
FIXTURES = os.path.join(ROOT, "tests", "fixtures")
M = experiments.load()
MODEL_ROOT = M.model_root("fashion-mnist", ROOT)
FMNIST = M.datasets["fashion-mnist"]["dataset_dir"]
FMNIST_HOW = "apt-get install -y dataset-fashion-mnist"
HOW = "pip install -r requirements-deploy.txt"
try:
    import onnx
except ImportError:  # the autouse fixture below skips (or, in CI, fails) every test
    onnx = None


@pytest.fixture(autouse=True)
def _deploy_packages():
    need_module("onnx", HOW)
    need_module("onnxruntime", HOW)


def run(proto, feed):
    return make_session(proto).run(None, feed)[0]


def bits_equal(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Elementwise: the same fp32 bits, or both NaN."""
    return (a.view(np.int32) == b.view(np.int32)) | (np.isnan(a) & np.isnan(b))


# --- activations, bit for bit -----------------------------------------------------------------

def quotient_differs(R: float, G: int) -> torch.Tensor:
    """fp32 inputs a few ulps below a grid point where floor((x + R) * ((G-1)/2R)) (the
    kernels) and floor((x + R) / (2R/(G-1))) (a division by the fp32 step) disagree."""
    s = torch.tensor((G - 1) / (2 * R), dtype=torch.float32)
    h = torch.tensor(2 * R / (G - 1), dtype=torch.float32)
    x = (-R + torch.arange(1, G - 1, dtype=torch.float64) * (2 * R / (G - 1))).float()
    found = []
    for _ in range(6):
        x = torch.nextafter(x, torch.full_like(x, -math.inf))
        found.append(x[torch.floor((x + R) * s) != torch.floor((x + R) / h)])
    return torch.cat(found)


def probe_inputs(R: float, points: int, features: int, seed: int = 0) -> torch.Tensor:
    """(M, F) fp32 inputs: the grid points and one ulp either side, the division cases, random
    values over [-1.5R, 1.5R], the edges, far outside, +-inf, NaN; shuffled per feature."""
    g = torch.Generator().manual_seed(seed)
    t = torch.linspace(-R, R, points)
    cols = [t, torch.nextafter(t, torch.full_like(t, math.inf)),
            torch.nextafter(t, torch.full_like(t, -math.inf)), quotient_differs(R, points),
            (torch.rand(400, generator=g) * 3 - 1.5) * R,
            torch.tensor([R, -R, 10 * R, -10 * R, math.inf, -math.inf, math.nan, 0.0])]
    v = torch.cat(cols)
    return torch.stack([v[torch.randperm(len(v), generator=g)] for _ in range(features)], 1)


def interp_extended(x: np.ndarray, knots: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Independent float64 oracle: numpy.interp per feature, the edge segments continued
    (NaN where ``x`` is not finite)."""
    out = np.full_like(x, np.nan)
    for i in range(x.shape[1]):
        r, xi = rows[i], x[:, i]
        ok = np.isfinite(xi)
        y = np.interp(xi[ok], knots, r)
        lo, hi = xi[ok] < knots[0], xi[ok] > knots[-1]
        y[lo] = r[0] + (xi[ok][lo] - knots[0]) * (r[1] - r[0]) / (knots[1] - knots[0])
        y[hi] = r[-1] + (xi[ok][hi] - knots[-1]) * (r[-1] - r[-2]) / (knots[-1] - knots[-2])
        out[ok, i] = y
    return out


def assert_oracle(y: np.ndarray, x: torch.Tensor, knots: np.ndarray, rows: torch.Tensor):
    want = interp_extended(x.numpy().astype(np.float64), knots, rows.detach().double().numpy())
    ok = np.isfinite(x.numpy())
    assert ok.sum() == ok.size - 3 * x.shape[1]  # +-inf and NaN in every feature
    np.testing.assert_allclose(y[ok], want[ok], rtol=1e-5, atol=1e-5 * np.abs(want[ok]).max())


LERP_SHAPES = [(1, 2, 1.0), (7, 64, 4.0), (33, 5, 2.5), (96, 64, 4.0)]  # (F, G, R)


@pytest.mark.parametrize("residual", [False, True], ids=["lerp_psa", "residual"])
@pytest.mark.parametrize("F,G,R", LERP_SHAPES)
def test_lerp_nodes_equal_reference_backend_bitwise(F, G, R, residual):
    torch.manual_seed(F + G)
    mod = (ResidualLerpPSA if residual else LerpPSA)(F, grid_size=G, grid_range=R).eval()
    psa = mod.psa if residual else mod
    x = probe_inputs(R, G, F)
    y = run(E.export_activation(mod, kernel_lerp=True), {"x": x.numpy()})
    with torch.no_grad():
        table = psa.compute_table(residual=residual)
        ref = kernels.lerp(x, table, R, impl="reference").numpy()
        module = mod(x).numpy()  # the default (C) backend: equal up to rounding
    assert (~bits_equal(y, ref)).sum() == 0
    fin = np.isfinite(ref)
    assert np.array_equal(np.isnan(y), np.isnan(ref)) and np.isnan(y[np.isnan(x.numpy())]).all()
    np.testing.assert_allclose(y[fin], module[fin], rtol=1e-6, atol=1e-6 * np.abs(ref[fin]).max())
    assert_oracle(y, x, np.linspace(-R, R, G), table)


@pytest.mark.parametrize("residual", [False, True], ids=["lerp_psa", "residual"])
@pytest.mark.parametrize("F,G,R", LERP_SHAPES)
def test_lean_lerp_nodes_equal_reference_backend(F, G, R, residual):
    """The lean lookup (9 nodes, deploy/onnx_export.py lean_lerp_nodes): the same function as
    the reference backend up to fp32 rounding (the intercept form c[j] + u d[j] rounds
    differently, and near a grid point it may read the neighbouring segment, which meets it
    there), NaN where the input is NaN, and against the float64 interpolation."""
    torch.manual_seed(F + G)
    mod = (ResidualLerpPSA if residual else LerpPSA)(F, grid_size=G, grid_range=R).eval()
    psa = mod.psa if residual else mod
    x = probe_inputs(R, G, F)
    proto = E.export_activation(mod)
    assert E.summary(proto)["nodes"] == 9 + 1  # + the Identity naming the output
    y = run(proto, {"x": x.numpy()})
    with torch.no_grad():
        table = psa.compute_table(residual=residual)
        ref = kernels.lerp(x, table, R, impl="reference").numpy()
    assert np.array_equal(np.isnan(y), np.isnan(ref)) and np.isnan(y[np.isnan(x.numpy())]).all()
    fin = np.isfinite(ref)
    assert np.array_equal(np.isinf(y), np.isinf(ref)) and np.array_equal(y[np.isinf(ref)],
                                                                      ref[np.isinf(ref)])
    np.testing.assert_allclose(y[fin], ref[fin], rtol=1e-5, atol=1e-5 * np.abs(ref[fin]).max())
    assert_oracle(y, x, np.linspace(-R, R, G), table)


@pytest.mark.parametrize("as_lerp", [False, True], ids=["kernel_formula", "as_lerp"])
@pytest.mark.parametrize("F,K,R", [(1, 3, 1.0), (7, 65, 4.0), (33, 9, 2.5)])
def test_bspline_nodes_equal_reference_backend(F, K, R, as_lerp):
    """The kernel's formula: bit for bit. As a LERP table: the same function up to rounding."""
    torch.manual_seed(K)
    mod = BSpline(F, size=K, range_=R).eval()
    with torch.no_grad():
        mod.coefficients.add_(torch.randn_like(mod.coefficients))
    x = probe_inputs(R, K, F)
    y = run(E.export_activation(mod, bspline_as_lerp=as_lerp), {"x": x.numpy()})
    with torch.no_grad():
        ref = kernels.bspline(x, mod.coefficients, R, impl="reference").numpy()
    assert np.array_equal(np.isnan(y), np.isnan(ref))
    if not as_lerp:
        assert (~bits_equal(y, ref)).sum() == 0
    fin = np.isfinite(ref)
    np.testing.assert_allclose(y[fin], ref[fin], rtol=1e-6, atol=1e-6 * np.abs(ref[fin]).max())
    assert_oracle(y, x, np.linspace(-R, R, K), mod.coefficients)


def test_a_division_by_the_step_is_caught():
    """The deliberately broken variant: u = (x + R) / step instead of * scale. Off by at most
    one segment near a grid point, so only the bitwise comparison on the division cases sees it."""
    F, G, R = 8, 64, 4.0
    assert len(quotient_differs(R, G)) >= 5  # the inputs that tell the two apart exist
    mod = LerpPSA(F, grid_size=G, grid_range=R).eval()
    proto = E.export_activation(mod, kernel_lerp=True)
    (node,) = [n for n in proto.graph.node if n.name == "act/u"]
    assert node.op_type == "Mul"
    node.op_type = "Div"
    (init,) = [i for i in proto.graph.initializer if i.name == node.input[1]]
    init.CopyFrom(onnx.numpy_helper.from_array(np.array(2 * R / (G - 1), np.float32), init.name))
    x = probe_inputs(R, G, F)
    with torch.no_grad():
        ref = kernels.lerp(x, mod.compute_table(), R, impl="reference").numpy()
    y = run(proto, {"x": x.numpy()})
    assert (~bits_equal(y, ref)).sum() > 0
    np.testing.assert_allclose(y[np.isfinite(ref)], ref[np.isfinite(ref)], rtol=1e-4, atol=1e-4)


# --- whole models --------------------------------------------------------------------------------

def perturbed(model, seed=0):
    """``model`` in eval mode with random BatchNorm statistics and affine parameters, A2
    scales and shifts, and B-spline coefficients, so that every fold and every activation
    does something (a fresh model has identity BatchNorms)."""
    g = torch.Generator().manual_seed(seed)

    def rnd(t, mean, std):
        t.copy_(mean + std * torch.randn(t.shape, generator=g))

    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm):
                rnd(mod.running_mean, 0.0, 0.5)
                mod.running_var.copy_(0.3 + 1.5 * torch.rand(mod.running_var.shape, generator=g))
                rnd(mod.weight, 1.0, 0.3)
                rnd(mod.bias, 0.0, 0.3)
        for name, p in model.named_parameters():
            if "affine_2" in name:
                rnd(p, 0.0, 0.5)
            if name.endswith("coefficients"):
                p.add_(0.3 * torch.randn(p.shape, generator=g))
    return model.eval()


SMALL = {  # odd sizes: embed 24, hidden 18, 2 blocks
    "relu": lambda: build_resmlp("base", 0.75, in_channels=1, embed_dim=24, depth=2),
    "bspline": lambda: build_resmlp("bspline", 0.75, in_channels=3, embed_dim=24, depth=2,
                                    spline_size=9),
    "bspline_as_lerp": lambda: build_resmlp("bspline", 0.75, in_channels=1, embed_dim=24,
                                            depth=2),
    "lerp_psa": lambda: build_resmlp("psa", 0.75, in_channels=1, embed_dim=24, depth=2),
    "lerp_psa_g5": lambda: build_resmlp("psa", 0.75, in_channels=3, embed_dim=24, depth=2,
                                        grid_size=5, grid_range=2.5, expansion=3),
    "resnet20": lambda: build_resnet20(in_channels=3, num_classes=7),
}


def graph_figures(model, proto, images):
    """compare_logits of the graph against the model, and the graph's logits."""
    got = run(proto, {E.INPUT: images.numpy()})
    with torch.no_grad():
        ref = model(images).numpy()
    return compare_logits(ref, got), got


@pytest.mark.parametrize("opset", [17, 18, 26])
@pytest.mark.parametrize("name", list(SMALL))
def test_small_models_match_pytorch(name, opset):
    model = perturbed(SMALL[name]())
    proto = E.export_model(model, opset, bspline_as_lerp=name == "bspline_as_lerp")
    assert [(o.domain, o.version) for o in proto.opset_import] == [("", opset)]
    assert {n.domain for n in proto.graph.node} == {""}, "custom-domain node"
    assert "BatchNormalization" not in {n.op_type for n in proto.graph.node}
    batch = proto.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch.dim_param == E.BATCH and not batch.HasField("dim_value")
    g = torch.Generator().manual_seed(1)
    images = 2.0 * torch.randn(5, model.in_channels, 32, 32, generator=g)  # past the grid too
    figures, logits = graph_figures(model, proto, images)
    assert figures["max_rel_diff"] <= TOL, figures
    assert figures["top1_flips"] == figures["unexplained_flips"] == 0, figures
    one = run(proto, {E.INPUT: images[3:4].numpy()})  # the dynamic batch: one image alone
    np.testing.assert_allclose(one, logits[3:4], rtol=1e-6, atol=1e-6 * np.abs(logits).max())


def test_folds_are_where_documented():
    """ReLU: every BatchNorm and A2 folded (Mul only for the token-mix scale, one per block).
    B-spline and the kernel-exact LERP: the channel BatchNorm kept as Mul + Add in front of the
    first activation. Lean LERP: the BatchNorm in the first lookup's index multiply-add, the
    second lookup's index in the Linear before it: 9 + 7 nodes per MLP."""
    counts = {name: E.summary(E.export_model(SMALL[name]()))["op_types"]
              for name in ("relu", "lerp_psa", "bspline", "resnet20")}
    assert counts["relu"].get("Mul") == 2 and counts["relu"]["MatMul"] == 1 + 2 * 3
    named = [n.name for n in E.export_model(SMALL["lerp_psa"](), kernel_lerp=True).graph.node]
    assert sum(n.endswith(".pre_affine/mul") for n in named) == 2
    lean = E.export_model(SMALL["lerp_psa"]())
    named = [n.name for n in lean.graph.node]
    assert not any("pre_affine" in n for n in named)
    for i in range(2):
        for k, want in ((0, 9), (2, 7)):
            nodes = [n for n in named if n.startswith(f"layers.{i}.channel_mlp.{k}/")]
            assert len(nodes) == want, nodes
    assert counts["lerp_psa"]["GatherElements"] == 2 * 2 * 2
    assert counts["bspline"]["GatherElements"] == 8 and "Gather" not in counts["bspline"]
    assert "Mul" not in counts["resnet20"] and counts["resnet20"]["Conv"] == 19


def test_a_fold_that_drops_the_batchnorm_is_caught(monkeypatch):
    """The deliberately broken variant: the BatchNorm in front of the ReLU MLP not folded."""
    model = perturbed(SMALL["relu"]())
    real = E.fold_into_linear
    monkeypatch.setattr(E, "fold_into_linear",
                        lambda w, b, pre=None, post=None: real(w, b, None, post))
    images = torch.randn(4, 1, 32, 32, generator=torch.Generator().manual_seed(2))
    figures, _ = graph_figures(model, E.export_model(model), images)
    assert figures["max_rel_diff"] > 100 * TOL


def test_nan_pixel_gives_nan_logits_for_that_image_only():
    for name in ("lerp_psa", "bspline", "relu"):
        model = perturbed(SMALL[name]())
        images = torch.randn(3, model.in_channels, 32, 32)
        images[1, 0, 5, 7] = math.nan
        got = run(E.export_model(model), {E.INPUT: images.numpy()})
        with torch.no_grad():
            ref = model(images).numpy()
        assert np.isnan(got[1]).all() and np.isnan(ref[1]).all(), name
        np.testing.assert_allclose(got[[0, 2]], ref[[0, 2]], rtol=1e-5, atol=1e-5)


def test_authors_fixtures_logits():
    """The graphs of the authors' LERP-PSA h = 1 ResMLP and ResNet-20 against the eval
    logits their code computed (tolerances as tests/test_models.py and tests/test_resnet.py)."""
    for fixture, atol, rtol in (("authors_psa_h1.pt", 1e-5, 1e-5),
                                ("authors_resnet20.pt", 1e-4, 1e-5)):
        d = torch.load(os.path.join(FIXTURES, fixture), weights_only=True)
        model = build_from_checkpoint(d["state_dict"]).eval()
        got = run(E.export_model(model), {E.INPUT: d["x"].numpy()})
        np.testing.assert_allclose(got, d["logits_eval"].numpy(), atol=atol, rtol=rtol)


# --- the 13 shipped checkpoints -------------------------------------------------------------------

SHIPPED = [("teacher", M.teacher_path(MODEL_ROOT))] + [
    (f"{a.act}_h{experiments.fmt_h(h)}", M.checkpoint(MODEL_ROOT, a.act, h))
    for a in M.activations for h in M.hs]


@pytest.fixture(scope="module")
def fmnist_1000():
    need_path(FMNIST, "the Fashion-MNIST data set", FMNIST_HOW)
    return check_images(1, 1000)


# The teacher always; the 12 students once the main folder ships any of them (then every one
# must be there). While they are being retrained the folder holds none.
STUDENTS_SHIPPED = any(os.path.isfile(p) for n, p in SHIPPED if n != "teacher")


@pytest.mark.parametrize("name,path", [
    pytest.param(n, p, marks=pytest.mark.skipif(
        n != "teacher" and not STUDENTS_SHIPPED,
        reason=f"no student checkpoint in {os.path.relpath(MODEL_ROOT, ROOT)}"))
    for n, p in SHIPPED], ids=[n for n, _ in SHIPPED])
def test_shipped_checkpoint_on_1000_test_images(name, path, fmnist_1000):
    need_path(path, f"the shipped checkpoint {os.path.relpath(path, ROOT)}",
              "git checkout it (or retrain: scripts/run_fashion_mnist_repro.sh)")
    images, labels, data = fmnist_1000
    assert data == "fashion-mnist" and len(images) == 1000
    model = build_from_checkpoint(path).eval()
    figures = compare(model, make_session(E.export_model(model)), images, labels)
    print(f"{name}: {json.dumps(figures)}")
    assert figures["max_rel_diff"] <= TOL, figures
    # A flip is allowed only at a near tie: the PyTorch margin between the two classes is below
    # twice the image's largest logit difference (compare_logits counts the others).
    assert figures["unexplained_flips"] == 0, figures
    assert abs(figures["accuracy_onnx"] - figures["accuracy_torch"]) <= figures["top1_flips"] / 10


# --- the command line ---------------------------------------------------------------------------

def test_cli_writes_graph_checks_and_ends_with_json(tmp_path, capsys):
    out = tmp_path / "sub" / "resnet.onnx"
    ckpt = os.path.join(FIXTURES, "authors_resnet20.pt")
    assert export_onnx.main(["--checkpoint", ckpt, "--out", str(out), "--opset", "18",
                             "--check", "40"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    result = json.loads(lines[-1])
    assert lines[0].startswith(f"wrote {out}") and "check on 40 synthetic images" in lines[1]
    loaded = onnx.load(str(out))
    assert result["out"] == str(out) and result["opset"] == 18
    assert result["nodes"] == len(loaded.graph.node)
    assert sum(result["op_types"].values()) == result["nodes"]
    assert result["check"]["images"] == 40 and result["check"]["max_rel_diff"] <= TOL
    assert result["parameters"] == 269722
    assert [f for f in os.listdir(out.parent)] == ["resnet.onnx"], "no temporary file left"


def test_cli_fashion_mnist_check(tmp_path, capsys):
    need_path(FMNIST, "the Fashion-MNIST data set", FMNIST_HOW)
    ckpt = tmp_path / "psa.bin"
    from models import save_checkpoint
    save_checkpoint(perturbed(build_resmlp("psa", 0.25, in_channels=1)), ckpt)
    assert export_onnx.main(["--checkpoint", str(ckpt), "--out", str(tmp_path / "m.onnx"),
                             "--check", "64"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    check = result["check"]
    assert check["data"] == "fashion-mnist" and check["images"] == 64
    assert check["max_rel_diff"] <= TOL and "accuracy_onnx" in check


def _bad_state_dict(tmp_path):
    p = tmp_path / "other.bin"
    torch.save({"encoder.weight": torch.zeros(3, 3)}, p)
    return str(p)


def _garbage(tmp_path):
    p = tmp_path / "garbage.bin"
    p.write_bytes(b"not a checkpoint at all")
    return str(p)


BAD = {
    "missing file": (lambda t: ["--checkpoint", str(t / "nope.bin")], "checkpoint file not found"),
    "not a checkpoint": (lambda t: ["--checkpoint", _garbage(t)], "corrupt or not a PyTorch"),
    "unknown architecture": (lambda t: ["--checkpoint", _bad_state_dict(t)],
                             "neither a ResMLP"),
    "old opset": (lambda t: ["--checkpoint", os.path.join(FIXTURES, "authors_resnet20.pt"),
                             "--opset", "12"], "opset 12 is outside 17.."),
    "negative check": (lambda t: ["--checkpoint", os.path.join(FIXTURES, "authors_resnet20.pt"),
                                  "--check", "-3"], "--check must be 0 or a positive"),
    "wrong check data": (lambda t: ["--checkpoint", os.path.join(FIXTURES, "authors_resnet20.pt"),
                                    "--check", "3", "--check-data", "fashion-mnist"],
                         "pass --check-data synthetic"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_cli_bad_input_is_one_line_and_writes_nothing(case, tmp_path, capsys):
    args, words = BAD[case]
    out = tmp_path / "model.onnx"
    assert export_onnx.main(args(tmp_path) + ["--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("export_onnx.py: error: ") and words in err, err
    assert not out.exists()
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]


def test_cli_out_is_a_folder(tmp_path, capsys):
    ckpt = os.path.join(FIXTURES, "authors_resnet20.pt")
    assert export_onnx.main(["--checkpoint", ckpt, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is a folder" in err


# --- the benchmark script runs (a smoke test: no timing is asserted) ------------------------------

def test_bench_onnx_runs_and_reports_every_pair(tmp_path, capsys):
    need_path(FMNIST, "the Fashion-MNIST data set", FMNIST_HOW)
    import bench_onnx
    from models import save_checkpoint
    for _, act, h in bench_onnx.MODELS:
        save_checkpoint(perturbed(build_resmlp(act, h, in_channels=1, embed_dim=24, depth=1)),
                        M.checkpoint(str(tmp_path), act, h))
    from fpga.int_resmlp import random_params, save_params
    for k, (_, act, h) in enumerate(bench_onnx.INT8_MODELS):
        path = bench_onnx.int8_dump(str(tmp_path), act, h)
        os.makedirs(os.path.dirname(path))
        save_params(path, *random_params(act, int(24 * h), channels=24, depth=1, seed=k))
    assert bench_onnx.main(["--model-root", str(tmp_path), "--threads", "1", "--batches", "1",
                            "3", "--repeats", "2", "--min-time", "0.001", "--warmup", "1",
                            "--accuracy-images", "20", "--bspline-as-lerp", "--kernel-lerp",
                            "--out", str(tmp_path / "b.json")]) == 0
    out = capsys.readouterr().out
    result = json.loads(out.strip().splitlines()[-1])
    assert result == json.loads((tmp_path / "b.json").read_text())
    names = ["ReLU h = 2", "ReLU h = 1", "LERP-PSA h = 1", "LERP-PSA h = 1 (kernel LERP)",
             "B-spline h = 1", "B-spline h = 1 (as LERP)"]
    int8 = [n for n, _, _ in bench_onnx.INT8_MODELS]
    assert list(result["models"]) == names + int8
    pairs = {(t["model"], t["engine"], t["threads"], t["batch"]) for t in result["timings"]}
    assert pairs == {(n, e, 1, b) for n in names for e in bench_onnx.ENGINES for b in (1, 3)} | {
        (n, "onnxruntime", 1, b) for n in int8 for b in (1, 3)}
    assert all(result["models"][n]["check_differing_logits"] == 0 for n in int8)
    assert {(c["reference"], c["batch"]) for c in result["int8_claim"]} == {
        (r, b) for _, r in bench_onnx.INT8_CLAIMS for b in (1, 3)}
    assert "| 1 | 3 | INT8 LERP-PSA h = 1 |" in out
    assert all(t["latency_ms"] > 0 and t["images_per_s"] > 0 for t in result["timings"])
    assert all(i["check_max_rel_diff"] <= TOL and 0 <= i["accuracy_onnx"] <= 100
               for n, i in result["models"].items() if n not in int8)
    assert {(c["engine"], c["batch"]) for c in result["claim"]} == {
        (e, b) for e in bench_onnx.ENGINES for b in (1, 3)}
    assert "| 1 | 3 | LERP-PSA h = 1 |" in out


def test_bench_onnx_missing_models_is_one_line(tmp_path, capsys):
    import bench_onnx
    assert bench_onnx.main(["--model-root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "missing 4 checkpoint(s)" in err


@pytest.mark.parametrize("missing", ["onnx", "onnxruntime"])
def test_cli_without_the_deploy_packages_names_the_install(missing, tmp_path, capsys,
                                                            monkeypatch):
    monkeypatch.setitem(sys.modules, missing, None)  # import fails as if not installed
    out = tmp_path / "m.onnx"
    assert export_onnx.main(["--checkpoint", os.path.join(FIXTURES, "authors_resnet20.pt"),
                             "--out", str(out), "--check", "4"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"the {missing} package is not installed" in err
    assert "pip install -r requirements-deploy.txt" in err and not out.exists()
