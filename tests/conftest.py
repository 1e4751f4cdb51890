import os
import sys

# Triton kernels run on the CPU under the interpreter unless tests target a GPU;
# this must be set before triton is first imported.
if os.environ.get("TEST_DEVICE", "cpu") == "cpu":
    os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

# Tests run on the device named by TEST_DEVICE (default: cpu).
DEVICE = torch.device(os.environ.get("TEST_DEVICE", "cpu"))


@pytest.fixture
def device():
    if DEVICE.type == "cuda" and not torch.cuda.is_available():
        pytest.skip("TEST_DEVICE=cuda but CUDA is not available")
    return DEVICE


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
