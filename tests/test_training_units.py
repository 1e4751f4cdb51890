"""The training package without a training run: flag resolution, the distillation loss,
evaluation, the non-finite locator, the phase enum (fast)."""
import math
import os
import sys

import numpy as np
import pytest
import torch
from torch import nn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import cifar10_main  # noqa: E402
import training  # noqa: E402
from training.session import Phase, describe  # noqa: E402


def resolved(*argv):
    cfg, opts = cifar10_main.parse(list(argv))
    return cfg, opts


def test_plain_training_takes_the_kd_schedule_unless_overridden():
    cfg, _ = resolved("--kd-epochs", "7", "--kd-lr", "0.01", "--kd-wd", "5e-4")
    assert cfg.plain and (cfg.plain_epochs, cfg.plain_lr, cfg.plain_wd) == (7, 0.01, 5e-4)
    cfg, _ = resolved("--kd-epochs", "7", "--epochs", "5", "--lr", "0.002", "--wd", "0.1")
    assert (cfg.plain_epochs, cfg.plain_lr, cfg.plain_wd) == (5, 0.002, 0.1)
    cfg, _ = resolved()
    assert (cfg.plain_epochs, cfg.plain_lr, cfg.plain_wd) == (300, 1e-3, 0.0)
    assert cfg.student_hidden_factor == 4.0 and cfg.teacher_hidden_factor == 4.0


def test_resume_check_holds_what_the_run_uses():
    cfg, _ = resolved("--kd-epochs", "3")
    d = cfg.for_resume_check()
    assert (d["epochs"], d["lr"], d["wd"]) == (3, 1e-3, 0.0) and "kt_epochs" not in d
    cfg, _ = resolved("--do-kt", "--do-kd", "--kd-epochs", "3", "--teacher-load", "x")
    d = cfg.for_resume_check()
    assert "epochs" not in d and d["kd_epochs"] == 3 and d["kt_epochs"] == 50
    assert d["teacher_nl_act"] == "base"


def test_explicit_flags_are_told_apart_from_defaults():
    _, opts = resolved("--student-hidden-factor", "4", "--dataset", "synthetic")
    assert opts.explicit == {"student_hidden_factor", "dataset"}
    _, opts = resolved()
    assert opts.explicit == frozenset()


def test_distillation_loss_matches_the_formula():
    g = torch.Generator().manual_seed(0)
    s = torch.randn(5, 10, generator=g, dtype=torch.float64, requires_grad=True)
    t = torch.randn(5, 10, generator=g, dtype=torch.float64)
    y = torch.randint(0, 10, (5,), generator=g)
    T, alpha = 2.0, 0.7
    loss = training.distillation_loss(s, t, y, temperature=T, alpha=alpha)
    # Independent reference in numpy: alpha T^2 CE(p_t, q_s) + (1 - alpha) CE(s, y).
    sn, tn = s.detach().numpy(), t.numpy()

    def log_softmax(z):
        z = z - z.max(1, keepdims=True)
        return z - np.log(np.exp(z).sum(1, keepdims=True))

    p = np.exp(log_softmax(tn / T))
    want = (alpha * T * T * -(p * log_softmax(sn / T)).sum(1).mean()
            + (1 - alpha) * -log_softmax(sn)[np.arange(5), y.numpy()].mean())
    assert abs(loss.item() - want) < 1e-12
    # Gradient: d/ds = alpha T (q_s - p_t)/B + (1 - alpha) (softmax(s) - onehot)/B.
    loss.backward()
    q = np.exp(log_softmax(sn / T))
    onehot = np.eye(10)[y.numpy()]
    grad = (alpha * T * (q - p) + (1 - alpha) * (np.exp(log_softmax(sn)) - onehot)) / 5
    assert np.abs(s.grad.numpy() - grad).max() < 1e-12


def test_evaluate_is_a_plain_function():
    model = nn.Linear(4, 3)
    with torch.no_grad():
        model.weight.copy_(torch.eye(3, 4))
        model.bias.zero_()
    x = torch.eye(4)[:3].repeat(4, 1)          # argmax = row index 0, 1, 2
    y = torch.tensor([0, 1, 2] * 3 + [2, 0, 1])  # the last three are wrong
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=5)
    assert training.evaluate(model, loader, "cpu") == pytest.approx(75.0)
    assert training.evaluate(model, loader) == pytest.approx(75.0)


