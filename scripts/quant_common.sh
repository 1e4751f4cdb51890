# Shared by the run_quant_*.sh drivers (sourced after common.sh).
# QAT of a trained float student with KD from the teacher (docs/METHOD.md section 10):
# <model folder>/quant/<stem>_quant.bin (the QAT state), <stem>/ (the integer dump),
# <stem>_log.txt. Environment overrides:
#   QAT_EPOCHS (50, the authors'), QAT_LIMIT_BATCHES (0: whole epochs), QAT_LR (1e-4),
#   QAT_THREADS (0: torch's default), QAT_ARGS (extra flags for cifar10_quant.py).
QAT_EPOCHS="${QAT_EPOCHS:-50}"
QAT_LIMIT_BATCHES="${QAT_LIMIT_BATCHES:-0}"
QAT_LR="${QAT_LR:-1e-4}"
QAT_THREADS="${QAT_THREADS:-0}"
QAT_ARGS="${QAT_ARGS:-}"

# qat_student ACT H: quantise, train, save and dump one student.
qat_student() {
  local act="$1" h="$2" folder stem student out
  folder="${MODEL_ROOT}/$(act_folder "$act")"
  stem="$(h_stem "$h")"
  student="${folder}/${stem}_model.bin"
  require_files "$student" "$TEACHER_MODEL"
  out="${folder}/quant"
  mkdir -p "$out"
  echo "QAT ${act} h=${h}: ${QAT_EPOCHS} epoch(s), log in ${out}/${stem}_log.txt"
  "$PY" cifar10_quant.py $(data_args) --qat --do-kd \
    --load "$student" --student-nl-act "$act" --student-hidden-factor "$h" \
    --teacher-load "$TEACHER_MODEL" --teacher-nl-act base --teacher-hidden-factor 4 \
    --kd-epochs "$QAT_EPOCHS" --kd-lr "$QAT_LR" --limit-train-batches "$QAT_LIMIT_BATCHES" \
    --threads "$QAT_THREADS" --disable-tqdm \
    --checkpoint-dir "${STATE_ROOT}/quant_$(act_folder "$act")_${stem}" \
    --save "${out}/${stem}_quant.bin" --dump-params --dump-dir "${out}/${stem}" \
    $QAT_ARGS 2>&1 | tee "${out}/${stem}_log.txt"
  test "${PIPESTATUS[0]}" = 0
}
