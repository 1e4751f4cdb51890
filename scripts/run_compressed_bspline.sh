#!/usr/bin/env bash
# Train the B-Spline (64, lambda 1e-5) students by KT + KD from the ReLU teacher (docs/METHOD.md section 6).
# Optional arguments: hidden factors to train (default: 2 1 0.5 0.25).
set -euo pipefail

DATASET="${DATASET:-cifar10}"
DATASET_DIR="${DATASET_DIR:-~/icml_data}"
# Set DATASET_DOWNLOAD_FLAG="--download-dataset" to download CIFAR-10.
DATASET_DOWNLOAD_FLAG="${DATASET_DOWNLOAD_FLAG:-}"

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
train_compressed bspline "$@"
