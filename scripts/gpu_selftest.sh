#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: run the GPU tests, then time every activation
# with --impl triton and --impl reference (docs/METHOD.md section 8 configuration), and
# write one results file (default results/gpu_selftest.md). Meant to finish in
# under 5 minutes on one H200.
#   DRY_RUN=1 ./scripts/gpu_selftest.sh   # check the script on a CPU (tiny sizes)
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if [ -x "$ROOT/.venv/bin/python" ]; then PY="${PY:-$ROOT/.venv/bin/python}"; else PY="${PY:-python3}"; fi
OUT="${1:-results/gpu_selftest.md}"
mkdir -p "$(dirname "$OUT")"
if [ "${DRY_RUN:-0}" = 1 ]; then
  export TRITON_INTERPRET=1 TEST_DEVICE=cpu
  TIME_ARGS="--device cpu --tokens 64 --features 48 --repeats 2 --steps 1 --warmup 1"
  TEST_ARGS="-k gpu_realistic"
else
  if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "gpu_selftest.sh: error: no CUDA GPU visible to torch; run it on a GPU machine (or DRY_RUN=1)" >&2
    exit 1
  fi
  unset TRITON_INTERPRET
  export TEST_DEVICE=cuda
  TIME_ARGS="--device cuda"
  TEST_ARGS=""
fi
jsonl="$(mktemp)"
{
  echo "# GPU self-test, $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo '```'
  "$PY" -c "import torch, triton; print('torch', torch.__version__, '| triton', triton.__version__, '| device', torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'cpu (dry run)')"
  echo '```'
  echo
  echo "## Tests"
  echo
  echo '```'
} > "$OUT"
start=$(date +%s)
"$PY" -m pytest -q -p no:cacheprovider tests/test_kernels_fast.py tests/test_activations.py tests/test_models.py $TEST_ARGS 2>&1 | tail -n 15 >> "$OUT"
test_rc=${PIPESTATUS[0]}
echo '```' >> "$OUT"
for spec in none:auto relu:auto gelu:auto psa:auto lerp_psa:triton lerp_psa:reference bspline:triton bspline:reference; do
  act="${spec%%:*}"; impl="${spec#*:}"
  for cmp in "" "--compile"; do
    [ -n "$cmp" ] && [ "$impl" = reference ] && continue
    "$PY" kernel_time_mes.py "$act" --impl "$impl" $cmp $TIME_ARGS --json >> "$jsonl" \
      || echo "{\"error\": \"$act $impl $cmp failed\"}" >&2
  done
done
{
  echo
  echo "## Kernel timing (kernel_time_mes.py, docs/METHOD.md section 8: 4 x [activation, Linear(768, 768)], 8192 x 768)"
  echo
  "$PY" scripts/timing_table.py "$jsonl" --baseline relu
  echo
  echo "Rows alternate eager / --compile (torch.compile). Raw JSON:"
  echo
  echo '```'
  cat "$jsonl"
  echo '```'
  echo
  echo "Total $(( $(date +%s) - start )) s; tests exit code ${test_rc}."
} >> "$OUT"
rm -f "$jsonl"
cat "$OUT"
exit "$test_rc"
