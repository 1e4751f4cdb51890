#!/usr/bin/env bash
# Train the SVHN ReLU ResMLP teacher (h = 4; the smaller ResMLP: embed 64, 2 blocks) plainly
# (docs/METHOD.md section 6).
# Usage: ./scripts/run_svhn_teacher.sh   (-h: this help)
# Runs:   cifar10_main.py --dataset svhn --student-nl-act base --student-hidden-factor 4
#         --kd-wd 1e-5: cross-entropy for --kd-epochs (300) epochs, AdamW lr 1e-3, cosine to 1e-5
#         (the authors' SVHN teacher), resuming a stopped run.
# Writes: output/svhn/resmlp_layers_2_h_4_embed_64/teacher_model.bin and teacher_log.txt.
# Environment: DATASET_DIR (default ~/icml_data; train_32x32.mat and test_32x32.mat),
#   DATASET_DOWNLOAD_FLAG=--download-dataset, EXTRA_ARGS (added to every run), MODEL_ROOT, PY.
# Folder and file names come from scripts/experiments.toml (SVHN: ResMLP embed 64, 2 blocks).
#   DATASET_DIR=~/icml_data ./scripts/run_svhn_teacher.sh
set -euo pipefail

DATASET="svhn"
DATASET_DIR="${DATASET_DIR:-~/icml_data}"
# Set DATASET_DOWNLOAD_FLAG="--download-dataset" to download SVHN.
DATASET_DOWNLOAD_FLAG="${DATASET_DOWNLOAD_FLAG:-}"

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
train_teacher --kd-wd 1e-5
