#!/usr/bin/env bash
# Train the SVHN LERP-PSA (64-point tables) students by KT + KD from the SVHN ReLU teacher (docs/METHOD.md section 6).
# Usage: ./scripts/run_svhn_compressed_lerp_psa.sh [H ...]   (default H: 2 1 0.5 0.25; -h: this help)
# Runs:   cifar10_main.py --dataset svhn --teacher-load TEACHER --do-kt --do-kd --student-nl-act psa
#         --student-hidden-factor H --save FILE, one run per H, resuming a stopped run.
# Reads:  output/svhn/resmlp_layers_2_h_4_embed_64/teacher_model.bin (run_svhn_teacher.sh)
# Writes: output/svhn/resmlp_layers_2_h_4_embed_64/lerp_psa_64/<stem>_model.bin and <stem>_log.txt
#         (stem h_mul_2, h_mul_1, h_div_2, h_div_4), resumable states under .../.states/.
# Environment: DATASET_DIR (default ~/icml_data; train_32x32.mat and test_32x32.mat),
#   DATASET_DOWNLOAD_FLAG=--download-dataset, EXTRA_ARGS (added to every run), MODEL_ROOT, PY.
# Folder and file names come from scripts/experiments.toml (SVHN: ResMLP embed 64, 2 blocks).
#   DATASET_DIR=~/icml_data ./scripts/run_svhn_compressed_lerp_psa.sh 0.5
set -euo pipefail

DATASET="svhn"
DATASET_DIR="${DATASET_DIR:-~/icml_data}"
# Set DATASET_DOWNLOAD_FLAG="--download-dataset" to download SVHN.
DATASET_DOWNLOAD_FLAG="${DATASET_DOWNLOAD_FLAG:-}"

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
train_compressed psa "$@"
