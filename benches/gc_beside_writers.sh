#!/usr/bin/env bash
# gc beside a writer: a store whose one pack is two thirds dead (200,000
# live LSTM-256 slots, 400,000 dead), then `gc` compacts it while a loop of
# one-slot imports runs. Prints how long gc took, the longest wait of a
# concurrent write and the write's time alone, and records the longest wait
# beside the write alone as a JSON line (benches/record.py).
# Usage: bash benches/gc_beside_writers.sh [statectl binary]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/release/statectl}
[ -n "${1:-}" ] || cargo build -q --release -j2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"${STATECTL_BENCH_PYTHON:-.venv/bin/python}" - "$work" <<'PY'
import sys
import numpy as np
from safetensors.numpy import save_file
rng = np.random.default_rng(0)
for name in ["live", "dead1", "dead2"]:
    a = rng.standard_normal((200_000, 256)).astype(np.float32)
    save_file({"l0.h": a, "l0.c": a + 1}, f"{sys.argv[1]}/{name}.safetensors")
save_file({"l0.h": np.ones((1, 4), np.float32), "l0.c": np.ones((1, 4), np.float32)}, f"{sys.argv[1]}/one.safetensors")
PY
store="$work/store"
"$bin" --store "$store" -q import "$work/live.safetensors" --per-slot --tag-prefix live/ >/dev/null
"$bin" --store "$store" -q import "$work/dead1.safetensors" --per-slot >/dev/null
"$bin" --store "$store" -q import "$work/dead2.safetensors" --per-slot >/dev/null
ms() { echo $(( $(date +%s%N) / 1000000 )); }
write() { "$bin" --store "$store" -q import "$work/one.safetensors" --force --tag w >/dev/null; }
t0=$(ms); write; alone=$(( $(ms) - t0 ))
du -sh "$store" | awk '{print "store before gc: " $1}'
t0=$(ms)
"$bin" --store "$store" -q gc --keep-events-since 0s >/dev/null &
gc=$!
longest=0; writes=0
while kill -0 $gc 2>/dev/null; do
  t1=$(ms); write; d=$(( $(ms) - t1 )); writes=$((writes + 1))
  [ $d -gt $longest ] && longest=$d
done
wait $gc
took=$(( $(ms) - t0 ))
du -sh "$store" | awk '{print "store after gc: " $1}'
"$bin" --store "$store" -q verify >/dev/null && echo "verify: ok"
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
flags=$(grep -m1 -o -w -E 'avx512f|avx2' /proc/cpuinfo | sort -u | tr '\n' ' ')
echo "gc: ${took} ms; ${writes} one-slot writes beside it, the longest ${longest} ms (one alone: ${alone} ms); CPU: ${cpu} (${flags% })"
python3 benches/record.py \
  --workload "the longest one-slot import while gc compacts a 1.3 GB store whose pack is two thirds dead" \
  --figure "$longest" --unit ms --reference "the same import alone" --reference-figure "$alone" \
  --ratio "$(python3 -c "print($longest / max($alone, 1))")" --ratio-means "x its time alone" \
  --rerun "bash benches/gc_beside_writers.sh"
