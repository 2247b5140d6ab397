#!/usr/bin/env bash
# A scripted audit, as a CI job would run it: train, predict a few times,
# restore, broadcast a slot, then replay everything (`audit --train`) and
# re-hash everything (`verify`). Exits non-zero if either finds a problem.
#
#   STATECTL=path/to/statectl STATECTL_STORE=dir bash examples/audit.sh
set -euo pipefail
statectl=${STATECTL:-statectl}
export STATECTL_STORE=${STATECTL_STORE:-$(mktemp -d)}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$statectl" -q train --epochs 3 --name audited
# Six copies of the alphabet's first window (A, B, C as 0, 1/27, 2/27).
for _ in 1 2 3 4 5 6; do echo "0,0.037037037,0.074074074"; done > "$work/x.csv"
"$statectl" -q predict --model audited --input "$work/x.csv" --tag first >/dev/null
"$statectl" -q predict --model audited --input "$work/x.csv" >/dev/null
"$statectl" -q restore first --model audited >/dev/null
"$statectl" -q predict --model audited --input "$work/x.csv" >/dev/null
"$statectl" -q restore first --slot 0 --model audited >/dev/null
"$statectl" -q predict --model audited --input "$work/x.csv" >/dev/null

"$statectl" audit --train audited
"$statectl" verify
echo "audit passed: every recorded prediction and the training reproduce bit for bit"
