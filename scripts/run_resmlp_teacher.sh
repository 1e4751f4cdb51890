#!/usr/bin/env bash
# Distil the ReLU ResMLP teacher (h = 4) from the ResNet-20 (docs/METHOD.md section 6).
# Usage: ./scripts/run_resmlp_teacher.sh   (-h: this help)
# Runs:   cifar10_main.py --teacher-load RESNET --teacher-resnet --do-kd --student-nl-act base
#         --student-hidden-factor 4: KD for --kd-epochs (300) epochs (the authors'
#         run_resmlp_teacher.sh), resuming a stopped run.
# Reads:  output/<dataset>/resnet20.bin (RESNET_MODEL overrides; ./scripts/run_resnet.sh makes it;
#         a missing file is reported before any work).
# Writes: output/<dataset>/resmlp_layers_4_h_4_embed_96/teacher_model.bin and teacher_log.txt.
# Environment: DATASET (default cifar10), DATASET_DIR (default ~/icml_data),
#   DATASET_DOWNLOAD_FLAG=--download-dataset, EXTRA_ARGS (e.g. "--kd-epochs 50"), MODEL_ROOT, PY.
#   DATASET=cifar10 DATASET_DIR=~/icml_data ./scripts/run_resmlp_teacher.sh
set -euo pipefail

DATASET="${DATASET:-cifar10}"
DATASET_DIR="${DATASET_DIR:-~/icml_data}"
# Set DATASET_DOWNLOAD_FLAG="--download-dataset" to download CIFAR-10.
DATASET_DOWNLOAD_FLAG="${DATASET_DOWNLOAD_FLAG:-}"

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
RESNET_MODEL="${RESNET_MODEL:-./output/${DATASET_FOLDER}/resnet20.bin}"
if [ ! -f "$RESNET_MODEL" ]; then
  echo "run_resmlp_teacher.sh: error: the ResNet-20 teacher $(realpath -m "$RESNET_MODEL") is missing; train it with ./scripts/run_resnet.sh (or set RESNET_MODEL)" >&2
  exit 1
fi
train_teacher --teacher-load "$RESNET_MODEL" --teacher-resnet --do-kd
