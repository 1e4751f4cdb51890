#!/usr/bin/env bash
# Distil the ReLU ResMLP teacher (h = 4) from the ResNet-20 (docs/METHOD.md section 6): the
# authors' --teacher-resnet --do-kd --student-nl-act base --student-hidden-factor 4, i.e. KD for
# --kd-epochs (300) epochs, into output/<dataset>/resmlp_layers_4_h_4_embed_96/teacher_model.bin
# with its log teacher_log.txt. Needs output/<dataset>/resnet20.bin (RESNET_MODEL overrides):
# train it first with ./scripts/run_resnet.sh. Resumable: rerunning continues a stopped run.
#   DATASET=cifar10 DATASET_DIR=~/icml_data ./scripts/run_resmlp_teacher.sh
# EXTRA_ARGS is passed to cifar10_main.py (e.g. EXTRA_ARGS="--kd-epochs 50").
set -euo pipefail
if [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0; fi

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
