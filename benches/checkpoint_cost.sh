#!/usr/bin/env bash
# What checkpoints cost a training run, whole processes in one run: the
# same run writing no checkpoint (`--checkpoint-every` larger than the
# run), with a checkpoint at every epoch's end (the default), and with one
# every 5 batches (many times as many: a cost too small to see at one an
# epoch shows there, as a cost per checkpoint). Two workloads: the guide's
# sensor example (LSTM 32,24 on examples/data/series.csv, 20 epochs of 30
# batches) and the LSTM(256) model of keras_side_by_side.sh (8 features,
# 50 steps, batch 64, 20 batches an epoch, 4 epochs).
#
# The variants run in turns, 15 rounds of the sensor example (a run takes
# about 0.2 s, and other work on a shared machine moves single runs by 10%
# and more) and 5 of the larger model. The figure is the median of the
# rounds' ratios (a round's variants run seconds apart, under the same
# load), with each variant's median and fastest time beside it; the cost
# per checkpoint comes from the fastest times. Each workload's every-epoch
# figure is recorded as a JSON line (benches/record.py).
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

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')
flags=$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -xE 'avx512f|avx2|fma' | sort | tr '\n' ' ')
echo "cpu: $cpu ($(nproc) cores; ${flags% })"

python3 - "$STATECTL" "$WORK" <<'PY'
import sqlite3, shutil, statistics, subprocess, sys, time

statectl, work = sys.argv[1], sys.argv[2]
store = f"{work}/store"
variants = [
    ("no checkpoint", ["--checkpoint-every", "1000000000"]),
    ("a checkpoint every epoch", []),
    ("a checkpoint every 5 batches", ["--checkpoint-every", "5"]),
]
workloads = [
    ("sensor example (LSTM 32,24, 20 epochs)", 15,
     ["--data", "examples/data/series.csv", "--seq-len", "20", "--units", "32,24", "--epochs", "20", "--drop-remainder"]),
    ("LSTM(256), 8 features, 50 steps, batch 64, 4 epochs of 20 batches", 5,
     ["--data", f"{work}/wide.safetensors", "--units", "256", "--batch-size", "64", "--epochs", "4", "--no-shuffle"]),
]


def run(args):
    """Seconds one training process takes in a fresh store, and the
    checkpoints it wrote."""
    shutil.rmtree(store, ignore_errors=True)
    start = time.perf_counter()
    subprocess.run([statectl, "--store", store, "-q", "train", *args, "--name", "m"],
                   stdout=subprocess.DEVNULL, check=True)
    seconds = time.perf_counter() - start
    db = sqlite3.connect(f"{store}/statectl.db")
    written = db.execute("SELECT count(*) FROM events WHERE kind = 'checkpoint'").fetchone()[0]
    db.close()
    return seconds, written


for label, rounds, args in workloads:
    times = {name: [] for name, _ in variants}
    written = {}
    for _ in range(rounds):
        for name, extra in variants:
            seconds, written[name] = run(args + extra)
            times[name].append(seconds)
    none = min(times["no checkpoint"])
    print(f"{label} ({rounds} rounds):")
    print(f"  {'':34} {'median':>8} {'fastest':>8}  median of the rounds' ratios")
    print(f"  {'no checkpoint':34} {statistics.median(times['no checkpoint']):7.3f}s {none:7.3f}s  reference")
    ratios = {}
    for name, _ in variants[1:]:
        ratios[name] = statistics.median(t / n for n, t in zip(times["no checkpoint"], times[name]))
        print(f"  {name + f' ({written[name]})':34} {statistics.median(times[name]):7.3f}s"
              f" {min(times[name]):7.3f}s  {ratios[name]:5.3f}x")
    many, few = written["a checkpoint every 5 batches"], written["a checkpoint every epoch"]
    per_checkpoint = (min(times["a checkpoint every 5 batches"]) - none) / many
    print(f"  cost per checkpoint, from the fastest every-5-batches run: {per_checkpoint * 1e3:+.2f} ms;"
          f" {few} of them add {per_checkpoint * few / none * 100:+.1f}%")
    every = "a checkpoint every epoch"
    subprocess.run(["python3", "benches/record.py", "--workload", f"training with a checkpoint every epoch: {label}",
                    "--figure", str(statistics.median(times[every])), "--unit", "s",
                    "--reference", "the same run writing no checkpoint (medians; the ratio is the median of the rounds' ratios)",
                    "--reference-figure", str(statistics.median(times["no checkpoint"])),
                    "--ratio", str(ratios[every]), "--ratio-means", "x its time",
                    "--rerun", "bash benches/checkpoint_cost.sh", "--headline"], check=True)
PY
