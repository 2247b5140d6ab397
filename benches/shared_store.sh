#!/usr/bin/env bash
# Many actors, one store: the aggregate rate at which 64 actor processes
# get 4 KiB one-slot states (LSTM-512: h and c of 512 floats), each with a
# tag, into one store at once, measured in one run of this script:
#
#   embedded  64 `statectl import --per-slot` processes into one local
#             SQLite store (the reference: the same states, the same tags)
#   push      64 `statectl push` processes, each from its own local store
#             holding its share, into one shared store on PostgreSQL
#             (started here on 127.0.0.1, on this machine)
#   direct    64 `statectl --store URL import --per-slot` processes writing
#             the same states straight into another, empty shared store
#   plain     the same, into a third, with sslmode=disable (when the
#             server speaks TLS, as scripts/postgres starts it, the others
#             connect with the default sslmode=prefer, so over TLS)
#   again     the same 64 pushes with nothing new
#   pull      one `statectl pull` of everything into a fresh local store
#   reads     then benches/shared_reads.rs: a learner's reads of 64 random
#             states from a shared store of 100,000, beside the same reads
#             from an embedded store
#
# Whole processes, wall-clock time from the first start to the last exit.
# Prints the CPU it ran on. Set ACTORS and PER_ACTOR to change the load.
#
#   bash benches/shared_store.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ACTORS=${ACTORS:-64}
PER_ACTOR=${PER_ACTOR:-500}
WORK=$(mktemp -d)
source scripts/postgres
STARTED_SERVER=
# Stops only a server this script started (not the one $STATECTL_TEST_POSTGRES names).
cleanup() { [ -n "$STARTED_SERVER" ] && postgres_stop; rm -rf "$WORK"; }
trap cleanup EXIT
cargo build -q --release -j2
STATECTL="$PWD/target/release/statectl"
if [ -z "${STATECTL_TEST_POSTGRES:-}" ]; then
    postgres_start
    STARTED_SERVER=1
    STATECTL_PG_PSQL="$STATECTL_PG_BIN/psql"
else
    STATECTL_PG_PSQL="$(postgres_bin_dir)/psql"
fi
URL="${STATECTL_TEST_POSTGRES%/*}/bench_$$"
DIRECT_URL="${STATECTL_TEST_POSTGRES%/*}/bench_direct_$$"
PLAIN_URL="${STATECTL_TEST_POSTGRES%/*}/bench_plain_$$?sslmode=disable"
"$STATECTL_PG_PSQL" -q "$STATECTL_TEST_POSTGRES" -c "CREATE DATABASE bench_$$" -c "CREATE DATABASE bench_direct_$$" \
    -c "CREATE DATABASE bench_plain_$$" >/dev/null

