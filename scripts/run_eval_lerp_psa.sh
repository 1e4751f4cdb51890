#!/usr/bin/env bash
# Evaluate the LERP-PSA (64) students (h = 2, 1, 0.5, 0.25) and print each accuracy and a table row.
# Usage: ./scripts/run_eval_lerp_psa.sh        (-h: this help)
# Runs:   cifar10_main.py --test-only --teacher-load FILE --teacher-nl-act psa --teacher-hidden-factor H
#         for each H; the accuracy is read from the JSON line it prints.
# Reads:  output/<dataset>/resmlp_layers_4_h_4_embed_96/lerp_psa_64/h_{mul_2,mul_1,div_2,div_4}_model.bin
#         (a missing file is reported by its full path before any work); writes nothing.
# Environment: DATASET (cifar10, fashion-mnist, ...), DATASET_DIR (default ~/icml_data),
#   DATASET_DOWNLOAD_FLAG=--download-dataset, EXTRA_ARGS (added to every run), MODEL_ROOT, PY.
# Folder and file names come from scripts/experiments.toml.
set -euo pipefail

DATASET="${DATASET:-cifar10}"
DATASET_DIR="${DATASET_DIR:-~/icml_data}"
# Set DATASET_DOWNLOAD_FLAG="--download-dataset" to download CIFAR-10.
DATASET_DOWNLOAD_FLAG="${DATASET_DOWNLOAD_FLAG:-}"

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
eval_act psa
