#!/usr/bin/env bash
# One command on a fresh machine: set up, then train a ReLU and a LERP-PSA ResMLP
# (hidden factor 0.25) for one epoch each on Fashion-MNIST and print both accuracies.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source "$ROOT/scripts/setup_env.sh"
start=$(date +%s)
declare -A acc
for act in base psa; do
  echo "==> training ${act} (h = 0.25) for one epoch on Fashion-MNIST"
  line=$("$PY" cifar10_main.py --dataset fashion-mnist --student-nl-act "$act" \
         --student-hidden-factor 0.25 --epochs 1 "$@" | tee /dev/stderr | grep '^\[1\] Accuracy' )
  acc[$act]=$(echo "$line" | sed -n 's/^\[1\] Accuracy: \([0-9.]*\).*/\1/p')
done
echo
echo "Fashion-MNIST test accuracy after one epoch, ResMLP h = 0.25:"
echo "  ReLU:     ${acc[base]} %"
echo "  LERP-PSA: ${acc[psa]} %"
echo "($(( $(date +%s) - start )) s)"