# One state file per actor: PER_ACTOR one-slot states, values its own.
python3 - "$WORK" "$ACTORS" "$PER_ACTOR" <<'PY'
import json, struct, sys
work, actors, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
units = 512
for a in range(actors):
    h = [((a * n + i) * 7 + j) % 1000 * 1e-3 for i in range(n) for j in range(units)]
    c = [(a + 1) * 1e-2 + i * 1e-5 for i in range(n) for j in range(units)]
    size = 4 * n * units
    header = {"l0.c": {"dtype": "F32", "shape": [n, units], "data_offsets": [0, size]},
              "l0.h": {"dtype": "F32", "shape": [n, units], "data_offsets": [size, 2 * size]}}
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(f"{work}/actor{a}.safetensors", "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text)
        f.write(struct.pack(f"<{len(c)}f", *c) + struct.pack(f"<{len(h)}f", *h))
PY

now() { date +%s.%N; }
total=$((ACTORS * PER_ACTOR))

for a in $(seq 0 $((ACTORS - 1))); do
    "$STATECTL" --store "$WORK/actor$a" -q import "$WORK/actor$a.safetensors" --per-slot --tag-prefix "actor$a/" >/dev/null
done
"$STATECTL" -q init "$URL"
"$STATECTL" -q init "$DIRECT_URL"
"$STATECTL" -q init "$PLAIN_URL"
# Whether the default connection is encrypted: the server takes TLS.
if "$STATECTL" --store "$URL?sslmode=require" -q verify >/dev/null 2>&1; then
    transport="over TLS"
else
    transport="without TLS (the server offers none)"
fi

# Runs "$@" once per actor, all at once (ACTOR in an argument becomes the
# actor's number); prints the seconds from the first start to the last exit.
all_actors() {
    local start a
    start=$(now)
    for a in $(seq 0 $((ACTORS - 1))); do
        "${@//ACTOR/$a}" >/dev/null &
    done
    wait
    python3 -c "print($(now) - $start)"
}
rate_of() { python3 -c "print(f'{$1:7.2f} s  {$2 / $1:9.0f} states/s')"; }

embedded_s=$(all_actors "$STATECTL" --store "$WORK/embedded" -q import "$WORK/actorACTOR.safetensors" --per-slot --tag-prefix "actorACTOR/")
embedded=$(rate_of "$embedded_s" "$total")
pushed_s=$(all_actors "$STATECTL" --store "$WORK/actorACTOR" -q push "$URL")
pushed=$(rate_of "$pushed_s" "$total")
again=$(python3 -c "print(f'{$(all_actors "$STATECTL" --store "$WORK/actorACTOR" -q push "$URL"):7.2f} s')")

start=$(now)
"$STATECTL" --store "$WORK/pulled" -q pull "$URL" >/dev/null
pulled=$(rate_of "$(python3 -c "print($(now) - $start)")" "$total")
direct_s=$(all_actors "$STATECTL" --store "$DIRECT_URL" -q import "$WORK/actorACTOR.safetensors" --per-slot --tag-prefix "actorACTOR/")
direct=$(rate_of "$direct_s" "$total")
"$STATECTL" --store "$DIRECT_URL" -q verify
plain_s=$(all_actors "$STATECTL" --store "$PLAIN_URL" -q import "$WORK/actorACTOR.safetensors" --per-slot --tag-prefix "actorACTOR/")
plain=$(rate_of "$plain_s" "$total")
tags=$("$STATECTL" --store "$WORK/pulled" --json status | python3 -c 'import json,sys; print(json.load(sys.stdin)["tags"])')

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
flags=$(grep -m1 '^flags' /proc/cpuinfo)
vector=AVX2
[[ $flags == *avx512f* ]] && vector=AVX-512
echo "cpu: $cpu, $(nproc) cores, $vector; PostgreSQL on the same machine"
echo "$ACTORS actors x $PER_ACTOR one-slot LSTM-512 states (4 KiB) with a tag each: $total states"
echo "embedded  ($ACTORS imports into one SQLite store)  $embedded"
echo "push      ($ACTORS local stores to one shared)     $pushed"
echo "again     (the same pushes, nothing new)      $again"
echo "pull      (everything, into a fresh store)    $pulled"
echo "direct    ($ACTORS writers straight to a shared)  $direct"
echo "plain     (the same, sslmode=disable)         $plain"
echo "connections $transport unless sslmode=disable"
echo "pulled copy holds $tags tags"
python3 benches/record.py --workload "$ACTORS actors sending $total one-slot LSTM-512 states (a tag each) at once, $transport" \
  --figure "$(python3 -c "print($total / $pushed_s)")" --unit states/s \
  --reference "the same actors importing into one embedded store" --reference-figure "$(python3 -c "print($total / $embedded_s)")" \
  --ratio "$(python3 -c "print($embedded_s / $pushed_s)")" --ratio-means "x the embedded store's rate" \
  --rerun "bash benches/shared_store.sh" --headline
python3 benches/record.py --workload "$ACTORS writers writing $total one-slot LSTM-512 states (a tag each) straight into one shared store at once, $transport" \
  --figure "$(python3 -c "print($total / $direct_s)")" --unit states/s \
  --reference "the same actors importing into one embedded store" --reference-figure "$(python3 -c "print($total / $embedded_s)")" \
  --ratio "$(python3 -c "print($embedded_s / $direct_s)")" --ratio-means "x the embedded store's rate" \
  --rerun "bash benches/shared_store.sh" --headline
python3 benches/record.py --workload "$ACTORS writers writing $total one-slot LSTM-512 states (a tag each) straight into one shared store at once, with sslmode=disable" \
  --figure "$(python3 -c "print($total / $plain_s)")" --unit states/s \
  --reference "the same writers $transport" --reference-figure "$(python3 -c "print($total / $direct_s)")" \
  --ratio "$(python3 -c "print($direct_s / $plain_s)")" --ratio-means "x the rate $transport" \
  --rerun "bash benches/shared_store.sh"

STATECTL_TEST_POSTGRES="$STATECTL_TEST_POSTGRES" cargo bench -q -j2 --bench shared_reads
