#!/usr/bin/env bash
# Train the SVHN ReLU ResMLP teacher (h = 4; the smaller ResMLP: embed 64, 2 blocks) plainly:
#   cross-entropy for --kd-epochs (300) epochs, AdamW lr 1e-3, weight decay 1e-5, cosine to 1e-5
#   (the authors' SVHN teacher, docs/METHOD.md section 6), into
#   output/svhn/resmlp_layers_2_h_4_embed_64/teacher_model.bin with its log teacher_log.txt.
# Needs train_32x32.mat and test_32x32.mat in DATASET_DIR (or DATASET_DOWNLOAD_FLAG=--download-dataset).
# Resumable: rerunning continues a stopped run from its last epoch.
#   DATASET_DIR=~/icml_data ./scripts/run_svhn_teacher.sh
set -euo pipefail
if [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0; fi

DATASET="svhn"
DATASET_DIR="${DATASET_DIR:-~/icml_data}"
# Set DATASET_DOWNLOAD_FLAG="--download-dataset" to download SVHN.
DATASET_DOWNLOAD_FLAG="${DATASET_DOWNLOAD_FLAG:-}"
MODEL_ROOT="${MODEL_ROOT:-./output/svhn/resmlp_layers_2_h_4_embed_64}"

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
train_teacher --kd-wd 1e-5
