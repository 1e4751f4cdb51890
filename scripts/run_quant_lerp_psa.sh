#!/usr/bin/env bash
# QAT of the LERP-PSA student h = 1 to the INT8 model (the PSA sublayers trained through their
# 65-entry int8 tables and the exact 8-bit LERP), KD from the teacher, and the dump of its
# integer parameters (docs/METHOD.md section 10).
# Optional arguments: hidden factors (default: 1). See scripts/quant_common.sh for overrides.
set -euo pipefail

DATASET="${DATASET:-cifar10}"
DATASET_DIR="${DATASET_DIR:-~/icml_data}"
# Set DATASET_DOWNLOAD_FLAG="--download-dataset" to download CIFAR-10.
DATASET_DOWNLOAD_FLAG="${DATASET_DOWNLOAD_FLAG:-}"

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
source "$(dirname "${BASH_SOURCE[0]}")/quant_common.sh"
for h in "${@:-1}"; do
  for hh in $h; do qat_student psa "$hh"; done
done
