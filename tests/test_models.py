"""ResMLP structure, the authors' conformance fixture, checkpoint exchange and errors."""
import os

import pytest
import torch

import errors
from models import (CheckpointError, ModelConfigError, UnknownActivationError, atomic_torch_save,
                    build_from_checkpoint, build_resmlp, describe_checkpoint, describe_model,
                    export_authors_state_dict, load_checkpoint, save_checkpoint)

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "authors_psa_h1.pt")
FACTORS = [2.0, 1.0, 0.5, 0.25]


@pytest.mark.parametrize("act", ["base", "bspline", "psa"])
@pytest.mark.parametrize("h", FACTORS)
def test_shapes(act, h):
    m = build_resmlp(act, h)
    out = m(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10)
    H = int(96 * h)
    mlp = m.layers[0].layers[1].layers
    if act == "base":
        assert mlp[0].weight.shape == (H, 96) and mlp[2].weight.shape == (96, H)
    else:
        assert mlp[1].weight.shape == (H, 96) and mlp[3].weight.shape == (96, H)
        assert mlp[0].num_features == 96 and mlp[2].num_features == H
    info = describe_checkpoint(export_authors_state_dict(m))
    assert (info["act"], info["hidden"], info["hidden_factor"]) == (act, H, H / 96)


def test_aliases_and_unknown_activation():
    assert build_resmlp("relu", 1).act == "base"
    assert build_resmlp("lerp_psa", 1).act == "psa"
    with pytest.raises(UnknownActivationError, match="unknown activation 'gelu'"):
        build_resmlp("gelu", 1)


def test_patch_order():
    """Value index inside a token is (r * p + c) * C + channel, tokens row-major."""
    m = build_resmlp("base", 1)
    x = torch.randn(1, 3, 32, 32)
    tokens = m.patchify(x)
    p = 4
    for tok in (0, 9, 63):
        gy, gx = divmod(tok, 8)
        for r in range(p):
            for c in range(p):
                for ch in range(3):
                    assert tokens[0, tok, (r * p + c) * 3 + ch] == x[0, ch, gy * p + r, gx * p + c]


def test_one_channel_model():
    m = build_resmlp("psa", 0.25, in_channels=1)
    assert m(torch.randn(2, 1, 32, 32)).shape == (2, 10)
    assert m.embed_linear.weight.shape == (96, 16)


# --- conformance with the authors' code ------------------------------------------------------

@pytest.fixture(scope="module")
def authors():
    return torch.load(FIXTURE, weights_only=True)


def test_authors_fixture_eval_logits(authors):
    m = load_checkpoint(build_resmlp("psa", 1.0), authors["state_dict"]).eval()
    with torch.no_grad():
        torch.testing.assert_close(m(authors["x"]), authors["logits_eval"], atol=1e-5, rtol=1e-5)


def test_authors_fixture_train_logits_and_every_gradient(authors):
    m = load_checkpoint(build_resmlp("psa", 1.0), authors["state_dict"]).train()
    logits = m(authors["x"])
    torch.testing.assert_close(logits, authors["logits_train"], atol=1e-5, rtol=1e-5)
    (logits * authors["r"]).sum().backward()
    params = dict(m.named_parameters())
    assert set(params) == set(authors["grads"]), "parameter names must match the authors'"
    # Gradients that are exactly zero in real arithmetic (biases before a train-mode
    # BatchNorm; float64 gives < 1e-14) are float32 rounding noise on both sides: about 2e-7
    # in the authors' (B, D, N) BatchNorm, up to 4.3e-6 in the channels-last (B * N, D) kernels
    # that models.TokenBatchNorm uses, which sum in another order. atol 6e-6 is 1.2e-6 of the
    # largest gradient of this model (5.0): a float32 rounding, far below any real difference
    # (test_token_batchnorm_matches_transposed_batchnorm checks the layer in float64).
    for name, ref in authors["grads"].items():
        torch.testing.assert_close(params[name].grad, ref, atol=6e-6, rtol=1e-4, msg=f"grad {name}")


