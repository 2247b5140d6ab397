#!/usr/bin/env bash
# The store at scale, each figure beside its reference from the same run:
#  - `import --per-slot` of 100,000 LSTM-512 states (410 MB) beside `dd`
#    copying the same file with fdatasync (the disk's speed right now);
#  - `import --per-slot --tag-prefix s/` of 1,000,000 LSTM-16 states beside
#    sha256 of the file (the CPU's speed right now), with peak RSS and the
#    store's size;
#  - in that 1M-state store, whole-process `show` and `restore` by tag, by
#    id prefix and HEAD~10 beside the process that opens the store and does
#    nothing else (`model list`).
# Needs python3 with numpy and safetensors (the README's .venv has them).
# Writes about 1.5 GB under target/store-at-scale, removed at the end.
# Each figure is recorded as a JSON line (benches/record.py).
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

# Seconds and peak RSS (KB) of one command: "SECONDS KB".
timed() { /usr/bin/time -f "%e %M" "$@" 2>&1 >/dev/null | tail -1; }
# Seconds dd takes to copy a file and fdatasync the copy: the disk's speed
# right now, which on a shared disk swings from minute to minute, so each
# import is timed beside it.
dd_seconds() { rm -f "$DIR/copy"; sync; python3 -c "import subprocess,sys,time; t=time.perf_counter(); subprocess.run(['dd','if='+sys.argv[1],'of='+sys.argv[2],'bs=4M','conv=fdatasync'],check=True,capture_output=True); print(time.perf_counter()-t)" "$1" "$DIR/copy"; }
# Seconds sha256 of a file takes (Python's hashlib, SHA-NI where the CPU
# has it): every slot is hashed, so this is the CPU's speed right now.
sha_seconds() { "$PY" -c "import hashlib,sys,time; b=open(sys.argv[1],'rb').read(); t=time.perf_counter(); hashlib.sha256(b).digest(); print(time.perf_counter()-t)" "$1"; }
min_of() { python3 -c "import sys; print(min(float(v) for v in sys.argv[1:]))" "$@"; }
RERUN="bash benches/store_at_scale.sh"

echo "import --per-slot of 100,000 LSTM-512 states (410 MB), three turns beside dd:"
imports=() copies=() rss=0
for run in 1 2 3; do
    rm -rf "$DIR/s512"; sync
    read -r secs kb < <(timed "$BIN" -q --store "$DIR/s512" import "$DIR/lstm512.safetensors" --per-slot)
    imports+=("$secs"); rss=$(( kb > rss ? kb : rss ))
    copies+=("$(dd_seconds "$DIR/lstm512.safetensors")")
    echo "  statectl ${imports[-1]} s (peak RSS $kb KB); dd with fdatasync ${copies[-1]} s"
done
rm -rf "$DIR/s512" "$DIR/copy"
import=$(min_of "${imports[@]}"); copy=$(min_of "${copies[@]}")
python3 benches/record.py --workload "import --per-slot of 100,000 one-slot LSTM-512 states (410 MB)" \
    --figure "$import" --unit s --reference "dd copying the same file with fdatasync" --reference-figure "$copy" \
    --ratio "$(python3 -c "print($import / $copy)")" --ratio-means "x dd's time" --rerun "$RERUN" --headline
python3 benches/record.py --workload "import --per-slot of 100,000 one-slot LSTM-512 states (410 MB), peak memory" \
    --figure "$(python3 -c "print($rss / 1000)")" --unit "MB peak RSS" --bound --rerun "$RERUN"

echo "import --per-slot --tag-prefix s/ of 1,000,000 LSTM-16 states, two turns beside sha256 of the file:"
imports=() hashes=() rss=0
for run in 1 2; do
    rm -rf "$DIR/s16"; sync
    read -r secs kb < <(timed "$BIN" -q --store "$DIR/s16" import "$DIR/lstm16.safetensors" --per-slot --tag-prefix s/)
    imports+=("$secs"); rss=$(( kb > rss ? kb : rss ))
    hashes+=("$(sha_seconds "$DIR/lstm16.safetensors")")
    echo "  statectl ${imports[-1]} s (peak RSS $kb KB); sha256 of the file ${hashes[-1]} s"
done
import=$(min_of "${imports[@]}"); hash=$(min_of "${hashes[@]}")
bytes=$(du -sb "$DIR/s16" | cut -f1)
echo "  store folder: $bytes bytes (slots this small are kept in the database, not in packs)"
python3 benches/record.py --workload "import --per-slot --tag-prefix of 1,000,000 one-slot LSTM-16 states (a tag each)" \
    --figure "$import" --unit s --reference "sha256 of the same file" --reference-figure "$hash" \
    --ratio "$(python3 -c "print($import / $hash)")" --ratio-means "x sha256's time" --rerun "$RERUN"
python3 benches/record.py --workload "import --per-slot --tag-prefix of 1,000,000 one-slot LSTM-16 states (a tag each), peak memory" \
    --figure "$(python3 -c "print($rss / 1000)")" --unit "MB peak RSS" --bound --rerun "$RERUN"
python3 benches/record.py --workload "a store of 1,000,000 one-slot LSTM-16 states with a tag each, on disk" \
    --figure "$(python3 -c "print($bytes / 1e6)")" --unit MB --bound --rerun "$RERUN"

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
for args, named in ((("show", "s/123456"), "show by tag"), (("show", state), "show by 8-digit id prefix"),
                    (("show", "HEAD~10"), "show HEAD~10"), (("restore", "case1/end"), "restore by tag"),
                    (("restore", end), "restore by 8-digit id prefix"), (("restore", "HEAD~10"), "restore HEAD~10")):
    ms = median_ms(*args)
    print(f"  {' '.join(args):<30} {ms:6.2f} ms = {ms / floor:.2f}x the floor")
    subprocess.run(["python3", "benches/record.py", "--workload",
                    f"{named} in a store of 1,000,000 states (whole process, median of 30)",
                    "--figure", str(ms), "--unit", "ms",
                    "--reference", "the process opening the store (model list)", "--reference-figure", str(floor),
                    "--ratio", str(ms / floor), "--ratio-means", "x the floor",
                    "--rerun", "bash benches/store_at_scale.sh"], check=True)
EOF
