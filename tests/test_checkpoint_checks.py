"""Every check of ``models.load_checkpoint``, each with its one-line message.

A checkpoint that does not fit the model must be refused with one line that names the
problem and the fix, never loaded silently and never left to a torch ``RuntimeError`` from
``load_state_dict``. The settings (activation, hidden size, channels, classes, embed dim and
blocks, PSA expansion, grid size, grid range, spline size) are compared first, from block 0;
the derived buffers and the shape of every tensor of every block are checked after.
"""
import re

import pytest
import torch

import errors
from models import (CheckpointError, build_from_checkpoint, build_resmlp, describe_checkpoint,
                    export_authors_state_dict, load_checkpoint)

SMALL = dict(embed_dim=32, depth=2)  # two blocks: block 1 is read by no settings check
# Tensors whose shapes the settings checks read (block 0's MLP, the embedding, the classifier,
# block 0's token-mixing Linear): a change there is reported as a setting.
SETTINGS_KEYS = re.compile(r"^(embed_linear\.weight|classifier\.weight|"
                           r"layers\.0\.layers\.0\.layers\.weight|"
                           r"layers\.0\.layers\.1\.layers\.[0-3]\.(weight|_coefficients_vect|"
                           r"psa\.(v_weight|grid)))$")


def refused(model, sd, pattern):
    """Loading must fail with one line matching ``pattern`` in full, leaving the model as it was."""
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(model, sd)
    msg = str(info.value)
    assert isinstance(info.value, errors.UserError)
    assert "\n" not in msg, msg
    assert re.fullmatch(pattern, msg), f"message {msg!r} does not match {pattern!r}"
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), f"{k} changed by a refused load"
    return msg


def grown(t):
    """``t`` with one more entry along its first dimension (a 0-d tensor becomes (1,))."""
    return t.reshape(1) if t.dim() == 0 else torch.cat([t, t[:1]])


def perturbed(model):
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    return model


@pytest.fixture(scope="module", params=["base", "bspline", "psa"])
def case(request):
    torch.manual_seed(0)
    model = build_resmlp(request.param, 1.0, **SMALL)
    return model, export_authors_state_dict(perturbed(build_resmlp(request.param, 1.0, **SMALL)))


def test_every_tensor_shape_is_checked(case):
    """Each tensor outside the settings keys, grown by one entry, is named in the error."""
    model, sd = case
    keys = [k for k in sd if not SETTINGS_KEYS.match(k)]
    assert any(k.startswith("layers.1.") for k in keys) and "affine.bn.num_batches_tracked" in keys
    for key in keys:
        bad = dict(sd)
        bad[key] = grown(sd[key])
        shape, want = tuple(bad[key].shape), tuple(sd[key].shape)
        k = re.escape(key)
        if key.endswith("._coefficients_vect"):
            size = sd[key].numel()
            pattern = (rf"checkpoint tensor {k} has {size + 1} coefficients, the model expects "
                       rf"\d+ x 65; pass the spline size the checkpoint was made with")
        elif key.endswith((".psa.grid", ".psa.grid_ifeat_offset")):
            pattern = (rf"checkpoint tensor {k} has shape {re.escape(str(shape))} but the model "
                       rf"expects {re.escape(str(want))} \(a grid of 64 points over \d+ "
                       r"features\); pass the grid size the checkpoint was made with")
        else:
            pattern = (rf"checkpoint tensor {k} has shape {re.escape(str(shape))}, the model "
                       rf"expects {re.escape(str(want))}")
        refused(model, bad, pattern)


def test_settings_tensors_damaged_are_one_line(case):
    """The tensors the settings are read from, damaged, still give one line (a setting)."""
    model, sd = case
    for key in [k for k in sd if SETTINGS_KEYS.match(k)]:
        bad = dict(sd)
        bad[key] = grown(sd[key])
        refused(model, bad, r"checkpoint .*")


def test_the_good_file_loads_exactly(case):
    model, sd = case
    fresh = build_resmlp(model.act, 1.0, **SMALL)
    load_checkpoint(fresh, sd)
    assert all(torch.equal(export_authors_state_dict(fresh)[k], v) for k, v in sd.items())


# --- each setting ------------------------------------------------------------------------------

def file_of(act, h=1.0, **kw):
    return export_authors_state_dict(perturbed(build_resmlp(act, h, **kw)))


