"""The fast CPU training path (docs/TRAINING.md, "Training fast on a CPU"): bfloat16 LERP and
B-spline kernels against the float64 reference and against the float32 kernels bit for bit,
the rewritten ResMLP layers against their plain definitions in float64 (outputs and every
gradient), the mixed-dtype casts, batched data reading, and the determinism of a bf16 +
torch.compile training step."""
import json
import os
import subprocess
import sys

import pytest
import torch
from torch import nn

import kernels
from kernels.backends import cpu as cpu_backend

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

need_cpu = pytest.mark.skipif(not cpu_backend.available() and os.environ.get("REPRO_STRICT_ORACLES") != "1",
                              reason="no C compiler: the CPU kernel could not be built")
# Odd shapes: a single element, fewer features than a vector, several row chunks (512 rows)
# and feature blocks (64) of the C backward, a 3-D input.
SHAPES = [(1, 1), (7, 13), (1100, 70), (3, 5, 200)]


def lookup(op, x, params, g, impl):
    """(y, grad x, grad params) of ``op`` (lerp or bspline) with upstream gradient ``g``."""
    x = x.detach().clone().requires_grad_()
    p = params.detach().clone().requires_grad_()
    fn = kernels.lerp if op == "lerp" else kernels.bspline
    y = fn(x, p, 4.0, impl=impl)
    gx, gp = torch.autograd.grad(y, (x, p), g)
    return y, gx, gp


def inputs(shape, G, seed=0):
    gen = torch.Generator().manual_seed(seed)
    F_ = shape[-1]
    x = ((torch.rand(shape, generator=gen) - 0.5) * 14).to(torch.bfloat16)   # inside and outside
    g = torch.randn(shape, generator=gen).to(torch.bfloat16)
    params = torch.randn(F_, G, generator=gen)
    return x, params, g


@need_cpu
@pytest.mark.parametrize("op,G", [("lerp", 64), ("lerp", 33), ("bspline", 65)])
@pytest.mark.parametrize("shape", SHAPES)
def test_bf16_kernels_equal_the_fp32_kernels_on_widened_inputs(op, G, shape):
    """The bf16 C kernels read bf16, compute in fp32 and round once: bit for bit what the fp32
    kernels give on the exactly widened inputs, rounded to bf16 by torch."""
    x, params, g = inputs(shape, G)
    y, gx, gp = lookup(op, x, params, g, "cpu")
    y32, gx32, gp32 = lookup(op, x.float(), params, g.float(), "cpu")
    assert y.dtype == gx.dtype == torch.bfloat16 and gp.dtype == torch.float32
    assert torch.equal(y, y32.to(torch.bfloat16))
    assert torch.equal(gx, gx32.to(torch.bfloat16))
    assert torch.equal(gp, gp32)


@need_cpu
@pytest.mark.parametrize("op,G", [("lerp", 64), ("bspline", 65)])
@pytest.mark.parametrize("shape", SHAPES)
def test_bf16_kernels_against_the_float64_reference(op, G, shape):
    """Output and input gradient within one bf16 rounding (relative 2^-8, plus the fp32
    arithmetic) of the float64 reference on the same inputs; the table gradient, accumulated
    in fp32 weights and double sums, to 1e-5 of its scale."""
    x, params, g = inputs(shape, G, seed=1)
    y, gx, gp = lookup(op, x, params, g, "cpu")
    ry, rgx, rgp = lookup(op, x.double(), params.double(), g.double(), "reference")
    torch.testing.assert_close(y.double(), ry, rtol=2 ** -8, atol=1e-5, msg="output")
    torch.testing.assert_close(gx.double(), rgx, rtol=2 ** -8, atol=1e-5, msg="input gradient")
    scale = rgp.abs().max().item() + 1.0
    torch.testing.assert_close(gp.double(), rgp, rtol=1e-5, atol=1e-5 * scale, msg="table gradient")


@need_cpu
def test_bf16_kernels_round_half_to_even_and_keep_nan():
    """Special inputs: NaN propagates (segment 0, NaN fraction), infinities take the edge
    segments' lines, and the bf16 rounding of many fp32 results equals torch's."""
    x = torch.tensor([[float("nan"), float("inf"), -float("inf"), 0.0, 3.99, -4.0]] * 2,
                     dtype=torch.bfloat16)
    table = torch.randn(6, 64)
    y = kernels.lerp(x, table, 4.0, impl="cpu")
    y32 = kernels.lerp(x.float(), table, 4.0, impl="cpu")
    assert torch.equal(torch.isnan(y), torch.isnan(y32))
    ok = ~torch.isnan(y32)
    assert torch.equal(y[ok], y32[ok].to(torch.bfloat16))
    # ties: fp32 results with exactly half a bf16 ulp below them (table values chosen so)
    t = torch.tensor([1.0 + 2 ** -8, 1.0 + 3 * 2 ** -8, -(1.0 + 2 ** -8), 256.0 + 1.0]).view(4, 1)
    table = t.expand(4, 64).contiguous()             # constant functions: y = the value itself
    xs = torch.zeros(3, 4, dtype=torch.bfloat16)
    out = kernels.lerp(xs, table, 4.0, impl="cpu")
    assert torch.equal(out, t.view(1, 4).expand(3, 4).to(torch.bfloat16))


