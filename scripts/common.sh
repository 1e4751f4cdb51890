# Shared by the run_*.sh drivers. Each driver sets DATASET, DATASET_DIR and
# DATASET_DOWNLOAD_FLAG at its top (as in the authors' README) and sources this.
# EXTRA_ARGS is passed to every cifar10_main.py call (e.g. a shorter schedule).
# The experiment table (activation -> folder and label, hidden factor -> file stem, the
# teacher's file, schedules, seeds) comes from scripts/experiments.toml through
# scripts/experiments.py; nothing here repeats it.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# -h/--help of the sourcing driver: print its header comment (what it runs, where it writes).
case "${1:-}" in
  -h|--help) sed -n '2,/^[^#]/p' "$0" | sed -n 's/^# \{0,1\}//p'; exit 0 ;;
esac

cd "$ROOT"
if [ -x "$ROOT/.venv/bin/python" ]; then PY="${PY:-$ROOT/.venv/bin/python}"; else PY="${PY:-python3}"; fi
SCRIPT="cifar10_main.py"
EXTRA_ARGS="${EXTRA_ARGS:-}"
# Reproducibility of cuBLAS under deterministic algorithms.
export CUBLAS_WORKSPACE_CONFIG=:4096:8

# ACTS, H_VALUES, ACT_FOLDER[act], ACT_LABEL[act], H_STEM[h], TEACHER_*, SEED_*, SCHEDULE_*_*,
# MANIFEST_MODEL_ROOT (output/<dataset folder>/<model>, docs/METHOD.md section 6).
manifest="$("$PY" "$ROOT/scripts/experiments.py" shell --dataset "$DATASET")" \
  || { echo "cannot read scripts/experiments.toml with $PY" >&2; exit 1; }
eval "$manifest"
unset manifest
MODEL_ROOT="${MODEL_ROOT:-${MANIFEST_MODEL_ROOT}}"
# TEACHER_MODEL may be given (an ablation trains into its own folder from the shipped teacher).
TEACHER_MODEL="${TEACHER_MODEL:-${MODEL_ROOT}/${TEACHER_FILE}}"

# h_stem H: file stem of a hidden factor (h_mul_2, h_mul_1, h_div_2, h_div_4).
h_stem() {
  if [ -n "${H_STEM[$1]+set}" ]; then echo "${H_STEM[$1]}"; return 0; fi
  echo "unknown hidden factor $1 (use one of: ${H_VALUES[*]})" >&2
  return 1
}

# act_folder ACT: folder of an activation (baseline, bspline_65_1e-5, lerp_psa_64).
act_folder() {
  if [ -n "${ACT_FOLDER[$1]+set}" ]; then echo "${ACT_FOLDER[$1]}"; return 0; fi
  echo "unknown activation $1 (use one of: ${ACTS[*]})" >&2
  return 1
}

# last_accuracy FILE: the accuracy of the last finished run logged in FILE (its JSON lines).
last_accuracy() {
  "$PY" "$ROOT/scripts/experiments.py" accuracy --event done "$1"
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

# eval_act ACT: evaluate the four hidden factors of one activation and print a table row.
# The accuracy is read from the JSON line that cifar10_main.py --test-only prints.
eval_act() {
  local act="$1" label folder files=() h row acc out
  label="${ACT_LABEL[$act]}"
  folder="${MODEL_ROOT}/$(act_folder "$act")"
  for h in "${H_VALUES[@]}"; do files+=("${folder}/$(h_stem "$h")_model.bin"); done
  require_files "${files[@]}"
  row="| ${label} |"
  for h in "${H_VALUES[@]}"; do
    out=$("$PY" "$SCRIPT" $(data_args) --test-only --disable-tqdm \
          --teacher-load "${folder}/$(h_stem "$h")_model.bin" --teacher-nl-act "$act" \
          --teacher-hidden-factor "$h" $EXTRA_ARGS) \
      || { echo "evaluation of $act h=$h failed" >&2; exit 1; }
    acc=$(printf '%s\n' "$out" | "$PY" "$ROOT/scripts/experiments.py" accuracy --event test) \
      || { echo "evaluation of $act h=$h printed no accuracy" >&2; exit 1; }
    echo "${label} h=${h}: Accuracy: ${acc}"
    row="${row} ${acc} |"
  done
  echo "$TABLE_HEAD"
  echo "$TABLE_RULE"
  echo "$row"
}

# train_teacher [ARGS...]: the ReLU teacher (h = 4) into teacher_model.bin; ARGS go to cifar10_main.py.
train_teacher() {
  local log="${MODEL_ROOT}/${TEACHER_LOG}"
  mkdir -p "$MODEL_ROOT"
  echo "==> teacher (ReLU, h = ${TEACHER_H}) -> ${TEACHER_MODEL} (log ${log})"
  "$PY" "$SCRIPT" $(data_args) --student-nl-act "$TEACHER_ACT" --student-hidden-factor "$TEACHER_H" \
    --disable-tqdm $(resume_args teacher) --save "$TEACHER_MODEL" "$@" $EXTRA_ARGS >> "$log"
  echo "teacher: Accuracy: $(last_accuracy "$log")"
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
  echo "${act} h=${h}: Accuracy: $(last_accuracy "${folder}/${stem}_log.txt")"
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
