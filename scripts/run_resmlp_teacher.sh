#!/usr/bin/env bash
# Train the ReLU ResMLP teacher (hidden factor 4) into teacher_model.bin.
set -euo pipefail

DATASET="${DATASET:-cifar10}"
DATASET_DIR="${DATASET_DIR:-~/icml_data}"
# Set DATASET_DOWNLOAD_FLAG="--download-dataset" to download CIFAR-10.
DATASET_DOWNLOAD_FLAG="${DATASET_DOWNLOAD_FLAG:-}"

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
mkdir -p "$MODEL_ROOT"
echo "==> teacher -> ${TEACHER_MODEL} (log ${MODEL_ROOT}/teacher_log.txt)"
"$PY" "$SCRIPT" $(data_args) --student-nl-act base --student-hidden-factor 4 --disable-tqdm \
  $(resume_args teacher) --save "$TEACHER_MODEL" $EXTRA_ARGS >> "${MODEL_ROOT}/teacher_log.txt"
grep "Accuracy" "${MODEL_ROOT}/teacher_log.txt" | tail -n 1
