#!/usr/bin/env bash
# R2D2's replay loop with the statectl CLI alone (no Python, no numpy).
#
#   actors   walk their episodes with an older model and, at the start of
#            every sequence, store the recurrent state of each of them
#            (`split` the batch state: one tagged state per actor);
#   learner  samples sequences from the buffer, builds one batch of their
#            stored states (`stack`), burns in from the states stored one
#            sequence earlier (`burn-in`), and measures staleness against the
#            current model's true states: zero vs stored vs burn-in (`diff`),
#            then draws the chart (`plot staleness`).
#
#   STATECTL=path/to/statectl bash examples/r2d2_replay.sh [CHART.svg|.png] [EPOCHS]
set -euo pipefail
statectl=${STATECTL:-statectl}
chart=${1:-r2d2_staleness.svg}
epochs=${2:-40}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export STATECTL_STORE=${STATECTL_STORE:-$work/store}
L=10           # sequence length = burn-in length
K=14           # sequences per episode
actors=8

series() { # series PHASE ROWS -> one value per line
  awk -v p="$1" -v n="$2" 'BEGIN { for (t = 0; t < n; t++) printf "%.6f\n", sin(0.3 * t + p) + 0.5 * sin(0.11 * t + 2 * p) }'
}
{ echo value; series 0 400; } > "$work/train.csv"
for a in $(seq 0 $((actors - 1))); do series "$(awk -v a="$a" 'BEGIN { print a * 0.7 }')" $((K * L)) > "$work/actor$a.txt"; done
# Sequence k of every actor: one row per actor, L values each.
for k in $(seq 0 $((K - 1))); do
  for a in $(seq 0 $((actors - 1))); do
    sed -n "$((k * L + 1)),$((k * L + L))p" "$work/actor$a.txt" | paste -sd, -
  done > "$work/seq$k.csv"
done

"$statectl" -q train --data "$work/train.csv" --seq-len $L --batch-size 10 --epochs 2 --no-stateful --lr 0.01 --seed 1 --name old --record end >/dev/null
"$statectl" -q model export old -o "$work/old.safetensors" >/dev/null
"$statectl" -q train --data "$work/train.csv" --seq-len $L --batch-size 10 --epochs "$epochs" --no-stateful --lr 0.01 --seed 1 \
  --init "$work/old.safetensors" --name current --record end >/dev/null

# Actors (old model) fill the buffer; the current model's walk gives the
# true states. At the start of sequence k each actor's state is split out.
for m in old current; do
  prefix=$([ $m = old ] && echo buf || echo true)
  "$statectl" -q reset --model $m --stream walk --batch-size $actors >/dev/null
  for k in $(seq 0 $((K - 1))); do
    "$statectl" -q split HEAD --model $m --stream walk --tag-prefix "$prefix/k$k/" >/dev/null
    "$statectl" -q predict --model $m --stream walk --input "$work/seq$k.csv" >/dev/null
  done
done

# The learner samples (sequence, actor) pairs from the buffer.
sample="3:1 5:4 7:0 8:6 10:2 11:7 12:3 13:5"
: > "$work/stored.txt"; : > "$work/true.txt"; : > "$work/earlier.txt"; : > "$work/x.csv"; : > "$work/prefix.csv"
for pair in $sample; do
  k=${pair%:*}; a=${pair#*:}
  echo "buf/k$k/$a" >> "$work/stored.txt"
  echo "true/k$k/$a" >> "$work/true.txt"
  echo "buf/k$((k - 1))/$a" >> "$work/earlier.txt"
  sed -n "$((a + 1))p" "$work/seq$k.csv" >> "$work/x.csv"
  sed -n "$((a + 1))p" "$work/seq$((k - 1)).csv" >> "$work/prefix.csv"
done
"$statectl" -q stack --refs-from "$work/stored.txt" --tag sample/stored --force >/dev/null
"$statectl" -q stack --refs-from "$work/true.txt" --tag sample/true --force >/dev/null
"$statectl" -q stack --refs-from "$work/earlier.txt" --tag sample/earlier --force >/dev/null
# Burn-in: the state stored one sequence earlier, run over that sequence.
"$statectl" -q burn-in sample/earlier --model current --input "$work/prefix.csv" --tag sample/burned --force >/dev/null

mean() { # mean OTHER -> staleness against the true states, mean over the sampled sequences
  "$statectl" diff sample/true "$1" --model current --input "$work/x.csv" |
    sed -n 's/.*per slot: mean \([^,]*\),.*/\1/p'
}
echo "staleness of the current model's outputs, max|y_true - y| / max|y_true|, mean over $(echo $sample | wc -w) sampled sequences:"
echo "zero $(mean zeros)"
echo "stored $(mean sample/stored)"
echo "burn-in $(mean sample/burned)"
"$statectl" -q plot staleness sample/true zeros sample/stored sample/burned --model current --input "$work/x.csv" -o "$chart" >/dev/null
echo "chart: $chart"
