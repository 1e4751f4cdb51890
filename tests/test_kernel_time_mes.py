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
        assert r["impl"] == "reference" and r["save_memory"] is False
    assert r["compile"] is ("--compile" in extra)


def test_timing_script_refuses_missing_cuda(capsys):
    import torch
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    import kernel_time_mes
    with pytest.raises(SystemExit) as e:
        kernel_time_mes.main(["relu", "--device", "cuda"])
    assert "CUDA is not available" in str(e.value)