# --- the ResMLP layers, rewritten for speed, against their plain definitions ---------------------

def test_token_batchnorm_matches_transposed_batchnorm():
    from models.resmlp import TokenBatchNorm
    torch.manual_seed(0)
    ours = TokenBatchNorm(12).double()
    ref = nn.BatchNorm1d(12, eps=1e-5, momentum=0.1).double()
    with torch.no_grad():
        for m in (ours.bn, ref):
            m.weight.copy_(torch.linspace(0.5, 2.0, 12))
            m.bias.copy_(torch.linspace(-1.0, 1.0, 12))
    for step in range(3):
        x = (torch.randn(5, 7, 12, dtype=torch.float64) * 3 + 1).requires_grad_()
        g = torch.randn(5, 7, 12, dtype=torch.float64)
        y = ours(x)
        yr = ref(x.transpose(1, 2)).transpose(1, 2)
        torch.testing.assert_close(y, yr, rtol=1e-12, atol=1e-12)
        grads = torch.autograd.grad(y, (x, ours.bn.weight, ours.bn.bias), g)
        rgrads = torch.autograd.grad(yr, (x, ref.weight, ref.bias), g)
        for a, b, what in zip(grads, rgrads, ("input", "weight", "bias")):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12, msg=what)
    torch.testing.assert_close(ours.bn.running_mean, ref.running_mean, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(ours.bn.running_var, ref.running_var, rtol=1e-12, atol=1e-12)
    assert int(ours.bn.num_batches_tracked) == int(ref.num_batches_tracked) == 3
    ours.eval()
    ref.eval()
    x = torch.randn(2, 7, 12, dtype=torch.float64)
    torch.testing.assert_close(ours(x), ref(x.transpose(1, 2)).transpose(1, 2), rtol=1e-12, atol=1e-12)


def test_cross_patch_matches_linear_over_tokens():
    """CrossPatch (one batched product on the tokens) against x + A2(Lin_T(BN(x)^T)^T), the
    definition, in float64: output and every gradient."""
    from models.resmlp import CrossPatch
    torch.manual_seed(1)
    m = CrossPatch(9, 6).double().train()
    with torch.no_grad():
        m.affine_2.weight.uniform_(-1, 1)
        m.affine_2.bias.uniform_(-1, 1)
    x = torch.randn(4, 9, 6, dtype=torch.float64, requires_grad=True)
    g = torch.randn(4, 9, 6, dtype=torch.float64)
    params = [x] + list(m.parameters())
    y = m(x)
    grads = torch.autograd.grad(y, params, g)
    bn = m.affine_1.bn
    u = nn.functional.batch_norm(x.transpose(1, 2), None, None, bn.weight, bn.bias, True, 0.0,
                                 bn.eps).transpose(1, 2)
    h = nn.functional.linear(u.transpose(1, 2), m.layers.weight, m.layers.bias).transpose(1, 2)
    yr = x + h * m.affine_2.weight + m.affine_2.bias
    rgrads = torch.autograd.grad(yr, params, g)
    torch.testing.assert_close(y, yr, rtol=1e-12, atol=1e-12)
    for (name, _), a, b in zip([("x", None)] + list(m.named_parameters()), grads, rgrads):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12, msg=name)


def test_mixed_dtypes_are_cast_once_to_the_promoted_dtype():
    from models.resmlp import Affine, residual_add
    a = Affine(5)
    with torch.no_grad():
        a.weight.uniform_(-2, 2)
        a.bias.uniform_(-1, 1)
    x = torch.randn(3, 4, 5).to(torch.bfloat16).requires_grad_()
    y = a(x)
    assert y.dtype == torch.float32
    assert torch.equal(y, x.float() * a.weight + a.bias)
    gx, gw = torch.autograd.grad(y, (x, a.weight), torch.ones_like(y))
    assert gx.dtype == torch.bfloat16
    torch.testing.assert_close(gw, x.float().sum((0, 1)), rtol=1e-6, atol=1e-5)
    r = torch.randn(3, 4, 5)
    assert torch.equal(residual_add(r, x), r + x.float())
    assert residual_add(r, r).dtype == torch.float32


# --- data ---------------------------------------------------------------------------------------

def augmented_by_hand(ds, indices):
    """The augmentation of docs/METHOD.md section 6 written out image by image (pad 4, crop at
    the drawn offset, flip on the drawn coin, normalise): the reference for data.TensorImages."""
    out = []
    for i in indices:
        img = ds.images[i].float() / 255.0
        dy, dx = torch.randint(0, 9, (2,)).tolist()
        img = torch.nn.functional.pad(img, (4, 4, 4, 4))[:, dy:dy + 32, dx:dx + 32]
        if torch.rand(()) < 0.5:
            img = img.flip(-1)
        out.append((img - ds.mean) / ds.std)
    return torch.stack(out)


