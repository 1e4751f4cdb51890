#!/usr/bin/env bash
# QAT of the Baseline (ReLU) students h = 2 and h = 1 to the INT8 model, KD from the teacher,
# and the dump of their integer parameters (docs/METHOD.md section 10).
# Optional arguments: hidden factors (default: 2 1). See scripts/quant_common.sh for overrides.
set -euo pipefail

DATASET="${DATASET:-cifar10}"
DATASET_DIR="${DATASET_DIR:-~/icml_data}"
# Set DATASET_DOWNLOAD_FLAG="--download-dataset" to download CIFAR-10.
DATASET_DOWNLOAD_FLAG="${DATASET_DOWNLOAD_FLAG:-}"

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
source "$(dirname "${BASH_SOURCE[0]}")/quant_common.sh"
for h in "${@:-2 1}"; do
  for hh in $h; do qat_student base "$hh"; done
done