def test_first_nonfinite_layer_names_the_first_receiver():
    model = nn.Sequential(nn.Linear(3, 3), nn.ReLU(), nn.Linear(3, 2))
    with torch.no_grad():
        model[0].weight.fill_(1e38)            # overflows to inf inside layer 0
    x = torch.full((2, 3), 10.0)
    where = training.first_nonfinite_layer(model, lambda: model(x))
    assert where == "layer 1 (ReLU) received 0 NaN and 6 inf values"
    x[0, 0] = math.nan
    where = training.first_nonfinite_layer(model, lambda: model(x))
    assert where.startswith("layer 0 (Linear, 3 features) received 1 NaN and 0 inf values")
    with torch.no_grad():
        model[0].weight.fill_(0.5)
    assert training.first_nonfinite_layer(model, lambda: model(torch.ones(2, 3))) is None
    assert not model[0]._forward_pre_hooks, "hooks must be removed"


def test_phases_describe_themselves():
    assert describe(dict(phase="kt", kt_block=2, epoch=7)) == "KT block 2 epoch 7"
    assert Phase("kd").describe(3) == "KD epoch 3"
    assert Phase.TRAIN.describe(1) == "training epoch 1"
    assert Phase.DONE.describe() == "end of training" and Phase.KT_DONE.describe() == "end of KT"


@pytest.mark.parametrize("act", ["psa", "bspline"])
def test_nonfinite_locator_finds_the_activation_in_a_resmlp(act):
    from models import build_resmlp
    model = build_resmlp(act, 0.25, impl="reference").train()
    mlp = model.layers[1].layers[1].layers        # block 1's MLP: act, Linear, act, Linear
    with torch.no_grad():
        mlp[1].weight[3, 5] = math.inf             # the hidden features turn non-finite here
    x = torch.randn(2, 3, 32, 32)
    where = training.first_nonfinite_layer(model, lambda: model(x))
    # ResidualLerpPSA looks up its folded table itself (its .psa child is never called)
    name = "layers.1.layers.1.layers.2"
    kind = "ResidualLerpPSA" if act == "psa" else "BSpline"
    assert where.startswith(f"layer {name} ({kind}, 24 features) received "), where


@pytest.mark.parametrize("act", ["psa", "bspline"])
def test_optimisers_update_exactly_as_the_per_parameter_loop(act):
    # The training optimisers use foreach=True for speed; the updates must be bit-identical to
    # torch's default per-parameter AdamW/Adam, so that runs before and after reproduce.
    from models import build_resmlp
    from training.optim import Optimisers, split_params
    torch.manual_seed(0)
    model = build_resmlp(act, 0.25, in_channels=1, num_classes=10, depth=2, embed_dim=16)
    twin = build_resmlp(act, 0.25, in_channels=1, num_classes=10, depth=2, embed_dim=16)
    twin.load_state_dict(model.state_dict())
    ours = Optimisers([model], lr=1e-2, wd=0.05, spline_lr=1e-3, epochs=3)
    spline, other = split_params([twin])
    plain = [torch.optim.AdamW(other, lr=1e-2, weight_decay=0.05, foreach=False)]
    if spline:
        plain.append(torch.optim.Adam(spline, lr=1e-3, weight_decay=0.0, foreach=False))
    assert all(o.defaults["foreach"] for o in ours.opts)
    x = torch.randn(8, 1, 32, 32)
    y = torch.randint(0, 10, (8,))
    for _ in range(4):
        for net, step in ((model, ours.step), (twin, lambda: [o.step() for o in plain])):
            for p in net.parameters():
                p.grad = None
            nn.functional.cross_entropy(net(x), y).backward()
            step()
    for (name, a), b in zip(model.state_dict().items(), twin.state_dict().values()):
        assert torch.equal(a, b), f"{name} differs after 4 steps"


