#!/usr/bin/env bash
# The long-schedule study on Fashion-MNIST: the authors' whole teacher chain, and students
# trained ten times longer than run_fashion_mnist_repro.sh (docs/TRAINING.md, "The long schedule").
# Usage: ./scripts/run_fashion_mnist_long.sh        (-h: this help; --list: the models, in
#        training order, and which are finished; trains nothing)
# Runs: in this order (every number from scripts/experiments.toml [long]):
#   1. ResNet-20, plain training, weight decay 5e-4, 30 epochs          -> resnet20.bin
#   2. the ReLU ResMLP teacher (h = 4) distilled from it, 60 epochs      -> teacher_model.bin
#   3. students, 3 KT epochs per block + 30 KD epochs (the authors' recipe otherwise):
#      first the pairs the half-size claim rests on (LERP-PSA h = 0.25, ReLU h = 0.5, ReLU
#      h = 0.25, B-spline h = 0.25) with seed 2023, then with 2024, then with 2025; then the
#      rest of the table (every activation at h = 2, 1, 0.5, 0.25) with seed 2023.
# Writes: output/fashion_mnist/long/resnet20.bin (+ resnet20_log.txt) and, under
#   output/fashion_mnist/long/resmlp_layers_4_h_4_embed_96/, the teacher and the students in the
#   usual layout (seeds other than 2023 under seed_<seed>/), each beside its <stem>_log.txt. The
#   logs are JSON lines: precision, torch.compile and thread count in the "start" record, the
#   seconds of every epoch, the process's wall time in "done".
# Resumable and safe to stop: a finished model is skipped; a stopped one continues from its last
#   epoch (states under .states/, out of git). Stop with Ctrl-C or `kill -TERM`: the running
#   model keeps its last complete epoch and the driver starts nothing else.
# Environment:
#   COMMIT=1      git-commit each finished model with its log as soon as it is written
#   RESNET_EPOCHS, TEACHER_EPOCHS, KT_EPOCHS, KD_EPOCHS   override the schedule (tests only:
#                 a shorter schedule is not the study)
#   STUDENT_ARGS  the students' precision flags (default from the manifest: --amp bf16 --compile)
#   LONG_ROOT     where to write (default output/fashion_mnist/long); DATASET_DIR, EXTRA_ARGS, PY
# Takes about 12 hours on 2 CPU cores (ResNet-20 ~45 min, teacher ~70 min, each student ~30 min).
# Next: python scripts/collect_results.py --long   (tables, CSVs), scripts/plot_results.py --long
set -euo pipefail

DATASET="fashion-mnist"
DATASET_DIR="${DATASET_DIR:-/usr/share/datasets/fashion-mnist}"
DATASET_DOWNLOAD_FLAG=""

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
RESNET_EPOCHS="${RESNET_EPOCHS:-$LONG_RESNET_EPOCHS}"
TEACHER_EPOCHS="${TEACHER_EPOCHS:-$LONG_TEACHER_EPOCHS}"
KT_EPOCHS="${KT_EPOCHS:-$LONG_KT_EPOCHS}"
KD_EPOCHS="${KD_EPOCHS:-$LONG_KD_EPOCHS}"
STUDENT_ARGS="${STUDENT_ARGS-$LONG_STUDENT_ARGS}"
COMMIT="${COMMIT:-0}"
LONG_ROOT="${LONG_ROOT:-./output/${MANIFEST_DATASET_FOLDER}/${LONG_FOLDER}}"
BASE_ROOT="${LONG_ROOT}/${MANIFEST_MODEL_NAME}"
MODEL_ROOT="$BASE_ROOT"
STATE_ROOT="${BASE_ROOT}/.states"
TEACHER_MODEL="${BASE_ROOT}/${TEACHER_FILE}"
RESNET_MODEL="${LONG_ROOT}/resnet20.bin"
start=$(date +%s)

elapsed() { echo "$(( ($(date +%s) - start) / 60 )) min so far"; }

# commit_model MESSAGE FILE...: with COMMIT=1, commit these files (and nothing else).
commit_model() {
  local msg="$1"
  shift
  [ "$COMMIT" = 1 ] || return 0
  git add -- "$@"
  git commit -q -m "$msg" -- "$@"
  echo "committed: $msg"
}

# minutes LOG: training minutes of a model (its epochs' seconds, over every resumed process).
minutes() {
  "$PY" "$ROOT/scripts/experiments.py" run "$1" --field train_minutes
}

# The students in training order: the claim's pairs with every seed, then the rest of the table.
jobs=()
for seed in "$SEED_SHIPPED" "${LONG_SEEDS[@]}"; do
  for pair in "${LONG_PRIORITY[@]}"; do jobs+=("${seed}:${pair}"); done
