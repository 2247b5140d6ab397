#!/usr/bin/env bash
# The issue's training shape in Keras and in statectl, measured in one run:
# LSTM(256), 8 features, 50 steps, batch 64, Dense(1), MSE, Adam, no
# shuffle. Steady-state milliseconds per batch for both, and the ratio.
#
#   bash benches/keras_side_by_side.sh [BATCHES]     (default 100)
#
# Makes (once) a venv with pinned tensorflow-cpu and keras under
# target/keras-venv; builds statectl in release mode. Keras: two epochs in
# one fit, timed from the end of batch 10 (its first batches trace and
# compile the graph) to the end. statectl: two epochs minus one epoch,
# whole processes, so startup and recording cancel out. Each side runs
# twice, in turns, and its faster turn counts.
set -euo pipefail
cd "$(dirname "$0")/.."
BATCHES="${1:-100}"
VENV=target/keras-venv
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export PIP_DISABLE_PIP_VERSION_CHECK=1 TF_CPP_MIN_LOG_LEVEL=3

if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import tensorflow, keras, safetensors" 2>/dev/null; then
  echo "making $VENV (tensorflow-cpu 2.21.0, keras 3.15.1; a few minutes once)" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "tensorflow-cpu==2.21.0" "keras==3.15.1" "numpy==2.4.6" safetensors
fi
cargo build -q --release -j2
STATECTL="$PWD/target/release/statectl"

"$VENV/bin/python" - "$WORK" "$BATCHES" <<'PY'
import sys
import numpy as np
from safetensors.numpy import save_file
work, batches = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(0)
n = 64 * batches
save_file({"x": rng.standard_normal((n, 50, 8)).astype(np.float32),
           "y": rng.standard_normal((n, 1)).astype(np.float32)}, f"{work}/data.safetensors")
PY

keras() {
  "$VENV/bin/python" - "$WORK" "$BATCHES" <<'PY'
import sys, time, os
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import keras
from safetensors.numpy import load_file
work, batches = sys.argv[1], int(sys.argv[2])
d = load_file(f"{work}/data.safetensors")
model = keras.Sequential([
    keras.Input(batch_shape=(64, 50, 8)),
    keras.layers.LSTM(256, stateful=True),
    keras.layers.Dense(1),
])
model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
marks = []
class Clock(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        marks.append(time.perf_counter())
model.fit(d["x"], d["y"], batch_size=64, epochs=2, shuffle=False, verbose=0, callbacks=[Clock()])
# From the end of batch 10 (tracing and compiling are over) to the end of
# the second epoch.
print((marks[-1] - marks[10]) / (len(marks) - 11) * 1e3)
PY
}

run() {
  rm -rf "$WORK/store"
  local start end
  start=$(date +%s.%N)
  "$STATECTL" --store "$WORK/store" -q train --data "$WORK/data.safetensors" --units 256 \
    --batch-size 64 --epochs "$1" --no-shuffle --name m >/dev/null
  end=$(date +%s.%N)
  python3 -c "print($end - $start)"
}
# This machine's speed drifts from minute to minute, so the two are
# measured in turns (Keras, statectl, Keras, statectl) and each figure is
# the faster of its two turns: a stray slow minute decides neither, and
# both sides see the same minutes.
keras_runs=() ones=() twos=()
for turn in 1 2; do
  keras_runs+=("$(keras)")
  ones+=("$(run 1)")
  twos+=("$(run 2)")
done
best() { python3 -c "print(min($1, $2))"; }
keras_ms=$(best "${keras_runs[0]}" "${keras_runs[1]}")
one=$(best "${ones[0]}" "${ones[1]}")
two=$(best "${twos[0]}" "${twos[1]}")
statectl_ms=$(python3 -c "print(($two - $one) / $BATCHES * 1000)")

printf 'training step (LSTM(256), 8 features, 50 steps, batch 64, Dense(1), MSE, Adam), %s batches:\n' "$BATCHES"
printf '  Keras 3.15.1 / tensorflow-cpu 2.21.0  %7.1f ms/batch\n' "$keras_ms"
printf '  statectl (fused-1)                     %7.1f ms/batch\n' "$statectl_ms"
printf '  statectl is %.2fx the speed of Keras\n' "$(python3 -c "print($keras_ms / $statectl_ms)")"
printf '  turns: Keras %.1f, %.1f ms/batch; statectl %.1f, %.1f ms/batch\n' "${keras_runs[0]}" "${keras_runs[1]}" \
  "$(python3 -c "print((${twos[0]} - ${ones[0]}) / $BATCHES * 1000)")" "$(python3 -c "print((${twos[1]} - ${ones[1]}) / $BATCHES * 1000)")"