def test_augmented_batches_equal_the_augmentation_written_out():
    import data
    images = torch.randint(0, 256, (50, 28, 28), dtype=torch.uint8)
    ds = data.TensorImages(images, torch.randint(0, 10, (50,)), (0.3,), (0.35,), augment=True)
    idx = [5, 0, 49, 17, 17, 3]
    torch.manual_seed(11)
    want = augmented_by_hand(ds, idx)
    torch.manual_seed(11)
    got, labels = ds.batch(idx)
    assert torch.equal(got, want) and torch.equal(labels, ds.labels[idx])
    torch.manual_seed(11)
    one = torch.stack([ds[i][0] for i in idx])     # __getitem__: the same draws, image by image
    assert torch.equal(one, want)


def test_batched_reading_gives_the_per_image_batches():
    """make_loaders' batch reader: the batches DataLoader(shuffle=True, generator) over single
    images gives, the same augmentation, bit for bit."""
    import data
    from training.setup import make_loaders
    images = torch.randint(0, 256, (300, 28, 28), dtype=torch.uint8)
    labels = torch.randint(0, 10, (300,))
    ds = data.TensorImages(images, labels, (0.3,), (0.35,), augment=True)

    def first_batches(loader):
        it = iter(loader)
        return [next(it) for _ in range(3)]

    torch.manual_seed(3)
    old = first_batches(torch.utils.data.DataLoader(
        ds, batch_size=64, shuffle=True, drop_last=True, generator=torch.Generator().manual_seed(9)))
    import training.setup as setup
    orig = data.get_datasets
    try:
        data.get_datasets = lambda *a, **k: (ds, ds, dict(in_channels=1, num_classes=10, name="t"))
        torch.manual_seed(3)
        train, test, _ = make_loaders("fashion-mnist", dataset_dir=None, download=False,
                                      batch_size=64, test_batch_size=100, seed=9,
                                      device=torch.device("cpu"))
        new = first_batches(train)
    finally:
        data.get_datasets = orig
    assert len(train) == 300 // 64 and len(test) == 3
    assert setup.images_of(test) is ds and setup.batch_size_of(test) == 100
    for (a, la), (b, lb) in zip(old, new):
        assert torch.equal(a, b) and torch.equal(la, lb)


# --- the fast path end to end -------------------------------------------------------------------

def tiny_step(seed=0, steps=3, compile=True):
    """Parameters after ``steps`` KD-like steps of a small LERP-PSA ResMLP in bf16 autocast
    (compiled when ``compile``), from a fixed start."""
    from models import build_resmlp
    from training.optim import Optimisers
    torch.manual_seed(seed)
    model = build_resmlp("psa", 1.0, in_channels=1, img_size=16, embed_dim=16, depth=2,
                         num_classes=4)
    opt = Optimisers([model], lr=1e-2, wd=0.0, spline_lr=1e-3)
    net = torch.compile(model) if compile else model
    x = torch.randn(32, 1, 16, 16)
    y = torch.randint(0, 4, (32,))
    for _ in range(steps):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = nn.functional.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return {k: v.detach().clone() for k, v in model.state_dict().items()}, loss.item()


@need_cpu
def test_fast_path_steps_are_deterministic_and_stay_float32():
    a, la = tiny_step()
    b, lb = tiny_step()
    assert la == lb
    for k in a:
        assert a[k].dtype in (torch.float32, torch.int64), k   # fp32 master weights
        assert torch.equal(a[k], b[k]), f"{k} differs between two identical fast runs"
    # the same steps in eager bf16: the same model up to bf16 rounding, not another one
    c, lc = tiny_step(compile=False)
    assert abs(lc - la) < 0.05 * abs(la) + 0.05


def test_bench_train_runs_and_reports_json():
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "bench_train.py"),
                           "--models", "teacher", "--rounds", "1", "--steps", "1", "--warmup", "1",
                           "--batch-size", "8", "--json"],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    m = result["models"]["teacher"]
    assert m["fp32_ms"] > 0 and m["bf16_ms"] > 0 and m["fast_ms"] > 0 and m["gmacs"] > 0
    assert set(result["matmul_gflops"]) == {"bf16", "fp32"}


def test_bench_train_refuses_a_bad_model_in_one_line():
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "bench_train.py"),
                           "--models", "gelu:1"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "use teacher or ACT:H" in proc.stderr


@need_cpu
@pytest.mark.parametrize("act", ["psa", "bspline"])
def test_fast_path_compiles_without_graph_breaks(act):
    """fullgraph=True: the model under bf16 autocast compiles to one graph, in training
    (forward and backward) and in eval mode, the lookups staying our custom operators."""
    from models import build_resmlp
    torch.manual_seed(0)
    m = build_resmlp(act, 0.25, in_channels=1, img_size=16, embed_dim=16, depth=1)
    c = torch.compile(m, fullgraph=True)
    x = torch.randn(8, 1, 16, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = c(x)
    y.float().sum().backward()
    assert y.dtype == torch.bfloat16
    assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in m.parameters())
    m.eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        ye = c(x)
    assert torch.isfinite(ye.float()).all()
