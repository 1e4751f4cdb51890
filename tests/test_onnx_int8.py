"""The INT8 ONNX graph (deploy/onnx_int8.py) against the integer model, bit for bit.

The reference is ``fpga.int_resmlp.forward`` (numpy, int64 arithmetic) on the patch codes the
data pipeline computes (``fpga.int_resmlp.dataset_codes``); the graph runs in onnxruntime from
the uint8 images. Every comparison is exact: 0 differing logits, no tolerance.

* The three shipped INT8 dumps (ReLU h = 2, ReLU h = 1, LERP-PSA h = 1) on the first 256
  Fashion-MNIST test images, with the u8s8 and the u8u8 products (the 10 000-image figures are
  in docs/DEPLOY.md, from scripts/export_onnx.py --int8 --check 10000).
* Random integer models of both activations and odd sizes (3 image channels, 40 hidden,
  2 blocks) with shifts 0, 1 and 31 and saturating biases, on random uint8 images.
* The requantisation alone on accumulators at every tie and beyond both clips; a graph that
  truncates instead of rounding half up is caught.
* The graph's form: default domain, integer tensors only after the input, one GatherElements
  per LERP-PSA sublayer, one Max per ReLU.
* The command line: --int8 --check, its JSON, one-line errors.

About 15 s on the 2-core machine while a training job ran on it.
"""
import json
import os
import sys

import numpy as np
import pytest

from tests.oracles import need_module, need_path, shipped_int8_dump

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))

import experiments  # noqa: E402
import export_onnx  # noqa: E402
from fpga import int_ops  # noqa: E402
from fpga.int_resmlp import dataset_codes, forward, random_params, save_params  # noqa: E402

M = experiments.load()
FMNIST = M.datasets["fashion-mnist"]["dataset_dir"]
FMNIST_HOW = "apt-get install -y dataset-fashion-mnist"
HOW = "pip install -r requirements-deploy.txt"
SHIPPED = {"relu_h2": "baseline/quant/h_mul_2", "relu_h1": "baseline/quant/h_mul_1",
           "lerp_psa_h1": "lerp_psa_64/quant/h_mul_1"}
N_IMAGES = 256


@pytest.fixture(autouse=True)
def _deploy_packages():
    need_module("onnx", HOW)
    need_module("onnxruntime", HOW)


def session(proto):
    from deploy.onnx_check import make_session
    return make_session(proto)


def reference(params, meta, codes):
    from deploy.onnx_int8 import single_thread_blas
    with single_thread_blas():
        return forward(params, meta, codes).astype(np.int32)


# --- the shipped dumps -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fmnist_u8():
    need_path(FMNIST, "the Fashion-MNIST data set", FMNIST_HOW)
    from deploy.onnx_int8 import image_batch
    _, meta = shipped_int8_dump(SHIPPED["relu_h1"], 1)[:2]
    return image_batch(meta, FMNIST, N_IMAGES)


def test_image_codes_are_the_data_pipelines(fmnist_u8):
    """The reference's input (codes_of_images, from the uint8 images) equals the codes of the
    data pipeline (dataset_codes, through the Dataset's float normalisation)."""
    from deploy.onnx_int8 import codes_of_images
    params, meta = shipped_int8_dump(SHIPPED["lerp_psa_h1"], 1)[:2]
    codes, labels = dataset_codes(meta, "fashion-mnist", FMNIST, limit=64, progress=False)
    assert np.array_equal(codes_of_images(meta, fmnist_u8[0][:64]), codes)
    assert np.array_equal(labels, fmnist_u8[1][:64])


@pytest.mark.parametrize("unsigned", [False, True], ids=["u8s8", "u8u8"])
@pytest.mark.parametrize("name", list(SHIPPED))
def test_shipped_int8_dump_bit_exact(name, unsigned, fmnist_u8):
    from deploy.onnx_int8 import check_int8, export_int8
    params, meta, x, _, logits = shipped_int8_dump(SHIPPED[name], 16)
    images, labels = fmnist_u8
    proto = export_int8(params, meta, unsigned_weights=unsigned)
    figures = check_int8(session(proto), params, meta, images, labels)
    print(f"{name}: {json.dumps(figures)}")
    assert figures["images"] == N_IMAGES
    assert figures["differing_logits"] == 0, figures
    assert figures["accuracy_onnx"] == figures["accuracy_reference"]
    # The QAT driver's own dumped logits (quant_samples.npz) for the first 16 images.
    got = session(proto).run(None, {"images": images[:16]})[0]
    assert np.array_equal(got, logits.astype(np.int32))
    assert np.array_equal(reference(params, meta, x), got)