done
for h in "${H_VALUES[@]}"; do
  for act in "${ACTS[@]}"; do
    case " ${LONG_PRIORITY[*]} " in
      *" ${act}:${h} "*) ;;
      *) jobs+=("${SEED_SHIPPED}:${act}:${h}") ;;
    esac
  done
done

# student_paths SEED ACT H: "<checkpoint> <log>" of one student.
student_paths() {
  local root="$BASE_ROOT" stem folder
  [ "$1" = "$SEED_SHIPPED" ] || root="${BASE_ROOT}/seed_$1"
  folder="${root}/$(act_folder "$2")"
  stem="$(h_stem "$3")"
  echo "${folder}/${stem}_model.bin ${folder}/${stem}_log.txt"
}

if [ "${1:-}" = "--list" ]; then
  status() { if [ -f "$1" ]; then echo "done"; else echo "to train"; fi; }
  echo "resnet20 - ${SEED_SHIPPED} $(status "$RESNET_MODEL")"
  echo "teacher ${TEACHER_H} ${SEED_SHIPPED} $(status "$TEACHER_MODEL")"
  for job in "${jobs[@]}"; do
    IFS=: read -r seed act h <<< "$job"
    read -r model _ <<< "$(student_paths "$seed" "$act" "$h")"
    echo "${act} ${h} ${seed} $(status "$model")"
  done
  exit 0
fi

mkdir -p "$BASE_ROOT"
echo "long schedule: ResNet-20 ${RESNET_EPOCHS} epochs; teacher ${TEACHER_EPOCHS} KD epochs;" \
     "students ${KT_EPOCHS} KT epoch(s) per block + ${KD_EPOCHS} KD epochs -> ${LONG_ROOT}"

# 1. ResNet-20 (the authors' run_resnet.sh: plain training with the KD schedule, wd 5e-4).
if [ -f "$RESNET_MODEL" ]; then
  echo "==> ResNet-20: done ($RESNET_MODEL)"
else
  log="${LONG_ROOT}/resnet20_log.txt"
  echo "==> ResNet-20 -> ${RESNET_MODEL} (log ${log})"
  "$PY" "$SCRIPT" $(data_args) --student-resnet --kd-wd "$LONG_RESNET_WD" \
    --kd-epochs "$RESNET_EPOCHS" $LONG_RESNET_ARGS --disable-tqdm $(resume_args resnet20) \
    --save "$RESNET_MODEL" $EXTRA_ARGS >> "$log"
  acc="$(last_accuracy "$log")"
  echo "ResNet-20: Accuracy: ${acc}"
  commit_model "long schedule: ResNet-20, ${RESNET_EPOCHS} epochs: ${acc} % ($(minutes "$log") min)" \
    "$RESNET_MODEL" "$log"
fi

# 2. The ReLU ResMLP teacher, distilled from the ResNet-20.
if [ -f "$TEACHER_MODEL" ]; then
  echo "==> teacher: done ($TEACHER_MODEL)"
else
  train_teacher --teacher-load "$RESNET_MODEL" --teacher-resnet --do-kd \
    --kd-epochs "$TEACHER_EPOCHS" $LONG_TEACHER_ARGS
  log="${BASE_ROOT}/${TEACHER_LOG}"
  commit_model "long schedule: ReLU ResMLP teacher (h = ${TEACHER_H}), ${TEACHER_EPOCHS} KD epochs from the ResNet-20: $(last_accuracy "$log") % ($(minutes "$log") min)" \
    "$TEACHER_MODEL" "$log"
fi

n=0
for job in "${jobs[@]}"; do
  n=$((n + 1))
  IFS=: read -r seed act h <<< "$job"
  if [ "$seed" = "$SEED_SHIPPED" ]; then MODEL_ROOT="$BASE_ROOT"; else MODEL_ROOT="${BASE_ROOT}/seed_${seed}"; fi
  STATE_ROOT="${MODEL_ROOT}/.states"
  read -r model log <<< "$(student_paths "$seed" "$act" "$h")"
  if [ -f "$model" ]; then
    echo "==> [${n}/${#jobs[@]}] seed ${seed} ${act} h=${h}: done"
    continue
  fi
  echo "[${n}/${#jobs[@]}] ($(elapsed)) seed ${seed}"
  train_student "$act" "$h" --kt-epochs "$KT_EPOCHS" --kd-epochs "$KD_EPOCHS" --seed "$seed" \
    $STUDENT_ARGS
  commit_model "long schedule: ${act} h=${h} seed ${seed}: $(last_accuracy "$log") % ($(minutes "$log") min)" \
    "$model" "$log"
done
echo "training done ($(elapsed))"
