#!/usr/bin/env bash
# Side-by-side CPU timing of the activation kernels (forward + backward of one
# activation on a 2048 x 768 float32 tensor, parameter gradients included):
# ours (auto: the C/OpenMP kernel), the plain-PyTorch reference path, the
# deepsplines package, and ReLU. Prints a Markdown table.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PY:-$ROOT/.venv/bin/python}"
ARGS="--device cpu --tokens ${TOKENS:-2048} --features ${FEATURES:-768} --op-only --repeats ${REPEATS:-10} --json"
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
for spec in relu:auto gelu:auto lerp_psa:auto lerp_psa:reference bspline:auto bspline:reference deepsplines:auto; do
  act="${spec%%:*}"; impl="${spec#*:}"
  "$PY" kernel_time_mes.py "$act" --impl "$impl" $ARGS >> "$out"
done
"$PY" scripts/timing_table.py "$out" --baseline relu