def test_activation():
    refused(build_resmlp("psa", 1.0, **SMALL), file_of("bspline", **SMALL),
            r"checkpoint holds a 'bspline' model but the flags ask for 'psa'; pass "
            r"--student-nl-act bspline \(or --teacher-nl-act\) or pick the right file")


def test_hidden_factor():
    refused(build_resmlp("base", 1.0, **SMALL), file_of("base", 0.5, **SMALL),
            r"checkpoint holds hidden factor 0\.5 \(hidden 16\) but the model was built with "
            r"hidden factor 1 \(hidden 32\); pass --student-hidden-factor 0\.5 "
            r"\(or --teacher-hidden-factor\)")


def test_channels_and_classes():
    refused(build_resmlp("base", 1.0, **SMALL), file_of("base", in_channels=1, **SMALL),
            r"checkpoint expects 1-channel images but the model takes 3; pick the --dataset it "
            r"was trained on")
    refused(build_resmlp("base", 1.0, **SMALL), file_of("base", num_classes=4, **SMALL),
            r"checkpoint has 4 classes but the model 10; pick the --dataset it was trained on")


def test_embed_dim_and_depth():
    msg = (r"checkpoint holds a ResMLP with embed dim 64, 2 blocks and 64 tokens but the model "
           r"has embed dim 32, 2 blocks and 64 tokens; pick the --dataset it was trained on "
           r"\(SVHN: embed 64, 2 blocks\)")
    refused(build_resmlp("base", 1.0, **SMALL), file_of("base", embed_dim=64, depth=2), msg)
    refused(build_resmlp("base", 1.0, **SMALL), file_of("base", embed_dim=32, depth=3),
            r"checkpoint holds a ResMLP with embed dim 32, 3 blocks .* 2 blocks and 64 tokens; .*")


def test_expansion():
    refused(build_resmlp("psa", 1.0, **SMALL), file_of("psa", expansion=4, **SMALL),
            r"checkpoint holds LERP-PSA expansion 4 but the model was built with 8; pass "
            r"--psa-expansion 4")


def test_grid_size():
    refused(build_resmlp("psa", 1.0, **SMALL), file_of("psa", grid_size=32, **SMALL),
            r"checkpoint holds a LERP-PSA grid of 32 points but the model was built with 64; "
            r"pass --grid-size 32")


@pytest.mark.parametrize("file_r,model_r", [(8.0, 4.0), (4.0, 8.0), (4.0, 3.5)])
def test_grid_range(file_r, model_r):
    """A file trained on [-8, 8] must never load silently into a [-4, 4] model (same shapes)."""
    refused(build_resmlp("psa", 1.0, grid_range=model_r, **SMALL),
            file_of("psa", grid_range=file_r, **SMALL),
            rf"checkpoint holds a LERP-PSA grid over \[-{file_r:g}, {file_r:g}\] but the model "
            rf"was built for \[-{model_r:g}, {model_r:g}\]; pass --grid-range {file_r:g}")


def test_grid_range_of_a_later_block():
    """Block 1's grid alone changed: the per-layer buffer check catches it."""
    sd = file_of("psa", **SMALL)
    key = "layers.1.layers.1.layers.2.psa.grid"
    sd[key] = sd[key] * 2
    refused(build_resmlp("psa", 1.0, **SMALL), sd,
            rf"checkpoint tensor {re.escape(key)} does not match a 64-point grid over "
            r"\[-4, 4\]; pass the grid range it was made with")


def test_spline_size():
    refused(build_resmlp("bspline", 1.0, **SMALL), file_of("bspline", spline_size=33, **SMALL),
            r"checkpoint holds B-splines of 33 coefficients but the model was built with 65; "
            r"pass --spline-size 33")


def test_missing_and_unexpected_keys():
    sd = file_of("base", **SMALL)
    del sd["layers.1.layers.0.affine_2.bias"]
    refused(build_resmlp("base", 1.0, **SMALL), sd,
            r"checkpoint does not fit the model: missing 1 key\(s\), first "
            r"layers\.1\.layers\.0\.affine_2\.bias")
    sd = file_of("base", **SMALL)
    sd["layers.1.extra"] = torch.zeros(3)
    refused(build_resmlp("base", 1.0, **SMALL), sd,
            r"checkpoint does not fit the model: unexpected 1 key\(s\), first layers\.1\.extra")


