#!/usr/bin/env bash
# One command on a fresh machine. Sets up (.venv, pinned requirements, Debian's
# dataset-fashion-mnist), then:
#   ./scripts/quickstart.sh               evaluate every shipped Fashion-MNIST checkpoint, print
#                                         the accuracy table beside the paper's CIFAR-10 table and
#                                         check it equals results.csv (and, when shipped, the seed
#                                         checkpoints against results_seeds.csv), the same for the
#                                         isolated-KT and bf16 ablations and the long-schedule
#                                         study (against runs.csv), then re-run the three shipped INT8
#                                         integer models against results_int8.csv; writes nothing
#   ./scripts/quickstart.sh --retrain [--out DIR]
#                                         run the whole Fashion-MNIST training again, teacher
#                                         included (scripts/run_fashion_mnist_repro.sh), into a
#                                         fresh folder (default runs/fashion_mnist; the shipped
#                                         models are never touched), then print its table beside
#                                         the shipped results.csv; about 2 hours on 2 CPU cores,
#                                         resumable (run it again to continue)
#   ./scripts/quickstart.sh --quick-train train ReLU and LERP-PSA (h = 0.25) for one epoch each and
#                                         print both accuracies (a few minutes); saves no model
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
mode="${1:-eval}"
OUT="runs/fashion_mnist"
case "$mode" in
  eval|--quick-train) [ $# -le 1 ] || { echo "quickstart.sh: error: $mode takes no further arguments (see --help)" >&2; exit 2; } ;;
  --retrain)
    if [ $# -eq 3 ] && [ "$2" = "--out" ]; then OUT="$3"
    elif [ $# -ne 1 ]; then echo "quickstart.sh: error: use --retrain or --retrain --out DIR" >&2; exit 2; fi ;;
  -h|--help) sed -n '2,/^[^#]/p' "$0" | sed -n 's/^# \{0,1\}//p'; exit 0 ;;
  *) echo "quickstart.sh: error: unknown option $mode (use --retrain, --quick-train or nothing)" >&2; exit 2 ;;
esac
source "$ROOT/scripts/setup_env.sh"
start=$(date +%s)

if [ "$mode" = "--retrain" ]; then
  shipped="$("$PY" scripts/experiments.py shell --dataset fashion-mnist | sed -n 's/^MANIFEST_MODEL_ROOT=//p')"
  new_root="${OUT}/$(basename "$shipped")"
  case "$(realpath -m "$new_root")" in
    "$(realpath -m "$shipped")") echo "quickstart.sh: error: --out $OUT is the shipped folder; pick another" >&2; exit 2 ;;
  esac
  echo "==> retraining the Fashion-MNIST study into ${new_root} (the shipped models stay as they are)"
  PY="$PY" MODEL_ROOT="$new_root" ./scripts/run_fashion_mnist_repro.sh
  echo "==> the retrained table beside the shipped one"
  "$PY" scripts/collect_results.py --model-root "$new_root" --side-by-side "$shipped"
elif [ "$mode" = "--quick-train" ]; then
  declare -A acc
  for act in base psa; do
    echo "==> training ${act} (h = 0.25) for one epoch on Fashion-MNIST"
    out=$("$PY" cifar10_main.py --dataset fashion-mnist --student-nl-act "$act" \
          --student-hidden-factor 0.25 --epochs 1 --disable-tqdm | tee /dev/stderr)
    # the accuracy of the finished run, from its JSON line
    acc[$act]=$(printf '%s\n' "$out" | "$PY" scripts/experiments.py accuracy --event done)
  done
  echo
  echo "Fashion-MNIST test accuracy after one epoch, ResMLP h = 0.25:"
  echo "  ReLU:     ${acc[base]} %"
  echo "  LERP-PSA: ${acc[psa]} %"
else
  echo "==> evaluating the shipped Fashion-MNIST checkpoints (output/fashion_mnist/...)"
  # also re-evaluates the seed checkpoints when results_seeds.csv is shipped
  "$PY" scripts/collect_results.py --check
  echo "==> evaluating the isolated-KT ablation (output/fashion_mnist/.../ablation_kt_isolated/)"
  "$PY" scripts/collect_results.py --check --ablation kt_isolated
  echo "==> evaluating the bf16 ablation (output/fashion_mnist/.../ablation_fast_bf16/)"
  "$PY" scripts/collect_results.py --check --ablation fast_bf16
  echo "==> evaluating the long-schedule study's finished models (output/fashion_mnist/long/)"
  "$PY" scripts/collect_results.py --check --long
  echo "==> re-running the shipped INT8 integer-only models (fpga.int_resmlp) on the test set"
  "$PY" scripts/collect_int8_results.py --check
fi
echo "($(( $(date +%s) - start )) s)"
