#!/usr/bin/env bash
# Train the Baseline (ReLU) students by KT + KD from the ReLU teacher (docs/METHOD.md section 6).
# Usage: ./scripts/run_compressed_baseline.sh [H ...]   (default H: 2 1 0.5 0.25; -h: this help)
# Runs:   cifar10_main.py --teacher-load TEACHER --do-kt --do-kd --student-nl-act base
#         --student-hidden-factor H --save FILE, one run per H, resuming a stopped run.
# Reads:  output/<dataset>/resmlp_layers_4_h_4_embed_96/teacher_model.bin (run_resmlp_teacher.sh)
# Writes: output/<dataset>/resmlp_layers_4_h_4_embed_96/baseline/<stem>_model.bin and
#         <stem>_log.txt (stem h_mul_2, h_mul_1, h_div_2, h_div_4), resumable states under
#         .../.states/baseline_<stem>/.
# Environment: DATASET (cifar10, fashion-mnist, ...), DATASET_DIR (default ~/icml_data),
#   DATASET_DOWNLOAD_FLAG=--download-dataset, EXTRA_ARGS (added to every run), MODEL_ROOT, PY.
# Folder and file names come from scripts/experiments.toml.
set -euo pipefail

DATASET="${DATASET:-cifar10}"
DATASET_DIR="${DATASET_DIR:-~/icml_data}"
# Set DATASET_DOWNLOAD_FLAG="--download-dataset" to download CIFAR-10.
DATASET_DOWNLOAD_FLAG="${DATASET_DOWNLOAD_FLAG:-}"

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
train_compressed base "$@"