def test_missing_files_are_named_by_flag_and_absolute_path(tmp_path, capsys):
    import argparse
    import cifar10_quant
    from errors import UserError, require_files
    here = tmp_path / "here.bin"
    here.write_bytes(b"x")
    ns = argparse.Namespace(load=str(here), teacher_load=None, kt_load=str(tmp_path / "gone.bin"))
    with pytest.raises(UserError, match=r"^--kt-load file not found: " + str(tmp_path) + "/gone.bin$"):
        require_files(ns, ("load", "teacher_load", "kt_load"))
    require_files(ns, ("load", "teacher_load"))  # present or unset: no error
    # Both entry points use it and report one line, exit status 2.
    assert cifar10_quant.main(["--load", str(tmp_path / "none.bin")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].endswith(f"--load file not found: {tmp_path}/none.bin")


def test_kd_after_kt_unfreezes_and_trains_every_block_by_itself():
    """A user's own script, KT then KD with nothing in between: KD trains the embedding and
    every block (the authors' KD), not only the last block that KT left unfrozen."""
    from models import build_resmlp
    from training.loops import knowledge_distillation, knowledge_transfer
    from training.setup import Logger
    torch.manual_seed(0)
    kw = dict(in_channels=1, img_size=8, embed_dim=8, depth=3, num_classes=3)
    teacher = build_resmlp("base", 1.0, **kw).eval()
    student = build_resmlp("psa", 0.5, **kw)
    batches = [(torch.randn(6, 1, 8, 8), torch.randint(0, 3, (6,))) for _ in range(2)]
    log = Logger(enabled=False)
    loop = training.Loop(device=torch.device("cpu"), log=log,
                         session=training.Session(student, None, log))
    knowledge_transfer(student, teacher, batches, loop, epochs=1, lr=1e-3)
    frozen = [n for n, p in student.named_parameters() if not p.requires_grad]
    assert frozen and all(n.startswith(("embed_linear", "layers.0", "layers.1")) for n in frozen)
    before = {n: p.detach().clone() for n, p in student.named_parameters()}
    knowledge_distillation(student, teacher, batches, batches, loop, epochs=1, lr=1e-3)
    assert all(p.requires_grad for p in student.parameters())
    for name in frozen:
        assert not torch.equal(before[name], dict(student.named_parameters())[name]), \
            f"{name} was frozen by KT and KD did not train it"


def test_fp16_loss_scaling_skips_a_non_finite_step_and_goes_on(tmp_path):
    """--amp fp16: a non-finite loss skips the step (GradScaler leaves the parameters and
    lowers the scale), says so in a line and a JSON record, and training goes on; only more
    than MAX_SKIPPED_STEPS in a row stop the run with the usual one line."""
    import json
    from training.loops import MAX_SKIPPED_STEPS, run_epoch
    from training.optim import Optimisers
    from training.setup import Logger
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3))
    log_path = tmp_path / "log.jsonl"
    log = Logger(str(log_path))
    loop = training.Loop(device=torch.device("cpu"), log=log,
                         session=training.Session(model, None, log), amp="fp16")
    opt = Optimisers([model], lr=1e-2, wd=0.0, spline_lr=1e-3)
    batches = [(torch.randn(5, 4), torch.randint(0, 3, (5,))) for _ in range(4)]
    blow_up = {1}
    params = []

    def loss_fn(x, y, state={"i": 0}):
        i = state["i"]
        state["i"] += 1
        params.append([p.detach().clone() for p in model.parameters()])
        loss = nn.functional.cross_entropy(model(x).float(), y)
        return loss * float("inf") if i in blow_up else loss

    scale0 = loop.scaler.get_scale()
    mean = run_epoch(model, batches, opt, loss_fn, loop, where="training", epoch=1, desc="t")
    assert math.isfinite(mean)
    records = [json.loads(line) for line in open(log_path)]
    skips = [r for r in records if r["event"] == "skipped_step"]
    assert len(skips) == 1 and skips[0]["batch"] == 1 and skips[0]["scale"] < scale0
    # the skipped step changed nothing: the parameters before batch 2 are those before batch 1
    assert all(torch.equal(a, b) for a, b in zip(params[1], params[2]))
    assert not all(torch.equal(a, b) for a, b in zip(params[0], params[1]))
    # always non-finite: the run stops after MAX_SKIPPED_STEPS skipped steps in a row
    blow_up.update(range(1000))
    many = batches * (MAX_SKIPPED_STEPS // 4 + 2)
    with pytest.raises(training.NonFiniteTrainingError):
        run_epoch(model, many, opt, loss_fn, loop, where="training", epoch=2, desc="t")
    skips = [json.loads(line) for line in open(log_path)]
    assert max(r.get("in_a_row", 0) for r in skips) == MAX_SKIPPED_STEPS
