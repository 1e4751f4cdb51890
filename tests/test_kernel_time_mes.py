"""kernel_time_mes.py runs and reports (no speed is asserted: benchmarks are not tests)."""
import json
import os
import sys

import pytest

from tests.oracles import need_module

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

SMALL = ["--device", "cpu", "--tokens", "16", "--features", "7", "--repeats", "2", "--steps", "1",
         "--warmup", "1", "--json"]


@pytest.mark.parametrize("act,extra", [("lerp_psa", []), ("lerp_psa", ["--impl", "reference", "--no-save-memory"]),
                                       ("bspline", []), ("relu", []), ("psa", []), ("none", []),
                                       ("lerp_psa", ["--op-only"]), ("deepsplines", ["--op-only"]),
                                       ("lerp_psa", ["--op-only", "--compile"])])
def test_timing_script_reports(act, extra, capsys):
    if act == "deepsplines":
        need_module("deepsplines", "pip install deepsplines==1.0.0")
    import kernel_time_mes
    assert kernel_time_mes.main([act, *SMALL, *extra]) == 0
    r = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert r["activation"] == act and r["repeats"] == 2 and r["device"] == "cpu"
    assert r["median_ms"] > 0 and r["std_ms"] >= 0 and "peak_mb" in r
    if act == "lerp_psa" and "--impl" in extra:
        # --save-memory is the deepsplines package's switch; our kernels have none
        assert r["impl"] == "reference" and r["save_memory"] is None
    assert r["compile"] is ("--compile" in extra)


def test_timing_script_refuses_missing_cuda(capsys):
    import torch
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    import kernel_time_mes
    with pytest.raises(SystemExit) as e:
        kernel_time_mes.main(["relu", "--device", "cuda"])
    assert "CUDA is not available" in str(e.value)


@pytest.mark.parametrize("impl,dtype", [("reference", "float32"), ("auto", "float32"),
                                        ("auto", "bfloat16")])
def test_op_breakdown_reports_every_part(impl, dtype, capsys):
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    import op_breakdown
    assert op_breakdown.main(["--features", "7", "--tokens", "16", "--repeats", "1", "--steps", "1",
                              "--impl", impl, "--dtype", dtype, "--json"]) == 0
    r = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(r["parts_ms"]) == {"table forward", "table backward", "lookup forward", "lookup backward"}
    assert r["dtype"] == dtype and set(r["over_memory"]) == {"lookup forward", "lookup backward"}
    for k, v in r["over_memory"].items():
        assert v == pytest.approx(r["parts_ms"][k] / r["memory_ms"][k])
    assert all(v > 0 for v in r["parts_ms"].values()) and r["whole_ms"] > 0 and r["relu_ms"] > 0
    assert r["overhead_ms"] == pytest.approx(r["whole_ms"] - sum(r["parts_ms"].values()))
    if impl == "reference":
        assert r["impl"] == "reference"


def test_op_breakdown_refuses_bad_sizes(capsys):
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    import op_breakdown
    with pytest.raises(SystemExit) as e:
        op_breakdown.main(["--features", "0"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].endswith("--features, --tokens, --repeats and --steps must be positive")
