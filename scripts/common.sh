# Shared by the run_*.sh drivers. Each driver sets DATASET, DATASET_DIR and
# DATASET_DOWNLOAD_FLAG at its top (as in the authors' README) and sources this.
# EXTRA_ARGS is passed to every cifar10_main.py call (e.g. a shorter schedule).
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if [ -x "$ROOT/.venv/bin/python" ]; then PY="${PY:-$ROOT/.venv/bin/python}"; else PY="${PY:-python3}"; fi
SCRIPT="cifar10_main.py"
EXTRA_ARGS="${EXTRA_ARGS:-}"
# Reproducibility of cuBLAS under deterministic algorithms.
export CUBLAS_WORKSPACE_CONFIG=:4096:8

# Folder names of docs/METHOD.md section 6; fashion-mnist is stored as fashion_mnist.
DATASET_FOLDER="${DATASET//-/_}"
MODEL_ROOT="${MODEL_ROOT:-./output/${DATASET_FOLDER}/resmlp_layers_4_h_4_embed_96}"
TEACHER_MODEL="${MODEL_ROOT}/teacher_model.bin"

# hidden factor -> file stem
H_VALUES=(2 1 0.5 0.25)
h_stem() {
  case "$1" in
    2) echo h_mul_2 ;; 1) echo h_mul_1 ;; 0.5) echo h_div_2 ;; 0.25) echo h_div_4 ;;
    *) echo "unknown hidden factor $1" >&2; return 1 ;;
  esac
}

# act -> folder name
act_folder() {
  case "$1" in
    base) echo baseline ;; bspline) echo bspline_65_1e-5 ;; psa) echo lerp_psa_64 ;;
  esac
}

# Resumable training states live beside the checkpoints, out of git.
STATE_ROOT="${STATE_ROOT:-${MODEL_ROOT}/.states}"

# resume_args NAME: --checkpoint-dir for this model, plus --resume when a state exists.
resume_args() {
  local dir="${STATE_ROOT}/$1"
  if [ -f "${dir}/state.pt" ] || [ -f "${dir}/state.prev.pt" ]; then
    echo "--checkpoint-dir ${dir} --resume"
  else
    echo "--checkpoint-dir ${dir}"
  fi
}

data_args() {
  echo "--dataset ${DATASET} --dataset-dir ${DATASET_DIR} ${DATASET_DOWNLOAD_FLAG}"
}

# require_files FILE...: report every missing file by its full path, then exit 1.
require_files() {
  local missing=0 f
  for f in "$@"; do
    if [ ! -f "$f" ]; then
      echo "missing checkpoint: $(realpath -m "$f")" >&2
      missing=1
    fi
  done
  if [ "$missing" = 1 ]; then
    echo "train it with the matching scripts/run_*.sh, or copy the released checkpoints there" >&2
    exit 1
  fi
}

# eval_act ACT LABEL: evaluate the four hidden factors of one activation and print a table row.
eval_act() {
  local act="$1" label="$2" folder files=() h row acc
  folder="${MODEL_ROOT}/$(act_folder "$act")"
  for h in "${H_VALUES[@]}"; do files+=("${folder}/$(h_stem "$h")_model.bin"); done
  require_files "${files[@]}"
  row="| ${label} |"
  for h in "${H_VALUES[@]}"; do
    acc=$("$PY" "$SCRIPT" $(data_args) --test-only --disable-tqdm \
          --teacher-load "${folder}/$(h_stem "$h")_model.bin" --teacher-nl-act "$act" \
          --teacher-hidden-factor "$h" $EXTRA_ARGS | sed -n 's/^\[test\] Accuracy: \([0-9.]*\).*/\1/p')
    [ -n "$acc" ] || { echo "evaluation of $act h=$h failed" >&2; exit 1; }
    echo "${label} h=${h}: Accuracy: ${acc}"
    row="${row} ${acc} |"
  done
  echo "| activation | h = 2.0 | h = 1.0 | h = 0.5 | h = 0.25 |"
  echo "|---|---|---|---|---|"
  echo "$row"
}

# train_teacher [ARGS...]: the ReLU teacher (h = 4) into teacher_model.bin; ARGS go to cifar10_main.py.
train_teacher() {
  mkdir -p "$MODEL_ROOT"
  echo "==> teacher (ReLU, h = 4) -> ${TEACHER_MODEL} (log ${MODEL_ROOT}/teacher_log.txt)"
  "$PY" "$SCRIPT" $(data_args) --student-nl-act base --student-hidden-factor 4 --disable-tqdm \
    $(resume_args teacher) --save "$TEACHER_MODEL" "$@" $EXTRA_ARGS >> "${MODEL_ROOT}/teacher_log.txt"
  grep "Accuracy" "${MODEL_ROOT}/teacher_log.txt" | tail -n 1
}

# train_student ACT H [ARGS...]: one KT + KD student from the teacher, with its log;
# ARGS go to cifar10_main.py.
train_student() {
  local act="$1" h="$2" folder stem
  shift 2
  folder="${MODEL_ROOT}/$(act_folder "$act")"
  stem="$(h_stem "$h")"
  mkdir -p "$folder"
  echo "==> ${act} h=${h} -> ${folder}/${stem}_model.bin (log ${folder}/${stem}_log.txt)"
  "$PY" "$SCRIPT" $(data_args) --teacher-load "$TEACHER_MODEL" --do-kt --do-kd \
    --student-hidden-factor "$h" --student-nl-act "$act" --disable-tqdm \
    $(resume_args "$(act_folder "$act")_${stem}") \
    --save "${folder}/${stem}_model.bin" "$@" $EXTRA_ARGS >> "${folder}/${stem}_log.txt"
  grep "Accuracy" "${folder}/${stem}_log.txt" | tail -n 1
}

# train_compressed ACT [H...]: KT + KD students (default: every hidden factor).
train_compressed() {
  local act="$1" h
  shift
  local hs=("$@")
  [ ${#hs[@]} -gt 0 ] || hs=("${H_VALUES[@]}")
  require_files "$TEACHER_MODEL"
  for h in "${hs[@]}"; do
    train_student "$act" "$h"
  done
}