# --- random models ------------------------------------------------------------------------------

def edgy_params(act, seed):
    """A random model of odd sizes whose shifts include 0, 1 and 31 and whose biases saturate."""
    params, meta = random_params(act, 40, patch_values=48, channels=24, depth=2, seed=seed)
    rng = np.random.default_rng(seed)
    for key in params:
        if key.endswith(".s"):
            s = params[key].astype(np.int64)
            pick = rng.choice(len(s), size=min(3, len(s)), replace=False)
            s[pick] = [0, 1, 31][:len(pick)]
            params[key] = s.astype(np.int8)
        if key.endswith(".b"):
            b = params[key].astype(np.int64)
            b[:2] = [127, -128]
            params[key] = b.astype(np.int8)
    return params, meta


@pytest.mark.parametrize("unsigned", [False, True], ids=["u8s8", "u8u8"])
@pytest.mark.parametrize("act", ["base", "psa"])
def test_random_model_bit_exact(act, unsigned):
    from deploy.onnx_int8 import check_int8, export_int8
    params, meta = edgy_params(act, seed=3 if act == "psa" else 4)
    rng = np.random.default_rng(5)
    images = rng.integers(0, 256, size=(37, 3, 32, 32)).astype(np.uint8)
    images[0] = 0
    images[1] = 255
    figures = check_int8(session(export_int8(params, meta, unsigned_weights=unsigned)), params,
                         meta, images, batch=16)
    assert figures == dict(images=37, differing_logits=0, differing_images=0), figures


