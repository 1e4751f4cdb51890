"""The activation table (models.registry): a new activation is one entry plus its module, and
every place that used to name activations reads the entry; the MLP builders refuse unknown
settings; the regulariser applies to any model holding such sublayers; no entry point takes a
keyword it does not use (the removed ``save_memory`` included)."""
import os
import sys

import pytest
import torch
from torch import nn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import kernels  # noqa: E402
import models  # noqa: E402
from activations import BSpline, LerpPSA  # noqa: E402
from models import registry  # noqa: E402


class Slope(nn.Module):
    """A toy learnable activation: ``x`` for x >= 0, ``a_i * x`` below (per-feature slopes)."""

    def __init__(self, num_features: int, init: float = 0.25, impl: str = "auto"):
        super().__init__()
        self.num_features = num_features
        self.slope = nn.Parameter(torch.full((num_features,), float(init)))

    def forward(self, x):
        return torch.where(x >= 0, x, x * self.slope)


SLOPE = registry.Activation(
    name="slope", aliases=("leaky",), label="slope", module=Slope, sublayer=Slope,
    settings=(registry.Setting("init", "--slope-init", "slopes starting at {}"),),
    spline_parameters=lambda m: [m.slope],
    regulariser=lambda m: (m.slope - 0.25).abs().sum(),
    checkpoint=registry.CheckpointForm(marks=("0.slope",), hidden_key="1.weight",
                                       describe=lambda sd, mlp, embed: dict(layout="authors")))


@pytest.fixture
def slope():
    """The toy activation registered for one test, and removed after it."""
    registry.register(SLOPE)
    try:
        yield SLOPE
    finally:
        del registry._REGISTRY["slope"]
        for k in ("slope", "leaky"):
            del registry._ALIASES[k]


def test_a_new_activation_is_one_entry(slope, tmp_path):
    torch.manual_seed(0)
    m = models.build_resmlp("leaky", 0.5, embed_dim=8, depth=2, in_channels=1)
    assert m.act == "slope" and m.activation is slope
    mlp = m.layers[0].layers[1].layers
    assert isinstance(mlp[0], Slope) and mlp[1].out_features == 4 and isinstance(mlp[2], Slope)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.1 * torch.randn_like(p))
    # checkpoints: the file shows the activation; it rebuilds from the file alone
    models.save_checkpoint(m, tmp_path / "m.bin")
    info = models.describe_checkpoint(tmp_path / "m.bin")
    assert (info["act"], info["hidden"], info["embed_dim"], info["depth"]) == ("slope", 4, 8, 2)
    b = models.build_from_checkpoint(tmp_path / "m.bin")
    x = torch.randn(3, 1, 32, 32)
    m.eval(), b.eval()
    with torch.no_grad():
        torch.testing.assert_close(b(x), m(x), atol=0, rtol=0)
    with pytest.raises(models.CheckpointError, match="holds a 'slope' model but the flags ask "
                                                     "for 'psa'"):
        models.load_checkpoint(models.build_resmlp("psa", 0.5, embed_dim=8, depth=2,
                                                   in_channels=1), tmp_path / "m.bin")
    # optimisers: its spline parameters go to the spline optimiser
    from training.optim import split_params
    spline, other = split_params([m])
    assert {id(p) for p in spline} == {id(mod.slope) for mod in m.modules() if isinstance(mod, Slope)}
    assert len(spline) + len(other) == len(list(m.parameters()))
    # the exporter's sublayers
    from fpga.export import activation_sublayers
    assert list(activation_sublayers(m)) == ["layers.0.layers.1.layers.0", "layers.0.layers.1.layers.2",
                                             "layers.1.layers.1.layers.0", "layers.1.layers.1.layers.2"]


