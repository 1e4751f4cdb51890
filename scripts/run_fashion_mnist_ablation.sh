#!/usr/bin/env bash
# An ablation of the Fashion-MNIST table: the same students, one recipe change.
# Usage: ./scripts/run_fashion_mnist_ablation.sh NAME      (-h: this help)
#        NAME is an [ablation.NAME] entry of scripts/experiments.toml, e.g. kt_isolated
#        (our earlier knowledge transfer: --kt-mode isolated).
# Runs:   scripts/run_fashion_mnist_repro.sh (the 12 students of the table) and, unless the
#         entry says seeds = false, scripts/run_fashion_mnist_seeds.sh (the seed study's 12) with the
#         ablation's extra arguments, from the shipped teacher and with the shipped schedule,
#         then scripts/collect_results.py --seeds for the ablation.
# Reads:  output/fashion_mnist/resmlp_layers_4_h_4_embed_96/teacher_model.bin
# Writes: output/fashion_mnist/resmlp_layers_4_h_4_embed_96/<ablation folder>/ with the same
#         layout as the shipped models (baseline/, ..., seed_<seed>/, results.csv,
#         results_seeds.csv). Resumable like the drivers it calls (about 2.7 hours on 2 cores).
set -euo pipefail

DATASET="fashion-mnist"
DATASET_DIR="${DATASET_DIR:-/usr/share/datasets/fashion-mnist}"
DATASET_DOWNLOAD_FLAG=""

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
NAME="${1:-}"
if [ -z "$NAME" ] || [ -z "${ABLATION_FOLDER[$NAME]+set}" ]; then
  echo "run_fashion_mnist_ablation.sh: error: name an ablation of scripts/experiments.toml" \
       "(one of: ${!ABLATION_FOLDER[*]}); see --help" >&2
  exit 2
fi
require_files "$TEACHER_MODEL"
export TEACHER_MODEL
export MODEL_ROOT="${MODEL_ROOT}/${ABLATION_FOLDER[$NAME]}"
export EXTRA_ARGS="${ABLATION_ARGS[$NAME]} ${EXTRA_ARGS}"
echo "ablation ${NAME}: ${EXTRA_ARGS} -> ${MODEL_ROOT}"
"$ROOT/scripts/run_fashion_mnist_repro.sh"
if [ "${ABLATION_SEEDS[$NAME]}" = 1 ]; then
  "$ROOT/scripts/run_fashion_mnist_seeds.sh"
  "$PY" "$ROOT/scripts/collect_results.py" --seeds --model-root "$MODEL_ROOT" \
    --dataset "$DATASET" --dataset-dir "$DATASET_DIR"
fi