def test_requantisation_on_every_tie_and_both_clips():
    """``linear`` of the graph (MatMulInteger + four int32 nodes) against int_ops.linear on
    inputs whose accumulators hit every tie of the rounding: W is the identity scaled by
    powers of two, so acc = x * 2^k covers half-way values for each shift."""
    from onnx import TensorProto, helper
    from deploy import onnx_int8 as Q
    I = 8
    W = np.diag([1, 2, 4, 8, 16, 32, 64, 127]).astype(np.int64)
    W = np.concatenate([W, -W, W[::-1]])  # 24 outputs
    O = len(W)
    s = np.array([0, 1, 2, 3, 4, 5, 6, 7] * 3)
    s[-3:] = [31, 20, 8]
    b = np.resize(np.array([0, 5, -7, 127, -128, 60]), O)
    x = np.stack(np.meshgrid(*[np.arange(-128, 128, 17)] * 2, indexing="ij"), -1).reshape(-1, 2)
    x = np.concatenate([np.tile(x, (1, I // 2)), np.tile(np.arange(-128, 128)[:, None], (1, I))])
    g = Q._IntGraph(17, False)
    u = g.linear(g.to_u8(g.op("Add", ["x", g.const("i32_128", 128, np.int32)], "in"), "in"),
                 W, b, s, "lin")
    g.nodes.append(helper.make_node("Identity", [u], ["y"]))
    graph = helper.make_graph(g.nodes, "lin",
                              [helper.make_tensor_value_info("x", TensorProto.INT32, [None, I])],
                              [helper.make_tensor_value_info("y", TensorProto.INT32, [None, O])],
                              g.inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    got = session(proto).run(None, {"x": x.astype(np.int32)})[0] - 128
    want = int_ops.linear(x, W, b, s).astype(np.int32)
    assert np.array_equal(got, want)
    acc = x @ W.T
    ties = ((acc % (1 << np.minimum(s, 30))) == (1 << np.maximum(s - 1, 0))) & (s > 0)
    assert ties.sum() > 200  # the inputs do hit ties of the rounding


def test_truncating_requantisation_is_caught():
    """The deliberately broken variant: the rounding constant 2^(s-1) dropped from every
    requantisation (a plain floor of acc / 2^s)."""
    from onnx import numpy_helper
    from deploy.onnx_int8 import check_int8, export_int8
    params, meta = edgy_params("psa", seed=3)
    proto = export_int8(params, meta)
    shifts = {f"{k[:-2]}.round_bias": params[k] for k in params if k.endswith(".s")}
    for init in proto.graph.initializer:
        if init.name in shifts:
            s = shifts[init.name].astype(np.int64).reshape(numpy_helper.to_array(init).shape)
            a = numpy_helper.to_array(init).astype(np.int64) - np.where(s > 0, (1 << s) >> 1, 0)
            init.CopyFrom(numpy_helper.from_array(a.astype(np.int32), init.name))
    images = np.random.default_rng(6).integers(0, 256, size=(16, 3, 32, 32)).astype(np.uint8)
    assert check_int8(session(proto), params, meta, images)["differing_logits"] > 0


# --- the graph's form ---------------------------------------------------------------------------

@pytest.mark.parametrize("act", ["base", "psa"])
def test_graph_form(act):
    from onnx import TensorProto
    from deploy.onnx_export import summary
    from deploy.onnx_int8 import export_int8
    params, meta = random_params(act, 40, channels=24, depth=3, seed=1)
    proto = export_int8(params, meta, opset=18)
    info = summary(proto)
    assert info["domains"] == ["ai.onnx"]
    assert proto.graph.input[0].type.tensor_type.elem_type == TensorProto.UINT8
    assert proto.graph.output[0].type.tensor_type.elem_type == TensorProto.INT32
    floats = (TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT16, TensorProto.BFLOAT16)
    assert not [i.name for i in proto.graph.initializer if i.data_type in floats]
    ops = info["op_types"]
    depth = 3
    assert ops["MatMulInteger"] == 1 + 3 * depth + 1
    # Tables: input codes; per block tm.res, tm.aff1, tm.aff2, mlp.res (+ lut1, lut2).
    assert ops["GatherElements"] == 1 + depth * (4 + (2 if act == "psa" else 0))
    names = [n.name for n in proto.graph.node]
    if act == "psa":
        for i in range(depth):
            for lut in ("lut1", "lut2"):
                (node,) = [n for n in proto.graph.node
                           if n.name.startswith(f"blocks.{i}.mlp.{lut}")]
                assert node.op_type == "GatherElements"
        assert "Max" not in ops
    else:
        assert ops["Max"] == depth and sum(n.endswith(".mlp.relu") for n in names) == depth
    assert set(ops) <= {"Add", "Cast", "Clip", "Div", "GatherElements", "MatMulInteger", "Max",
                        "ReduceSum", "Reshape", "Sub", "Transpose"}


# --- the command line ---------------------------------------------------------------------------

def test_cli_int8_check_and_json(tmp_path, capsys):
    need_path(FMNIST, "the Fashion-MNIST data set", FMNIST_HOW)
    params, meta = random_params("psa", 96, seed=2)
    save_params(tmp_path / "quant_params.npz", params, meta)
    out = tmp_path / "sub" / "int8.onnx"
    assert export_onnx.main(["--int8", "--params", str(tmp_path / "quant_params.npz"),
                             "--out", str(out), "--check", "40"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    result = json.loads(lines[-1])
    assert lines[0].startswith(f"wrote {out}: INT8 ResMLP LERP-PSA, hidden 96")
    assert "0 logit(s) differ from fpga.int_resmlp" in lines[1]
    assert result["check"]["differing_logits"] == 0 and result["check"]["images"] == 40
    assert result["weights"] == "u8s8" and result["nodes"] == sum(result["op_types"].values())
    assert os.listdir(out.parent) == ["int8.onnx"]


BAD = {
    "no params": (["--int8"], "--int8 needs --params"),
    "missing params": (["--int8", "--params", "NOPE"], "does not exist"),
    "checkpoint too": (["--int8", "--params", "P", "--checkpoint", "c.bin"], "drop --checkpoint"),
    "params without int8": (["--params", "P", "--checkpoint", "c.bin"], "go with --int8"),
    "nothing": ([], "pass --checkpoint FILE"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_cli_int8_bad_input_is_one_line(case, tmp_path, capsys):
    args, words = BAD[case]
    args = [str(tmp_path / "nope.npz") if a == "NOPE" else a for a in args]
    out = tmp_path / "m.onnx"
    assert export_onnx.main(args + ["--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("export_onnx.py: error: ") and words in err, err
    assert not out.exists()
