#!/usr/bin/env bash
# Train the ResNet-20 that the ResMLP teacher is distilled from (docs/METHOD.md section 6).
# Usage: ./scripts/run_resnet.sh   (-h: this help)
# Runs:   cifar10_main.py --student-resnet --kd-wd 5e-4: plain cross-entropy training for
#         --kd-epochs (300) epochs, AdamW lr 1e-3, cosine annealing to 1e-5 (the authors'
#         run_resnet.sh), resuming a stopped run.
# Writes: output/<dataset>/resnet20.bin (RESNET_MODEL overrides) and resnet20_log.txt beside it.
# Next:   ./scripts/run_resmlp_teacher.sh distils the ReLU ResMLP teacher from it.
# Environment: DATASET (default cifar10), DATASET_DIR (default ~/icml_data),
#   DATASET_DOWNLOAD_FLAG=--download-dataset, EXTRA_ARGS (e.g. "--kd-epochs 50"), PY.
#   DATASET=cifar10 DATASET_DIR=~/icml_data ./scripts/run_resnet.sh
set -euo pipefail

DATASET="${DATASET:-cifar10}"
DATASET_DIR="${DATASET_DIR:-~/icml_data}"
# Set DATASET_DOWNLOAD_FLAG="--download-dataset" to download CIFAR-10.
DATASET_DOWNLOAD_FLAG="${DATASET_DOWNLOAD_FLAG:-}"

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
RESNET_MODEL="${RESNET_MODEL:-./output/${DATASET_FOLDER}/resnet20.bin}"
out_dir="$(dirname "$RESNET_MODEL")"
mkdir -p "$out_dir"
log="${out_dir}/resnet20_log.txt"
echo "==> ResNet-20 -> ${RESNET_MODEL} (log ${log})"
"$PY" "$SCRIPT" $(data_args) --student-resnet --kd-wd 5e-4 --disable-tqdm \
  $(resume_args resnet20) --save "$RESNET_MODEL" $EXTRA_ARGS >> "$log"
grep "Accuracy" "$log" | tail -n 1
