#!/usr/bin/env bash
# Seed-to-seed spread of the shipped Fashion-MNIST table at the small hidden sizes.
# Usage: ./scripts/run_fashion_mnist_seeds.sh        (-h: this help)
# Runs:   cifar10_main.py KT + KD for the ReLU, B-spline and LERP-PSA students at h = 0.5 and
#         h = 0.25 with further seeds (default 2024 2025), from the shipped teacher, with the
#         shipped schedule (1 KT epoch per block, 2 KD epochs). The seed-2023 models are the
#         shipped ones. Seeds, hidden factors and schedule come from scripts/experiments.toml.
# Writes: output/fashion_mnist/resmlp_layers_4_h_4_embed_96/seed_<seed>/<activation folder>/
#         <stem>_model.bin with <stem>_log.txt beside it (resumable states in seed_<seed>/.states/).
# Resumable: a finished model is skipped and a model stopped half-way continues from its
# last epoch. Afterwards  python scripts/collect_results.py --seeds  writes results_seeds.csv.
#   SEEDS="2024 2025" KT_EPOCHS=1 KD_EPOCHS=2 ./scripts/run_fashion_mnist_seeds.sh
set -euo pipefail

DATASET="fashion-mnist"
DATASET_DIR="${DATASET_DIR:-/usr/share/datasets/fashion-mnist}"
DATASET_DOWNLOAD_FLAG=""

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
SEEDS="${SEEDS:-${SEEDS_EXTRA[*]}}"
KT_EPOCHS="${KT_EPOCHS:-$SCHEDULE_FASHION_MNIST_KT_EPOCHS}"
KD_EPOCHS="${KD_EPOCHS:-$SCHEDULE_FASHION_MNIST_KD_EPOCHS}"
BASE_ROOT="$MODEL_ROOT"
require_files "$TEACHER_MODEL"
start=$(date +%s)
for seed in $SEEDS; do
  MODEL_ROOT="${BASE_ROOT}/seed_${seed}"
  STATE_ROOT="${MODEL_ROOT}/.states"
  for h in "${SEED_H_VALUES[@]}"; do
    for act in "${ACTS[@]}"; do
      if [ -f "${MODEL_ROOT}/$(act_folder "$act")/$(h_stem "$h")_model.bin" ]; then
        echo "==> seed ${seed} ${act} h=${h}: done"
        continue
      fi
      echo "($(( ($(date +%s) - start) / 60 )) min so far) seed ${seed}"
      train_student "$act" "$h" --kt-epochs "$KT_EPOCHS" --kd-epochs "$KD_EPOCHS" --seed "$seed"
    done
  done
done
echo "training done in $(( ($(date +%s) - start) / 60 )) min"
