#!/usr/bin/env bash
# Set up (venv, pinned requirements + test and deployment dependencies, Debian packages) and
# run pytest.
# Extra arguments go to pytest, e.g.  ./scripts/test.sh -k lerp -x
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
REQS=requirements-test.txt APT_PKGS="${APT_PKGS:-dataset-fashion-mnist verilator yosys}" \
  source "$ROOT/scripts/setup_env.sh"
# ONNX export and onnxruntime (tests/test_onnx_export.py); kept out of the core requirements.
REQS=requirements-deploy.txt source "$ROOT/scripts/setup_env.sh"
export TRITON_INTERPRET="${TRITON_INTERPRET:-1}"
exec "$PY" -m pytest -q "$@" tests
