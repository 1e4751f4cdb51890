#!/usr/bin/env bash
# Train the ReLU ResMLP teacher (hidden factor 4) into teacher_model.bin.
set -euo pipefail

DATASET="${DATASET:-cifar10}"
DATASET_DIR="${DATASET_DIR:-~/icml_data}"
# Set DATASET_DOWNLOAD_FLAG="--download-dataset" to download CIFAR-10.
DATASET_DOWNLOAD_FLAG="${DATASET_DOWNLOAD_FLAG:-}"

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
train_teacher
