#!/usr/bin/env bash
# What checkpoints cost a training run: the same run with a checkpoint at
# every epoch's end (the default) beside one that writes none
# (`--checkpoint-every` larger than the run), measured in one run, whole
# processes. Two workloads: the guide's sensor example (LSTM 32,24 on
# examples/data/series.csv, 20 epochs) and the LSTM(256) model of
# keras_side_by_side.sh (8 features, 50 steps, batch 64, 20 batches an
# epoch, 4 epochs). Each variant runs three times, in turns; its fastest
# turn counts. Each figure is recorded as a JSON line (benches/record.py).
#
#   bash benches/checkpoint_cost.sh
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cargo build -q --release -j2
STATECTL="$PWD/target/release/statectl"

# 1,280 samples of [50, 8] and a target each, as float32 safetensors.
python3 - "$WORK/wide.safetensors" <<'PY'
import json, random, struct, sys
random.seed(0)
n, steps, features = 1280, 50, 8
x = [random.gauss(0, 1) for _ in range(n * steps * features)]
y = [random.gauss(0, 1) for _ in range(n)]
header = {"x": {"dtype": "F32", "shape": [n, steps, features], "data_offsets": [0, 4 * len(x)]},
          "y": {"dtype": "F32", "shape": [n, 1], "data_offsets": [4 * len(x), 4 * (len(x) + len(y))]}}
text = json.dumps(header).encode()
text += b" " * (-len(text) % 8)
with open(sys.argv[1], "wb") as f:
    f.write(struct.pack("<Q", len(text)) + text)
    f.write(struct.pack(f"<{len(x)}f", *x) + struct.pack(f"<{len(y)}f", *y))
PY

sensor=(--data examples/data/series.csv --seq-len 20 --units 32,24 --epochs 20 --drop-remainder)
wide=(--data "$WORK/wide.safetensors" --units 256 --batch-size 64 --epochs 4 --no-shuffle)

# Seconds one training process takes in a fresh store.
seconds() {
  rm -rf "$WORK/store"
  local start end
  start=$(date +%s.%N)
  "$STATECTL" --store "$WORK/store" -q train "$@" --name m >/dev/null
  end=$(date +%s.%N)
  python3 -c "print($end - $start)"
}

measure() {
  local label=$1; shift
  local none=() every=()
  for _ in 1 2 3; do
    none+=("$(seconds "$@" --checkpoint-every 1000000000)")
    every+=("$(seconds "$@")")
  done
  python3 - "$label" "${none[@]}" "${every[@]}" <<'PY'
import sys
label, runs = sys.argv[1], [float(v) for v in sys.argv[2:]]
none, every = min(runs[:3]), min(runs[3:])
print(f"{label}:")
print(f"  no checkpoint              {none:7.3f} s  reference")
print(f"  a checkpoint every epoch   {every:7.3f} s  {every / none:5.3f}x ({(every / none - 1) * 100:+.1f}%)")
import subprocess
subprocess.run(["python3", "benches/record.py", "--workload", f"training with a checkpoint every epoch: {label}",
                "--figure", str(every), "--unit", "s", "--reference", "the same run writing no checkpoint",
                "--reference-figure", str(none), "--ratio", str(every / none), "--ratio-means", "x its time",
                "--rerun", "bash benches/checkpoint_cost.sh"], check=True)
PY
}

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')
flags=$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -xE 'avx512f|avx2|fma' | sort | tr '\n' ' ')
echo "cpu: $cpu ($(nproc) cores; ${flags% })"
measure "sensor example (LSTM 32,24, 20 epochs)" "${sensor[@]}"
measure "LSTM(256), 8 features, 50 steps, batch 64, 4 epochs of 20 batches" "${wide[@]}"
