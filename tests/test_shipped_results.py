"""The shipped Fashion-MNIST checkpoints reproduce results.csv exactly."""
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL_ROOT = os.path.join(ROOT, "output", "fashion_mnist", "resmlp_layers_4_h_4_embed_96")
sys.path.insert(0, os.path.join(ROOT, "scripts"))


@pytest.mark.skipif(not os.path.isfile(os.path.join(MODEL_ROOT, "results.csv")),
                    reason="no shipped Fashion-MNIST results (run scripts/run_fashion_mnist_repro.sh)")
@pytest.mark.skipif(not os.path.isdir("/usr/share/datasets/fashion-mnist"),
                    reason="install with: apt-get install -y dataset-fashion-mnist")
def test_shipped_checkpoints_reproduce_results_csv():
    from collect_results import evaluate_all, read_csv
    want = read_csv(os.path.join(MODEL_ROOT, "results.csv"))
    got = evaluate_all(MODEL_ROOT, "fashion-mnist", None, progress=False)
    assert got == want
