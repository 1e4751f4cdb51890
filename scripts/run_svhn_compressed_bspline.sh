#!/usr/bin/env bash
# Train the SVHN B-spline (65 knots, lambda 1e-5) students by KT + KD from the SVHN ReLU teacher
#   (docs/METHOD.md section 6; ResMLP embed 64, 2 blocks), into
#   output/svhn/resmlp_layers_2_h_4_embed_64/bspline_65_1e-5/h_{mul_2,mul_1,div_2,div_4}_model.bin, each with its _log.txt.
# Needs output/svhn/resmlp_layers_2_h_4_embed_64/teacher_model.bin (./scripts/run_svhn_teacher.sh).
# Optional arguments: hidden factors to train (default: 2 1 0.5 0.25). Resumable.
#   DATASET_DIR=~/icml_data ./scripts/run_svhn_compressed_bspline.sh 0.5
set -euo pipefail
if [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 0; fi

DATASET="svhn"
DATASET_DIR="${DATASET_DIR:-~/icml_data}"
# Set DATASET_DOWNLOAD_FLAG="--download-dataset" to download SVHN.
DATASET_DOWNLOAD_FLAG="${DATASET_DOWNLOAD_FLAG:-}"
MODEL_ROOT="${MODEL_ROOT:-./output/svhn/resmlp_layers_2_h_4_embed_64}"

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
train_compressed bspline "$@"
