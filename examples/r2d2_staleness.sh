#!/usr/bin/env bash
# R2D2's comparison of recurrent start states, on a time series.
#
# Eight "actors" run the same dynamics with different phases. An older
# version of the model (2 epochs) walks each episode and leaves a state at
# the start of every sequence: the "stored" states a replay buffer keeps.
# The current model (trained further from the old weights) walks the same
# history: the "true" states. For each sequence the current model's outputs
# on the sequence are compared, R2D2's way (max|y_true - y| / max|y_true|),
# when it starts from
#   - zeros,
#   - the stored state,
#   - the stored state from L steps earlier plus a burn-in of those L steps.
# Prints the three figures, averaged over the sequences.
#
#   STATECTL=path/to/statectl bash examples/r2d2_staleness.sh [EPOCHS]
set -euo pipefail
statectl=${STATECTL:-statectl}
epochs=${1:-40}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export STATECTL_STORE=${STATECTL_STORE:-$work/store}
L=10           # burn-in length = sequence length = chunk length
K=14           # chunks walked per episode
episodes=8

series() { # series PHASE ROWS -> one value per line
  awk -v p="$1" -v n="$2" 'BEGIN { for (t = 0; t < n; t++) printf "%.6f\n", sin(0.3 * t + p) + 0.5 * sin(0.11 * t + 2 * p) }'
}
{ echo value; series 0 400; } > "$work/train.csv"
for e in $(seq 0 $((episodes - 1))); do series "$(awk -v e="$e" 'BEGIN { print e * 0.7 }')" $((K * L)) > "$work/ep$e.txt"; done
# chunk k: one row per episode, L values each.
for k in $(seq 0 $((K - 1))); do
  for e in $(seq 0 $((episodes - 1))); do
    sed -n "$((k * L + 1)),$((k * L + L))p" "$work/ep$e.txt" | paste -sd, -
  done > "$work/chunk$k.csv"
done

"$statectl" -q train --data "$work/train.csv" --seq-len $L --batch-size 10 --epochs 2 --no-stateful --lr 0.01 --seed 1 --name old --record end >/dev/null
"$statectl" -q model export old -o "$work/old.safetensors" >/dev/null
"$statectl" -q train --data "$work/train.csv" --seq-len $L --batch-size 10 --epochs "$epochs" --no-stateful --lr 0.01 --seed 1 \
  --init "$work/old.safetensors" --name current --record end >/dev/null

# Walk every episode with each model; tag the state at each chunk boundary.
for m in old current; do
  "$statectl" -q reset --model $m --stream walk --batch-size $episodes >/dev/null
  for k in $(seq 0 $((K - 1))); do
    "$statectl" -q predict --model $m --stream walk --input "$work/chunk$k.csv" --tag "$m-at-$((k + 1))" >/dev/null
  done
done

staleness() { # staleness TRUE OTHER INPUT
  "$statectl" -q --json diff "$1" "$2" --model current --input "$3" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["outputs"]["overall"])'
}
sum_zero=0; sum_stored=0; sum_burned=0; n=0
for k in $(seq 2 $((K - 1))); do
  "$statectl" -q burn-in "old-at-$((k - 1))" --model current --input "$work/chunk$((k - 1)).csv" --tag "burned-$k" --force >/dev/null
  z=$(staleness "current-at-$k" zeros "$work/chunk$k.csv")
  s=$(staleness "current-at-$k" "old-at-$k" "$work/chunk$k.csv")
  b=$(staleness "current-at-$k" "burned-$k" "$work/chunk$k.csv")
  sum_zero=$(awk -v a="$sum_zero" -v b="$z" 'BEGIN { print a + b }')
  sum_stored=$(awk -v a="$sum_stored" -v b="$s" 'BEGIN { print a + b }')
  sum_burned=$(awk -v a="$sum_burned" -v b="$b" 'BEGIN { print a + b }')
  n=$((n + 1))
done
echo "staleness of the current model's outputs, max|y_true - y| / max|y_true|, mean over $n sequences of $episodes episodes:"
awk -v z="$sum_zero" -v s="$sum_stored" -v b="$sum_burned" -v n="$n" -v l="$L" 'BEGIN {
  printf "zero %.6f\nstored %.6f\nburn-in %.6f\n", z / n, s / n, b / n
}'
