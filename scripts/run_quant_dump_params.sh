#!/usr/bin/env bash
# Re-dump the integer models of the QAT students (ReLU h = 2, h = 1, LERP-PSA h = 1) from their
# saved QAT states (<model folder>/quant/<stem>_quant.bin, written by run_quant_baseline.sh and
# run_quant_lerp_psa.sh): quant_params.npz, quant_samples.npz and the RTL's hex files in
# <model folder>/quant/<stem>/, the fake-quant vs integer check on the whole test set, and
# results_int8.csv (docs/METHOD.md section 10).
set -euo pipefail

DATASET="${DATASET:-cifar10}"
DATASET_DIR="${DATASET_DIR:-~/icml_data}"
# Set DATASET_DOWNLOAD_FLAG="--download-dataset" to download CIFAR-10.
DATASET_DOWNLOAD_FLAG="${DATASET_DOWNLOAD_FLAG:-}"

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
for spec in base:2 base:1 psa:1; do
  act="${spec%%:*}"; h="${spec##*:}"
  out="${MODEL_ROOT}/$(act_folder "$act")/quant"
  stem="$(h_stem "$h")"
  require_files "${out}/${stem}_quant.bin"
  echo "==> dumping ${act} h=${h} to ${out}/${stem}"
  # the log keeps the QAT history; the dump's result line is appended to it
  "$PY" cifar10_quant.py $(data_args) --quant-load "${out}/${stem}_quant.bin" \
    --student-nl-act "$act" --student-hidden-factor "$h" --test-batch-size 500 --disable-tqdm \
    --dump-params --dump-dir "${out}/${stem}" 2>&1 | tee -a "${out}/${stem}_log.txt"
  test "${PIPESTATUS[0]}" = 0
done
"$PY" scripts/collect_int8_results.py --model-root "$MODEL_ROOT"