# --- build_from_checkpoint: flags given are checked against the file ----------------------------

def test_build_from_checkpoint_checks_given_flags(tmp_path):
    path = tmp_path / "m.bin"
    torch.save(file_of("psa", 0.5, grid_size=32, grid_range=8.0, expansion=4, **SMALL), path)
    info = describe_checkpoint(path)
    assert (info["grid_size"], info["grid_range"], info["expansion"]) == (32, 8.0, 4)
    build_from_checkpoint(path, act="lerp_psa", hidden_factor=0.5, grid_size=32, grid_range=8,
                          expansion=4, in_channels=3, num_classes=10, resnet=False)
    with pytest.raises(CheckpointError, match=r"^checkpoint holds a 'psa' model but the flags ask "
                                              r"for 'base'; pass --teacher-nl-act psa"):
        build_from_checkpoint(path, act="relu", role="teacher")
    with pytest.raises(CheckpointError, match=r"^checkpoint holds hidden factor 0\.5 \(hidden 16\) "
                                              r"but the model was built with hidden factor 1 "):
        build_from_checkpoint(path, hidden_factor=1)
    with pytest.raises(CheckpointError, match=r"^checkpoint holds a LERP-PSA grid of 32 points"):
        build_from_checkpoint(path, grid_size=64)
    with pytest.raises(CheckpointError, match=r"^checkpoint holds a LERP-PSA grid over \[-8, 8\] "
                                              r"but the model was built for \[-4, 4\]"):
        build_from_checkpoint(path, grid_range=4)
    with pytest.raises(CheckpointError, match=r"^checkpoint holds LERP-PSA expansion 4"):
        build_from_checkpoint(path, expansion=8)
    with pytest.raises(CheckpointError, match=r"^checkpoint expects 3-channel images but the "
                                              r"model takes 1"):
        build_from_checkpoint(path, in_channels=1)
    with pytest.raises(CheckpointError, match=r"^checkpoint holds a ResMLP but the model is a "
                                              r"ResNet-20; drop --student-resnet"):
        build_from_checkpoint(path, resnet=True)
    with pytest.raises(CheckpointError, match=r"^checkpoint holds a ResMLP with embed dim 32, 2 "
                                              r"blocks and 64 tokens but the model has embed dim "
                                              r"64, 2 blocks"):
        build_from_checkpoint(path, embed_dim=64, depth=2)


@pytest.mark.parametrize("wrap", [
    lambda sd: {"model": sd},
    lambda sd: {"state_dict": sd, "epoch": 7, "best_acc": 85.5},
    lambda sd: {"model_state_dict": sd, "optimizer_state_dict": {"state": {}, "param_groups": []}},
    lambda sd: {"module." + k: v for k, v in sd.items()},                    # DistributedDataParallel
    lambda sd: {"_orig_mod." + k: v for k, v in sd.items()},                 # torch.compile
    lambda sd: {"model": {"_orig_mod.module." + k: v for k, v in sd.items()}},
], ids=["model", "state_dict", "model_state_dict", "ddp", "compile", "nested"])
def test_foreign_containers_and_wrapper_prefixes_are_unwrapped(tmp_path, wrap):
    from models import save_checkpoint
    torch.manual_seed(0)
    model = build_resmlp("psa", 0.5, **SMALL)
    path = tmp_path / "ours.bin"
    save_checkpoint(model, str(path))
    sd = torch.load(path, weights_only=True)
    foreign = tmp_path / "foreign.bin"
    torch.save(wrap(sd), foreign)
    built = build_from_checkpoint(str(foreign))
    assert built.act == "psa" and built.hidden_factor == 0.5
    # and straight into a model built by hand (the file is read and unwrapped once)
    loaded = load_checkpoint(build_resmlp("psa", 0.5, **SMALL), str(foreign))
    ours = model.state_dict()
    for m in (built, loaded):
        for k, v in m.state_dict().items():
            assert torch.equal(v, ours[k]), k


def test_a_container_without_a_state_dict_is_one_line(tmp_path):
    path = tmp_path / "opt.bin"
    torch.save({"optimizer": {"state": {}}, "epoch": 3}, path)
    with pytest.raises(CheckpointError, match="does not hold a state_dict of tensors"):
        build_from_checkpoint(str(path))
