#!/usr/bin/env bash
# The store at scale, each figure beside its reference from the same run:
#  - `import --per-slot` of 100,000 LSTM-512 states (410 MB) beside `dd`
#    copying the same file with fdatasync (the disk's speed right now) and
#    sha256 of it (the CPU's speed right now);
#  - `import --per-slot --tag-prefix s/` of 1,000,000 LSTM-16 states, with
#    peak RSS and the store's size;
#  - in that 1M-state store, whole-process `show` and `restore` by tag, by
#    id prefix and HEAD~10 beside the process that opens the store and does
#    nothing else (`model list`).
# Needs python3 with numpy and safetensors (the README's .venv has them).
# Writes about 1.5 GB under target/store-at-scale, removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${STATECTL_BENCH_PYTHON:-.venv/bin/python}
cargo build --release -j2 -q
BIN="$PWD/target/release/statectl"
DIR="$PWD/target/store-at-scale"
rm -rf "$DIR" && mkdir -p "$DIR"
trap 'rm -rf "$DIR"' EXIT

"$PY" - "$DIR" <<'EOF'
import sys, numpy as np
from safetensors.numpy import save_file
d = sys.argv[1]
rng = np.random.default_rng(0)
for name, n, units in (("lstm512", 100_000, 512), ("lstm16", 1_000_000, 16)):
    save_file({t: rng.standard_normal((n, units)).astype(np.float32) for t in ("l0.h", "l0.c")}, f"{d}/{name}.safetensors")
EOF

timed() { /usr/bin/time -f "%e s, peak RSS %M KB" "$@" 2>&1 | tail -1; }
# sha256 of the same file (Python's hashlib, SHA-NI where the CPU has it):
# every slot is hashed, and this machine's speed swings from minute to
# minute (2-3x), so each import is printed beside it.
sha_speed() { "$PY" -c "import hashlib,sys,time; b=open(sys.argv[1],'rb').read(); t=time.perf_counter(); hashlib.sha256(b).digest(); print(f'{len(b)/(time.perf_counter()-t)/1e6:,.0f} MB/s')" "$1"; }

echo "import --per-slot of 100,000 LSTM-512 states (410 MB):"
for run in 1 2 3; do
    rm -rf "$DIR/s512" "$DIR/copy"; sync
    echo "  statectl: $(timed "$BIN" -q --store "$DIR/s512" import "$DIR/lstm512.safetensors" --per-slot)"
    sync
    echo "  dd with fdatasync, same file: $(dd if="$DIR/lstm512.safetensors" of="$DIR/copy" bs=4M conv=fdatasync 2>&1 | tail -1)"
    echo "  sha256 of the same file: $(sha_speed "$DIR/lstm512.safetensors")"
done
rm -rf "$DIR/s512" "$DIR/copy"

echo "import --per-slot --tag-prefix s/ of 1,000,000 LSTM-16 states:"
for run in 1 2; do
    rm -rf "$DIR/s16"; sync
    echo "  statectl: $(timed "$BIN" -q --store "$DIR/s16" import "$DIR/lstm16.safetensors" --per-slot --tag-prefix s/)"
    echo "  sha256 of the same file: $(sha_speed "$DIR/lstm16.safetensors")"
done
echo "  store folder: $(du -sb "$DIR/s16" | cut -f1) bytes (statectl.db $(du -b "$DIR/s16/statectl.db" | cut -f1); slots this small are kept in the database, not in packs)"

echo "whole processes in that store (median of 30; the demo adds a model and a stream):"
"$BIN" -q --store "$DIR/s16" demo >/dev/null
"$BIN" -q --store "$DIR/s16" predict --input examples/data/x.safetensors >/dev/null
"$PY" - "$BIN" "$DIR/s16" <<'EOF'
import json, statistics, subprocess, sys, time
bin, store = sys.argv[1], sys.argv[2]
def run(*args):
    return subprocess.run([bin, "--store", store, *args], capture_output=True, check=True).stdout
def median_ms(*args):
    times = []
    for _ in range(30):
        t = time.perf_counter()
        run(*args)
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3
state = json.loads(run("--json", "show", "s/123456"))["state"][:8]
end = json.loads(run("--json", "show", "case1/end"))["state"][:8]
floor = median_ms("model", "list")
print(f"  floor: the process opening the store (model list)  {floor:.2f} ms")
for args in (("show", "s/123456"), ("show", state), ("show", "HEAD~10"),
             ("restore", "case1/end"), ("restore", end), ("restore", "HEAD~10")):
    ms = median_ms(*args)
    print(f"  {' '.join(args):<30} {ms:6.2f} ms = {ms / floor:.2f}x the floor")
EOF
