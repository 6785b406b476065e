#!/usr/bin/env bash
# The arithmetic tour: the worked examples of tf.nn.conv2d / max_pool2d, explained.
# Called by `make demo` with CNNLAB (the cnnlab command) and DEMO_OUT (where figures go).
set -euo pipefail
CNNLAB=${CNNLAB:-cnnlab}
OUT=${DEMO_OUT:-out/demo}
mkdir -p "$OUT"

step() { printf '\n\033[1;34m== %s\033[0m\n$ cnnlab %s\n' "$1" "${*:2}"; "$CNNLAB" "${@:2}"; }

step "1. A 2x2 kernel of ones over 1..9, VALID: no padding, the output shrinks to 2x2" \
  conv --input "1 2 3; 4 5 6; 7 8 9" --kernel "1 1; 1 1" --padding valid
step "2. The same with SAME: the output stays 3x3; the one row and column of padding go after (bottom/right)" \
  conv --input "1 2 3; 4 5 6; 7 8 9" --kernel "1 1; 1 1" --padding same --trace --figure "$OUT/conv_same.png"
step "3. Three output channels (taps 1, 10, -1), VALID; the output is saved for the next step" \
  conv --input "1 2 3; 4 5 6; 7 8 9" --kernel "1 1; 1 1" --kernel "10 10; 10 10" --kernel "-1 -1; -1 -1" \
  --save "$OUT/conv3.npy"
step "4. Max pool 2x2, stride 1, SAME on that: padding is absent, so -12 .. -28 survive in channel 2" \
  pool --mode max --input "$OUT/conv3.npy" --size 2 --strides 1 --padding same --trace \
  --figure "$OUT/maxpool_same.png" --cell 1,1 --channel 2
step "5. Where SAME puts the padding on a 28x28 MNIST digit: 3x3 stride 2 -> 14 (0 before, 1 after)" \
  padding --size 28 --kernel 3 --stride 2 --padding same
step "6. ... then 2x2 stride 2 SAME max pooling -> 7" \
  padding --size 14 --kernel 2 --stride 2 --padding same --op max
step "7. A 7x7 map pooled 2x2 SAME -> 4 (the extra cell goes after)" \
  padding --size 7 --kernel 2 --stride 2 --padding same --op max

step "8. A real dataset: fetch MNIST, verify every file's SHA-256, cache it" \
  data get mnist
step "9. ... and look at it" \
  data show mnist --split test --n 32 -o "$OUT/mnist_test.png"

printf '\n\033[1mFigures written:\033[0m\n'
for f in conv_same.png maxpool_same.png mnist_test.png; do printf '  %s\n' "$(realpath "$OUT/$f")"; done
