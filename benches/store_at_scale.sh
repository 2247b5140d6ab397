#!/usr/bin/env bash
# The store at scale, each figure beside its reference from the same run:
#  - `import --per-slot` of 100,000 LSTM-512 states (410 MB) beside `dd`
#    copying the same file with fdatasync (the disk's speed right now);
#  - `import --per-slot --tag-prefix s/` of 1,000,000 LSTM-16 states beside
#    plain SQLite inserting the same rows (the b-tree work right now), with
#    peak RSS and the store's size;
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
# Seconds SQLite (Python's sqlite3, WAL, synchronous=NORMAL) takes to
# insert the same states as rows keyed by their sha256, and a tag row each,
# in one transaction: the b-tree work any store of this many rows does.
# The ids are hashed before the clock starts.
sqlite_seconds() { "$PY" - "$1" "$DIR/plain.db" <<'PYEOF'
import hashlib, os, sqlite3, sys, time
from safetensors.numpy import load_file
t = load_file(sys.argv[1])
h, c = t["l0.h"], t["l0.c"]
rows = [(hashlib.sha256(h[i].tobytes() + c[i].tobytes()).digest(), h[i].tobytes() + c[i].tobytes()) for i in range(len(h))]
if os.path.exists(sys.argv[2]):
    os.remove(sys.argv[2])
db = sqlite3.connect(sys.argv[2])
db.execute("PRAGMA journal_mode=WAL")
db.execute("PRAGMA synchronous=NORMAL")
db.execute("CREATE TABLE slots (id BLOB PRIMARY KEY, bytes BLOB NOT NULL)")
db.execute("CREATE TABLE tags (name TEXT PRIMARY KEY, id BLOB NOT NULL)")
start = time.perf_counter()
with db:
    db.executemany("INSERT OR IGNORE INTO slots VALUES (?, ?)", rows)
    db.executemany("INSERT INTO tags VALUES (?, ?)", ((f"s/{i}", r[0]) for i, r in enumerate(rows)))
db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
print(time.perf_counter() - start)
db.close()
os.remove(sys.argv[2])
PYEOF
}
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

echo "import --per-slot --tag-prefix s/ of 1,000,000 LSTM-16 states, two turns beside plain SQLite inserts of the same rows:"
imports=() inserts=() rss=0
for run in 1 2; do
    rm -rf "$DIR/s16"; sync
    read -r secs kb < <(timed "$BIN" -q --store "$DIR/s16" import "$DIR/lstm16.safetensors" --per-slot --tag-prefix s/)
    imports+=("$secs"); rss=$(( kb > rss ? kb : rss ))
    inserts+=("$(sqlite_seconds "$DIR/lstm16.safetensors")")
    echo "  statectl ${imports[-1]} s (peak RSS $kb KB); plain SQLite inserts ${inserts[-1]} s"
done
import=$(min_of "${imports[@]}"); insert=$(min_of "${inserts[@]}")
bytes=$(du -sb "$DIR/s16" | cut -f1)
echo "  store folder: $bytes bytes (slots this small are kept in the database, not in packs)"
python3 benches/record.py --workload "import --per-slot --tag-prefix of 1,000,000 one-slot LSTM-16 states (a tag each)" \
    --figure "$import" --unit s --reference "SQLite inserting the same slots by sha256 and a tag each, one transaction" \
    --reference-figure "$insert" --ratio "$(python3 -c "print($import / $insert)")" --ratio-means "x plain SQLite's time" \
    --rerun "$RERUN" --headline
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
