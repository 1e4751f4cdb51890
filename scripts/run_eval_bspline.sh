#!/usr/bin/env bash
# Evaluate the B-Spline (64, lambda 1e-5) students (h = 2, 1, 0.5, 0.25) and print a table row.
set -euo pipefail

DATASET="${DATASET:-cifar10}"
DATASET_DIR="${DATASET_DIR:-~/icml_data}"
# Set DATASET_DOWNLOAD_FLAG="--download-dataset" to download CIFAR-10.
DATASET_DOWNLOAD_FLAG="${DATASET_DOWNLOAD_FLAG:-}"

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
eval_act bspline "B-Spline (64, lambda 1e-5)"
