#!/usr/bin/env bash
# Train the ResNet-20 that the ResMLP teacher is distilled from (docs/METHOD.md section 6):
#   plain cross-entropy training for --kd-epochs (300) epochs, AdamW lr 1e-3, weight decay 5e-4,
#   cosine annealing to 1e-5 (the authors' --student-resnet --kd-wd 5e-4), into
#   output/<dataset>/resnet20.bin (RESNET_MODEL overrides), log beside it (resnet20_log.txt).
# Next: ./scripts/run_resmlp_teacher.sh distils the ReLU ResMLP teacher from it.
# Resumable: rerunning continues a stopped run from its last epoch.
#   DATASET=cifar10 DATASET_DIR=~/icml_data [DATASET_DOWNLOAD_FLAG=--download-dataset] ./scripts/run_resnet.sh
# EXTRA_ARGS is passed to cifar10_main.py (e.g. EXTRA_ARGS="--kd-epochs 50").
set -euo pipefail
if [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0; fi

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
