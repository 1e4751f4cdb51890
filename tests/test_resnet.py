"""ResNet-20 (the teacher of the authors' chain): structure and conformance with the authors'
code (tests/fixtures/authors_resnet20.pt, made with their model: ``state_dict``, input ``x``,
eval-mode logits, train-mode logits and the gradient of ``sum(logits_train * r)`` for every
parameter)."""
import os

import pytest
import torch

from models import (CheckpointError, build_from_checkpoint, build_resmlp, build_resnet20,
                    describe_checkpoint, load_checkpoint, save_checkpoint)

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "authors_resnet20.pt")


@pytest.fixture(scope="module")
def authors():
    return torch.load(FIXTURE, weights_only=True)


def test_structure_and_keys(authors):
    m = build_resnet20()
    assert list(m.state_dict()) == list(authors["state_dict"]), "keys and order as the authors'"
    for k, v in m.state_dict().items():
        assert v.shape == authors["state_dict"][k].shape, k
    # 0.27 M parameters (He et al. 2016, table 6): convolutions have no bias, option-A
    # shortcuts have no parameters.
    assert sum(p.numel() for p in m.parameters()) == 269722


def test_option_a_shortcut_is_subsample_and_symmetric_zero_padding():
    block = build_resnet20().layer2[0]
    x = torch.randn(2, 16, 8, 8)
    s = block.shortcut(x)
    assert s.shape == (2, 32, 4, 4)
    assert torch.equal(s[:, 8:24], x[:, :, ::2, ::2])
    assert not s[:, :8].any() and not s[:, 24:].any()


def test_eval_logits_match_authors(authors):
    m = load_checkpoint(build_resnet20(), authors["state_dict"]).eval()
    with torch.no_grad():
        out = m(authors["x"])
    # |logits| reach ~96 here (running statistics far from the batch's): float32
    # rounding of that size is ~1e-5 absolute; seen: 3.1e-5.
    torch.testing.assert_close(out, authors["logits_eval"], atol=1e-4, rtol=1e-5)


def test_train_logits_and_every_gradient_match_authors(authors):
    m = load_checkpoint(build_resnet20(), authors["state_dict"]).train()
    logits = m(authors["x"])
    torch.testing.assert_close(logits, authors["logits_train"], atol=1e-5, rtol=1e-5)
    (logits * authors["r"]).sum().backward()
    params = dict(m.named_parameters())
    assert set(params) == set(authors["grads"]), "parameter names must match the authors'"
    for name, ref in authors["grads"].items():
        # Summation-order rounding: scale the absolute tolerance to the tensor (seen: at most
        # 4e-6 of the largest entry; 2e-5 absolute on layer1.0.conv1.weight).
        scale = float(ref.abs().max())
        torch.testing.assert_close(params[name].grad, ref, atol=2e-5 * scale, rtol=1e-4,
                                   msg=lambda m, name=name: f"grad {name}: {m}")


def test_one_channel_input_and_other_class_count(tmp_path):
    m = build_resnet20(in_channels=1, num_classes=7)
    assert m.conv1.weight.shape == (16, 1, 3, 3) and m.linear.weight.shape == (7, 64)
    out = m(torch.randn(3, 1, 32, 32))
    assert out.shape == (3, 7)
    out.sum().backward()
    assert all(p.grad is not None for p in m.parameters())
    path = tmp_path / "r.bin"
    save_checkpoint(m, path)
    assert describe_checkpoint(path) == dict(arch="resnet20", in_channels=1, num_classes=7)
    with pytest.raises(CheckpointError, match=r"^checkpoint expects 1-channel images but the "
                                              r"model takes 3; pick the --dataset"):
        load_checkpoint(build_resnet20(), path)


def test_build_from_checkpoint_round_trip(authors, tmp_path):
    path = tmp_path / "resnet20.bin"
    torch.save(authors["state_dict"], path)
    m = build_from_checkpoint(path).eval()
    assert type(m).__name__ == "ResNet20"
    with torch.no_grad():
        torch.testing.assert_close(m(authors["x"]), authors["logits_eval"], atol=1e-4, rtol=1e-5)
    with pytest.raises(CheckpointError, match=r"holds a ResNet-20 but the model is a ResMLP; "
                                              r"pass --teacher-resnet"):
        build_from_checkpoint(path, resnet=False, role="teacher")
    with pytest.raises(CheckpointError, match=r"holds a ResNet-20 but the model is a ResMLP"):
        load_checkpoint(build_resmlp("base", 4), path)
    with pytest.raises(CheckpointError, match=r"has 10 classes but the model 5"):
        build_from_checkpoint(path, num_classes=5)


def test_damaged_resnet_file_is_one_line(authors):
    sd = dict(authors["state_dict"])
    sd["layer3.1.conv2.weight"] = sd["layer3.1.conv2.weight"][:, :32]
    with pytest.raises(CheckpointError, match=r"^checkpoint tensor layer3\.1\.conv2\.weight has "
                                              r"shape \(64, 32, 3, 3\), the model expects "
                                              r"\(64, 64, 3, 3\)$"):
        load_checkpoint(build_resnet20(), sd)
    sd = {k: v for k, v in authors["state_dict"].items() if not k.startswith("layer2.2.")}
    with pytest.raises(CheckpointError, match=r"has 2 block\(s\) in layer2, ResNet-20 has 3"):
        load_checkpoint(build_resnet20(), sd)
