#!/usr/bin/env bash
# The paper's whole recipe on Fashion-MNIST at a CPU-sized schedule (docs/METHOD.md section 6).
# Usage: ./scripts/run_fashion_mnist_repro.sh        (-h: this help)
# Runs:   cifar10_main.py for the ReLU teacher (h = 4, plain training), then KT + KD students
#         for ReLU, B-spline and LERP-PSA at h = 2, 1, 0.5, 0.25; then scripts/collect_results.py.
# Writes: output/fashion_mnist/resmlp_layers_4_h_4_embed_96/teacher_model.bin, the students in
#         baseline/, bspline_65_1e-5/, lerp_psa_64/ (same names as the CIFAR-10 layout), each
#         with its <stem>_log.txt, and results.csv there.
# Resumable: a model whose checkpoint exists is skipped, and a model stopped half-way continues
#   from its last epoch (--checkpoint-dir under .states/, --resume), so the run can be split
#   over several sittings. One schedule for every model, from scripts/experiments.toml
#   [schedule.fashion_mnist] (5 teacher epochs; 1 KT epoch per block, 2 KD epochs), overridable:
#   TEACHER_EPOCHS=5 KT_EPOCHS=1 KD_EPOCHS=2 ./scripts/run_fashion_mnist_repro.sh
# Everything else is the paper's recipe: batch 128, AdamW 1e-3, wd 0, alpha 0.8, T 1,
# B-spline lambda 1e-5, seed 2023, deterministic. Environment: DATASET_DIR, EXTRA_ARGS, PY.
set -euo pipefail

DATASET="fashion-mnist"
DATASET_DIR="${DATASET_DIR:-/usr/share/datasets/fashion-mnist}"
DATASET_DOWNLOAD_FLAG=""

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
TEACHER_EPOCHS="${TEACHER_EPOCHS:-$SCHEDULE_FASHION_MNIST_TEACHER_EPOCHS}"
KT_EPOCHS="${KT_EPOCHS:-$SCHEDULE_FASHION_MNIST_KT_EPOCHS}"
KD_EPOCHS="${KD_EPOCHS:-$SCHEDULE_FASHION_MNIST_KD_EPOCHS}"
mkdir -p "$MODEL_ROOT"
start=$(date +%s)
echo "schedule: teacher ${TEACHER_EPOCHS} epochs; students ${KT_EPOCHS} KT epoch(s) per block + ${KD_EPOCHS} KD epochs"

if [ -f "$TEACHER_MODEL" ]; then
  echo "==> teacher: done ($TEACHER_MODEL)"
else
  train_teacher --epochs "$TEACHER_EPOCHS"
fi

for h in "${H_VALUES[@]}"; do
  for act in "${ACTS[@]}"; do
    if [ -f "${MODEL_ROOT}/$(act_folder "$act")/$(h_stem "$h")_model.bin" ]; then
      echo "==> ${act} h=${h}: done"
      continue
    fi
    echo "($(( ($(date +%s) - start) / 60 )) min so far)"
    train_student "$act" "$h" --kt-epochs "$KT_EPOCHS" --kd-epochs "$KD_EPOCHS"
  done
done
echo "training done in $(( ($(date +%s) - start) / 60 )) min"
"$PY" scripts/collect_results.py --model-root "$MODEL_ROOT" --teacher "$TEACHER_MODEL" \
  --dataset "$DATASET" --dataset-dir "$DATASET_DIR"