def test_command_lines_list_and_check_the_registered_names(slope, capsys):
    import cifar10_main
    import cifar10_quant
    assert "--student-nl-act {base,bspline,psa,slope}" in cifar10_main.build_parser().format_help()
    cfg, _ = cifar10_main.parse(["--student-nl-act", "leaky"])
    assert cfg.student_nl_act == "slope"
    assert "{base,bspline,psa,slope}" in cifar10_quant.build_parser().format_help()
    assert cifar10_quant.main(["--student-nl-act", "slope", "--load", "x"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("--student-nl-act slope has no integer model; use base (ReLU) or psa"), err


def test_the_mlp_builders_refuse_unknown_settings():
    with pytest.raises(models.ModelConfigError, match="activation base takes no setting 'grid_size'"):
        models.build_resmlp("base", 1.0, grid_size=32)
    with pytest.raises(models.ModelConfigError, match="activation psa takes no setting 'spline_size'"):
        models.build_resmlp("psa", 1.0, spline_size=33)
    with pytest.raises(models.ModelConfigError, match="activation bspline takes no setting 'expansion'"):
        models.activation("bspline").mlp(8, 4, expansion=4)
    # each takes its own settings and impl
    models.build_resmlp("base", 0.25, impl="reference")
    m = models.build_resmlp("psa", 0.25, expansion=4, grid_size=16, grid_range=2.0, impl="reference")
    psa = m.layers[0].layers[1].layers[0].psa
    assert (psa.expansion, psa.grid_size, psa.grid_range, psa.impl) == (4, 16, 2.0, "reference")


def test_the_regulariser_applies_to_any_model_with_such_sublayers():
    """TV(2) is read from the sublayers' description, not from a ``model.act`` string: a model
    without one still gets it."""
    from training.loops import Loop, run_epoch
    from training.optim import Optimisers
    from training.session import Session
    from training.setup import Logger
    torch.manual_seed(0)
    model = nn.Sequential(BSpline(4), nn.Linear(4, 3), BSpline(3))
    with torch.no_grad():
        model[0].coefficients.add_(0.3 * torch.randn_like(model[0].coefficients))
    assert not hasattr(model, "act")
    x, y = torch.randn(8, 4), torch.randint(0, 3, (8,))
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=8)
    log = Logger(enabled=False)
    loop = Loop(device=torch.device("cpu"), log=log, session=Session(model, None, log))
    opt = Optimisers([model], lr=0.0, wd=0.0, spline_lr=0.0)
    lam = 0.5
    with torch.no_grad():
        want = (nn.functional.cross_entropy(model(x), y)
                + lam * (model[0].tv2() + model[2].tv2())).item()
    got = run_epoch(model, loader, opt, lambda a, b: nn.functional.cross_entropy(model(a), b), loop,
                    where="training", epoch=1, desc="t", bspline_lambda=lam)
    assert got == pytest.approx(want, rel=1e-6)
    assert model[0].tv2().item() > 0.1      # the term is not negligible


def test_unknown_keywords_are_refused_save_memory_included(tmp_path):
    """No entry point takes a keyword it does not use: the old ``save_memory`` (removed; every
    kernel keeps only ``x`` for the backward) is refused like any other unknown keyword."""
    x = torch.randn(5, 4)
    table = torch.randn(4, 9)
    m = models.build_resmlp("psa", 0.25, embed_dim=8, depth=1)
    models.save_checkpoint(m, tmp_path / "m.bin")
    for kw in ("save_memory", "bogus"):
        for call in (lambda: kernels.lerp(x, table, 2.0, **{kw: True}),
                     lambda: kernels.bspline(x, table, 2.0, **{kw: True}),
                     lambda: LerpPSA(4, **{kw: True}), lambda: BSpline(4, **{kw: True}),
                     lambda: models.build_from_checkpoint(tmp_path / "m.bin", **{kw: True})):
            with pytest.raises(TypeError, match=f"unexpected keyword argument '{kw}'"):
                call()
        with pytest.raises(models.ModelConfigError, match=f"activation psa takes no setting '{kw}'"):
            models.build_resmlp("psa", 0.25, embed_dim=8, depth=1, **{kw: True})