def test_authors_layout_round_trip_is_exact(authors):
    m = load_checkpoint(build_resmlp("psa", 1.0), authors["state_dict"])
    out = export_authors_state_dict(m)
    assert list(out) == list(authors["state_dict"])
    for k, v in authors["state_dict"].items():
        assert out[k].dtype == v.dtype and torch.equal(out[k], v), k


def test_authors_file_rebuilds_from_itself(authors):
    info = describe_checkpoint(authors["state_dict"])
    assert {k: info[k] for k in ("arch", "act", "hidden_factor", "embed_dim", "depth",
                                 "in_channels", "num_classes", "expansion", "grid_size",
                                 "grid_range", "layout")} == dict(
        arch="resmlp", act="psa", hidden_factor=1.0, embed_dim=96, depth=4, in_channels=3,
        num_classes=10, expansion=8, grid_size=64, grid_range=4.0, layout="authors")
    m = build_from_checkpoint(authors["state_dict"]).eval()
    with torch.no_grad():
        torch.testing.assert_close(m(authors["x"]), authors["logits_eval"], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("act", ["base", "bspline", "psa"])
def test_exchange_both_ways(act, tmp_path):
    a = build_resmlp(act, 0.5)
    with torch.no_grad():
        for p in a.parameters():
            p.add_(0.05 * torch.randn_like(p))
    path = tmp_path / "m.bin"
    save_checkpoint(a, path)
    sd = torch.load(path, weights_only=True)
    if act == "bspline":
        assert sd["layers.0.layers.1.layers.0._coefficients_vect"].shape == (96 * 65,)
    if act == "psa":
        assert sd["layers.2.layers.1.layers.2.psa.grid"].shape == (64, 48)
        assert torch.equal(sd["layers.2.layers.1.layers.2.psa.grid_ifeat_offset"],
                           torch.arange(48).unsqueeze(0) * 64)
    b = build_from_checkpoint(path)
    c = load_checkpoint(build_resmlp(act, 0.5), a.state_dict())  # native layout too
    x = torch.randn(2, 3, 32, 32)
    a.eval(), b.eval(), c.eval()
    with torch.no_grad():
        torch.testing.assert_close(b(x), a(x), atol=0, rtol=0)
        torch.testing.assert_close(c(x), a(x), atol=0, rtol=0)


# --- checkpoints define their model -----------------------------------------------------------

REBUILD_CASES = [
    # the SVHN teacher's shape
    ("base", 4.0, dict(embed_dim=64, depth=2),
     dict(hidden=256, hidden_factor=4.0, embed_dim=64, depth=2, in_channels=3, num_classes=10)),
    ("psa", 0.25, dict(in_channels=1, grid_size=32, grid_range=8.0, expansion=4),
     dict(hidden=24, hidden_factor=0.25, embed_dim=96, depth=4, in_channels=1, num_classes=10,
          expansion=4, grid_size=32, grid_range=8.0)),
    ("bspline", 0.5, dict(embed_dim=64, depth=2, num_classes=7, spline_size=33),
     dict(hidden=32, hidden_factor=0.5, embed_dim=64, depth=2, in_channels=3, num_classes=7,
          spline_size=33, spline_range=None)),
    ("base", 1.0, dict(patch_size=8),
     dict(hidden=96, hidden_factor=1.0, embed_dim=96, depth=4, in_channels=3, num_classes=10,
          patch_size=8, num_patches=16)),
]


@pytest.mark.parametrize("act,h,kw,expect", REBUILD_CASES)
def test_describe_and_rebuild_from_the_file_alone(act, h, kw, expect, tmp_path):
    torch.manual_seed(0)
    a = build_resmlp(act, h, **kw)
    with torch.no_grad():
        for p in a.parameters():
            p.add_(0.05 * torch.randn_like(p))
    path = tmp_path / "m.bin"
    save_checkpoint(a, path)
    info = describe_checkpoint(path)
    full = dict(arch="resmlp", act=act, img_size=32, patch_size=4, num_patches=64,
                layout="authors")
    full.update(expect)
    assert {k: info[k] for k in full} == full
    b = build_from_checkpoint(path)
    assert describe_model(b) == describe_model(a)
    x = torch.randn(2, kw.get("in_channels", 3), 32, 32)
    a.eval(), b.eval()
    with torch.no_grad():
        torch.testing.assert_close(b(x), a(x), atol=0, rtol=0)


def test_native_layout_does_not_know_the_grid():
    sd = build_resmlp("psa", 1.0, grid_size=32).state_dict()
    info = describe_checkpoint(sd)
    assert (info["layout"], info["grid_size"], info["grid_range"]) == ("native", None, None)
    # never built silently with the default grid: refused, naming the flags and an example
    with pytest.raises(CheckpointError, match=r"does not store its grid size and grid range "
                       r".*e\.g\. --grid-size 64 --grid-range 4 \(the defaults\)$"):
        build_from_checkpoint(sd)
    with pytest.raises(CheckpointError, match=r"its grid range .*e\.g\. --grid-range 4 "):
        build_from_checkpoint(sd, grid_size=32)
    m = build_from_checkpoint(sd, grid_size=32, grid_range=4.0)  # the flags supply what it lacks
    assert m.layers[0].layers[1].layers[0].psa.grid_size == 32


def test_not_a_model_file():
    with pytest.raises(CheckpointError, match="neither a ResMLP state_dict .* nor a ResNet-20"):
        describe_checkpoint({"foo.weight": torch.zeros(2)})


def test_error_classes_are_user_errors_and_keep_their_base():
    for cls in (CheckpointError, UnknownActivationError, ModelConfigError):
        assert issubclass(cls, errors.UserError) and issubclass(cls, ValueError)
    with pytest.raises(ModelConfigError, match="hidden factor 0.001 gives an empty hidden layer"):
        build_resmlp("base", 0.001)


# --- errors -----------------------------------------------------------------------------------

def test_wrong_hidden_factor_says_which(tmp_path):
    p = tmp_path / "m.bin"
    save_checkpoint(build_resmlp("psa", 0.5), p)
    with pytest.raises(CheckpointError, match=r"holds hidden factor 0.5 .*--student-hidden-factor 0.5"):
        load_checkpoint(build_resmlp("psa", 1.0), p)


def test_wrong_activation(tmp_path):
    p = tmp_path / "m.bin"
    save_checkpoint(build_resmlp("bspline", 1.0), p)
    with pytest.raises(CheckpointError, match="holds a 'bspline' model but the flags ask for 'psa'"):
        load_checkpoint(build_resmlp("psa", 1.0), p)


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(CheckpointError, match="not found: .*nope.bin"):
        load_checkpoint(build_resmlp("base", 1.0), tmp_path / "nope.bin")
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="bad.bin is corrupt"):
        load_checkpoint(build_resmlp("base", 1.0), bad)
    good = tmp_path / "good.bin"
    save_checkpoint(build_resmlp("base", 1.0), good)
    trunc = tmp_path / "trunc.bin"
    trunc.write_bytes(good.read_bytes()[:2000])
    with pytest.raises(CheckpointError, match="trunc.bin is corrupt"):
        load_checkpoint(build_resmlp("base", 1.0), trunc)


def test_grid_size_mismatch(tmp_path):
    p = tmp_path / "m.bin"
    save_checkpoint(build_resmlp("psa", 1.0, grid_size=32), p)
    with pytest.raises(CheckpointError, match="holds a LERP-PSA grid of 32 points but the model "
                                              "was built with 64; pass --grid-size 32"):
        load_checkpoint(build_resmlp("psa", 1.0), p)


def test_unexpected_key_is_refused():
    sd = export_authors_state_dict(build_resmlp("base", 1.0))
    sd["extra.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError, match="unexpected 1 key"):
        load_checkpoint(build_resmlp("base", 1.0), sd)


def test_atomic_save_leaves_nothing_half_written(tmp_path, monkeypatch):
    target = tmp_path / "out.bin"
    save_checkpoint(build_resmlp("base", 0.25), target)
    before = target.read_bytes()

    def broken_save(obj, f):
        f.write(b"partial")
        raise OSError("disk full")
    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError):
        atomic_torch_save({"a": torch.zeros(1)}, target)
    assert target.read_bytes() == before, "the previous file must survive"
    assert sorted(os.listdir(tmp_path)) == ["out.bin"], "no temporary file may remain"
